//! Package relationship fields (Depends, Pre-Depends, Conflicts, Provides, …)
//! as Debian Policy §7.1 defines them.

use std::fmt;
use std::str::FromStr;

use debversion::Version;

/// A version comparison in a relation: `<<`, `<=`, `=`, `>=`, `>>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
}

impl Op {
    fn parse(s: &str) -> Option<Op> {
        Some(match s {
            "<<" => Op::Lt,
            "<=" | "<" => Op::Le,
            "=" => Op::Eq,
            ">=" | ">" => Op::Ge,
            ">>" => Op::Gt,
            _ => return None,
        })
    }

    pub fn holds(self, have: &Version, want: &Version) -> bool {
        let ord = have.cmp(want);
        match self {
            Op::Lt => ord.is_lt(),
            Op::Le => ord.is_le(),
            Op::Eq => ord.is_eq(),
            Op::Ge => ord.is_ge(),
            Op::Gt => ord.is_gt(),
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::Lt => "<<",
            Op::Le => "<=",
            Op::Eq => "=",
            Op::Ge => ">=",
            Op::Gt => ">>",
        })
    }
}

/// One name with an optional version constraint: `libc6 (>= 2.36)`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Atom {
    pub name: String,
    /// `:any`, `:native` or an architecture qualifier, when given.
    pub arch: Option<String>,
    pub constraint: Option<(Op, Version)>,
}

impl Atom {
    /// Whether a package (or a versioned Provides) at `version` satisfies
    /// this atom's constraint. `None` is an unversioned Provides, which
    /// satisfies only unversioned atoms.
    pub fn accepts(&self, version: Option<&Version>) -> bool {
        match (&self.constraint, version) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some((op, want)), Some(have)) => op.holds(have, want),
        }
    }
}

impl fmt::Display for Atom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if let Some(arch) = &self.arch {
            write!(f, ":{arch}")?;
        }
        if let Some((op, v)) = &self.constraint {
            write!(f, " ({op} {v})")?;
        }
        Ok(())
    }
}

/// One comma-separated element of a relation field: alternatives joined by `|`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Relation {
    pub alternatives: Vec<Atom>,
}

impl fmt::Display for Relation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, a) in self.alternatives.iter().enumerate() {
            if i > 0 {
                f.write_str(" | ")?;
            }
            write!(f, "{a}")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("malformed relation `{text}`: {why}")]
pub struct RelationError {
    pub text: String,
    pub why: &'static str,
}

/// Parses a whole relation field for architecture `arch`. Alternatives
/// restricted to other architectures (`[!amd64]`) are dropped, as dpkg does;
/// build profiles (`<!nocheck>`) only occur in source packages and are ignored.
pub fn parse_relations(field: &str, arch: &str) -> Result<Vec<Relation>, RelationError> {
    let mut out = Vec::new();
    for group in field.split(',') {
        let group = group.trim();
        if group.is_empty() {
            continue;
        }
        let mut alternatives = Vec::new();
        for alt in group.split('|') {
            if let Some(atom) = parse_atom(alt.trim(), arch)? {
                alternatives.push(atom);
            }
        }
        if !alternatives.is_empty() {
            out.push(Relation { alternatives });
        }
    }
    Ok(out)
}

fn parse_atom(text: &str, arch: &str) -> Result<Option<Atom>, RelationError> {
    let err = |why| RelationError {
        text: text.to_string(),
        why,
    };
    let mut rest = text;
    // Drop build profiles: binary packages never carry them, but be lenient.
    if let Some(i) = rest.find('<').filter(|&i| !rest[..i].contains('(')) {
        rest = rest[..i].trim_end();
    }
    if let Some(open) = rest.find('[') {
        let close = rest[open..]
            .find(']')
            .map(|c| open + c)
            .ok_or_else(|| err("unclosed `[`"))?;
        let archs = &rest[open + 1..close];
        if !arch_matches(archs, arch) {
            return Ok(None);
        }
        rest = rest[..open].trim_end();
    }
    let (name_part, constraint) = match rest.find('(') {
        Some(open) => {
            let close = rest
                .rfind(')')
                .filter(|&c| c > open)
                .ok_or_else(|| err("unclosed `(`"))?;
            let inner = rest[open + 1..close].trim();
            let split = inner
                .find(|c: char| !matches!(c, '<' | '>' | '='))
                .ok_or_else(|| err("missing version"))?;
            let op = Op::parse(inner[..split].trim()).ok_or_else(|| err("unknown operator"))?;
            let version =
                Version::from_str(inner[split..].trim()).map_err(|_| err("bad version"))?;
            (rest[..open].trim(), Some((op, version)))
        }
        None => (rest.trim(), None),
    };
    if name_part.is_empty() {
        return Err(err("missing package name"));
    }
    let (name, qualifier) = match name_part.split_once(':') {
        Some((n, a)) => (n, Some(a.to_string())),
        None => (name_part, None),
    };
    Ok(Some(Atom {
        name: name.to_string(),
        arch: qualifier,
        constraint,
    }))
}

fn arch_matches(list: &str, arch: &str) -> bool {
    let mut positive = false;
    for a in list.split_whitespace() {
        if let Some(neg) = a.strip_prefix('!') {
            if neg == arch || neg == "any" {
                return false;
            }
        } else {
            positive = true;
            if a == arch || a == "any" {
                return true;
            }
        }
    }
    !positive
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        s.parse().unwrap()
    }

    #[test]
    fn parses_alternatives_versions_and_qualifiers() {
        let rels = parse_relations(
            "libc6 (>= 2.34), debconf (>= 0.5) | debconf-2.0, python3:any, foo [!amd64], bar [amd64 i386]",
            "amd64",
        )
        .unwrap();
        assert_eq!(rels.len(), 4);
        assert_eq!(rels[0].to_string(), "libc6 (>= 2.34)");
        assert_eq!(rels[1].alternatives.len(), 2);
        assert_eq!(rels[2].alternatives[0].arch.as_deref(), Some("any"));
        assert_eq!(rels[3].alternatives[0].name, "bar");
    }

    #[test]
    fn operators_compare_debian_versions() {
        let a = &parse_relations("x (<< 1.0~rc1)", "amd64").unwrap()[0].alternatives[0];
        assert!(a.accepts(Some(&v("0.9"))));
        assert!(!a.accepts(Some(&v("1.0"))));
        assert!(!a.accepts(None));
        let b = &parse_relations("x (>= 1:2)", "amd64").unwrap()[0].alternatives[0];
        assert!(b.accepts(Some(&v("1:2.0-1"))));
        assert!(!b.accepts(Some(&v("9.9"))));
    }

    #[test]
    fn malformed_fields_are_errors() {
        // Found by the property test: a closer before its opener panicked.
        assert!(parse_relations("a) (b", "amd64").is_err());
        assert!(parse_relations("a] [b", "amd64").is_err());
        assert!(parse_relations("x (>= ", "amd64").is_err());
        assert!(parse_relations("x (~= 1)", "amd64").is_err());
    }
}
