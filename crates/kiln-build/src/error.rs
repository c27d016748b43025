use std::path::PathBuf;

/// Everything the pipeline can fail with, sorted into the user's problems
/// (exit 1) and kiln's or the environment's (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Spec(#[from] kiln_spec::SpecError),
    #[error(transparent)]
    Lock(#[from] kiln_lock::LockError),
    #[error(transparent)]
    Resolve(#[from] kiln_resolve::ResolveError),
    #[error(transparent)]
    Archive(#[from] kiln_archive::ArchiveError),
    #[error(transparent)]
    Store(#[from] kiln_store::StoreError),
    #[error("the parent image in {dir} has no kiln.lock")]
    ParentNotLocked { dir: PathBuf },
    #[error("the parent image in {dir} is stale: its kiln.lock no longer matches its kiln.toml")]
    ParentStale { dir: PathBuf },
    #[error("images built `from` each other form a cycle: {}", chain.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(" → "))]
    Cycle { chain: Vec<PathBuf> },
    #[error("--update {name}: {name} is not in {lock}")]
    UpdateUnknown { name: String, lock: PathBuf },
    #[error("{path} already exists")]
    Exists { path: PathBuf },
    /// Reading or writing: the source says which, the path says where.
    #[error("{path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("fetching {package}")]
    Fetch {
        package: String,
        #[source]
        source: kiln_store::FetchError,
    },
    #[error("--offline: the store lacks {} package(s): {}", missing.len(), missing.join(", "))]
    OfflineMissing { missing: Vec<String> },
    #[error("the lock pins {package} by a malformed sha256 `{sha256}`")]
    BadLockDigest { package: String, sha256: String },
    #[error(transparent)]
    Rootfs(#[from] kiln_rootfs::RootfsError),
    #[error(transparent)]
    Image(#[from] kiln_image::ImageError),
    #[error("{path} is stale: {}", changes.join("; "))]
    StaleLock { path: PathBuf, changes: Vec<String> },
    #[error("the lock gives suite {suite} an unreadable date `{date}`")]
    BadLockDate { suite: String, date: String },
    #[error("nothing built yet: {path} does not exist")]
    NotBuilt { path: PathBuf },
    #[error(transparent)]
    Disk(#[from] kiln_disk::DiskError),
    #[error(transparent)]
    Vm(#[from] kiln_vm::VmError),
    #[error(transparent)]
    Runtime(#[from] kiln_vm::RuntimeConfigError),
    #[error("{root}: no kernel: expected boot/vmlinuz-<version> with boot/initrd.img-<version>")]
    NoKernel {
        root: PathBuf,
        arch: kiln_spec::Architecture,
    },
    #[error("{path}: the kernel has no initrd beside it")]
    NoInitrd { path: PathBuf },
    #[error("{path}: missing: the disk boots with systemd-boot")]
    NoBootloader { path: PathBuf },
    #[error("{definition}: {arch} is not built yet")]
    ArchitectureNotBuilt {
        arch: kiln_spec::Architecture,
        /// The chain's distribution base, where the architecture is named.
        definition: PathBuf,
    },
    #[error("{image}: a `{format}` disk needs a kernel, and no image of its chain names one")]
    DiskWithoutKernel {
        image: String,
        format: String,
        /// The chain's distribution base, where a kernel belongs.
        base: PathBuf,
        /// Its architecture, which the suggested kernel package is for.
        arch: kiln_spec::Architecture,
    },
    #[error(
        "{image}: a `{format}` disk boots with {}, which {lockfile} does not pin",
        missing.join(", ")
    )]
    DiskNeeds {
        image: String,
        format: String,
        lockfile: PathBuf,
        missing: Vec<String>,
    },
    #[error("{image}: {section} needs {package}, which no image of its chain installs")]
    SectionNeeds {
        image: String,
        section: &'static str,
        package: &'static str,
        install: &'static str,
    },
    #[error("[[check]] unit = \"{unit}\": {image} has no such unit, so the check could only fail")]
    CheckUnitMissing {
        unit: String,
        image: String,
        closest: Option<String>,
    },
    #[error("{image} has no disk image to boot")]
    NoDiskImage { image: String },
    #[error("{given} is not a firmware source: expected one of {choices}")]
    UnknownFirmware { given: String, choices: String },
    #[error("Debian {suite} has no ovmf package in main")]
    NoFirmwarePackage { suite: String },
    #[error("getting the firmware ({source_name}): {source}")]
    Firmware {
        source_name: String,
        source: Box<Error>,
    },
    #[error(transparent)]
    Catalog(#[from] kiln_catalog::Error),
    #[error("recording what {path} contains")]
    Manifest {
        path: PathBuf,
        #[source]
        source: kiln_manifest::Error,
    },
    #[error("the catalog has no manifest for build {build}")]
    NoManifest { build: String },
    #[error(transparent)]
    Registry(#[from] kiln_registry::RegistryError),
    #[error("--to {to}: kiln pushes to a tag or a repository, not a digest")]
    PushToDigest { to: String },
    #[error("{image}'s last build made no OCI image to push")]
    NoOciImage { image: String },
    #[error("{path}: {why}")]
    BadLayout { path: PathBuf, why: String },
    #[error("{reference}: {why}")]
    BadArtifact { reference: String, why: String },
    #[error("{path} exists and is not an OCI layout; not replacing it")]
    WontReplace { path: PathBuf },
    #[error("{reference}: no such image in the registry")]
    NotInRegistry { reference: String },
    #[error("internal error: {0}")]
    Internal(String),
    #[error("repository {name}")]
    Repository {
        name: String,
        #[source]
        source: Box<kiln_archive::ArchiveError>,
    },
    #[error("repository {name}: loading its signed-by key {path}")]
    RepositoryKey {
        name: String,
        path: PathBuf,
        #[source]
        source: Box<kiln_deb::signature::SignatureError>,
    },
    #[error("[packages] local: {path}: {why}")]
    LocalDeb { path: PathBuf, why: String },
    #[error("parsing {index}")]
    Index {
        index: String,
        #[source]
        source: kiln_deb::packages::PackagesError,
    },
}

impl Error {
    /// The `hint:` line under the error, when there is something to do.
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::Spec(e) => e.hint(),
            Error::Lock(e) => e.hint(),
            Error::Resolve(e) => e.hint(),
            Error::Archive(e) => e.hint(),
            Error::ParentNotLocked { dir } | Error::ParentStale { dir } => {
                Some(format!("run `kiln lock {}` first", dir.display()))
            }
            Error::Cycle { .. } => Some("a `from` chain must end at a `distro` base".into()),
            Error::UpdateUnknown { .. } => Some(
                "name packages the lock already has, or run `kiln lock` to add new ones".into(),
            ),
            Error::Exists { .. } => Some("pass --force to overwrite it".into()),
            Error::StaleLock { .. } => Some("run `kiln lock` first; a build never resolves".into()),
            Error::NotBuilt { .. } => Some("run `kiln build` first".into()),
            Error::BadLockDate { .. } => Some("the lockfile was edited by hand: run `kiln lock` again".into()),
            Error::Catalog(e) => e.hint(),
            Error::Registry(e) => e.hint(),
            Error::PushToDigest { .. } => Some("drop the `@sha256:…` part".into()),
            Error::NoOciImage { .. } => {
                Some("add \"oci\" to [outputs].formats and build again".into())
            }
            Error::BadLayout { .. } => Some("run `kiln build` again to rewrite the outputs".into()),
            Error::BadArtifact { .. } => None,
            Error::WontReplace { .. } => Some("move it away, or pull into another --out".into()),
            Error::NotInRegistry { .. } => Some("check the tag with `skopeo list-tags`".into()),
            Error::NoManifest { .. } => Some("rebuild the image with this kiln to record its manifest".into()),
            Error::Manifest { .. } => None,
            Error::Rootfs(e) => e.hint(),
            Error::Image(_) | Error::Disk(_) | Error::Vm(_) | Error::Runtime(_) => None,
            Error::NoKernel { arch, .. } => Some(format!(
                "set [disk].kernel (e.g. linux-image-cloud-{arch}) so the image installs one"
            )),
            Error::NoInitrd { .. } => Some("install initramfs-tools in the image".into()),
            Error::NoBootloader { .. } => {
                Some("add \"systemd-boot\" to [packages].install".into())
            }
            Error::ArchitectureNotBuilt { .. } => Some(
                "kiln runs each package's maintainer scripts while it builds, so it builds amd64 \
                 images only for now; remove `architecture` from [base] to build one"
                    .into(),
            ),
            Error::DiskWithoutKernel { base, arch, .. } => Some(format!(
                "add `kernel = \"linux-image-cloud-{arch}\"` to [disk] in {}, then run `kiln lock`",
                base.display()
            )),
            Error::DiskNeeds { lockfile, .. } => Some(format!(
                "run `kiln lock {}`: a kernel brings its boot loader and init into the lock ([disk].bootloader, [disk].init)",
                lockfile.parent().unwrap_or(lockfile).display()
            )),
            Error::SectionNeeds { install, .. } => Some(format!(
                "add \"{install}\" to [packages].install, then run `kiln lock`"
            )),
            Error::CheckUnitMissing { closest, .. } => Some(match closest {
                Some(c) => format!("did you mean `{c}`?"),
                None => "install the package that ships the unit, or check another unit".into(),
            }),
            Error::UnknownFirmware { .. } => Some(
                "--firmware host boots with this machine's OVMF; --firmware RELEASE with that Debian release's".into(),
            ),
            Error::NoFirmwarePackage { .. } => Some(
                "check the mirror serves that release, or use --firmware host".into(),
            ),
            Error::Firmware { source, .. } => Some(match source.hint() {
                Some(h) => format!(
                    "{h}; or boot with this machine's OVMF (--firmware host), or the stored one (--offline)"
                ),
                None => "boot with this machine's OVMF (--firmware host), or the stored one (--offline)".into(),
            }),
            Error::NoDiskImage { .. } => Some(
                "add `raw` or `qcow2` to [outputs].formats (with [disk].kernel on the base) and run `kiln build`".into(),
            ),
            Error::OfflineMissing { .. } => Some("run once without --offline to fetch them into the store".into()),
            Error::BadLockDigest { .. } => Some("the lockfile was edited by hand: run `kiln lock` again".into()),
            Error::Fetch { .. } => Some("check the network and the mirror (KILN_MIRROR, --mirror); a rerun resumes".into()),
            Error::Repository { source, .. } => match **source {
                kiln_archive::ArchiveError::Signature { .. } => Some(
                    "the InRelease is not signed by the key `signed-by` names: the repository \
                     may be altered, or its vendor changed keys (fetch their current key)"
                        .into(),
                ),
                _ => source.hint(),
            },
            Error::RepositoryKey { .. } => Some(
                "`signed-by` names the repository's public key as `gpg --export` (binary) or \
                 `gpg --export --armor` writes it"
                    .into(),
            ),
            Error::LocalDeb { .. } => Some(
                "list a .deb built by `dpkg-deb --build` or `dpkg-buildpackage` for the image's \
                 architecture"
                    .into(),
            ),
            Error::Io { .. } | Error::Index { .. } | Error::Internal(_) | Error::Store(_) => None,
        }
    }

    /// Exit code: 1 when the user can fix it in their definition or
    /// command line, 2 when kiln or its environment failed.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Resolve(e) if !e.is_user_error() => 2,
            Error::Catalog(e) if e.is_user_error() => 1,
            Error::Rootfs(e) if e.is_user_error() => 1,
            Error::Registry(e) if e.is_user_error() => 1,
            Error::Firmware { source, .. } => source.exit_code(),
            Error::Spec(_)
            | Error::Resolve(_)
            | Error::ParentNotLocked { .. }
            | Error::ParentStale { .. }
            | Error::Cycle { .. }
            | Error::UpdateUnknown { .. }
            | Error::Exists { .. }
            | Error::OfflineMissing { .. }
            | Error::StaleLock { .. }
            | Error::Runtime(_)
            | Error::NoDiskImage { .. }
            | Error::UnknownFirmware { .. }
            | Error::ArchitectureNotBuilt { .. }
            | Error::DiskWithoutKernel { .. }
            | Error::DiskNeeds { .. }
            | Error::CheckUnitMissing { .. }
            | Error::SectionNeeds { .. }
            | Error::NotBuilt { .. }
            | Error::PushToDigest { .. }
            | Error::NoOciImage { .. }
            | Error::NotInRegistry { .. }
            | Error::WontReplace { .. }
            | Error::BadLockDate { .. }
            | Error::BadLockDigest { .. }
            | Error::RepositoryKey { .. }
            | Error::LocalDeb { .. } => 1,
            Error::Lock(kiln_lock::LockError::Missing(_) | kiln_lock::LockError::Parse { .. }) => 1,
            // Which mirror and which keyring are the user's to say.
            Error::Archive(
                kiln_archive::ArchiveError::Mirror(_) | kiln_archive::ArchiveError::Keyring(_),
            ) => 1,
            _ => 2,
        }
    }
}
