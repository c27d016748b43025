//! What can go wrong while recording or reading a manifest.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An I/O error; `fs-err` puts the path in the message.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("{path} is not a directory, so it cannot be a root filesystem")]
    NotADirectory { path: PathBuf },
    #[error("{path}: paragraph at line {line}: {why}")]
    Status {
        path: PathBuf,
        line: usize,
        why: String,
    },
    #[error("not a kiln manifest: {why}")]
    Decode { why: String },
    #[error(
        "manifest format `{found}` is not one this kiln reads (it reads `{expected}`); \
         hint: record the manifest again with this kiln"
    )]
    Format {
        found: String,
        expected: &'static str,
    },
}
