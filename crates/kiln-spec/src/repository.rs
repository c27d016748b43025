//! Packages from outside Debian's archive: `[[repository]]` (a signed apt
//! repository) and `[packages] local` (the team's own `.deb` files).

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::model::DefPath;

/// `[[repository]]`: a third-party apt repository, verified like Debian's
/// archive with its own key and resolved together with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Repository {
    /// Names the packages' origin in the lock, `kiln inspect` and the SBOM;
    /// default: the suite. Unique in a chain.
    pub name: String,
    /// Base URI (`http://`, `https://`), without a trailing `/`. The lock
    /// never records it: one lock builds from any copy of the repository.
    pub uri: String,
    pub suite: String,
    /// In the order written; default `["main"]`.
    pub components: Vec<String>,
    /// The repository's signing key (armored or binary), beside the definition.
    pub signed_by: DefPath,
    /// `sha256:` of the key file, so replacing the key makes the lock stale.
    pub key_sha256: String,
    /// `Some(names)`: only these packages may come from this repository.
    pub pin: Option<Vec<String>>,
}

/// One `[packages] local` entry: a `.deb` file beside the definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LocalDeb {
    pub file: DefPath,
    /// `sha256:` of the file when the definition was read.
    pub sha256: String,
    pub size: u64,
}

/// `sha256:<hex>` and length of what `reader` gives, read in pieces.
pub(crate) fn digest(reader: &mut dyn std::io::Read) -> std::io::Result<(String, u64)> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut size = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((format!("sha256:{}", hex::encode(hasher.finalize())), size))
}
