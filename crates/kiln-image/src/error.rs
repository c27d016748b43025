//! What can go wrong while turning trees into layers and layers into images.

use std::path::PathBuf;

use kiln_store::Digest;

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// An I/O error; `fs-err` puts the path in the message.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("{path}: {what}")]
    IoAt {
        path: PathBuf,
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// Writing to the caller's output (a file, a pipe, a compressor) failed.
    #[error("writing the output")]
    Output(#[source] std::io::Error),
    #[error("{0}: not a directory")]
    NotADirectory(PathBuf),
    #[error(
        "{path}: is a mount point (another file system inside the tree)\n\
         hint: unmount it before making a layer; its contents do not belong to the image"
    )]
    MountPoint { path: PathBuf },
    #[error(
        "{path}: names starting with `.wh.` mean \"deleted\" in OCI layers, so this file \
         cannot be carried in one\nhint: rename or remove it in the image's build steps"
    )]
    WhiteoutName { path: PathBuf },
    #[error("{path}: changed while it was being read (expected {expected} bytes)")]
    FileChanged { path: PathBuf, expected: u64 },
    #[error("{path}: device number {major}:{minor} does not fit a tar header")]
    DeviceTooLarge {
        path: PathBuf,
        major: u32,
        minor: u32,
    },
    #[error("{path}: {what}: sha256 mismatch: expected {expected}, got {got}")]
    DigestMismatch {
        path: PathBuf,
        what: &'static str,
        expected: Digest,
        got: Digest,
    },
    #[error("{path}: size mismatch: expected {expected} bytes, got {got}")]
    SizeMismatch {
        path: PathBuf,
        expected: u64,
        got: u64,
    },
    #[error("{path}: not valid JSON for {what}: {source}")]
    Json {
        path: PathBuf,
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path}: not an OCI image layout: {why}")]
    BadLayout { path: PathBuf, why: String },
    #[error("an image needs at least one layer")]
    NoLayers,
    #[error("{0}: the layer writer thread panicked")]
    Panicked(PathBuf),
}

impl ImageError {
    pub(crate) fn io_at(
        path: impl Into<PathBuf>,
        what: &'static str,
        source: std::io::Error,
    ) -> Self {
        ImageError::IoAt {
            path: path.into(),
            what,
            source,
        }
    }
}
