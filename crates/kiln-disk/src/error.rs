//! What can go wrong while making a disk image. Every variant names the
//! file or tool it is about; missing tools name the Debian package to
//! install.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    /// An I/O error; `fs-err` puts the path in the message.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("{path}: {what}: {source}")]
    IoAt {
        path: PathBuf,
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{tool} not found (looked in PATH, /usr/sbin and /sbin)\nhint: install the Debian package `{package}`"
    )]
    MissingTool {
        tool: &'static str,
        package: &'static str,
    },
    #[error("{tool} failed on {path} ({status}):\n{output}")]
    ToolFailed {
        tool: &'static str,
        path: PathBuf,
        status: String,
        output: String,
    },
    #[error("{path}: not a regular file (a symbolic link would resolve outside the image)")]
    NotAFile { path: PathBuf },
    #[error(
        "disk size {size} bytes is too small: the EFI partition and a minimal root need {min}\n\
         hint: raise [disk].size"
    )]
    DiskTooSmall { size: u64, min: u64 },
    #[error(
        "{root}: the root file system does not fit in its {partition} byte partition\n\
         hint: raise [disk].size\n{output}"
    )]
    RootDoesNotFit {
        root: PathBuf,
        partition: u64,
        output: String,
    },
    #[error(
        "{path}: the EFI system partition ({size} bytes) is too small for the kernel and initrd\n{output}"
    )]
    EspFull {
        path: PathBuf,
        size: u64,
        output: String,
    },
    #[error("{path}: {why}")]
    Unexpected { path: PathBuf, why: String },
}

impl DiskError {
    pub(crate) fn io_at(
        path: impl Into<PathBuf>,
        what: &'static str,
        source: std::io::Error,
    ) -> Self {
        DiskError::IoAt {
            path: path.into(),
            what,
            source,
        }
    }

    pub(crate) fn unexpected(path: impl Into<PathBuf>, why: impl Into<String>) -> Self {
        DiskError::Unexpected {
            path: path.into(),
            why: why.into(),
        }
    }
}
