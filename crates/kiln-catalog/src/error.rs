//! Why the catalog refused or failed. A user error (a bad reference, a
//! refused promotion) is told apart from a failing database, and carries a
//! hint saying what to do.

use std::path::PathBuf;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum Error {
    #[error("catalog {}: {source}", path.display())]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },

    /// `message` spells out the server's own message, which the
    /// `postgres::Error` display alone hides behind "db error".
    #[error("catalog {location}: {message}")]
    Postgres {
        location: String,
        message: String,
        #[source]
        source: postgres::Error,
    },

    /// fs-err's message names the path.
    #[error("catalog: {0}")]
    Io(#[from] std::io::Error),

    #[error("catalog {}: journal mode stays {mode}: this file system cannot share an SQLite file safely", path.display())]
    NoWal { path: PathBuf, mode: String },

    #[error("catalog location `{location}`: {reason}")]
    BadLocation { location: String, reason: String },

    #[error(
        "catalog {location} has schema version {found}, newer than this kiln knows (up to {known})"
    )]
    SchemaTooNew {
        location: String,
        found: i64,
        known: i64,
    },

    #[error("catalog {location} holds a value this kiln cannot read: {reason}")]
    Corrupt { location: String, reason: String },

    #[error("invalid build record: {0}")]
    InvalidRecord(String),

    #[error("`{reference}` is not a build reference: {reason}")]
    BadReference { reference: String, reason: String },

    #[error("no build matches `{reference}`")]
    NotFound { reference: String },

    #[error("`{reference}` matches {count} builds: {}", candidates.join(", "))]
    Ambiguous {
        reference: String,
        count: usize,
        /// `sha256:… name@version`, one per build.
        candidates: Vec<String>,
    },

    #[error("no build {id} in the catalog")]
    UnknownBuild { id: String },

    #[error("no rollout {id} in the catalog")]
    UnknownRollout { id: i64 },

    #[error("build {id} names parent {parent}, which is not in the catalog")]
    UnknownParent { id: String, parent: String },

    #[error("invalid {what} name `{name}`")]
    BadName { what: &'static str, name: String },

    #[error("refusing to promote {name}@{version} ({build}) to {env}: its last test failed")]
    LastTestFailed {
        env: String,
        name: String,
        version: String,
        build: String,
    },

    #[error("{name}@{version} ({build}) is already running in {env}")]
    AlreadyRunning {
        env: String,
        name: String,
        version: String,
        build: String,
    },

    #[error("no build of {name} runs in {env}")]
    NotDeployed { env: String, name: String },

    #[error("nothing to roll back to: no build of {name} ran in {env} before {build}")]
    NothingToRollBack {
        env: String,
        name: String,
        build: String,
    },
}

impl Error {
    /// SQLite said another connection holds a lock it would not wait for
    /// (it skips the busy handler while a fresh file changes journal mode).
    pub(crate) fn is_busy(&self) -> bool {
        matches!(
            self,
            Error::Sqlite {
                source: rusqlite::Error::SqliteFailure(e, _),
                ..
            } if matches!(e.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
        )
    }

    /// True when the request, not the catalog or its database, is at fault.
    pub fn is_user_error(&self) -> bool {
        !matches!(
            self,
            Error::Sqlite { .. }
                | Error::Postgres { .. }
                | Error::Io(_)
                | Error::Corrupt { .. }
                | Error::InvalidRecord(_)
        )
    }

    pub fn hint(&self) -> Option<String> {
        let s = |t: &str| Some(t.to_string());
        match self {
            Error::BadLocation { .. } => s(
                "give a file path, `sqlite:PATH`, `postgresql://user@host/db`, or `host=… dbname=…`",
            ),
            Error::NoWal { .. } => s(
                "put the catalog on a local file system, or use a PostgreSQL catalog to share it between machines",
            ),
            Error::SchemaTooNew { .. } => s(
                "a newer kiln has upgraded this catalog; upgrade kiln to use it (older kilns must not write to it)",
            ),
            Error::BadReference { .. } => s(
                "name a build as NAME@VERSION, NAME@latest, or by at least 4 hex digits of its digest",
            ),
            Error::NotFound { .. } => {
                s("`kiln images` lists the builds; an image name needs @VERSION or @latest")
            }
            Error::Ambiguous { .. } => s("give more digits of the digest"),
            Error::UnknownBuild { .. } => s("`kiln images` lists the builds"),
            Error::UnknownRollout { .. } => s("`kiln rollouts` lists the rollouts"),
            Error::UnknownParent { .. } => {
                s("build the parent image first, with this catalog, so its record exists")
            }
            Error::BadName {
                what: "environment",
                ..
            } => s(
                "environment names are lowercase letters and digits, then also `.`, `_` or `-`, e.g. `prod` or `eu-west.staging`",
            ),
            Error::BadName { .. } => s(
                "image names are lowercase letters, digits and inner `-`, at most 63 characters, as in the definition's [image].name",
            ),
            Error::LastTestFailed { .. } => s(
                "fix the image and test it again, or pass `--force` to promote it anyway (the record notes that it was forced)",
            ),
            Error::AlreadyRunning { .. } => s("nothing to do"),
            Error::NotDeployed { .. } => s("`kiln where` shows what runs where"),
            Error::NothingToRollBack { env, .. } => Some(format!(
                "`kiln history {env}` shows what ran there; promote a build by name to move to it"
            )),
            Error::Sqlite { .. }
            | Error::Postgres { .. }
            | Error::Io(_)
            | Error::Corrupt { .. }
            | Error::InvalidRecord(_) => None,
        }
    }
}
