//! What can go wrong in the store and while fetching into it.

use std::path::PathBuf;

use crate::Digest;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// An I/O error; `fs-err` puts the path in the message.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("cannot find a cache directory: none of KILN_CACHE, XDG_CACHE_HOME or HOME is set")]
    NoRoot,
    #[error("{what}: size mismatch: expected {expected} bytes, got {got}")]
    SizeMismatch {
        what: String,
        expected: u64,
        got: u64,
    },
    #[error("{what}: sha256 mismatch: expected {}, got {}", expected.hex(), got.hex())]
    DigestMismatch {
        what: String,
        expected: Digest,
        got: Digest,
    },
    #[error("`{key}` is not a valid key in bucket {bucket}: {why}")]
    BadKey {
        bucket: String,
        key: String,
        why: &'static str,
    },
    #[error("could not lock the store at {path}")]
    Lock {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{url}: not found (HTTP 404)")]
    NotFound { url: String },
    #[error("{url}: the server answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("{url}: failed after {attempts} attempt(s): {message}")]
    Network {
        url: String,
        attempts: u32,
        message: String,
    },
    #[error("{url}: unsupported URL (kiln fetches http://, https:// and file:// URLs)")]
    BadUrl { url: String },
    #[error("{url}: larger than the {limit} bytes allowed")]
    TooLarge { url: String, limit: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl FetchError {
    /// Whether the content is simply absent, so a caller may try another name.
    pub fn is_not_found(&self) -> bool {
        matches!(self, FetchError::NotFound { .. })
    }

    /// Whether the content arrived but was not what was expected.
    pub fn is_mismatch(&self) -> bool {
        matches!(
            self,
            FetchError::Store(StoreError::SizeMismatch { .. } | StoreError::DigestMismatch { .. })
        )
    }
}
