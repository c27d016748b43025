//! The part of a definition that decides the lockfile, and its checksum: the
//! lock records the checksum, so a stale lock is noticed rather than used.

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::model::{Architecture, Base, Component, Definition, PackageRef, Suite, Variant};

/// Bumped whenever the meaning of a field changes, so old locks read as stale.
/// 2: a kernel implies its boot loader and an init system.
const SCHEMA: u32 = 2;

/// Everything the resolver reads from a definition, and nothing else:
/// files, users, scripts, services, checks and outputs do not change what is
/// installed, so editing them leaves the lock fresh.
///
/// Field order is declaration order, which makes the serialised form canonical.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LockInputs {
    pub schema: u32,
    pub base: LockBase,
    /// `packages.install` in the order written, with pins, each as written
    /// (`name` or `name=version`) so the lock reads as the definition does.
    #[serde(serialize_with = "as_written")]
    pub install: Vec<PackageRef>,
    pub recommends: bool,
    /// `disk.kernel`: it is installed like any other package.
    pub kernel: Option<String>,
    /// `disk.bootloader` and `disk.init`, installed with a kernel (and only
    /// then, so they are absent without one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bootloader: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init: Option<String>,
    /// `[[repository]]` without its URI: a mirror of the same repository
    /// resolves the same, while another suite, key or pin may not.
    #[serde(rename = "repository", skip_serializing_if = "Vec::is_empty")]
    pub repositories: Vec<LockRepository>,
    /// `packages.local`, each as `PATH sha256:HEX`, so a rebuilt `.deb`
    /// makes the lock stale and `kiln lock --check` names the file.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub local: Vec<String>,
    /// Each fragment's path as written and digest, so editing a fragment makes
    /// exactly its includers' locks stale. Absent without `include`, which
    /// keeps the checksum of every definition without fragments as it was.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fragments: Vec<FragmentPin>,
    /// The `[[run]]` steps (numbered from 1) that declare `network = true`:
    /// what they fetch is not pinned by the lock, and whoever reads the lock
    /// should know. Absent when every step is hermetic, so existing locks
    /// stay fresh.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub non_hermetic: Vec<usize>,
}

/// A fragment in the lock inputs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FragmentPin {
    pub path: String,
    pub digest: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LockRepository {
    pub name: String,
    pub suite: String,
    pub components: Vec<String>,
    /// The key file as written, and the digest of its content.
    pub signed_by: String,
    pub key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pin: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "kind")]
pub enum LockBase {
    Debian {
        suite: Suite,
        variant: Variant,
        components: Vec<Component>,
        architecture: Architecture,
        /// As written (or the default path): the keyring's path, not its content.
        keyring: String,
    },
    From {
        /// The parent's directory as written; the lock pins the parent itself
        /// by its lock digest.
        from: String,
    },
}

impl LockInputs {
    /// `sha256:<hex>` of the canonical JSON form.
    pub fn checksum(&self) -> String {
        // Serialising plain strings, numbers, bools and lists to JSON cannot fail.
        let canonical = serde_json::to_vec(self).expect("LockInputs serialises to JSON");
        format!("sha256:{}", hex::encode(Sha256::digest(&canonical)))
    }
}

impl Definition {
    /// The lock's view of this definition.
    pub fn lock_inputs(&self) -> LockInputs {
        let base = match &self.base {
            Base::Debian(d) => LockBase::Debian {
                suite: d.suite,
                variant: d.variant,
                components: d.components.clone(),
                architecture: d.architecture,
                keyring: d.keyring.written.clone(),
            },
            Base::From(parent) => LockBase::From {
                from: parent.written.clone(),
            },
        };
        LockInputs {
            schema: SCHEMA,
            base,
            install: self.packages.install.clone(),
            recommends: self.packages.recommends,
            kernel: self.disk.kernel.clone(),
            bootloader: self
                .disk
                .kernel
                .as_ref()
                .map(|_| self.disk.bootloader.clone()),
            init: self.disk.kernel.as_ref().map(|_| self.disk.init.clone()),
            repositories: self
                .repositories
                .iter()
                .map(|r| LockRepository {
                    name: r.name.clone(),
                    suite: r.suite.clone(),
                    components: r.components.clone(),
                    signed_by: r.signed_by.written.clone(),
                    key: r.key_sha256.clone(),
                    pin: r.pin.clone(),
                })
                .collect(),
            local: self
                .packages
                .local
                .iter()
                .map(|l| format!("{} {}", l.file.written, l.sha256))
                .collect(),
            fragments: self
                .includes
                .iter()
                .map(|f| FragmentPin {
                    path: f.path.written.clone(),
                    digest: f.digest.clone(),
                })
                .collect(),
            non_hermetic: (1..=self.run.len())
                .filter(|n| self.run[n - 1].network)
                .collect(),
        }
    }
}

fn as_written<S: serde::Serializer>(refs: &[PackageRef], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(refs.iter().map(ToString::to_string))
}
