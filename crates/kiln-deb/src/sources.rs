//! The host's apt sources: which mirror serves which suite.
//!
//! Both formats apt reads are understood: deb822 `*.sources` files and
//! one-line `sources.list` / `*.list` files. Only binary (`deb`) entries are
//! kept; `deb-src` lines and disabled stanzas are dropped here so callers see
//! exactly what apt would download binaries from.

use std::path::{Path, PathBuf};

use crate::control::paragraphs;

/// One binary source: a set of URIs that serve a set of suites.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceEntry {
    /// Base URIs, without a trailing `/`.
    pub uris: Vec<String>,
    pub suites: Vec<String>,
    pub components: Vec<String>,
    /// `Signed-By` / `[signed-by=…]`: keyring paths or fingerprints, or an
    /// inline key block, verbatim.
    pub signed_by: Option<String>,
    /// The file and line it came from, for messages.
    pub origin: String,
}

impl SourceEntry {
    pub fn serves(&self, suite: &str) -> bool {
        self.suites.iter().any(|s| s == suite)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SourcesError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("{origin}: {why}")]
    Malformed { origin: String, why: String },
}

/// Parses a deb822 `.sources` file; `name` names it in `origin`.
pub fn parse_deb822(text: &str, name: &str) -> Result<Vec<SourceEntry>, SourcesError> {
    let mut out = Vec::new();
    for p in paragraphs(text) {
        let origin = format!("{name}:{}", p.line);
        let malformed = |why: &str| SourcesError::Malformed {
            origin: origin.clone(),
            why: why.to_string(),
        };
        if p.get("Enabled")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("no"))
        {
            continue;
        }
        let types = p.words("Types");
        if types.is_empty() {
            return Err(malformed("stanza lacks `Types`"));
        }
        if !types.iter().any(|t| t == "deb") {
            continue;
        }
        let uris: Vec<String> = p.words("URIs").iter().map(|u| normalise_uri(u)).collect();
        let suites = p.words("Suites");
        if uris.is_empty() {
            return Err(malformed("stanza lacks `URIs`"));
        }
        if suites.is_empty() {
            return Err(malformed("stanza lacks `Suites`"));
        }
        out.push(SourceEntry {
            uris,
            suites,
            components: p.words("Components"),
            signed_by: p.get("Signed-By").map(|s| s.trim().to_string()),
            origin,
        });
    }
    Ok(out)
}

/// Parses a one-line-format `sources.list`; `name` names it in `origin`.
pub fn parse_one_line(text: &str, name: &str) -> Result<Vec<SourceEntry>, SourcesError> {
    let mut out = Vec::new();
    for (idx, raw) in text.lines().enumerate() {
        let origin = format!("{name}:{}", idx + 1);
        let malformed = |why: &str| SourcesError::Malformed {
            origin: origin.clone(),
            why: why.to_string(),
        };
        // apt cuts a line at `#`, wherever it is.
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let (kind, rest) = line
            .split_once(char::is_whitespace)
            .ok_or_else(|| malformed("expected `deb URI SUITE [COMPONENT…]`"))?;
        match kind {
            "deb" => {}
            "deb-src" => continue,
            other => return Err(malformed(&format!("unknown type `{other}`"))),
        }
        let mut rest = rest.trim_start();
        let mut signed_by = None;
        let mut enabled = true;
        if let Some(inner) = rest.strip_prefix('[') {
            let close = inner.find(']').ok_or_else(|| malformed("unclosed `[`"))?;
            for option in inner[..close].split_whitespace() {
                let Some((key, value)) = option.split_once('=') else {
                    return Err(malformed(&format!("option `{option}` lacks `=`")));
                };
                match key {
                    "signed-by" => signed_by = Some(value.replace(',', " ")),
                    "enabled" => enabled = value != "no",
                    _ => {}
                }
            }
            rest = &inner[close + 1..];
        }
        let mut words = rest.split_whitespace();
        let uri = words.next().ok_or_else(|| malformed("missing URI"))?;
        let suite = words.next().ok_or_else(|| malformed("missing suite"))?;
        if !enabled {
            continue;
        }
        out.push(SourceEntry {
            uris: vec![normalise_uri(uri)],
            suites: vec![suite.to_string()],
            components: words.map(str::to_string).collect(),
            signed_by,
            origin,
        });
    }
    Ok(out)
}

/// Reads the apt sources under `root` (`/` on the host): `etc/apt/sources.list`,
/// then `etc/apt/sources.list.d/*.list` and `*.sources` in name order, as apt
/// does. Other names there (`.disabled`, `.save`, `.dpkg-old`, …) are ignored,
/// and missing files or directories are simply empty.
pub fn read_sources(root: &Path) -> Result<Vec<SourceEntry>, SourcesError> {
    let etc = root.join("etc/apt");
    let mut out = Vec::new();
    let main = etc.join("sources.list");
    if main.is_file() {
        out.extend(parse_one_line(
            &fs_err::read_to_string(&main)?,
            &main.display().to_string(),
        )?);
    }
    let dir = etc.join("sources.list.d");
    if !dir.is_dir() {
        return Ok(out);
    }
    let mut files: Vec<PathBuf> = fs_err::read_dir(&dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    files.sort();
    for path in files {
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        // apt only accepts these characters in part file names.
        let stem_ok = |stem: &str| {
            !stem.is_empty()
                && stem
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        };
        let shown = path.display().to_string();
        if name.strip_suffix(".list").is_some_and(stem_ok) {
            out.extend(parse_one_line(&fs_err::read_to_string(&path)?, &shown)?);
        } else if name.strip_suffix(".sources").is_some_and(stem_ok) {
            out.extend(parse_deb822(&fs_err::read_to_string(&path)?, &shown)?);
        }
    }
    Ok(out)
}

fn normalise_uri(uri: &str) -> String {
    uri.trim_end_matches('/').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deb822_stanzas_with_comments_and_several_uris() {
        let text = "\
Types: deb deb-src
# a comment between fields
URIs: http://one.invalid/debian/ file:///srv/mirror
Suites: bookworm bookworm-updates
Components: main contrib
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

# the security stanza
Types: deb
URIs: http://one.invalid/debian-security
Suites: bookworm-security
Components: main

Types: deb-src
URIs: http://src.invalid/debian
Suites: bookworm

Types: deb
Enabled: no
URIs: http://off.invalid/debian
Suites: bookworm
";
        let entries = parse_deb822(text, "debian.sources").unwrap();
        assert_eq!(entries.len(), 2);
        let e = &entries[0];
        assert_eq!(e.uris, ["http://one.invalid/debian", "file:///srv/mirror"]);
        assert!(e.serves("bookworm-updates") && !e.serves("bookworm-security"));
        assert_eq!(e.components, ["main", "contrib"]);
        assert_eq!(
            e.signed_by.as_deref(),
            Some("/usr/share/keyrings/debian-archive-keyring.gpg")
        );
        assert_eq!(e.origin, "debian.sources:1");
        assert_eq!(entries[1].suites, ["bookworm-security"]);
        assert_eq!(entries[1].signed_by, None);
    }

    #[test]
    fn deb822_inline_keys_are_kept_verbatim() {
        let text = "\
Types: deb
URIs: http://x.invalid/repo
Suites: stable
Components: main
Signed-By:
 -----BEGIN PGP PUBLIC KEY BLOCK-----
 .
 mQINBF
 -----END PGP PUBLIC KEY BLOCK-----
";
        let e = &parse_deb822(text, "x.sources").unwrap()[0];
        let key = e.signed_by.as_deref().unwrap();
        assert!(
            key.starts_with("-----BEGIN PGP PUBLIC KEY BLOCK-----"),
            "{key}"
        );
        assert!(key.ends_with("-----END PGP PUBLIC KEY BLOCK-----"), "{key}");
    }

    #[test]
    fn deb822_stanzas_missing_required_fields_are_errors() {
        let err = parse_deb822("Types: deb\nSuites: x\n", "bad.sources").unwrap_err();
        assert_eq!(err.to_string(), "bad.sources:1: stanza lacks `URIs`");
        let err =
            parse_deb822("\n\nURIs: http://x.invalid\nSuites: x\n", "bad.sources").unwrap_err();
        assert_eq!(err.to_string(), "bad.sources:3: stanza lacks `Types`");
    }

    #[test]
    fn one_line_entries_with_options_and_comments() {
        let text = "\
# deb http://commented.invalid/debian bookworm main
deb [arch=amd64 signed-by=/etc/apt/keyrings/a.gpg] http://a.invalid/debian/ bookworm main contrib # trailing
deb-src http://a.invalid/debian bookworm main

deb http://b.invalid/debian-security bookworm-security main
deb [ enabled=no ] http://off.invalid/debian bookworm main
deb [trusted=yes] file:/srv/local ./
";
        let entries = parse_one_line(text, "sources.list").unwrap();
        assert_eq!(entries.len(), 3);
        assert_eq!(entries[0].uris, ["http://a.invalid/debian"]);
        assert_eq!(entries[0].suites, ["bookworm"]);
        assert_eq!(entries[0].components, ["main", "contrib"]);
        assert_eq!(
            entries[0].signed_by.as_deref(),
            Some("/etc/apt/keyrings/a.gpg")
        );
        assert_eq!(entries[0].origin, "sources.list:2");
        assert_eq!(entries[1].suites, ["bookworm-security"]);
        assert_eq!(entries[2].suites, ["./"]);
        assert!(entries[2].components.is_empty());
    }

    #[test]
    fn malformed_one_line_entries_name_the_line() {
        for (text, why) in [
            ("deb\n", "expected `deb URI SUITE [COMPONENT…]`"),
            ("rpm http://x.invalid y\n", "unknown type `rpm`"),
            ("deb [arch=amd64 http://x.invalid y\n", "unclosed `[`"),
            ("deb http://x.invalid\n", "missing suite"),
            ("deb [arch] http://x.invalid y\n", "option `arch` lacks `=`"),
        ] {
            let err = parse_one_line(&format!("\n{text}"), "s.list").unwrap_err();
            assert_eq!(err.to_string(), format!("s.list:2: {why}"));
        }
    }

    #[test]
    fn reads_a_root_in_apt_order_and_skips_other_names() {
        let root = tempfile::tempdir().unwrap();
        let d = root.path().join("etc/apt/sources.list.d");
        fs_err::create_dir_all(&d).unwrap();
        fs_err::write(
            root.path().join("etc/apt/sources.list"),
            "deb http://main.invalid/debian bookworm main\n",
        )
        .unwrap();
        fs_err::write(
            d.join("b.sources"),
            "Types: deb\nURIs: http://b.invalid/debian\nSuites: trixie\nComponents: main\n",
        )
        .unwrap();
        fs_err::write(d.join("a.list"), "deb http://a.invalid/debian sid main\n").unwrap();
        for ignored in ["c.list.disabled", "d.sources.save", "e.list.dpkg-old", "f"] {
            fs_err::write(d.join(ignored), "deb http://ignored.invalid x main\n").unwrap();
        }
        let uris: Vec<String> = read_sources(root.path())
            .unwrap()
            .into_iter()
            .flat_map(|e| e.uris)
            .collect();
        assert_eq!(
            uris,
            [
                "http://main.invalid/debian",
                "http://a.invalid/debian",
                "http://b.invalid/debian"
            ]
        );
    }

    #[test]
    fn a_root_without_apt_has_no_sources() {
        let root = tempfile::tempdir().unwrap();
        assert!(read_sources(root.path()).unwrap().is_empty());
    }
}
