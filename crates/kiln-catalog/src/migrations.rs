//! Numbered schema changes, one list per database kind. A catalog records
//! the versions applied in `schema_migrations`; opening it applies the rest
//! in one transaction under a lock, so two processes opening a fresh catalog
//! at once create it once. A catalog newer than this kiln is refused rather
//! than written with rules it does not know.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::db::{Tx, Value};
use crate::error::Error;

pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

/// Each migration once, in both dialects: the two lists cannot drift apart.
/// Files are `000N_NAME.sql`; migration 10 will need the prefix shortened
/// (a missing file is a compile error, not a surprise).
macro_rules! migrations {
    ($($version:literal $name:literal,)*) => {
        pub(crate) const SQLITE: &[Migration] = &[$(Migration {
            version: $version,
            name: $name,
            sql: include_str!(concat!("../migrations/sqlite/000", $version, "_", $name, ".sql")),
        }),*];
        pub(crate) const POSTGRES: &[Migration] = &[$(Migration {
            version: $version,
            name: $name,
            sql: include_str!(concat!("../migrations/postgres/000", $version, "_", $name, ".sql")),
        }),*];
    };
}

migrations! {
    1 "builds",
    2 "promotions",
    3 "pushes",
    4 "rollouts",
}

/// The schema version this kiln writes: its last migration's.
pub const SCHEMA_VERSION: i64 = SQLITE.len() as i64;

/// Brings the catalog up to `target` and gives the version it is at.
pub(crate) fn migrate(
    tx: &mut dyn Tx,
    migrations: &[Migration],
    target: i64,
    location: &str,
) -> Result<i64, Error> {
    tx.lock_schema()?;
    tx.batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version BIGINT PRIMARY KEY,
            name TEXT NOT NULL,
            applied_at BIGINT NOT NULL
        )",
    )?;
    let current = version(tx)?;
    let known = migrations.last().map_or(0, |m| m.version);
    if current > known {
        return Err(Error::SchemaTooNew {
            location: location.to_string(),
            found: current,
            known,
        });
    }
    // The time a migration ran is for whoever debugs the catalog; no build
    // record depends on it.
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let mut at = current;
    for m in migrations
        .iter()
        .filter(|m| m.version > current && m.version <= target)
    {
        tx.batch(m.sql)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
            &[Value::Int(m.version), m.name.into(), Value::Int(now)],
        )?;
        at = m.version;
    }
    Ok(at)
}

pub(crate) fn version(tx: &mut dyn Tx) -> Result<i64, Error> {
    let rows = tx.query("SELECT MAX(version) FROM schema_migrations", &[])?;
    match rows.first() {
        Some(row) => Ok(row.opt_int(0)?.unwrap_or(0)),
        None => Ok(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_kinds_have_the_same_numbered_versions() {
        for list in [SQLITE, POSTGRES] {
            let versions: Vec<i64> = list.iter().map(|m| m.version).collect();
            let expected: Vec<i64> = (1..=SCHEMA_VERSION).collect();
            assert_eq!(versions, expected);
        }
        let names = |l: &[Migration]| l.iter().map(|m| m.name).collect::<Vec<_>>();
        assert_eq!(names(SQLITE), names(POSTGRES));
    }
}
