use std::path::PathBuf;

use kiln_store::Digest;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("`{0}` is not a registry reference")]
    BadReference(String),
    #[error("{url}: {why}")]
    Transport { url: String, why: String },
    #[error("{url}: the registry answered {status}{}", body.as_deref().map(|b| format!(": {b}")).unwrap_or_default())]
    Status {
        url: String,
        status: u16,
        body: Option<String>,
    },
    #[error("{url}: the registry refused our credentials ({status})")]
    Unauthorized { url: String, status: u16 },
    #[error("{url}: {what} has digest {got}, not the {expected} asked for")]
    DigestMismatch {
        url: String,
        what: &'static str,
        expected: Digest,
        got: Digest,
    },
    #[error("{url}: {what} is {got} bytes, not the {expected} its descriptor says")]
    SizeMismatch {
        url: String,
        what: &'static str,
        expected: u64,
        got: u64,
    },
    #[error("{url}: more than {limit} bytes for a manifest")]
    TooLarge { url: String, limit: u64 },
    #[error("{url}: {why}")]
    BadResponse { url: String, why: String },
    #[error("{url}: not found in the registry")]
    NotFound { url: String },
    #[error("{host} is not a loopback address, so kiln will not talk to it without TLS")]
    PlainHttpRefused { host: String },
    #[error("{path}: {why}")]
    AuthFile { path: PathBuf, why: String },
    #[error("{path}: no certificate in this file")]
    NoCertificate { path: PathBuf },
    #[error("the upload of {digest} was interrupted; the next push resumes it")]
    Interrupted { digest: Digest },
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl RegistryError {
    /// The `hint:` line under the error, when there is something to do.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            RegistryError::BadReference(_) => {
                "write HOST[:PORT]/REPOSITORY[:TAG|@sha256:DIGEST], e.g. 127.0.0.1:5000/team/web:1.0"
                    .into()
            }
            RegistryError::Unauthorized { .. } => "log in with `skopeo login` or `podman login`; \
                kiln reads REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json and \
                ~/.docker/config.json"
                .into(),
            RegistryError::PlainHttpRefused { .. } => {
                "pass --insecure if you really mean plain HTTP".into()
            }
            RegistryError::NoCertificate { .. } => "--ca-file takes PEM certificates".into(),
            RegistryError::Transport { why, .. } if why.contains("certificate") => {
                "a registry with its own CA needs --ca-file CA.pem".into()
            }
            _ => return None,
        })
    }

    /// A problem in what the user asked for (exit 1), rather than the
    /// registry's or the network's (exit 2).
    pub fn is_user_error(&self) -> bool {
        matches!(
            self,
            RegistryError::BadReference(_)
                | RegistryError::Unauthorized { .. }
                | RegistryError::NotFound { .. }
                | RegistryError::PlainHttpRefused { .. }
                | RegistryError::AuthFile { .. }
                | RegistryError::NoCertificate { .. }
        )
    }
}
