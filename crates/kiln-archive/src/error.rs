//! Why an archive's indices were refused. Every message names the URL or
//! file concerned; `hint` says what the user can do about it.

use kiln_deb::release::ReleaseError;
use kiln_deb::signature::SignatureError;
use kiln_store::{FetchError, StoreError};

use crate::mirror::MirrorError;

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error(transparent)]
    Mirror(#[from] MirrorError),
    #[error("loading the archive keyring")]
    Keyring(#[source] SignatureError),
    #[error(transparent)]
    Fetch(FetchError),
    #[error("{url}: refused: {source}")]
    Signature {
        url: String,
        #[source]
        source: SignatureError,
    },
    #[error("{url}: {source}")]
    Release {
        url: String,
        #[source]
        source: ReleaseError,
    },
    #[error("{url}: asked for suite {asked}, but it is Suite {suite} / Codename {codename}")]
    WrongSuite {
        url: String,
        asked: String,
        suite: String,
        codename: String,
    },
    #[error("{url}: expired: Valid-Until {valid_until} is in the past")]
    Expired { url: String, valid_until: String },
    #[error("{url}: suite has no component {component} (it has: {available})")]
    NoComponent {
        url: String,
        component: String,
        available: String,
    },
    #[error("{url}: the Release lists no {path} to verify the index against")]
    Unlisted { url: String, path: String },
    #[error(
        "{url}: none of the listed indices for {component}/binary-{arch} could be fetched (tried {tried})"
    )]
    NoIndex {
        url: String,
        component: String,
        arch: String,
        tried: String,
    },
    /// The message of `source` names the URL.
    #[error("{source}")]
    Mismatch {
        url: String,
        #[source]
        source: StoreError,
    },
    #[error("{url}: cannot decompress: {source}")]
    Decompress {
        url: String,
        #[source]
        source: std::io::Error,
    },
    #[error("offline: the store lacks what suite {suite} from {mirror} needs: {}", missing.join("; "))]
    Offline {
        mirror: String,
        suite: String,
        missing: Vec<String>,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ArchiveError {
    pub fn hint(&self) -> Option<String> {
        let s = |t: &str| Some(t.to_string());
        match self {
            ArchiveError::Mirror(e) => e.hint(),
            ArchiveError::Keyring(_) => {
                s("install the debian-archive-keyring package, or name a keyring that exists")
            }
            ArchiveError::Fetch(e) if e.is_mismatch() => s(
                "the mirror may be part-way through an update or serving altered files; retry later or use another mirror",
            ),
            ArchiveError::Fetch(FetchError::NotFound { .. }) => {
                s("check that the mirror carries this suite, or set KILN_MIRROR or pass --mirror")
            }
            ArchiveError::Fetch(_) => s(
                "check the network and the mirror, set KILN_MIRROR or pass --mirror to use another, or build --offline from the store",
            ),
            ArchiveError::Signature { .. } => s(
                "the file is not signed by a key in the archive keyring: the mirror may be altered or the keyring out of date (update debian-archive-keyring)",
            ),
            ArchiveError::Release { .. } | ArchiveError::Unlisted { .. } => {
                s("the mirror serves a malformed or incomplete Release; use another mirror")
            }
            ArchiveError::WrongSuite { .. } => s(
                "the mirror serves a different suite under that name: check the suite and the mirror",
            ),
            ArchiveError::Expired { .. } => s(
                "the mirror has not been updated in time (or this machine's clock is wrong): use another mirror",
            ),
            ArchiveError::NoComponent { .. } => s("check the component names in the definition"),
            ArchiveError::NoIndex { .. } => {
                s("the mirror lacks indices its Release lists; retry later or use another mirror")
            }
            ArchiveError::Mismatch { .. } | ArchiveError::Decompress { .. } => s(
                "the mirror may be part-way through an update or serving altered files; retry later or use another mirror",
            ),
            ArchiveError::Offline { .. } => {
                s("run once without --offline to fetch the indices into the store")
            }
            ArchiveError::Store(_) => None,
        }
    }
}

impl From<FetchError> for ArchiveError {
    fn from(e: FetchError) -> ArchiveError {
        match e {
            FetchError::Store(store)
                if !matches!(
                    store,
                    StoreError::SizeMismatch { .. } | StoreError::DigestMismatch { .. }
                ) =>
            {
                ArchiveError::Store(store)
            }
            other => ArchiveError::Fetch(other),
        }
    }
}
