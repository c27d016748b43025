use thiserror::Error;

/// Requests that cannot be met: every one is the user's to fix.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ResolveError {
    #[error("unknown package `{name}`: no suite offers it")]
    UnknownPackage {
        name: String,
        suggestions: Vec<String>,
    },

    #[error("`{name}` is a virtual package provided by {}", providers.join(", "))]
    Virtual {
        name: String,
        providers: Vec<String>,
    },

    #[error("{name}={wanted} is not in the archive{}", available_text(available))]
    PinMissing {
        name: String,
        wanted: String,
        available: Vec<String>,
    },

    #[error("cannot install {root}: {}{detail}", chain_text(chain))]
    Unsatisfiable {
        root: String,
        /// Packages from the root down to the one whose dependency fails.
        chain: Vec<String>,
        detail: String,
        /// The parent image's package that would have to change.
        parent: Option<String>,
    },

    #[error("the archive's index is malformed: {message}")]
    Index { message: String },
}

fn available_text(available: &[String]) -> String {
    if available.is_empty() {
        String::new()
    } else {
        format!(" (it has {})", available.join(", "))
    }
}

fn chain_text(chain: &[String]) -> String {
    chain.iter().map(|p| format!("{p} → ")).collect()
}

impl ResolveError {
    /// False only when the archive, not the request, is at fault.
    pub fn is_user_error(&self) -> bool {
        !matches!(self, ResolveError::Index { .. })
    }

    pub fn hint(&self) -> Option<String> {
        match self {
            ResolveError::UnknownPackage { suggestions, .. } if !suggestions.is_empty() => Some(format!(
                "did you mean {}?",
                suggestions
                    .iter()
                    .map(|s| format!("`{s}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            ResolveError::UnknownPackage { .. } => Some(
                "check the name with `apt-cache search`, and the suite and components in [base]".into(),
            ),
            ResolveError::Virtual { providers, .. } => Some(format!(
                "name one of them in [packages].install, e.g. `{}`",
                providers.first().map(String::as_str).unwrap_or("")
            )),
            ResolveError::PinMissing { name, .. } => Some(format!(
                "the archive keeps only current versions; drop the pin (`{name}`) or pin one it has"
            )),
            ResolveError::Unsatisfiable { parent: Some(p), .. } => Some(format!(
                "rebuild the parent: run `kiln lock --update {p}` in the parent's directory, then lock this image again"
            )),
            ResolveError::Unsatisfiable { .. } => Some(
                "a pin or the suite may be too old for this package; try without pins or a newer suite".into(),
            ),
            ResolveError::Index { .. } => None,
        }
    }
}
