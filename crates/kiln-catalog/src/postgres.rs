//! A catalog in PostgreSQL, for a team or a CI fleet sharing one record.
//!
//! Writes run at READ COMMITTED with explicit row locks where order matters
//! (an environment's row for promotions, an advisory lock for migrations);
//! reads run in a REPEATABLE READ snapshot so a build and its outputs are
//! read as of one moment. A transaction the server aborts for a deadlock or
//! serialisation failure is run again.

use std::error::Error as _;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use postgres::config::Host;
use postgres::error::SqlState;
use postgres::types::{IsNull, ToSql, Type, to_sql_checked};
use postgres::{Client, Config, IsolationLevel, NoTls};

use crate::db::{Driver, Mode, Row, Tx, Value, Work};
use crate::error::Error;
use crate::migrations::{self, Migration};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
const ATTEMPTS: usize = 5;
/// Key of the advisory lock taken while migrating: "kiln" in ASCII.
const SCHEMA_LOCK: i64 = 0x6b69_6c6e;

pub(crate) struct Postgres {
    client: Client,
    location: Arc<str>,
}

impl Postgres {
    pub fn open(conninfo: &str) -> Result<Postgres, Error> {
        let mut config = Config::from_str(conninfo).map_err(|e| Error::BadLocation {
            // The string may hold a password: show only what was wrong.
            location: "postgresql …".to_string(),
            reason: message(&e),
        })?;
        let location: Arc<str> = Arc::from(describe(&config));
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("kiln");
        }
        let client = config.connect(NoTls).map_err(|e| pg_err(&location, e))?;
        Ok(Postgres { client, location })
    }

    pub fn location(&self) -> &str {
        &self.location
    }
}

/// `postgresql HOST/DB`, never the password.
fn describe(config: &Config) -> String {
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        Some(Host::Unix(p)) => p.display().to_string(),
        None => "localhost".to_string(),
    };
    let port = match config.get_ports().first() {
        Some(&p) if p != 5432 => format!(":{p}"),
        _ => String::new(),
    };
    let db = config
        .get_dbname()
        .or(config.get_user())
        .unwrap_or("postgres");
    format!("postgresql {host}{port}/{db}")
}

/// The server's own words: `postgres::Error` displays a server error as
/// just "db error".
fn message(e: &postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut m = db.message().to_string();
        if let Some(detail) = db.detail() {
            m.push_str(": ");
            m.push_str(detail);
        }
        return m;
    }
    let mut m = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        m.push_str(": ");
        m.push_str(&s.to_string());
        source = s.source();
    }
    m
}

fn pg_err(location: &str, source: postgres::Error) -> Error {
    Error::Postgres {
        location: location.to_string(),
        message: message(&source),
        source,
    }
}

fn retryable(e: &Error) -> bool {
    match e {
        Error::Postgres { source, .. } => matches!(
            source.code(),
            Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE
                || *c == SqlState::T_R_DEADLOCK_DETECTED
        ),
        _ => false,
    }
}

impl Driver for Postgres {
    fn transaction(&mut self, mode: Mode, work: Work<'_>) -> Result<(), Error> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.attempt(mode, work) {
                Err(e) if attempt < ATTEMPTS && retryable(&e) => {
                    std::thread::sleep(Duration::from_millis(10 * attempt as u64));
                }
                done => return done,
            }
        }
    }

    fn migrations(&self) -> &'static [Migration] {
        migrations::POSTGRES
    }
}

impl Postgres {
    fn attempt(&mut self, mode: Mode, work: Work<'_>) -> Result<(), Error> {
        let location = &self.location;
        let builder = self.client.build_transaction();
        let builder = match mode {
            Mode::Read => builder
                .isolation_level(IsolationLevel::RepeatableRead)
                .read_only(true),
            Mode::Write => builder.isolation_level(IsolationLevel::ReadCommitted),
        };
        let mut tx = builder.start().map_err(|e| pg_err(location, e))?;
        let mut handle = PgTx {
            tx: &mut tx,
            location,
        };
        // Dropping an uncommitted transaction rolls it back.
        work(&mut handle)?;
        tx.commit().map_err(|e| pg_err(location, e))
    }
}

struct PgTx<'a, 'b> {
    tx: &'a mut postgres::Transaction<'b>,
    location: &'a Arc<str>,
}

impl PgTx<'_, '_> {
    fn err(&self, e: postgres::Error) -> Error {
        pg_err(self.location, e)
    }
}

/// `?` → `$1, $2, …`: shared SQL holds no `?` inside literals.
fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            out.push('$');
            out.push_str(&n.to_string());
        } else {
            out.push(c);
        }
    }
    out
}

fn refs(params: &[Value]) -> Vec<&(dyn ToSql + Sync)> {
    params.iter().map(|p| p as &(dyn ToSql + Sync)).collect()
}

impl Tx for PgTx<'_, '_> {
    fn location(&self) -> &str {
        self.location
    }

    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, Error> {
        let r = self.tx.execute(numbered(sql).as_str(), &refs(params));
        r.map_err(|e| self.err(e))
    }

    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, Error> {
        let rows = self.tx.query(numbered(sql).as_str(), &refs(params));
        let rows = rows.map_err(|e| self.err(e))?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let mut values = Vec::with_capacity(row.len());
            for (i, column) in row.columns().iter().enumerate() {
                values.push(self.value(&row, i, column.type_())?);
            }
            out.push(Row {
                values,
                location: Arc::clone(self.location),
            });
        }
        Ok(out)
    }

    fn batch(&mut self, sql: &str) -> Result<(), Error> {
        self.tx.batch_execute(sql).map_err(|e| self.err(e))
    }

    fn lock_schema(&mut self) -> Result<(), Error> {
        // CREATE TABLE IF NOT EXISTS alone races: two sessions may both see
        // no table and one then fails on a duplicate type.
        self.tx
            .execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])
            .map(drop)
            .map_err(|e| self.err(e))
    }

    fn lock_environment(&mut self, env: &str) -> Result<(), Error> {
        // At READ COMMITTED every later statement sees what the previous
        // holder of the lock committed: the current build, the next seq.
        self.execute(
            "INSERT INTO environments (name) VALUES (?) ON CONFLICT (name) DO NOTHING",
            &[env.into()],
        )?;
        self.tx
            .execute(
                "SELECT name FROM environments WHERE name = $1 FOR UPDATE",
                &[&env],
            )
            .map(drop)
            .map_err(|e| self.err(e))
    }
}

impl PgTx<'_, '_> {
    fn value(&self, row: &postgres::Row, i: usize, ty: &Type) -> Result<Value, Error> {
        fn get<'r, T: postgres::types::FromSql<'r>>(
            row: &'r postgres::Row,
            i: usize,
            wrap: impl Fn(T) -> Value,
        ) -> Result<Value, postgres::Error> {
            Ok(row.try_get::<_, Option<T>>(i)?.map_or(Value::Null, wrap))
        }
        let v = match *ty {
            Type::INT8 => get(row, i, Value::Int),
            Type::INT4 => get(row, i, |v: i32| Value::Int(v.into())),
            Type::INT2 => get(row, i, |v: i16| Value::Int(v.into())),
            Type::FLOAT8 => get(row, i, Value::Real),
            Type::FLOAT4 => get(row, i, |v: f32| Value::Real(v.into())),
            Type::BOOL => get(row, i, Value::Bool),
            Type::BYTEA => get(row, i, Value::Blob),
            Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => get(row, i, Value::Text),
            _ => {
                return Err(Error::Corrupt {
                    location: self.location.to_string(),
                    reason: format!("column {i} has unexpected type {ty}"),
                });
            }
        };
        v.map_err(|e| self.err(e))
    }
}

impl ToSql for Value {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut postgres::types::private::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        // Checked: a value of the wrong width must fail, not be misread.
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(v) => v.to_sql_checked(ty, out),
            Value::Real(v) => v.to_sql_checked(ty, out),
            Value::Text(v) => v.to_sql_checked(ty, out),
            Value::Blob(v) => v.to_sql_checked(ty, out),
            Value::Bool(v) => v.to_sql_checked(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered() {
        assert_eq!(
            numbered("SELECT a FROM t WHERE b = ? AND c IN (?, ?)"),
            "SELECT a FROM t WHERE b = $1 AND c IN ($2, $3)"
        );
    }

    #[test]
    fn description_hides_the_password() {
        for (s, want) in [
            (
                "postgresql://kiln:secret@db.example:5433/cat",
                "postgresql db.example:5433/cat",
            ),
            (
                "host=/run/postgresql user=kiln password=secret dbname=cat",
                "postgresql /run/postgresql/cat",
            ),
            ("postgres://kiln@db", "postgresql db/kiln"),
        ] {
            let config = Config::from_str(s).unwrap();
            assert_eq!(describe(&config), want);
        }
    }
}
