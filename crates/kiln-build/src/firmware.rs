//! The UEFI firmware `kiln test`, `kiln run` and `kiln rebuild` boot a disk
//! with: the `ovmf` package of a Debian release (the newest by default), so
//! a test boots with the same firmware on every machine whatever the host
//! runs, or this machine's OVMF (`--firmware host`). That package comes
//! from the archive the
//! way an image's packages do: its suites verified against Debian's keyring,
//! the newest version across the release, its updates and its security
//! suite, the `.deb` checked against the index into the store. The firmware
//! files are read from the verified `.deb` at each use; the store keeps
//! only the `.deb`.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use kiln_lock::LockedPackage;
use kiln_spec::{Architecture, Component, DEFAULT_KEYRING, DebianBase, DefPath, Suite, Variant};
use kiln_store::{Digest, Store};
use kiln_vm::Firmware;

use crate::error::Error;
use crate::fsutil;
use crate::progress::Progress;

/// Where `kiln test` and `kiln run` take their firmware from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirmwareSource {
    /// This machine's `ovmf` package.
    Host,
    /// The `ovmf` package of a Debian release, from the archive.
    Debian(Suite),
}

impl Default for FirmwareSource {
    /// The newest release kiln knows: the same firmware on every machine,
    /// and (Debian 13's against Debian 12's) about 2 s sooner to the kernel
    /// under TCG, the TPM probe that waits out its timeouts without a TPM
    /// among what it no longer spends.
    fn default() -> Self {
        FirmwareSource::Debian(Suite::ALL[Suite::ALL.len() - 1])
    }
}

impl FirmwareSource {
    /// What `--firmware` takes, for its help: the releases kiln knows and
    /// the default among them, so the text follows [`Suite::ALL`].
    pub fn help() -> String {
        let releases: Vec<&str> = Suite::ALL.iter().map(|s| s.as_str()).collect();
        let default = match FirmwareSource::default() {
            FirmwareSource::Debian(suite) => suite.as_str(),
            FirmwareSource::Host => "host",
        };
        format!(
            "UEFI firmware: a Debian release ({}), whose ovmf package is fetched from the \
             archive and verified like an image's packages, so a machine boots with the same \
             firmware on every host; or `host`, this machine's ovmf package [default: {default}]",
            releases.join(", ")
        )
    }

    /// `host`, or a release's codename; `None` is the default.
    pub fn parse(word: Option<&str>) -> Result<FirmwareSource, Error> {
        let Some(word) = word else {
            return Ok(FirmwareSource::default());
        };
        if word == "host" {
            return Ok(FirmwareSource::Host);
        }
        Suite::ALL
            .iter()
            .find(|s| s.as_str() == word)
            .map(|s| FirmwareSource::Debian(*s))
            .ok_or_else(|| Error::UnknownFirmware {
                given: word.to_string(),
                choices: std::iter::once("host")
                    .chain(Suite::ALL.iter().map(|s| s.as_str()))
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }
}

/// The firmware to boot with, and how to reach the archive for it. Read
/// from the archive at the first boot and kept, with the directory holding
/// its files, for the boots after it, also those of clones: a rollout boots
/// every image of every wave with one firmware and fetches it once.
#[derive(Debug, Clone, Default)]
pub struct FirmwareChoice {
    source: FirmwareSource,
    /// The Debian mirror; else `KILN_MIRROR` or the host's apt sources.
    mirror: Option<String>,
    /// From the store alone.
    offline: bool,
    fetched: Arc<Mutex<Option<Arc<Fetched>>>>,
}

/// A firmware read from the archive, and the directory its files live in
/// for as long as a machine may boot with them.
#[derive(Debug)]
pub(crate) struct Fetched {
    pub firmware: Firmware,
    _dir: kiln_deb::scratch::Scratch,
}

impl FirmwareChoice {
    /// From `--firmware` (`None`: the default), `--mirror` and `--offline`.
    pub fn parse(
        word: Option<&str>,
        mirror: Option<String>,
        offline: bool,
    ) -> Result<FirmwareChoice, Error> {
        Ok(FirmwareChoice::new(
            FirmwareSource::parse(word)?,
            mirror,
            offline,
        ))
    }

    pub fn new(source: FirmwareSource, mirror: Option<String>, offline: bool) -> FirmwareChoice {
        FirmwareChoice {
            source,
            mirror,
            offline,
            fetched: Arc::default(),
        }
    }

    /// The firmware to boot with; `None` for the host's, which kiln-vm
    /// finds itself. Keep the result until the machine has stopped.
    pub(crate) fn resolve(
        &self,
        store: &Store,
        progress: &dyn Progress,
    ) -> Result<Option<Arc<Fetched>>, Error> {
        let FirmwareSource::Debian(suite) = self.source else {
            return Ok(None);
        };
        let mut fetched = self.fetched.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(f) = &*fetched {
            return Ok(Some(f.clone()));
        }
        let dir = kiln_deb::scratch::Scratch::new("kiln-firmware").map_err(fsutil::scratch)?;
        let firmware = from_release(
            suite,
            store,
            dir.path(),
            self.mirror.as_deref(),
            self.offline,
            progress,
        )
        .map_err(|e| Error::Firmware {
            source_name: format!("ovmf from Debian {suite}"),
            source: Box::new(e),
        })?;
        let f = Arc::new(Fetched {
            firmware,
            _dir: dir,
        });
        *fetched = Some(f.clone());
        Ok(Some(f))
    }
}

/// What the `ovmf` package holds: the 4 MiB build without Secure Boot, the
/// one Debian's own tools (and kiln, from the host) boot with.
const CODE: &str = "usr/share/OVMF/OVMF_CODE_4M.fd";
const VARS: &str = "usr/share/OVMF/OVMF_VARS_4M.fd";
/// A firmware image is a few MiB; anything past this is not one.
const LIMIT: u64 = 64 << 20;

/// The `ovmf` of Debian `suite`, its files written under `dir` (which must
/// outlive the machine).
fn from_release(
    suite: Suite,
    store: &Store,
    dir: &Path,
    mirror: Option<&str>,
    offline: bool,
    progress: &dyn Progress,
) -> Result<Firmware, Error> {
    let release = DebianBase {
        suite,
        variant: Variant::Essential,
        components: vec![Component::Main],
        keyring: DefPath {
            written: DEFAULT_KEYRING.into(),
            path: DEFAULT_KEYRING.into(),
        },
        architecture: Architecture::Amd64,
    };
    let indices = crate::indices::load(store, &release, &[], &[], mirror, offline, progress)?;
    let universe = &indices.universe;
    let newest = universe
        .versions("ovmf")
        .iter()
        .map(|&i| universe.entry(i))
        .max_by(|a, b| a.package.version.cmp(&b.package.version))
        .ok_or(Error::NoFirmwarePackage {
            suite: suite.as_str().into(),
        })?;
    let p = &newest.package;
    let locked = LockedPackage {
        name: p.name.clone(),
        version: p.version.to_string(),
        architecture: p.architecture.clone(),
        suite: newest.suite.clone(),
        path: p.filename.clone(),
        size: p.size,
        sha256: p.sha256.clone(),
        reason: "firmware".into(),
        needed_by: Vec::new(),
        origin: None,
    };
    let sha = Digest::from_hex(&locked.sha256).map_err(|_| {
        Error::Internal(format!(
            "{}'s ovmf stanza has a malformed SHA256 `{}`",
            locked.suite, locked.sha256
        ))
    })?;
    // Read whole once more before use: a copy damaged since it was stored
    // is evicted here, and fetched again (and verified) below.
    store.intact_blob(&sha)?;
    let mirrors = crate::fetch::mirrors(mirror, suite.as_str(), offline)?;
    let fetched = crate::fetch::fetch(
        store,
        std::slice::from_ref(&locked),
        mirrors.as_ref(),
        &[],
        dir,
        progress,
    )?;
    let deb = &fetched
        .first()
        .ok_or_else(|| Error::Internal("fetching the firmware package gave nothing".into()))?
        .path;
    let [code, vars]: [Vec<u8>; 2] = kiln_rootfs::data_files(deb, &[CODE, VARS], LIMIT)?
        .try_into()
        .map_err(|_| Error::Internal("data_files gave other than two files".into()))?;
    let write = |file: &str, bytes: &[u8]| -> Result<std::path::PathBuf, Error> {
        let name = Path::new(file)
            .file_name()
            .ok_or_else(|| Error::Internal(format!("{file} has no file name")))?;
        let path = dir.join(name);
        kiln_store::write_atomic(&path, bytes).map_err(fsutil::io(&path))?;
        Ok(path)
    };
    Ok(Firmware {
        code: write(CODE, &code)?,
        vars: write(VARS, &vars)?,
        source: format!("ovmf {} from {}", locked.version, locked.suite),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_firmware_source_is_host_or_a_release() {
        assert_eq!(
            FirmwareSource::parse(Some("host")).unwrap(),
            FirmwareSource::Host
        );
        assert_eq!(
            FirmwareSource::parse(Some("trixie")).unwrap(),
            FirmwareSource::Debian(Suite::Trixie)
        );
        assert_eq!(
            FirmwareSource::parse(None).unwrap(),
            FirmwareSource::Debian(*Suite::ALL.last().unwrap()),
            "the newest release"
        );
        let e = FirmwareSource::parse(Some("sid")).unwrap_err();
        assert_eq!(e.exit_code(), 1);
        assert_eq!(
            e.to_string(),
            "sid is not a firmware source: expected one of host, bookworm, trixie"
        );
        assert!(e.hint().unwrap().contains("--firmware"), "{:?}", e.hint());
    }

    #[test]
    fn the_firmware_help_names_every_release_and_the_default_parse_gives() {
        let help = FirmwareSource::help();
        for suite in Suite::ALL {
            assert!(help.contains(suite.as_str()), "{help}");
        }
        let FirmwareSource::Debian(default) = FirmwareSource::parse(None).unwrap() else {
            panic!("the default is a release");
        };
        assert!(
            help.ends_with(&format!("[default: {}]", default.as_str())),
            "{help}"
        );
    }

    /// What dpkg-deb (not kiln) reads from the `.deb`: the file's bytes, or
    /// a control field.
    fn dpkg_deb(deb: &Path, file: &str) -> Vec<u8> {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg("dpkg-deb --fsys-tarfile \"$1\" | tar -xO \"./$2\"")
            .arg("sh")
            .arg(deb)
            .arg(file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    fn field(deb: &Path, name: &str) -> String {
        let out = std::process::Command::new("dpkg-deb")
            .arg("-f")
            .arg(deb)
            .arg(name)
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    /// The stored `.deb` the firmware was read from (the store's only blob
    /// that is a package named ovmf).
    fn stored_deb(store: &Store) -> std::path::PathBuf {
        fs_err::read_dir(store.blob_dir())
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| {
                std::process::Command::new("dpkg-deb")
                    .arg("-f")
                    .arg(p)
                    .arg("Package")
                    .output()
                    .is_ok_and(|o| o.stdout == b"ovmf\n")
            })
            .expect("the ovmf package in the store")
    }

    #[test]
    fn net_a_release_firmware_is_what_dpkg_deb_reads_from_its_verified_package() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path().join("store")).unwrap();
        let source = Suite::Trixie;
        let quiet = crate::progress::Quiet;
        // Each choice reads the archive (or the store) afresh, into its own
        // directory.
        let read = |offline: bool| {
            FirmwareChoice::new(FirmwareSource::Debian(source), None, offline)
                .resolve(&store, &quiet)
                .unwrap()
                .expect("a release's firmware")
        };
        let first = read(false);
        let fw = &first.firmware;
        let deb = stored_deb(&store);
        let code = dpkg_deb(&deb, CODE);
        assert!(code.len() > 1 << 20, "{} bytes", code.len());
        // An EFI firmware volume begins the image: `_FVH` at offset 40.
        assert_eq!(&code[40..44], b"_FVH");
        assert_eq!(fs_err::read(&fw.code).unwrap(), code);
        assert_eq!(fs_err::read(&fw.vars).unwrap(), dpkg_deb(&deb, VARS));
        let version = field(&deb, "Version");
        let from = fw
            .source
            .strip_prefix(&format!("ovmf {version} from "))
            .unwrap_or_else(|| panic!("{} names dpkg's version {version}", fw.source));
        assert!(
            ["trixie", "trixie-updates", "trixie-security"].contains(&from),
            "{from}"
        );

        // A copy damaged in the store is fetched again, not booted.
        let bytes = fs_err::read(&deb).unwrap();
        let mut damaged = bytes.clone();
        let mid = damaged.len() / 2;
        damaged[mid] ^= 0xff;
        fs_err::write(&deb, &damaged).unwrap();
        let fw2 = &read(false).firmware;
        assert_eq!(fs_err::read(&deb).unwrap(), bytes, "fetched again whole");
        assert_eq!(fs_err::read(&fw2.code).unwrap(), code);

        // Offline, from the store alone.
        let fw3 = &read(true).firmware;
        assert_eq!(fw3.source, fw.source);
        assert_eq!(fs_err::read(&fw3.code).unwrap(), code);

        // A choice reads the archive once, for itself and its clones.
        let choice = FirmwareChoice::new(FirmwareSource::Debian(source), None, true);
        let once = choice.resolve(&store, &quiet).unwrap().unwrap();
        let twice = choice.clone().resolve(&store, &quiet).unwrap().unwrap();
        assert!(Arc::ptr_eq(&once, &twice));
        assert_eq!(once.firmware.source, fw.source);
        assert_eq!(fs_err::read(&once.firmware.code).unwrap(), code);

        // The host's is kiln-vm's to find.
        let host = FirmwareChoice::new(FirmwareSource::Host, None, true);
        assert!(host.resolve(&store, &quiet).unwrap().is_none());
    }
}
