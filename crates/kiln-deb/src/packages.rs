//! Binary package stanzas of a `Packages` index.

use std::str::FromStr;
use std::sync::{Arc, OnceLock};

use debversion::Version;

use crate::control::{Paragraph, paragraphs};
use crate::relation::{Atom, Op, Relation, RelationError, parse_relations};

/// The Priority field, ordered from most to least important.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    Required,
    Important,
    Standard,
    Optional,
    Extra,
}

impl Priority {
    pub fn parse(s: &str) -> Priority {
        match s {
            "required" => Priority::Required,
            "important" => Priority::Important,
            "standard" => Priority::Standard,
            "extra" => Priority::Extra,
            _ => Priority::Optional,
        }
    }
}

/// One binary package as the archive describes it. The relation fields are
/// kept as text and parsed on first use: a resolver looks at a few hundred
/// of the sixty thousand packages a suite offers, and parsing them all
/// would be most of `kiln lock`'s time.
#[derive(Debug, Clone)]
pub struct Package {
    pub name: String,
    pub version: Version,
    pub architecture: String,
    pub essential: bool,
    pub priority: Priority,
    pub source: String,
    /// Provided names; a versioned Provides carries `Op::Eq`.
    pub provides: Vec<Atom>,
    /// Path relative to the archive root: `pool/main/…/x_1_amd64.deb`.
    pub filename: String,
    pub size: u64,
    pub sha256: String,
    /// Where the stanza came from, for errors found when parsing lazily.
    pub origin: Origin,
    raw: RawRelations,
    relations: OnceLock<Result<Relations, PackagesError>>,
}

/// The index and line a stanza was read from, and the architecture it was
/// read for (`[amd64]` restrictions in relations refer to it, also for
/// `Architecture: all` packages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub index: Arc<str>,
    pub line: usize,
    pub arch: Arc<str>,
}

#[derive(Debug, Clone, Default)]
struct RawRelations {
    pre_depends: Option<Box<str>>,
    depends: Option<Box<str>>,
    recommends: Option<Box<str>>,
    conflicts: Option<Box<str>>,
    breaks: Option<Box<str>>,
}

/// The relation fields a resolver follows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Relations {
    pub pre_depends: Vec<Relation>,
    pub depends: Vec<Relation>,
    pub recommends: Vec<Relation>,
    pub conflicts: Vec<Relation>,
    pub breaks: Vec<Relation>,
}

impl Package {
    /// The version this package provides `name` at: `Some(Some(v))` for a
    /// versioned Provides, `Some(None)` for an unversioned one.
    pub fn provides(&self, name: &str) -> Option<Option<&Version>> {
        self.provides.iter().find(|p| p.name == name).map(|p| {
            p.constraint
                .as_ref()
                .filter(|(op, _)| *op == Op::Eq)
                .map(|(_, v)| v)
        })
    }

    /// Depends, Pre-Depends, Recommends, Conflicts and Breaks, parsed once.
    pub fn relations(&self) -> Result<&Relations, &PackagesError> {
        self.relations
            .get_or_init(|| {
                let field = |raw: &Option<Box<str>>| -> Result<Vec<Relation>, PackagesError> {
                    parse_relations(raw.as_deref().unwrap_or(""), &self.origin.arch).map_err(
                        |source| PackagesError::Relation {
                            index: self.origin.index.to_string(),
                            line: self.origin.line,
                            package: self.name.clone(),
                            source,
                        },
                    )
                };
                Ok(Relations {
                    pre_depends: field(&self.raw.pre_depends)?,
                    depends: field(&self.raw.depends)?,
                    recommends: field(&self.raw.recommends)?,
                    conflicts: field(&self.raw.conflicts)?,
                    breaks: field(&self.raw.breaks)?,
                })
            })
            .as_ref()
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum PackagesError {
    #[error("{index}:{line}: package stanza lacks the `{field}` field")]
    Missing {
        index: String,
        line: usize,
        field: &'static str,
    },
    #[error("{index}:{line}: bad version `{version}` for package {package}")]
    Version {
        index: String,
        line: usize,
        package: String,
        version: String,
    },
    #[error("{index}:{line}: package {package}: {source}")]
    Relation {
        index: String,
        line: usize,
        package: String,
        source: RelationError,
    },
}

/// Parses a `Packages` index. `index` names it in errors; stanzas for
/// architectures other than `arch` and `all` are skipped. A large index is
/// split at a stanza boundary and parsed on two threads: bookworm's main
/// index is 50 MB, most of `kiln lock`'s time.
pub fn parse_packages(text: &str, index: &str, arch: &str) -> Result<Vec<Package>, PackagesError> {
    const SPLIT_ABOVE: usize = 8 << 20;
    let index: Arc<str> = Arc::from(index);
    let host: Arc<str> = Arc::from(arch);
    let middle = text.len() / 2;
    let cut = (text.len() > SPLIT_ABOVE)
        .then(|| text[middle..].find("\n\n").map(|i| middle + i + 2))
        .flatten();
    let Some(cut) = cut else {
        return parse_part(text, 0, &index, &host);
    };
    let (first, second) = text.split_at(cut);
    let offset = first.bytes().filter(|&b| b == b'\n').count();
    let (a, b) = crate::par::join(
        || parse_part(first, 0, &index, &host),
        || parse_part(second, offset, &index, &host),
    );
    let mut out = a?;
    out.extend(b?);
    Ok(out)
}

/// Parses stanzas of `text`, whose first line is line `offset + 1` of the index.
fn parse_part(
    text: &str,
    offset: usize,
    index: &Arc<str>,
    host: &Arc<str>,
) -> Result<Vec<Package>, PackagesError> {
    let mut out = Vec::new();
    for mut p in paragraphs(text) {
        let a = p.get("Architecture").unwrap_or("");
        if a != &**host && a != "all" {
            continue;
        }
        p.line += offset;
        out.push(package(&p, index, host)?);
    }
    Ok(out)
}

fn package(p: &Paragraph<'_>, index: &Arc<str>, arch: &Arc<str>) -> Result<Package, PackagesError> {
    let need = |field: &'static str| {
        p.get(field).ok_or(PackagesError::Missing {
            index: index.to_string(),
            line: p.line,
            field,
        })
    };
    let name = need("Package")?.to_string();
    let version_text = need("Version")?;
    let version = Version::from_str(version_text).map_err(|_| PackagesError::Version {
        index: index.to_string(),
        line: p.line,
        package: name.clone(),
        version: version_text.to_string(),
    })?;
    let provides = match p.get("Provides") {
        None => Vec::new(),
        Some(text) => parse_relations(text, arch)
            .map_err(|source| PackagesError::Relation {
                index: index.to_string(),
                line: p.line,
                package: name.clone(),
                source,
            })?
            .into_iter()
            .flat_map(|r| r.alternatives)
            .collect(),
    };
    let raw = |field: &str| p.get(field).map(Box::from);
    Ok(Package {
        version,
        architecture: need("Architecture")?.to_string(),
        essential: p.get("Essential") == Some("yes"),
        priority: Priority::parse(p.get("Priority").unwrap_or("optional")),
        source: p
            .get("Source")
            .map(|s| s.split_whitespace().next().unwrap_or(s).to_string())
            .unwrap_or_else(|| name.clone()),
        provides,
        filename: need("Filename")?.to_string(),
        size: need("Size")?.parse().unwrap_or(0),
        sha256: need("SHA256")?.to_string(),
        origin: Origin {
            index: index.clone(),
            line: p.line,
            arch: arch.clone(),
        },
        raw: RawRelations {
            pre_depends: raw("Pre-Depends"),
            depends: raw("Depends"),
            recommends: raw("Recommends"),
            conflicts: raw("Conflicts"),
            breaks: raw("Breaks"),
        },
        relations: OnceLock::new(),
        name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const INDEX: &str = "\
Package: mawk
Version: 1.3.4.20200120-3.1
Architecture: amd64
Priority: required
Provides: awk
Pre-Depends: libc6 (>= 2.34)
Filename: pool/main/m/mawk/mawk_1.3.4.20200120-3.1_amd64.deb
Size: 119000
SHA256: 00

Package: other-arch
Version: 1
Architecture: arm64
Filename: x
Size: 1
SHA256: 00

Package: libfoo
Version: 2.0-1
Architecture: all
Provides: foo-abi (= 2)
Depends: mawk | awk
Filename: pool/main/f/foo/libfoo_2.0-1_all.deb
Size: 1
SHA256: 11
";

    #[test]
    fn parses_stanzas_for_the_architecture() {
        let pkgs = parse_packages(INDEX, "test", "amd64").unwrap();
        assert_eq!(pkgs.len(), 2);
        assert_eq!(pkgs[0].priority, Priority::Required);
        assert_eq!(pkgs[0].provides("awk"), Some(None));
        assert_eq!(
            pkgs[1].provides("foo-abi").unwrap().unwrap().to_string(),
            "2"
        );
        assert_eq!(
            pkgs[1].relations().unwrap().depends[0].alternatives.len(),
            2
        );
    }

    #[test]
    fn a_large_index_parses_on_two_threads_with_true_line_numbers() {
        let stanza = |i: usize| {
            format!(
                "Package: p{i}\nVersion: 1\nArchitecture: amd64\nFilename: f\nSize: 1\nSHA256: 00\nDescription: {}\n\n",
                "x".repeat(200)
            )
        };
        let n = 40_000; // about 10 MB: above the split threshold
        let mut text: String = (0..n).map(stanza).collect();
        let pkgs = parse_packages(&text, "big", "amd64").unwrap();
        assert_eq!(pkgs.len(), n);
        assert!(
            pkgs.iter()
                .enumerate()
                .all(|(i, p)| p.name == format!("p{i}"))
        );
        assert_eq!(pkgs[n - 1].origin.line, (n - 1) * 8 + 1);
        text.push_str("Package: broken\nArchitecture: amd64\n");
        let err = parse_packages(&text, "big", "amd64").unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "big:{}: package stanza lacks the `Version` field",
                n * 8 + 1
            )
        );
    }

    #[test]
    fn missing_fields_name_the_index_and_line() {
        let err = parse_packages("Package: x\nArchitecture: all\n", "main/Packages", "amd64")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "main/Packages:1: package stanza lacks the `Version` field"
        );
    }
}
