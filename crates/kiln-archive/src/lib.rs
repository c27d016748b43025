//! Debian archive access for kiln: find the mirror, fetch a suite's signed
//! indices, verify them and keep them in the store. Nothing here prints;
//! progress is reported through a callback.

mod error;
mod mirror;
mod suite;

pub use error::ArchiveError;
pub use kiln_deb::signature::Keyring;
pub use mirror::{MirrorError, Mirrors};
pub use suite::{
    BUCKET, ComponentIndex, Progress, SuiteIndex, SuiteRequest, fetch_suite, load_suite,
};

/// Where Debian installs the archive's signing keys.
pub const DEBIAN_KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";

#[cfg(feature = "fixtures")]
pub mod fixture;
