use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::model::{LOCK_VERSION, Lock};

const HEADER: &str = "# kiln.lock: written by `kiln lock`; do not edit by hand.\n\
# It pins every package of this image. Commit it; `kiln lock --check` tells CI when it is stale.\n\n";

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("no lockfile at {0}")]
    Missing(PathBuf),
    #[error("reading {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a valid kiln.lock: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path} has lock version {found}; this kiln reads version {LOCK_VERSION}")]
    Version { path: PathBuf, found: u32 },
    #[error("serialising the lock: {0}")]
    Render(#[from] toml::ser::Error),
}

impl LockError {
    pub fn hint(&self) -> Option<String> {
        match self {
            LockError::Missing(_) => Some("run `kiln lock` to create it".into()),
            LockError::Parse { .. } => Some(
                "the lockfile is generated: restore it from version control or run `kiln lock`"
                    .into(),
            ),
            LockError::Version { .. } => {
                Some("use the kiln version that wrote it, or run `kiln lock` again".into())
            }
            _ => None,
        }
    }
}

/// Reads and validates `path`.
pub fn read(path: &Path) -> Result<Lock, LockError> {
    let text = match fs_err::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(LockError::Missing(path.into()));
        }
        Err(source) => {
            return Err(LockError::Io {
                path: path.into(),
                source,
            });
        }
    };
    let lock: Lock = toml::from_str(&text).map_err(|e| LockError::Parse {
        path: path.into(),
        message: e.message().to_string(),
    })?;
    if lock.version != LOCK_VERSION {
        return Err(LockError::Version {
            path: path.into(),
            found: lock.version,
        });
    }
    Ok(lock)
}

/// The exact bytes of a lock: header, then canonical TOML.
pub fn render(lock: &Lock) -> Result<String, LockError> {
    let mut lock = lock.clone();
    lock.normalize();
    Ok(format!("{HEADER}{}", toml::to_string(&lock)?))
}

/// Writes `lock` atomically (temporary file, then rename), so a killed run
/// never leaves a truncated lockfile. Returns whether the bytes changed.
pub fn write(path: &Path, lock: &Lock) -> Result<bool, LockError> {
    let text = render(lock)?;
    if fs_err::read_to_string(path).ok().as_deref() == Some(text.as_str()) {
        return Ok(false);
    }
    let io = |source| LockError::Io {
        path: path.into(),
        source,
    };
    kiln_store::write_atomic(path, text.as_bytes()).map_err(io)?;
    Ok(true)
}

/// `sha256:` of a lockfile's bytes: how a child pins its parent.
pub fn digest(path: &Path) -> Result<String, LockError> {
    let bytes = fs_err::read(path).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => LockError::Missing(path.into()),
        _ => LockError::Io {
            path: path.into(),
            source,
        },
    })?;
    Ok(format!("sha256:{}", hex::encode(Sha256::digest(&bytes))))
}
