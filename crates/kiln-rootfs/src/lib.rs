//! kiln-rootfs: from `.deb` files to the root filesystem Debian's own tools
//! would make, reproducibly, without leaking anything onto the host.
//!
//! Three steps, each a function the pipeline calls in turn:
//!
//! ```no_run
//! # fn demo(root: &std::path::Path, debs: &[kiln_rootfs::Deb], def: &kiln_spec::Definition) -> Result<(), kiln_rootfs::RootfsError> {
//! let env = kiln_rootfs::BuildEnv::new(1_700_000_000);
//! let report = kiln_rootfs::install(root, debs, &env)?; // packages, by the image's dpkg
//! kiln_rootfs::customize(root, def, &env)?;            // [[users]], [[files]], [[run]], [services]
//! kiln_rootfs::normalize(root, &env)?;                 // same inputs, same tree
//! # Ok(()) }
//! ```
//!
//! Everything that runs inside the image runs in a throw-away mount and PID
//! namespace (see `sandbox`); kiln must run as root.

mod bootstrap;
mod confine;
mod customize;
mod deb;
mod dpkgdb;
mod error;
mod extract;
mod firstboot;
#[cfg(test)]
mod hostile_tests;
mod initramfs;
mod layer;
mod normalize;
mod order;
mod sandbox;
mod stage;
mod status;
#[cfg(test)]
mod testdeb;
mod units;
mod unpack;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use deb::{control_text, data_files};
pub use error::RootfsError;
pub use layer::{Metadata, apply_layer, set_metadata};
pub use status::Installed;
pub use units::{in_unit_dir, require as require_units, unit_paths};

/// A package file to install, fetched and verified on entry to the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deb {
    pub name: String,
    pub version: String,
    pub path: PathBuf,
    /// What the file must hash to (the lock's sha256): the file is hashed
    /// as it is unpacked, and a mismatch is [`RootfsError::DebMismatch`].
    pub sha256: kiln_store::Digest,
    /// Bootstrap this package first (the lock's reason is `essential`).
    /// Packages whose control file says `Essential: yes` are bootstrapped
    /// first anyway, with everything they depend on.
    pub essential: bool,
}

/// Something worth telling the user while a long step runs.
#[derive(Debug, Clone, Copy)]
pub enum Event<'a> {
    /// A step starts, e.g. "installing the essential packages".
    Step(&'a str),
    /// One line printed by a program run inside the image.
    Output(&'a str),
    /// The install's last dpkg run starts, with no program running in the
    /// image: what follows (the last configure, the kernel's initramfs, the
    /// customisation) changes few files, so a copy of the tree may start.
    /// `scratch` (relative to the root) holds the install's own files,
    /// removed at its end: not worth copying.
    LastDpkgRun { scratch: &'a str },
}

/// A progress callback.
pub type OnEvent = Box<dyn Fn(Event<'_>) + Send + Sync>;

/// What every step needs to know about the build.
pub struct BuildEnv {
    /// The build's time: every timestamp in the result is at most this, and
    /// tools inside the image see it as `SOURCE_DATE_EPOCH`.
    pub source_date_epoch: i64,
    /// Told about progress; `None` to stay quiet.
    pub on_event: Option<OnEvent>,
    /// Who unpacks the packages; dpkg configures them either way.
    pub unpacker: Unpacker,
    /// The initramfs a kernel installed by this build gets; written into
    /// the image before the kernel's package builds it. Default
    /// [`kiln_spec::Initramfs::Full`]: Debian's, the image left as is.
    pub initramfs: kiln_spec::Initramfs,
}

/// Who unpacks packages new to the image.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Unpacker {
    /// kiln, on every core, writing dpkg's database as `dpkg --unpack`
    /// would; dpkg still runs every maintainer script. Packages it cannot
    /// take (an upgrade, a diverted or shared file) go to dpkg.
    #[default]
    Kiln,
    /// dpkg, one package at a time (`dpkg --install`): the reference the
    /// tests compare kiln's result with.
    Dpkg,
}

impl BuildEnv {
    pub fn new(source_date_epoch: i64) -> BuildEnv {
        BuildEnv {
            source_date_epoch,
            on_event: None,
            unpacker: Unpacker::default(),
            initramfs: kiln_spec::Initramfs::Full,
        }
    }

    pub(crate) fn emit(&self, event: Event<'_>) {
        if let Some(f) = &self.on_event {
            f(event);
        }
    }
}

impl std::fmt::Debug for BuildEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuildEnv")
            .field("source_date_epoch", &self.source_date_epoch)
            .field("unpacker", &self.unpacker)
            .field("initramfs", &self.initramfs)
            .finish_non_exhaustive()
    }
}

/// What [`install`] did.
#[derive(Debug, Clone)]
pub struct Report {
    /// Every package in the image afterwards (the parent's too), by name.
    pub packages: Vec<Installed>,
    /// The root was empty and was bootstrapped.
    pub bootstrapped: bool,
    /// Wall time of each phase, in order, then `total`.
    pub timings: Vec<(String, Duration)>,
}

/// Installs `debs` into `root`.
///
/// An empty `root` is bootstrapped as mmdebstrap does: the essential set is
/// extracted, then the image's own dpkg installs everything (kiln unpacks
/// the packages, see [`Unpacker`]). A `root` that
/// already holds an image (a parent's rootfs, with `/var/lib/dpkg/status`)
/// gets the packages installed on top by its own dpkg. Afterwards every
/// package is `ii` and `dpkg --audit` is silent, or this fails.
pub fn install(root: &Path, debs: &[Deb], env: &BuildEnv) -> Result<Report, RootfsError> {
    bootstrap::install(root, debs, env)
}

/// Applies the definition's customisations, in this order: `[[users]]`
/// (so files can belong to them), `[[files]]`, `[[run]]` steps (which may
/// use both), `[services]` (which may enable units the steps wrote).
pub fn customize(
    root: &Path,
    def: &kiln_spec::Definition,
    env: &BuildEnv,
) -> Result<(), RootfsError> {
    customize::customize(root, def, env)
}

/// Removes what differs between two builds of the same inputs (logs,
/// caches, machine identity) and clamps every timestamp to
/// `source_date_epoch`. See the list in `normalize.rs`.
pub fn normalize(root: &Path, env: &BuildEnv) -> Result<(), RootfsError> {
    normalize::normalize(root, env)
}
