//! Upload sessions kept in the store, so a `kiln push` killed in the middle
//! of a large blob (a disk image) resumes in the next process from the
//! offset the registry reports instead of sending the blob again.
//!
//! One entry per registry, repository and blob: the upload's latest
//! `Location`, which carries the session's state. A session is a hint,
//! never trusted: the registry is asked how much it holds, and the final
//! `PUT ?digest=` has the registry check the whole blob.

use kiln_registry::UploadSessions;
use kiln_store::{Bucket, Digest};

pub(crate) const BUCKET: &str = "uploads-v1";

pub(crate) struct StoreSessions {
    bucket: Option<Bucket>,
    /// `REGISTRY/REPO`: a session belongs to one repository.
    repository: String,
}

impl StoreSessions {
    /// Sessions for `repository`; without a usable store, none are kept.
    pub(crate) fn open(repository: String) -> StoreSessions {
        let bucket = kiln_store::Store::open_default()
            .and_then(|s| s.bucket(BUCKET))
            .ok();
        StoreSessions { bucket, repository }
    }

    fn key(&self, digest: &Digest) -> String {
        Digest::of(format!("{} {digest}", self.repository).as_bytes()).hex()
    }
}

impl UploadSessions for StoreSessions {
    fn load(&self, digest: &Digest) -> Option<String> {
        let bytes = self.bucket.as_ref()?.get(&self.key(digest)).ok()??;
        String::from_utf8(bytes).ok()
    }

    fn save(&self, digest: &Digest, location: &str) {
        // Losing a session costs a resend, never a wrong blob.
        if let Some(b) = &self.bucket {
            let _ = b.put(&self.key(digest), location.as_bytes());
        }
    }

    fn forget(&self, digest: &Digest) {
        if let Some(path) = self
            .bucket
            .as_ref()
            .and_then(|b| b.path(&self.key(digest)).ok())
        {
            let _ = std::fs::remove_file(path);
        }
    }
}
