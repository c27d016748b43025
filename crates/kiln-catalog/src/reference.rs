//! How a user names a build: `NAME@VERSION`, `NAME@latest`, or a prefix of
//! its digest or of one of its outputs' digests. A bare name is refused
//! rather than taken as latest, so a typo never silently picks a build.

use crate::builds::{self, BUILD_COLUMNS};
use crate::db::{Tx, Value, placeholders};
use crate::error::Error;
use crate::model::Build;

/// Fewer digits match too much to be meant.
pub const MIN_PREFIX: usize = 4;
const DIGEST_HEX: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reference {
    Version {
        name: String,
        version: String,
    },
    Latest {
        name: String,
    },
    /// `sha256:` followed by 4 to 64 lowercase hex digits.
    Prefix(String),
}

pub(crate) fn parse(reference: &str) -> Result<Reference, Error> {
    let bad = |reason: &str| Error::BadReference {
        reference: reference.to_string(),
        reason: reason.to_string(),
    };
    let r = reference.trim();
    if let Some((name, version)) = r.split_once('@') {
        if name.is_empty() {
            return Err(bad("no image name before `@`"));
        }
        if version.is_empty() {
            return Err(bad("no version after `@`"));
        }
        return Ok(if version == "latest" {
            Reference::Latest {
                name: name.to_string(),
            }
        } else {
            Reference::Version {
                name: name.to_string(),
                version: version.to_string(),
            }
        });
    }
    let hex = match r.strip_prefix("sha256:") {
        Some(hex) if hex.is_empty() || !hex.chars().all(|c| c.is_ascii_hexdigit()) => {
            return Err(bad("not hex digits after `sha256:`"));
        }
        Some(hex) => hex,
        None if r.contains(':') => return Err(bad("only sha256 digests are recorded")),
        None if r.is_empty() => return Err(bad("empty")),
        None if !r.chars().all(|c| c.is_ascii_hexdigit()) => {
            return Err(bad("an image name needs @VERSION or @latest"));
        }
        None => r,
    };
    if hex.len() < MIN_PREFIX {
        return Err(bad(&format!(
            "a digest prefix needs at least {MIN_PREFIX} hex digits"
        )));
    }
    if hex.len() > DIGEST_HEX {
        return Err(bad("longer than a sha256 digest"));
    }
    Ok(Reference::Prefix(format!(
        "sha256:{}",
        hex.to_ascii_lowercase()
    )))
}

/// An ambiguous prefix lists at most this many builds.
const MAX_CANDIDATES: usize = 10;

pub(crate) fn resolve(tx: &mut dyn Tx, reference: &str) -> Result<Build, Error> {
    let newest = |name: &str, version: Option<&str>| {
        let mut sql = "SELECT b.id FROM builds b WHERE b.name = ?".to_string();
        let mut params = vec![Value::from(name)];
        if let Some(v) = version {
            sql.push_str(" AND b.version = ?");
            params.push(v.into());
        }
        sql.push_str(" ORDER BY b.built_at DESC, b.id LIMIT 1");
        (sql, params)
    };
    let (sql, params) = match parse(reference)? {
        Reference::Version { name, version } => newest(&name, Some(&version)),
        Reference::Latest { name } => newest(&name, None),
        Reference::Prefix(prefix) => {
            let pattern = Value::Text(format!("{prefix}%"));
            (
                "SELECT id FROM builds WHERE id LIKE ? \
                 UNION SELECT build FROM outputs WHERE digest LIKE ?"
                    .to_string(),
                vec![pattern.clone(), pattern],
            )
        }
    };
    let mut ids = tx
        .query(&sql, &params)?
        .iter()
        .map(|r| r.text(0))
        .collect::<Result<Vec<_>, _>>()?;
    let not_found = || Error::NotFound {
        reference: reference.to_string(),
    };
    match ids.len() {
        0 => Err(not_found()),
        1 => builds::get(tx, &ids[0])?.ok_or_else(not_found),
        n => {
            ids.sort();
            let rows = tx.query(
                &format!(
                    "SELECT {BUILD_COLUMNS} FROM builds b WHERE b.id IN ({}) \
                     ORDER BY b.built_at DESC, b.id",
                    placeholders(n.min(MAX_CANDIDATES))
                ),
                &ids.iter()
                    .take(MAX_CANDIDATES)
                    .map(Value::from)
                    .collect::<Vec<_>>(),
            )?;
            let mut candidates = rows
                .iter()
                .map(|r| {
                    Ok(format!(
                        "{} {}@{}",
                        short(&r.text(0)?),
                        r.text(1)?,
                        r.text(2)?
                    ))
                })
                .collect::<Result<Vec<_>, Error>>()?;
            if n > MAX_CANDIDATES {
                candidates.push(format!("and {} more", n - MAX_CANDIDATES));
            }
            Err(Error::Ambiguous {
                reference: reference.to_string(),
                count: n,
                candidates,
            })
        }
    }
}

/// `sha256:` and 64 lowercase hex digits, as build ids and output digests are.
pub(crate) fn is_digest(s: &str) -> bool {
    s.strip_prefix("sha256:").is_some_and(|h| {
        h.len() == DIGEST_HEX && h.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f'))
    })
}

/// `sha256:0123456789ab`: enough to tell builds apart in a message.
pub(crate) fn short(id: &str) -> &str {
    id.get(..19).unwrap_or(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references() {
        assert_eq!(
            parse("web@1.0.0").unwrap(),
            Reference::Version {
                name: "web".into(),
                version: "1.0.0".into()
            }
        );
        assert_eq!(
            parse("web@latest").unwrap(),
            Reference::Latest { name: "web".into() }
        );
        assert_eq!(
            parse("ABCD").unwrap(),
            Reference::Prefix("sha256:abcd".into())
        );
        assert_eq!(
            parse("sha256:abcd12").unwrap(),
            Reference::Prefix("sha256:abcd12".into())
        );
    }

    #[test]
    fn refused_references() {
        for (r, why) in [
            ("web", "@VERSION or @latest"),
            ("@1.0", "no image name"),
            ("web@", "no version"),
            ("abc", "at least 4"),
            ("sha256:", "not hex"),
            ("sha256:xyz1", "not hex"),
            ("", "empty"),
            ("md5:abcd", "sha256"),
            (&"a".repeat(65), "longer"),
        ] {
            let e = parse(r).unwrap_err();
            assert!(e.to_string().contains(why), "{r}: {e}");
            assert!(e.is_user_error());
            assert!(e.hint().unwrap().contains("NAME@VERSION"));
        }
    }

    #[test]
    fn digests() {
        assert!(is_digest(&format!("sha256:{}", "0a".repeat(32))));
        assert!(!is_digest(&format!("sha256:{}", "0A".repeat(32))));
        assert!(!is_digest("sha256:abcd"));
        assert!(!is_digest(&"0a".repeat(32)));
    }
}
