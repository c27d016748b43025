//! What is inside a built root filesystem, recorded once at build time:
//! installed packages with their licences, and every path with its type,
//! mode, owner and content digest. `kiln diff`, the SBOM and provenance are
//! made from the manifest alone, without unpacking an image.

mod codec;
mod copyright;
mod deb822;
pub mod diff;
mod dpkg;
mod error;
mod inroot;
pub mod license;
mod model;
pub mod provenance;
mod purl;
mod scan;
pub mod spdx;

use std::path::Path;

pub use diff::Diff;
pub use error::Error;
pub use model::{ExtractedLicense, FileEntry, FileKind, Manifest, Package};
pub use purl::purl;
pub use spdx::rfc3339;

impl Manifest {
    /// Records the tree at `root`: packages from its dpkg status file (those
    /// whose files are on disk), their licences from
    /// `/usr/share/doc/<package>/copyright`, and every path by `lstat`,
    /// never following a symlink or leaving `root`.
    pub fn from_rootfs(root: &Path) -> Result<Manifest, Error> {
        let files = scan::scan(root)?;
        let installed = dpkg::installed(root)?;
        let mut found = Vec::with_capacity(installed.len());
        for (i, p) in installed.iter().enumerate() {
            // Co-installed architectures share one doc directory.
            let same_as_previous = i > 0 && installed[i - 1].name == p.name;
            found.push(if same_as_previous {
                found.last().cloned().unwrap_or_default()
            } else {
                copyright::of_package(root, &p.name)?
            });
        }
        let (licenses, extracted_licenses) = license::assign(&found);
        let mut packages = installed;
        for (p, l) in packages.iter_mut().zip(licenses) {
            p.licenses = l;
        }
        Ok(Manifest {
            packages,
            files,
            extracted_licenses,
        })
    }

    /// Compact, compressed and deterministic: the same manifest always gives
    /// the same bytes, so a manifest's digest can stand for the image's
    /// contents.
    pub fn to_bytes(&self) -> Vec<u8> {
        codec::encode(self)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Manifest, Error> {
        codec::decode(bytes)
    }
}
