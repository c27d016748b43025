//! The validated definition. Every default is filled in here, so later stages
//! read values and never re-derive them.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

/// Debian's names, and what each stage needs to know of the machine.
pub use kiln_deb::Architecture;

/// A validated `kiln.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Definition {
    /// The `kiln.toml` this was read from, as the caller named it.
    pub path: PathBuf,
    /// The directory holding it; relative paths in the definition start here.
    pub dir: PathBuf,
    pub image: Image,
    pub base: Base,
    /// `[[repository]]`, in the order written.
    pub repositories: Vec<crate::Repository>,
    pub packages: Packages,
    pub files: Vec<FileSpec>,
    pub users: Vec<User>,
    pub run: Vec<Run>,
    pub services: Services,
    pub runtime: Runtime,
    pub disk: Disk,
    pub outputs: Outputs,
    pub checks: Vec<Check>,
    /// `include = [...]`, in the order written; their sections are already
    /// merged into the fields above.
    pub includes: Vec<crate::fragment::Fragment>,
}

impl Definition {
    /// The directory of the parent definition for `base.from`, resolved
    /// against this definition's directory; `None` for a distribution base.
    pub fn parent(&self) -> Option<&Path> {
        match &self.base {
            Base::From(parent) => Some(&parent.dir),
            Base::Debian(_) => None,
        }
    }
}

/// `[image]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Image {
    /// Lowercase DNS label: `[a-z0-9]([a-z0-9-]*[a-z0-9])?`, at most 63 characters.
    pub name: String,
    /// Valid as an OCI tag: `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.
    pub version: String,
}

/// `[base]`: a distribution, or another image to build on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Base {
    /// `distro = "debian"`
    Debian(DebianBase),
    /// `from = "../base"`
    From(ParentRef),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DebianBase {
    pub suite: Suite,
    pub variant: Variant,
    /// Archive components in the order written; default `["main"]`.
    pub components: Vec<Component>,
    /// The archive keyring; default `/usr/share/keyrings/debian-archive-keyring.gpg`.
    /// Not checked for existence here: the lock stage reads it and names it if absent.
    pub keyring: DefPath,
    pub architecture: Architecture,
}

/// `base.from`: the directory holding the parent's `kiln.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ParentRef {
    /// As written in the definition; this is what the lock records.
    pub written: String,
    /// Resolved against the child's directory (not canonicalised).
    pub dir: PathBuf,
}

/// A path from the definition: as written, and resolved against the
/// definition's directory (absolute paths are kept as they are).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DefPath {
    pub written: String,
    pub path: PathBuf,
}

impl DefPath {
    pub(crate) fn resolve(dir: &Path, written: &str) -> Self {
        DefPath {
            written: written.to_owned(),
            path: dir.join(written),
        }
    }
}

pub const DEFAULT_KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";

macro_rules! word_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The word used in `kiln.toml` and in the lock.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            #[allow(dead_code, reason = "only some word lists are offered in hints")]
            pub(crate) fn words() -> Vec<&'static str> {
                Self::ALL.iter().map(|v| v.as_str()).collect()
            }

            pub(crate) fn from_word(word: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|v| v.as_str() == word)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

word_enum! {
    /// A Debian release, by codename so an image never changes release under you.
    Suite {
        /// Debian 12
        Bookworm = "bookworm",
        /// Debian 13
        Trixie = "trixie",
    }
}

word_enum! {
    /// Which packages make the base system, with mmdebstrap's meanings.
    Variant {
        /// `Essential: yes` packages only.
        Essential = "essential",
        /// `essential` plus apt.
        Apt = "apt",
        /// `Essential: yes`, `Priority: required` and apt; mmdebstrap's
        /// `required` is the same set and is accepted as a synonym.
        Minbase = "minbase",
        /// `minbase` plus `Priority: important`.
        Important = "important",
        /// `important` plus `Priority: standard`.
        Standard = "standard",
    }
}

impl Variant {
    /// The `Priority:` values whose packages belong to the variant, on top of
    /// the `Essential: yes` packages every variant has.
    pub fn priorities(self) -> &'static [&'static str] {
        match self {
            Variant::Essential | Variant::Apt => &[],
            Variant::Minbase => &["required"],
            Variant::Important => &["required", "important"],
            Variant::Standard => &["required", "important", "standard"],
        }
    }

    /// Whether apt is added explicitly (it is not `Essential: yes`).
    pub fn includes_apt(self) -> bool {
        !matches!(self, Variant::Essential)
    }
}

word_enum! {
    /// A Debian archive component.
    Component {
        Main = "main",
        Contrib = "contrib",
        NonFree = "non-free",
        NonFreeFirmware = "non-free-firmware",
    }
}

word_enum! {
    /// The root filesystem of disk images.
    Filesystem {
        Ext4 = "ext4",
    }
}

word_enum! {
    /// What initramfs the kernel's package builds (`[disk].initramfs`).
    Initramfs {
        /// Only the drivers that mount the root on the disks kiln ships
        /// and the UEFI machines they boot on: smaller, faster to boot.
        Minimal = "minimal",
        /// Debian's default (`MODULES=most`): nearly every storage driver.
        Full = "full",
    }
}

word_enum! {
    /// An output of `kiln build`.
    Format {
        /// OCI image layout directory.
        Oci = "oci",
        /// Root filesystem tarball.
        Tar = "tar",
        /// Raw bootable disk image.
        Raw = "raw",
        Qcow2 = "qcow2",
        Vmdk = "vmdk",
        Vhd = "vhd",
    }
}

impl Format {
    /// Whether the format is a bootable disk (and so needs a kernel and a size).
    pub fn is_disk(self) -> bool {
        !matches!(self, Format::Oci | Format::Tar)
    }
}

/// `[packages]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Packages {
    /// In the order written; names are unique.
    pub install: Vec<PackageRef>,
    /// Install Recommends of what is asked for; default false.
    pub recommends: bool,
    /// `.deb` files beside the definition, installed as if asked for.
    pub local: Vec<crate::LocalDeb>,
}

/// `"name"` or `"name=version"` from `packages.install`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PackageRef {
    pub name: String,
    /// An exact Debian version, when pinned.
    pub version: Option<String>,
}

impl fmt::Display for PackageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.version {
            Some(version) => write!(f, "{}={version}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// `[[files]]`: a file copied into the image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileSpec {
    /// A regular file (checked to exist).
    pub src: DefPath,
    /// Absolute, normalised path inside the image.
    pub dst: String,
    /// Permission bits, e.g. `0o644` (the default); may include setuid/setgid/sticky.
    pub mode: u32,
    /// Default `root:root`.
    pub owner: Owner,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Owner {
    /// A user name or a numeric id.
    pub user: String,
    /// A group name or a numeric id.
    pub group: String,
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.user, self.group)
    }
}

/// `[[users]]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    pub name: String,
    /// A system account (uid below 1000, no login); default false.
    pub system: bool,
    /// Allocated when building if absent.
    pub uid: Option<u32>,
    /// Supplementary groups, in the order written.
    pub groups: Vec<String>,
    /// Default `/usr/sbin/nologin` for system users, `/bin/bash` otherwise.
    pub shell: String,
    /// Default `/nonexistent` (not created) for system users, `/home/NAME` otherwise.
    pub home: String,
}

pub const SYSTEM_SHELL: &str = "/usr/sbin/nologin";
pub const LOGIN_SHELL: &str = "/bin/bash";
pub const NO_HOME: &str = "/nonexistent";

/// `[[run]]`: a provisioning step run inside the image at build time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Run {
    #[serde(flatten)]
    pub step: RunStep,
    /// `network = true`: the step sees the host's network. Without it the
    /// step has only a loopback interface, so what it does depends on the
    /// definition alone; with it the step is not hermetic, and says so in
    /// the lock inputs and the provenance.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub network: bool,
}

/// What a `[[run]]` step runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStep {
    /// A script from the definition's directory (checked to exist).
    Script(DefPath),
    /// An inline shell command.
    Command(String),
}

/// `[services]`: systemd units to enable or disable, each with its suffix.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Services {
    pub enable: Vec<String>,
    pub disable: Vec<String>,
}

/// `[runtime]`: configuration delivered at boot, never baked.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Runtime {
    /// Absolute path inside the image where the delivered variables are written.
    pub env_file: Option<String>,
    /// Variables the image refuses to start without; requires `env_file`.
    pub required: Vec<String>,
}

/// `[disk]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Disk {
    /// Bytes; a whole number of MiB, at least [`MIN_DISK_SIZE`]; default 2 GiB.
    pub size: u64,
    /// The kernel package; required when a disk format is built on a Debian base.
    pub kernel: Option<String>,
    /// The package that puts systemd-boot where the disk stage takes it;
    /// with a kernel, the lock pins it as the kernel is pinned.
    pub bootloader: String,
    /// The package that makes `/sbin/init`; implied with a kernel too.
    pub init: String,
    pub filesystem: Filesystem,
    /// Default [`Initramfs::Minimal`]; it acts where the kernel is
    /// installed, so only beside `kernel`.
    pub initramfs: Initramfs,
}

impl Disk {
    /// What a bootable disk needs beyond the definition's own packages,
    /// when this image has a kernel: the kernel, its loader and an init.
    pub fn implied_packages(&self) -> Vec<&str> {
        match &self.kernel {
            Some(k) => vec![k.as_str(), self.bootloader.as_str(), self.init.as_str()],
            None => Vec::new(),
        }
    }
}

pub const DEFAULT_BOOTLOADER: &str = "systemd-boot";
pub const DEFAULT_INIT: &str = "systemd-sysv";

pub const MIB: u64 = 1024 * 1024;
pub const DEFAULT_DISK_SIZE: u64 = 2 * 1024 * MIB;
/// Below this, a minimal Debian with a kernel and an ESP does not fit.
pub const MIN_DISK_SIZE: u64 = 256 * MIB;

/// `[outputs]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outputs {
    /// Unique, in the order written; default `["oci", "tar"]`.
    pub formats: Vec<Format>,
}

/// `[[check]]`: run inside the booted machine by `kiln test`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// As written, or derived from what is checked (e.g. `unit nginx.service is active`).
    pub name: String,
    pub kind: CheckKind,
    /// Default [`DEFAULT_CHECK_TIMEOUT_SECS`].
    pub timeout_secs: u64,
    /// `ready_within = "10s"`: the boot (from starting the machine to
    /// multi-user) must not take longer, or this check fails.
    pub ready_within_ms: Option<u64>,
}

impl Check {
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_secs)
    }

    pub fn ready_within(&self) -> Option<Duration> {
        self.ready_within_ms.map(Duration::from_millis)
    }
}

/// A boot budget beyond this is a typo, not a budget.
pub const MAX_READY_WITHIN_SECS: u64 = 3600;

pub const DEFAULT_CHECK_TIMEOUT_SECS: u64 = 30;
pub const MAX_CHECK_TIMEOUT_SECS: u64 = 3600;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckKind {
    /// A shell command that must exit 0.
    Run { command: String },
    /// A systemd unit that must be active.
    Unit { unit: String },
    /// A TCP port on the guest that must accept connections.
    Port { port: u16 },
    /// A path that must exist, and contain `contains` when given.
    Path {
        path: String,
        contains: Option<String>,
    },
}
