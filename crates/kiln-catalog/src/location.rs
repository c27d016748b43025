//! Where a catalog lives, from the one string a user gives.

use std::path::PathBuf;

use crate::error::Error;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Location {
    Sqlite(PathBuf),
    /// A libpq-style URL or `key=value …` string, as given.
    Postgres(String),
}

/// The keys that may open a libpq `key=value` connection string. A file path
/// starting like this is unlikely enough; `sqlite:` names one unambiguously.
const POSTGRES_KEYS: &[&str] = &["host=", "hostaddr=", "port=", "dbname=", "user="];

pub(crate) fn parse(location: &str) -> Result<Location, Error> {
    let bad = |reason: &str| Error::BadLocation {
        location: location.to_string(),
        reason: reason.to_string(),
    };
    let trimmed = location.trim();
    if trimmed.is_empty() {
        return Err(bad("empty"));
    }
    if trimmed.starts_with("postgres://")
        || trimmed.starts_with("postgresql://")
        || POSTGRES_KEYS.iter().any(|k| trimmed.starts_with(k))
    {
        return Ok(Location::Postgres(trimmed.to_string()));
    }
    if let Some(rest) = trimmed.strip_prefix("sqlite:") {
        // `sqlite:///abs/path` and `sqlite://rel` as other tools write them.
        let path = rest.strip_prefix("//").unwrap_or(rest);
        if path.is_empty() {
            return Err(bad("`sqlite:` needs a file path after it"));
        }
        return Ok(Location::Sqlite(PathBuf::from(path)));
    }
    if let Some((scheme, _)) = trimmed.split_once("://")
        && !scheme.is_empty()
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '.' | '-'))
    {
        return Err(bad(&format!(
            "unknown scheme `{scheme}`; kiln keeps catalogs in SQLite or PostgreSQL"
        )));
    }
    // A plain path is taken as given, surrounding spaces and all.
    Ok(Location::Sqlite(PathBuf::from(location)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqlite(p: &str) -> Location {
        Location::Sqlite(PathBuf::from(p))
    }

    #[test]
    fn locations() {
        let pg = |s: &str| Location::Postgres(s.to_string());
        assert_eq!(parse("catalog.db").unwrap(), sqlite("catalog.db"));
        assert_eq!(
            parse("/var/lib/kiln/c.db").unwrap(),
            sqlite("/var/lib/kiln/c.db")
        );
        assert_eq!(parse("sqlite:c.db").unwrap(), sqlite("c.db"));
        assert_eq!(parse("sqlite:///abs/c.db").unwrap(), sqlite("/abs/c.db"));
        for s in [
            "postgres://kiln@db/kiln",
            "postgresql://kiln:pw@db:5433/kiln",
            "host=/run/postgresql dbname=kiln",
            "dbname=kiln user=kiln",
        ] {
            assert_eq!(parse(s).unwrap(), pg(s));
        }
    }

    #[test]
    fn refused_locations() {
        for s in ["", "  ", "sqlite:", "mysql://db/kiln"] {
            let e = parse(s).unwrap_err();
            assert!(matches!(e, Error::BadLocation { .. }), "{s}: {e}");
            assert!(e.is_user_error());
            assert!(e.hint().is_some());
        }
    }
}
