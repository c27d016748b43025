//! The embedded catalog: one SQLite file that several kiln processes may
//! write at once.
//!
//! - WAL, so readers never wait for a writer and a writer never for readers.
//! - `synchronous=FULL`: every commit is on disk before it returns, so a
//!   crash or power loss loses no committed record (NORMAL would risk the
//!   last commits in WAL mode).
//! - Writes open with `BEGIN IMMEDIATE`: a writer takes the lock up front
//!   and waits for it (busy_timeout) instead of failing part-way when two
//!   transactions both try to upgrade a read lock.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use crate::db::{Driver, Mode, Row, Tx, Value, Work};
use crate::error::Error;
use crate::migrations::{self, Migration};

/// Long enough for any other writer's transaction, which are all short.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

pub(crate) struct Sqlite {
    path: PathBuf,
    location: Arc<str>,
    conn: Connection,
}

impl Sqlite {
    pub fn open(path: &Path) -> Result<Sqlite, Error> {
        if let Some(parent) = path.parent()
            && !parent.as_os_str().is_empty()
        {
            fs_err::create_dir_all(parent)?;
        }
        let err = |source| Error::Sqlite {
            path: path.to_path_buf(),
            source,
        };
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(err)?;
        // Before anything else: switching to WAL needs a lock that another
        // process opening the same fresh file may hold for a moment.
        conn.busy_timeout(BUSY_TIMEOUT).map_err(err)?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Error::NoWal {
                path: path.to_path_buf(),
                mode,
            });
        }
        conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")
            .map_err(err)?;
        Ok(Sqlite {
            path: path.to_path_buf(),
            location: Arc::from(path.display().to_string()),
            conn,
        })
    }
}

impl Driver for Sqlite {
    fn transaction(&mut self, mode: Mode, work: Work<'_>) -> Result<(), Error> {
        let path = &self.path;
        let err = |source| Error::Sqlite {
            path: path.clone(),
            source,
        };
        let behavior = match mode {
            Mode::Read => TransactionBehavior::Deferred,
            Mode::Write => TransactionBehavior::Immediate,
        };
        let tx = self.conn.transaction_with_behavior(behavior).map_err(err)?;
        let mut handle = SqliteTx {
            tx: &tx,
            path,
            location: &self.location,
        };
        // Dropping an uncommitted transaction rolls it back.
        work(&mut handle)?;
        tx.commit().map_err(err)
    }

    fn migrations(&self) -> &'static [Migration] {
        migrations::SQLITE
    }
}

struct SqliteTx<'a> {
    tx: &'a rusqlite::Transaction<'a>,
    path: &'a Path,
    location: &'a Arc<str>,
}

impl SqliteTx<'_> {
    fn err(&self, source: rusqlite::Error) -> Error {
        Error::Sqlite {
            path: self.path.to_path_buf(),
            source,
        }
    }
}

impl Tx for SqliteTx<'_> {
    fn location(&self) -> &str {
        self.location
    }

    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, Error> {
        let mut stmt = self.tx.prepare_cached(sql).map_err(|e| self.err(e))?;
        let n = stmt
            .execute(rusqlite::params_from_iter(params))
            .map_err(|e| self.err(e))?;
        Ok(n as u64)
    }

    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, Error> {
        let mut stmt = self.tx.prepare_cached(sql).map_err(|e| self.err(e))?;
        let columns = stmt.column_count();
        let mut rows = stmt
            .query(rusqlite::params_from_iter(params))
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(|e| self.err(e))? {
            let mut values = Vec::with_capacity(columns);
            for i in 0..columns {
                values.push(match row.get_ref(i).map_err(|e| self.err(e))? {
                    ValueRef::Null => Value::Null,
                    ValueRef::Integer(v) => Value::Int(v),
                    ValueRef::Real(v) => Value::Real(v),
                    ValueRef::Text(v) => Value::Text(String::from_utf8_lossy(v).into_owned()),
                    ValueRef::Blob(v) => Value::Blob(v.to_vec()),
                });
            }
            out.push(Row {
                values,
                location: Arc::clone(self.location),
            });
        }
        Ok(out)
    }

    fn batch(&mut self, sql: &str) -> Result<(), Error> {
        self.tx.execute_batch(sql).map_err(|e| self.err(e))
    }

    fn lock_schema(&mut self) -> Result<(), Error> {
        // BEGIN IMMEDIATE already holds the database's one write lock.
        Ok(())
    }

    fn lock_environment(&mut self, env: &str) -> Result<(), Error> {
        // The write lock serialises every writer; only the row is needed.
        self.execute(
            "INSERT INTO environments (name) VALUES (?) ON CONFLICT (name) DO NOTHING",
            &[env.into()],
        )
        .map(drop)
    }
}

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self {
            Value::Null => ValueRef::Null,
            Value::Int(v) => ValueRef::Integer(*v),
            Value::Real(v) => ValueRef::Real(*v),
            Value::Text(v) => ValueRef::Text(v.as_bytes()),
            Value::Blob(v) => ValueRef::Blob(v),
            Value::Bool(v) => ValueRef::Integer(i64::from(*v)),
        }))
    }
}
