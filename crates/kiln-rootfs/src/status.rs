//! Reading dpkg's database of what is installed: `/var/lib/dpkg/status`.

use std::path::Path;

use crate::error::RootfsError;

/// One package as dpkg records it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Installed {
    pub name: String,
    pub version: String,
    pub architecture: String,
    /// dpkg's `Status:` field; `install ok installed` when all went well.
    pub status: String,
}

impl Installed {
    /// dpkg-query's `ii`: wanted and fully installed.
    pub fn is_ok(&self) -> bool {
        self.status == "install ok installed"
    }
}

pub(crate) const STATUS: &str = "var/lib/dpkg/status";

/// Every package in the status file of `root`, sorted by name.
pub(crate) fn read(root: &Path) -> Result<Vec<Installed>, RootfsError> {
    let text = fs_err::read_to_string(root.join(STATUS))?;
    let mut out: Vec<Installed> = kiln_deb::control::paragraphs(&text)
        .iter()
        .filter_map(|p| {
            Some(Installed {
                name: p.get("Package")?.to_string(),
                version: p.get("Version").unwrap_or("").to_string(),
                architecture: p.get("Architecture").unwrap_or("").to_string(),
                status: p.get("Status").unwrap_or("").to_string(),
            })
        })
        .collect();
    out.sort();
    Ok(out)
}
