//! What can go wrong while building a root filesystem. Every message names the
//! file, package or step concerned; `hint` says what the user can do.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    /// An I/O error; `fs-err` puts the path in the message.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("{path}: not a valid .deb: {why}")]
    BadDeb { path: PathBuf, why: String },
    /// The package file is not the one the lock pins: damaged since it
    /// was verified into the store. The caller may fetch it again.
    #[error("{package} {version}: {path} is not the file the lock pins ({source})")]
    DebMismatch {
        package: String,
        version: String,
        path: PathBuf,
        #[source]
        source: Box<kiln_store::StoreError>,
    },
    #[error("{deb}: refusing archive entry `{entry}`: {why}")]
    UnsafeEntry {
        deb: PathBuf,
        entry: String,
        why: &'static str,
    },
    #[error("{path}: {why}")]
    BadPath { path: PathBuf, why: String },
    #[error("cannot start {program}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} failed ({status}); its last lines of output:\n{tail}")]
    Failed {
        what: String,
        status: String,
        tail: String,
    },
    #[error("packages not fully installed after dpkg ran: {}", packages.join(", "))]
    NotInstalled { packages: Vec<String> },
    #[error("`dpkg --audit` inside the image reports problems:\n{output}")]
    Audit { output: String },
    #[error("{root}: {why}")]
    BadRoot { root: PathBuf, why: String },
    #[error("[[files]] {dst}: no {kind} `{name}` in the image")]
    UnknownOwner {
        dst: String,
        kind: &'static str,
        name: String,
    },
    #[error("[[users]] {user}: {why}")]
    User { user: String, why: String },
    #[error("[services]: {why}")]
    Services { why: String },
    #[error(
        "{section}: no unit `{unit}` in the image: no locked package or [[files]] entry provides it"
    )]
    UnknownUnit {
        section: &'static str,
        unit: String,
        closest: Option<String>,
    },
}

impl RootfsError {
    /// What the user can do about the error, when it is theirs to fix.
    pub fn hint(&self) -> Option<String> {
        match self {
            RootfsError::UnknownOwner { .. } => {
                Some("declare the account under [[users]], or use a numeric id".to_string())
            }
            RootfsError::User { .. } => {
                Some("create missing groups in a [[run]] step or use existing ones".to_string())
            }
            RootfsError::Services { .. } => Some(
                "add systemd (e.g. systemd-sysv) to [packages].install, or drop [services]"
                    .to_string(),
            ),
            RootfsError::UnknownUnit { closest, .. } => Some(match closest {
                Some(c) => format!("did you mean `{c}`? Units come from packages ([packages].install) or [[files]] under /etc/systemd/system"),
                None => "install the package that ships it ([packages].install), or add the unit file with [[files]] under /etc/systemd/system".to_string(),
            }),
            RootfsError::Failed { what, .. } if what.starts_with("[[run]]") => Some(
                "fix the step (its last lines of output are above); a step that downloads \
                 needs `network = true`"
                    .to_string(),
            ),
            RootfsError::DebMismatch { .. } => Some(
                "the store or the mirror holds a damaged copy: run `kiln build` again, \
                 or remove the file and check the mirror"
                    .to_string(),
            ),
            RootfsError::BadDeb { .. } | RootfsError::UnsafeEntry { .. } => Some(
                "the package file is corrupt or hostile; remove it from the store and fetch again"
                    .to_string(),
            ),
            _ => None,
        }
    }
}

impl RootfsError {
    /// Whether the definition caused it (an unknown `[[files]]` owner, an
    /// account that exists already, a `[[run]]` step, `useradd` or
    /// `systemctl` for the definition failing): the user's to fix, exit 1.
    pub fn is_user_error(&self) -> bool {
        match self {
            RootfsError::UnknownOwner { .. }
            | RootfsError::User { .. }
            | RootfsError::Services { .. }
            | RootfsError::UnknownUnit { .. } => true,
            // The sandbox names what it ran by the definition's section.
            RootfsError::Failed { what, .. } => {
                what.starts_with("[[run]]")
                    || what.starts_with("[[users]]")
                    || what.starts_with("[services]")
            }
            _ => false,
        }
    }
}

/// Shorthand for a path-naming error.
pub(crate) fn bad_path(path: impl Into<PathBuf>, why: impl Into<String>) -> RootfsError {
    RootfsError::BadPath {
        path: path.into(),
        why: why.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(what: &str) -> RootfsError {
        RootfsError::Failed {
            what: what.into(),
            status: "exit status 3".into(),
            tail: "boom".into(),
        }
    }

    #[test]
    fn errors_the_definition_caused_are_the_users() {
        let owner = RootfsError::UnknownOwner {
            dst: "/etc/x".into(),
            kind: "user",
            name: "nobody-here".into(),
        };
        assert!(owner.is_user_error() && owner.hint().is_some());
        let exists = RootfsError::User {
            user: "root".into(),
            why: "already exists in the image".into(),
        };
        assert!(exists.is_user_error());
        let step = failed("[[run]] #1 (command `exit 3`)");
        assert!(step.is_user_error());
        assert!(step.hint().unwrap().contains("network = true"));
        assert!(step.to_string().contains("boom"));
        assert!(!failed("dpkg --configure -a").is_user_error());
        assert!(!RootfsError::Audit { output: "x".into() }.is_user_error());
    }
}
