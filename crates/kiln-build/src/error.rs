use std::path::PathBuf;

/// Everything the pipeline can fail with, sorted into the user's problems
/// (exit 1) and kiln's or the environment's (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Spec(#[from] kiln_spec::SpecError),
    #[error(transparent)]
    Lock(#[from] kiln_lock::LockError),
    #[error(transparent)]
    Resolve(#[from] kiln_resolve::ResolveError),
    #[error(transparent)]
    Archive(#[from] kiln_archive::ArchiveError),
    #[error(transparent)]
    Store(#[from] kiln_store::StoreError),
    #[error("the parent image in {dir} has no kiln.lock")]
    ParentNotLocked { dir: PathBuf },
    #[error("the parent image in {dir} is stale: its kiln.lock no longer matches its kiln.toml")]
    ParentStale { dir: PathBuf },
    #[error("images built `from` each other form a cycle: {}", chain.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(" → "))]
    Cycle { chain: Vec<PathBuf> },
    #[error("--update {name}: {name} is not in {lock}")]
    UpdateUnknown { name: String, lock: PathBuf },
    #[error("{path} already exists")]
    Exists { path: PathBuf },
    #[error("writing {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("internal error: {0}")]
    Internal(String),
    #[error("parsing {index}")]
    Index {
        index: String,
        #[source]
        source: kiln_deb::packages::PackagesError,
    },
}

impl Error {
    /// The `hint:` line under the error, when there is something to do.
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::Spec(e) => e.hint(),
            Error::Lock(e) => e.hint(),
            Error::Resolve(e) => e.hint(),
            Error::Archive(e) => e.hint(),
            Error::ParentNotLocked { dir } | Error::ParentStale { dir } => {
                Some(format!("run `kiln lock {}` first", dir.display()))
            }
            Error::Cycle { .. } => Some("a `from` chain must end at a `distro` base".into()),
            Error::UpdateUnknown { .. } => Some(
                "name packages the lock already has, or run `kiln lock` to add new ones".into(),
            ),
            Error::Exists { .. } => Some("pass --force to overwrite it".into()),
            Error::Io { .. } | Error::Index { .. } | Error::Internal(_) | Error::Store(_) => None,
        }
    }

    /// Exit code: 1 when the user can fix it in their definition or
    /// command line, 2 when kiln or its environment failed.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Resolve(e) if !e.is_user_error() => 2,
            Error::Spec(_)
            | Error::Resolve(_)
            | Error::ParentNotLocked { .. }
            | Error::ParentStale { .. }
            | Error::Cycle { .. }
            | Error::UpdateUnknown { .. }
            | Error::Exists { .. } => 1,
            Error::Lock(kiln_lock::LockError::Missing(_) | kiln_lock::LockError::Parse { .. }) => 1,
            // Which mirror and which keyring are the user's to say.
            Error::Archive(
                kiln_archive::ArchiveError::Mirror(_) | kiln_archive::ArchiveError::Keyring(_),
            ) => 1,
            _ => 2,
        }
    }
}
