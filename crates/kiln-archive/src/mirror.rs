//! Which mirror to fetch from. The mirror is not part of an image: it comes
//! from the command line, the environment, or the host's apt sources, in that
//! order.

use std::path::Path;

use kiln_deb::sources::{SourceEntry, SourcesError, read_sources};

/// Base URIs (no trailing `/`) of the two archives a Debian release needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mirrors {
    /// Serves `<suite>` and `<suite>-updates`.
    pub debian: String,
    /// Serves `<suite>-security`.
    pub security: String,
}

#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    #[error("no Debian mirror found for suite {suite}: {why}")]
    NotFound { suite: String, why: String },
    #[error("reading the host's apt sources")]
    Sources(#[source] SourcesError),
}

impl MirrorError {
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            MirrorError::NotFound { .. } => "set KILN_MIRROR or pass --mirror".to_string(),
            MirrorError::Sources(_) => {
                "fix the apt sources file named above, or set KILN_MIRROR or pass --mirror"
                    .to_string()
            }
        })
    }
}

/// Suites a Debian archive serves, for recognising a Debian mirror in the
/// host's sources when it lists another release than the one wanted.
const RELEASES: &[&str] = &[
    "buster",
    "bullseye",
    "bookworm",
    "trixie",
    "forky",
    "duke",
    "sid",
    "experimental",
    "oldoldstable",
    "oldstable",
    "stable",
    "testing",
    "unstable",
];

impl Mirrors {
    /// Finds the mirrors for `suite` (a release such as `bookworm`) from
    /// `explicit` (`--mirror`), the process environment, and the apt sources
    /// under `apt_root` (`/` for the host).
    pub fn discover(
        explicit: Option<&str>,
        suite: &str,
        apt_root: &Path,
    ) -> Result<Mirrors, MirrorError> {
        Mirrors::resolve(
            explicit,
            &|name| std::env::var(name).ok(),
            &|| read_sources(apt_root),
            suite,
        )
    }

    /// As [`Mirrors::discover`], with the environment and the sources given.
    /// The sources are only read when needed, so a broken sources file does
    /// not stand in the way of an explicit mirror.
    ///
    /// Precedence: `explicit` > `KILN_MIRROR` > the URI serving `<suite>` or
    /// `<suite>-updates` > the URI serving another Debian release. The
    /// security mirror: `KILN_SECURITY_MIRROR` > the URI serving a
    /// `-security` suite > `<mirror>-security`.
    pub fn resolve(
        explicit: Option<&str>,
        env: &dyn Fn(&str) -> Option<String>,
        sources: &dyn Fn() -> Result<Vec<SourceEntry>, SourcesError>,
        suite: &str,
    ) -> Result<Mirrors, MirrorError> {
        let release = release_of(suite);
        let set = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        let clean = |uri: &str| uri.trim().trim_end_matches('/').to_string();
        let env_security = set("KILN_SECURITY_MIRROR").map(|s| clean(&s));
        let given = explicit
            .filter(|m| !m.trim().is_empty())
            .map(clean)
            .or_else(|| set("KILN_MIRROR").map(|m| clean(&m)));
        if let Some(debian) = given {
            let security = env_security
                .or_else(|| sources().ok().and_then(|s| security_uri(&s, release)))
                .unwrap_or_else(|| format!("{debian}-security"));
            return Ok(Mirrors { debian, security });
        }
        let entries = sources().map_err(MirrorError::Sources)?;
        let debian = debian_uri(&entries, release).ok_or_else(|| MirrorError::NotFound {
            suite: suite.to_string(),
            why: if entries.is_empty() {
                "the host has no apt sources".to_string()
            } else {
                format!(
                    "none of the host's {} apt source(s) serves a Debian release with component main",
                    entries.len()
                )
            },
        })?;
        let security = env_security
            .or_else(|| security_uri(&entries, release))
            .unwrap_or_else(|| format!("{debian}-security"));
        Ok(Mirrors { debian, security })
    }
}

/// `bookworm-updates` → `bookworm`, so either spelling finds the mirrors.
fn release_of(suite: &str) -> &str {
    ["-security", "-updates", "-backports", "-proposed-updates"]
        .iter()
        .find_map(|s| suite.strip_suffix(s))
        .unwrap_or(suite)
}

fn debian_uri(entries: &[SourceEntry], release: &str) -> Option<String> {
    let candidates = || {
        entries
            .iter()
            .filter(|e| e.components.iter().any(|c| c == "main") && usable_uri(e).is_some())
    };
    let serves_release = |e: &SourceEntry| {
        e.suites
            .iter()
            .any(|s| s == release || *s == format!("{release}-updates"))
    };
    // The same archive serves every release, so a host that lists bookworm
    // still tells us where trixie is.
    let serves_any = |e: &SourceEntry| {
        e.suites
            .iter()
            .any(|s| !s.ends_with("-security") && RELEASES.contains(&release_of(s)))
    };
    candidates()
        .find(|e| serves_release(e))
        .or_else(|| candidates().find(|e| serves_any(e)))
        .and_then(usable_uri)
}

fn security_uri(entries: &[SourceEntry], release: &str) -> Option<String> {
    let serves_release = |e: &SourceEntry| {
        e.suites
            .iter()
            .any(|s| *s == format!("{release}-security") || *s == format!("{release}/updates"))
    };
    let serves_any = |e: &SourceEntry| {
        e.suites.iter().any(|s| {
            s.strip_suffix("-security")
                .or_else(|| s.strip_suffix("/updates"))
                .is_some_and(|r| RELEASES.contains(&r))
        })
    };
    let candidates = || entries.iter().filter(|e| usable_uri(e).is_some());
    candidates()
        .find(|e| serves_release(e))
        .or_else(|| candidates().find(|e| serves_any(e)))
        .and_then(usable_uri)
}

/// The first URI kiln can fetch from (apt's `mirror+file:`, `cdrom:` and
/// the like are skipped).
fn usable_uri(e: &SourceEntry) -> Option<String> {
    e.uris
        .iter()
        .find(|u| {
            ["http://", "https://", "file:"]
                .iter()
                .any(|s| u.starts_with(s))
        })
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_deb::sources::parse_deb822;

    // Host names here are reserved (`.invalid`) on purpose: the mirror must
    // never be written into the repository.
    const HOST: &str = "\
Types: deb
URIs: http://mirror.invalid/debian
Suites: bookworm bookworm-updates
Components: main

Types: deb
URIs: http://mirror.invalid/debian-security
Suites: bookworm-security
Components: main
";

    fn host() -> Vec<SourceEntry> {
        parse_deb822(HOST, "debian.sources").unwrap()
    }

    fn resolve(
        explicit: Option<&str>,
        env: &[(&str, &str)],
        sources: Vec<SourceEntry>,
        suite: &str,
    ) -> Result<Mirrors, MirrorError> {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Mirrors::resolve(
            explicit,
            &|name| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()),
            &|| Ok(sources.clone()),
            suite,
        )
    }

    fn pair(d: &str, s: &str) -> Mirrors {
        Mirrors {
            debian: d.to_string(),
            security: s.to_string(),
        }
    }

    #[test]
    fn host_sources_give_both_mirrors_for_the_listed_release() {
        let m = resolve(None, &[], host(), "bookworm").unwrap();
        assert_eq!(
            m,
            pair(
                "http://mirror.invalid/debian",
                "http://mirror.invalid/debian-security"
            )
        );
    }

    #[test]
    fn host_sources_give_both_mirrors_for_another_release() {
        for suite in ["trixie", "trixie-updates", "trixie-security"] {
            let m = resolve(None, &[], host(), suite).unwrap();
            assert_eq!(
                m,
                pair(
                    "http://mirror.invalid/debian",
                    "http://mirror.invalid/debian-security"
                ),
                "{suite}"
            );
        }
    }

    #[test]
    fn the_environment_beats_the_host_and_the_flag_beats_both() {
        let env = [("KILN_MIRROR", "file:///srv/env/")];
        let m = resolve(None, &env, host(), "bookworm").unwrap();
        // The security mirror still comes from the host when only KILN_MIRROR is set.
        assert_eq!(
            m,
            pair("file:///srv/env", "http://mirror.invalid/debian-security")
        );
        let env = [
            ("KILN_MIRROR", "file:///srv/env"),
            ("KILN_SECURITY_MIRROR", "file:///srv/sec"),
        ];
        assert_eq!(
            resolve(None, &env, host(), "bookworm").unwrap(),
            pair("file:///srv/env", "file:///srv/sec")
        );
        assert_eq!(
            resolve(Some("http://flag.invalid/d"), &env, host(), "bookworm").unwrap(),
            pair("http://flag.invalid/d", "file:///srv/sec")
        );
        // Without a security source anywhere, `-security` is appended.
        assert_eq!(
            resolve(
                None,
                &[("KILN_MIRROR", "http://x.invalid/debian")],
                vec![],
                "trixie"
            )
            .unwrap(),
            pair(
                "http://x.invalid/debian",
                "http://x.invalid/debian-security"
            )
        );
    }

    #[test]
    fn an_explicit_mirror_does_not_need_readable_sources() {
        let m = Mirrors::resolve(
            Some("file:///srv/m"),
            &|_| None,
            &|| {
                Err(SourcesError::Malformed {
                    origin: "x:1".into(),
                    why: "bad".into(),
                })
            },
            "bookworm",
        )
        .unwrap();
        assert_eq!(m, pair("file:///srv/m", "file:///srv/m-security"));
    }

    #[test]
    fn third_party_sources_are_not_taken_for_debian() {
        let text = "\
Types: deb
URIs: http://thirdparty.invalid/linux/debian
Suites: bookworm
Components: stable

Types: deb
URIs: mirror+file:/etc/apt/mirrors/debian.list
Suites: trixie
Components: main

Types: deb
URIs: https://real.invalid/debian
Suites: sid
Components: main
";
        let entries = parse_deb822(text, "t.sources").unwrap();
        let m = resolve(None, &[], entries, "bookworm").unwrap();
        assert_eq!(
            m,
            pair(
                "https://real.invalid/debian",
                "https://real.invalid/debian-security"
            )
        );
    }

    #[test]
    fn no_mirror_anywhere_is_an_error_with_a_hint() {
        let err = resolve(None, &[], vec![], "bookworm").unwrap_err();
        assert_eq!(
            err.to_string(),
            "no Debian mirror found for suite bookworm: the host has no apt sources"
        );
        assert_eq!(
            err.hint().as_deref(),
            Some("set KILN_MIRROR or pass --mirror")
        );
    }
}
