//! kiln's store: content-addressed blobs, versioned buckets, verified
//! fetching and a store-wide lock. It knows nothing of what the content means.
//!
//! Every write goes to a temporary file beside its final place and is renamed
//! there only after its digest (and size, when known) checked out, so a killed
//! process never leaves a half-written entry and nothing unverified is ever
//! visible in the store.

mod atomic;
mod digest;
mod dns;
mod error;
mod fetch;
mod hashing;
mod staged;
mod store;
mod trees;
mod verify;

pub use atomic::{AtomicFile, write_atomic};
pub use digest::{BadDigest, Digest, Expected};
pub use error::{FetchError, StoreError};
pub use fetch::{Fetcher, Retry};
pub use hashing::HashingReader;
pub use staged::{Entry, Staged};
pub use store::{Bucket, Store, StoreLock, default_root};
pub use verify::VerifyingReader;
