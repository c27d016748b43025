//! The little the catalog needs from a database, so that its queries and
//! rules are written once for SQLite and PostgreSQL alike. Shared SQL uses
//! `?` placeholders and only syntax both accept; each driver supplies the
//! few statements that differ (locks, migrations).

use std::sync::Arc;

use crate::error::Error;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
    /// SQLite stores it as 0 or 1; PostgreSQL as BOOLEAN.
    Bool(bool),
}

impl From<i64> for Value {
    fn from(v: i64) -> Value {
        Value::Int(v)
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Value {
        Value::Text(v.to_string())
    }
}

impl From<&String> for Value {
    fn from(v: &String) -> Value {
        Value::Text(v.clone())
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Value {
        Value::Bool(v)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Value {
        v.map_or(Value::Null, Into::into)
    }
}

/// One result row; the getters name the location so that a surprise in the
/// data reads as a damaged catalog, not a crash.
pub(crate) struct Row {
    pub values: Vec<Value>,
    pub location: Arc<str>,
}

impl Row {
    fn corrupt(&self, i: usize, want: &str) -> Error {
        Error::Corrupt {
            location: self.location.to_string(),
            reason: format!(
                "column {i}: expected {want}, found {:?}",
                self.values.get(i)
            ),
        }
    }

    pub fn int(&self, i: usize) -> Result<i64, Error> {
        match self.values.get(i) {
            Some(Value::Int(v)) => Ok(*v),
            _ => Err(self.corrupt(i, "an integer")),
        }
    }

    /// Column `i` read by `read`, or `None` where it is NULL.
    fn nullable<T>(
        &self,
        i: usize,
        read: fn(&Row, usize) -> Result<T, Error>,
    ) -> Result<Option<T>, Error> {
        match self.values.get(i) {
            Some(Value::Null) => Ok(None),
            _ => read(self, i).map(Some),
        }
    }

    pub fn opt_int(&self, i: usize) -> Result<Option<i64>, Error> {
        self.nullable(i, Row::int)
    }

    pub fn real_opt(&self, i: usize) -> Result<Option<f64>, Error> {
        match self.values.get(i) {
            Some(Value::Null) => Ok(None),
            Some(Value::Real(v)) => Ok(Some(*v)),
            // SQLite hands back a REAL that is whole as it was stored.
            Some(Value::Int(v)) => Ok(Some(*v as f64)),
            _ => Err(self.corrupt(i, "a number")),
        }
    }

    pub fn text(&self, i: usize) -> Result<String, Error> {
        match self.values.get(i) {
            Some(Value::Text(v)) => Ok(v.clone()),
            _ => Err(self.corrupt(i, "text")),
        }
    }

    pub fn opt_text(&self, i: usize) -> Result<Option<String>, Error> {
        self.nullable(i, Row::text)
    }

    pub fn blob(&self, i: usize) -> Result<Vec<u8>, Error> {
        match self.values.get(i) {
            Some(Value::Blob(v)) => Ok(v.clone()),
            _ => Err(self.corrupt(i, "bytes")),
        }
    }

    pub fn bool(&self, i: usize) -> Result<bool, Error> {
        match self.values.get(i) {
            Some(Value::Bool(v)) => Ok(*v),
            Some(Value::Int(0)) => Ok(false),
            Some(Value::Int(1)) => Ok(true),
            _ => Err(self.corrupt(i, "a boolean")),
        }
    }
}

/// A transaction in progress.
pub(crate) trait Tx {
    /// How messages name the catalog.
    fn location(&self) -> &str;
    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, Error>;
    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, Error>;
    /// Several statements without parameters (migrations).
    fn batch(&mut self, sql: &str) -> Result<(), Error>;
    /// Held until the transaction ends, so that two processes opening a
    /// fresh catalog do not both create it.
    fn lock_schema(&mut self) -> Result<(), Error>;
    /// Creates the environment's row if need be and holds it until the
    /// transaction ends: promotions in one environment happen one at a time.
    fn lock_environment(&mut self, env: &str) -> Result<(), Error>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// A consistent snapshot for several queries.
    Read,
    Write,
}

pub(crate) type Work<'f> = &'f mut dyn FnMut(&mut dyn Tx) -> Result<(), Error>;

pub(crate) trait Driver: Send {
    /// Runs `work` in one transaction, committed if it returns Ok. A driver
    /// may run it again when the database asks for a retry.
    fn transaction(&mut self, mode: Mode, work: Work<'_>) -> Result<(), Error>;
    fn migrations(&self) -> &'static [crate::migrations::Migration];
}

/// `?, ?, ?` for an IN list.
pub(crate) fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}
