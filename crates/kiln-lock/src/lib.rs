//! `kiln.lock`: deterministic, sorted, diff-friendly TOML that pins every
//! package an image contains, and records what the definition asked for so
//! a stale lock is detected rather than silently used.

mod check;
mod io;
mod model;

pub use check::{Change, changes};
pub use io::{LockError, digest, read, render, write};
pub use model::{
    DEBIAN_ORIGIN, LOCAL_ORIGIN, LOCK_VERSION, Lock, LockedPackage, ParentPin, RepositoryPin,
    SuitePin,
};
