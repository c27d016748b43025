//! `HOST[:PORT]/REPOSITORY[:TAG][@DIGEST]`.

use std::fmt;

use kiln_store::Digest;

use crate::RegistryError;

/// What a reference points at in its repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Tag(String),
    Digest(Digest),
    /// A repository named without a tag or digest (`kiln push --to`).
    None,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// `host` or `host:port`.
    pub registry: String,
    pub repository: String,
    pub target: Target,
}

impl Reference {
    /// Parses a reference. The registry host is always explicit: kiln has
    /// no default registry to send a team's images to by accident.
    pub fn parse(s: &str) -> Result<Reference, RegistryError> {
        let bad = || RegistryError::BadReference(s.to_string());
        let (registry, rest) = s.split_once('/').ok_or_else(bad)?;
        let host_like = registry.contains('.') || registry.contains(':') || registry == "localhost";
        if !host_like || registry.is_empty() {
            return Err(bad());
        }
        let (name, target) = if let Some((name, digest)) = rest.split_once('@') {
            (name, Target::Digest(digest.parse().map_err(|_| bad())?))
        } else {
            match rest.rsplit_once(':') {
                Some((name, tag)) if !tag.contains('/') => {
                    if !valid_tag(tag) {
                        return Err(bad());
                    }
                    (name, Target::Tag(tag.to_string()))
                }
                _ => (rest, Target::None),
            }
        };
        if !valid_repository(name) {
            return Err(bad());
        }
        Ok(Reference {
            registry: registry.to_string(),
            repository: name.to_string(),
            target,
        })
    }

    /// The same repository, pointing at `target`.
    pub fn with(&self, target: Target) -> Reference {
        Reference {
            target,
            ..self.clone()
        }
    }

    /// The host without its port, for the loopback check and auth lookup.
    pub fn host(&self) -> &str {
        if let Some(rest) = self.registry.strip_prefix('[') {
            return rest.split(']').next().unwrap_or(rest);
        }
        self.registry
            .rsplit_once(':')
            .map(|(h, _)| h)
            .unwrap_or(&self.registry)
    }
}

/// A tag as the distribution spec allows it: `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.
pub fn valid_tag(tag: &str) -> bool {
    let mut bytes = tag.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphanumeric() || b == b'_')
        && tag.len() <= 128
        && bytes.all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// Path components of lower-case letters and digits joined by `.`, `_`,
/// `__`, `-`: no `..`, no empty component, nothing a URL could misread.
fn valid_repository(name: &str) -> bool {
    !name.is_empty()
        && name.split('/').all(|part| {
            let b = part.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"._-".contains(c))
                && !part.contains("..")
        })
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        match &self.target {
            Target::Tag(t) => write!(f, ":{t}"),
            Target::Digest(d) => write!(f, "@{d}"),
            Target::None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse_with_port_tag_and_digest() {
        let r = Reference::parse("127.0.0.1:5000/team/web:1.0").unwrap();
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str(), r.host()),
            ("127.0.0.1:5000", "team/web", "127.0.0.1")
        );
        assert_eq!(r.target, Target::Tag("1.0".into()));
        assert_eq!(r.to_string(), "127.0.0.1:5000/team/web:1.0");
        let d = Digest::of(b"x");
        let r = Reference::parse(&format!("localhost/web@{d}")).unwrap();
        assert_eq!(r.target, Target::Digest(d));
        let r = Reference::parse("[::1]:5000/web").unwrap();
        assert_eq!((r.host(), &r.target), ("::1", &Target::None));
    }

    #[test]
    fn bad_references_are_refused() {
        for bad in [
            "web",
            "web/app",
            "host.example/",
            "host.example/Web",
            "host.example/a/../b",
            "host.example/web:",
            "host.example/web:-x",
            "host.example/web@sha256:12",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad}");
        }
    }
}
