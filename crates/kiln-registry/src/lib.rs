//! The OCI distribution protocol, as kiln speaks it to a registry: blobs
//! (HEAD, streamed chunked uploads that resume, cross-repository mounts,
//! verified downloads), manifests, and referrers (the OCI 1.1 API, or the
//! `sha256-HEX` tag schema where a registry lacks it). Auth follows the
//! containers convention (basic, and bearer tokens fetched with it); TLS
//! trusts the system roots plus a given CA file.
//!
//! Nothing read from a registry is trusted: every blob and manifest is
//! hashed as it arrives and refused unless it matches the digest asked for,
//! and callers write only what passed.

mod auth;
mod blobs;
mod client;
mod error;
mod manifests;
mod reference;

pub use auth::Credentials;
pub use blobs::{BlobSource, NoSessions, Upload, UploadSessions, interrupt};
pub use client::{Client, ClientOptions};
pub use error::RegistryError;
pub use manifests::{Fetched, manifest_descriptor};
pub use reference::{Reference, Target};
