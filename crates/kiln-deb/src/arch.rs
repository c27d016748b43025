//! The machine an image is for. The definition names it once (Debian's
//! word); every stage asks it for its own spelling instead of writing
//! `amd64` where it happens to need one.

use std::fmt;

use serde::Serialize;

/// An image's architecture: what its packages are built for and what boots it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Architecture {
    #[serde(rename = "amd64")]
    Amd64,
    #[serde(rename = "arm64")]
    Arm64,
}

impl Architecture {
    pub const ALL: &'static [Architecture] = &[Architecture::Amd64, Architecture::Arm64];

    /// Debian's name: `Architecture:` fields, `binary-<arch>` indices,
    /// `pkg:arch` in dpkg's database; also the word in `kiln.toml`.
    pub fn debian(self) -> &'static str {
        match self {
            Architecture::Amd64 => "amd64",
            Architecture::Arm64 => "arm64",
        }
    }

    /// Debian's name back to the architecture; `None` for one kiln does not know.
    pub fn from_debian(word: &str) -> Option<Architecture> {
        Self::ALL.iter().copied().find(|a| a.debian() == word)
    }

    /// The Go name OCI platforms use (`platform.architecture`).
    pub fn oci(self) -> &'static str {
        match self {
            Architecture::Amd64 => "amd64",
            Architecture::Arm64 => "arm64",
        }
    }

    /// The suffix of UEFI file names: the removable-media loader is
    /// `BOOT<SUFFIX>.EFI`, systemd-boot ships as `systemd-boot<suffix>.efi`.
    pub fn efi_suffix(self) -> &'static str {
        match self {
            Architecture::Amd64 => "x64",
            Architecture::Arm64 => "aa64",
        }
    }

    /// The Discoverable Partitions Specification's name, as in its
    /// `root-<name>` partition names.
    pub fn dps_name(self) -> &'static str {
        match self {
            Architecture::Amd64 => "x86-64",
            Architecture::Arm64 => "arm64",
        }
    }

    /// The GPT partition type GUID of a root partition for this
    /// architecture (Discoverable Partitions Specification), which
    /// systemd-repart and systemd-gpt-auto-generator look for.
    pub fn gpt_root_type(self) -> &'static str {
        match self {
            Architecture::Amd64 => "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709",
            Architecture::Arm64 => "B921B045-1DF0-41C3-AF44-4C6F280D3FAE",
        }
    }
}

impl fmt::Display for Architecture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.debian())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_name_round_trips_and_no_two_share_one() {
        for a in Architecture::ALL {
            assert_eq!(Architecture::from_debian(a.debian()), Some(*a));
            assert!(crate::names::is_architecture(a.debian()));
        }
        assert_eq!(Architecture::from_debian("i386"), None);
        let guids: std::collections::BTreeSet<_> = Architecture::ALL
            .iter()
            .map(|a| a.gpt_root_type())
            .collect();
        assert_eq!(guids.len(), Architecture::ALL.len());
    }
}
