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
    #[error("fetching {package}")]
    Fetch {
        package: String,
        #[source]
        source: kiln_store::FetchError,
    },
    #[error("--offline: the store lacks {} package(s): {}", missing.len(), missing.join(", "))]
    OfflineMissing { missing: Vec<String> },
    #[error("the lock pins {package} by a malformed sha256 `{sha256}`")]
    BadLockDigest { package: String, sha256: String },
    #[error(transparent)]
    Rootfs(#[from] kiln_rootfs::RootfsError),
    #[error(transparent)]
    Image(#[from] kiln_image::ImageError),
    #[error("{path} is stale: {}", changes.join("; "))]
    StaleLock { path: PathBuf, changes: Vec<String> },
    #[error("the lock gives suite {suite} an unreadable date `{date}`")]
    BadLockDate { suite: String, date: String },
    #[error("nothing built yet: {path} does not exist")]
    NotBuilt { path: PathBuf },
    #[error(transparent)]
    Disk(#[from] kiln_disk::DiskError),
    #[error(transparent)]
    Vm(#[from] kiln_vm::VmError),
    #[error(transparent)]
    Runtime(#[from] kiln_vm::RuntimeConfigError),
    #[error("{image} has no disk image to boot")]
    NoDiskImage { image: String },
    #[error(transparent)]
    Catalog(#[from] kiln_catalog::Error),
    #[error("recording what {path} contains")]
    Manifest {
        path: PathBuf,
        #[source]
        source: kiln_manifest::Error,
    },
    #[error("the catalog has no manifest for build {build}")]
    NoManifest { build: String },
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
            Error::StaleLock { .. } => Some("run `kiln lock` first; a build never resolves".into()),
            Error::NotBuilt { .. } => Some("run `kiln build` first".into()),
            Error::BadLockDate { .. } => Some("the lockfile was edited by hand: run `kiln lock` again".into()),
            Error::Catalog(e) => e.hint(),
            Error::NoManifest { .. } => Some("rebuild the image with this kiln to record its manifest".into()),
            Error::Manifest { .. } => None,
            Error::Rootfs(e) => e.hint(),
            Error::Image(_) | Error::Disk(_) | Error::Vm(_) | Error::Runtime(_) => None,
            Error::NoDiskImage { .. } => Some(
                "add `raw` or `qcow2` to [outputs].formats (with [disk].kernel on the base) and run `kiln build`".into(),
            ),
            Error::OfflineMissing { .. } => Some("run once without --offline to fetch them into the store".into()),
            Error::BadLockDigest { .. } => Some("the lockfile was edited by hand: run `kiln lock` again".into()),
            Error::Fetch { .. } => Some("check the network and the mirror (KILN_MIRROR, --mirror); a rerun resumes".into()),
            Error::Io { .. } | Error::Index { .. } | Error::Internal(_) | Error::Store(_) => None,
        }
    }

    /// Exit code: 1 when the user can fix it in their definition or
    /// command line, 2 when kiln or its environment failed.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Resolve(e) if !e.is_user_error() => 2,
            Error::Catalog(e) if e.is_user_error() => 1,
            Error::Rootfs(e) if e.is_user_error() => 1,
            Error::Spec(_)
            | Error::Resolve(_)
            | Error::ParentNotLocked { .. }
            | Error::ParentStale { .. }
            | Error::Cycle { .. }
            | Error::UpdateUnknown { .. }
            | Error::Exists { .. }
            | Error::OfflineMissing { .. }
            | Error::StaleLock { .. }
            | Error::Runtime(_)
            | Error::NoDiskImage { .. }
            | Error::NotBuilt { .. }
            | Error::BadLockDate { .. }
            | Error::BadLockDigest { .. } => 1,
            Error::Lock(kiln_lock::LockError::Missing(_) | kiln_lock::LockError::Parse { .. }) => 1,
            // Which mirror and which keyring are the user's to say.
            Error::Archive(
                kiln_archive::ArchiveError::Mirror(_) | kiln_archive::ArchiveError::Keyring(_),
            ) => 1,
            _ => 2,
        }
    }
}
