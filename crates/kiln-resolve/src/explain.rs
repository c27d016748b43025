//! Why a request cannot be met, told as the chain of packages that leads to
//! the dependency nothing satisfies.

use kiln_deb::Atom;

use crate::error::ResolveError;
use crate::universe::Universe;

/// Why marking one package failed.
#[derive(Debug, Clone)]
pub(crate) enum Failure {
    /// `package` needs `relation` and no alternative could be installed.
    Dependency {
        package: String,
        relation: String,
        attempts: Vec<Attempt>,
    },
    Conflict {
        package: String,
        other: String,
        why: String,
    },
    /// Two versions of one package were needed at once.
    Clash {
        name: String,
        chosen: String,
        wanted: String,
    },
    /// A parent image's package would have to change.
    Parent {
        name: String,
        fixed: String,
        wanted: String,
    },
    Budget {
        package: String,
    },
    /// A stanza of the (signed) index could not be parsed.
    Index {
        message: String,
    },
}

#[derive(Debug, Clone)]
pub(crate) struct Attempt {
    pub atom: Atom,
    pub outcome: Outcome,
}

#[derive(Debug, Clone)]
pub(crate) enum Outcome {
    /// No package of that name, and nothing provides it.
    Missing,
    /// Only packages that provide it without the version asked for.
    NoProvider,
    /// The candidate's version does not satisfy the constraint.
    Version {
        have: String,
        suite: String,
    },
    Failed(Box<Failure>),
}

/// Follows the first failed attempt down to the dependency that nothing
/// satisfies: that leaf is what a user has to act on.
pub(crate) fn unsatisfiable(root: &str, failure: Failure) -> ResolveError {
    let mut chain = Vec::new();
    let mut f = failure;
    let (detail, parent) = loop {
        match f {
            Failure::Dependency {
                package,
                relation,
                attempts,
            } => {
                chain.push(package.clone());
                let nested = attempts.iter().find_map(|a| match &a.outcome {
                    Outcome::Failed(inner) => Some((**inner).clone()),
                    _ => None,
                });
                // Prefer explaining an alternative that simply is not there
                // (the usual cause) over a deeper failure of another one.
                let direct: Vec<String> = attempts
                    .iter()
                    .filter_map(|a| describe(&a.atom, &a.outcome))
                    .collect();
                f = match nested {
                    Some(inner) if direct.len() < attempts.len() => inner,
                    _ => {
                        let last = chain.pop().unwrap_or_default();
                        let detail = format!("{last} depends on {relation}; {}", direct.join("; "));
                        break (detail, None);
                    }
                };
            }
            Failure::Conflict {
                package,
                other,
                why,
            } => {
                let detail = format!("{package} cannot be installed beside {other}: {why}");
                break (detail, None);
            }
            Failure::Clash {
                name,
                chosen,
                wanted,
            } => {
                let detail =
                    format!("{name} {wanted} is needed, but {name} {chosen} is already chosen");
                break (detail, None);
            }
            Failure::Parent {
                name,
                fixed,
                wanted,
            } => {
                let detail = format!(
                    "{name} {wanted} is needed, but the parent image fixes {name} at {fixed}"
                );
                break (detail, Some(name));
            }
            Failure::Index { message } => return ResolveError::Index { message },
            Failure::Budget { package } => {
                let detail = format!("gave up exploring alternatives below {package}");
                break (detail, None);
            }
        }
    };
    ResolveError::Unsatisfiable {
        root: root.to_string(),
        chain,
        detail,
        parent,
    }
}

fn describe(atom: &Atom, outcome: &Outcome) -> Option<String> {
    Some(match outcome {
        Outcome::Missing => format!("no suite has a package named {}", atom.name),
        Outcome::NoProvider => format!("nothing provides {atom}"),
        Outcome::Version { have, suite } => format!("{suite} has {} {have}", atom.name),
        Outcome::Failed(_) => return None,
    })
}

/// An unknown name, with the closest names the archive does have.
pub(crate) fn unknown(u: &Universe, name: &str) -> ResolveError {
    let mut scored: Vec<(f64, &str)> = u
        .names()
        .map(|n| (strsim::jaro_winkler(name, n), n))
        .filter(|(s, _)| *s > 0.85)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(b.1)));
    ResolveError::UnknownPackage {
        name: name.to_string(),
        suggestions: scored
            .into_iter()
            .take(3)
            .map(|(_, n)| n.to_string())
            .collect(),
    }
}
