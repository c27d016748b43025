//! What makes the disk boot: the kernel, initrd and systemd-boot found in
//! the root tree, and the small text files kiln writes around them (the
//! loader's configuration and entry, fstab, the repart rule that grows the
//! root partition). The root tree itself is never touched.

use std::cmp::Ordering;
use std::path::{Path, PathBuf};

use kiln_deb::Architecture;

use crate::error::DiskError;
use crate::layout::DiskLayout;

/// systemd-boot, where its packages install it, in the order it is taken:
/// signed for Secure Boot (`systemd-boot-efi-amd64-signed`, which trixie's
/// `systemd-boot` pulls in first) or unsigned (`systemd-boot-efi`). Firmware
/// with Secure Boot off runs either; the signed one also boots where it is on.
pub fn systemd_boot(arch: Architecture) -> [String; 2] {
    let efi = format!(
        "usr/lib/systemd/boot/efi/systemd-boot{}.efi",
        arch.efi_suffix()
    );
    [format!("{efi}.signed"), efi]
}

/// Where UEFI firmware looks on removable media, and so on any disk that
/// has no boot entry in the firmware's variables yet: `EFI/BOOT/BOOTX64.EFI`.
pub fn esp_loader(arch: Architecture) -> String {
    format!(
        "EFI/BOOT/BOOT{}.EFI",
        arch.efi_suffix().to_ascii_uppercase()
    )
}
/// The root file system mounts the ESP here.
pub const ESP_MOUNT: &str = "boot/efi";

/// The kernel command line beyond `root=`. The serial console comes last so
/// it is /dev/console: systemd's status lines and the login prompt go
/// there, where a VM test (and a cloud's serial log) reads them.
pub const CMDLINE: &str = "ro rootwait console=tty0 console=ttyS0,115200";

/// The boot files of a root tree.
#[derive(Debug, Clone)]
pub struct BootFiles {
    /// e.g. `6.1.0-56-cloud-amd64`.
    pub kernel_version: String,
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    pub loader: PathBuf,
}

impl BootFiles {
    /// The newest kernel in `root/boot` that has an initrd, and
    /// systemd-boot. Symbolic links are refused: they would resolve on the
    /// host, not in the image.
    pub fn find(root: &Path, arch: Architecture) -> Result<BootFiles, DiskError> {
        let boot = root.join("boot");
        let mut versions = Vec::new();
        // Not `is_dir()`: it follows a symlink, and an image's `/boot ->
        // /host/path` would list (and copy) the host's kernels.
        if fs_err::symlink_metadata(&boot).is_ok_and(|m| m.is_dir()) {
            for e in fs_err::read_dir(&boot)? {
                let e = e?;
                if let Some(v) = e
                    .file_name()
                    .to_str()
                    .and_then(|n| n.strip_prefix("vmlinuz-"))
                {
                    versions.push(v.to_string());
                }
            }
        }
        versions.sort_by(|a, b| version_cmp(a, b));
        let kernel_version = versions
            .pop()
            .ok_or_else(|| DiskError::NoKernel { root: root.into() })?;
        let kernel = regular_file(boot.join(format!("vmlinuz-{kernel_version}")))?;
        let initrd = boot.join(format!("initrd.img-{kernel_version}"));
        if fs_err::symlink_metadata(&initrd).is_err() {
            return Err(DiskError::NoInitrd { path: kernel });
        }
        let initrd = regular_file(initrd)?;
        let [signed, unsigned] = systemd_boot(arch);
        let loader = [&signed, &unsigned]
            .iter()
            .map(|p| root.join(p))
            .find(|p| fs_err::symlink_metadata(p).is_ok())
            .ok_or_else(|| DiskError::NoBootloader {
                path: root.join(&unsigned),
            })?;
        let loader = regular_file(loader)?;
        for file in [&kernel, &initrd, &loader] {
            inside(root, file)?;
        }
        Ok(BootFiles {
            kernel_version,
            kernel,
            initrd,
            loader,
        })
    }

    /// Names on the ESP, in its root as the Boot Loader Specification's
    /// `linux`/`initrd` keys reference them.
    pub fn esp_kernel(&self) -> String {
        format!("vmlinuz-{}", self.kernel_version)
    }

    pub fn esp_initrd(&self) -> String {
        format!("initrd.img-{}", self.kernel_version)
    }
}

fn regular_file(path: PathBuf) -> Result<PathBuf, DiskError> {
    if fs_err::symlink_metadata(&path)?.is_file() {
        Ok(path)
    } else {
        Err(DiskError::NotAFile { path })
    }
}

/// Refuses `path` (under `root`) when a directory on the way to it is a
/// symlink: the kernel would resolve it in the image, the host resolves it
/// on the host.
fn inside(root: &Path, path: &Path) -> Result<(), DiskError> {
    let rel = path.strip_prefix(root).map_err(|_| DiskError::NotAFile {
        path: path.to_path_buf(),
    })?;
    let mut at = root.to_path_buf();
    let parents: Vec<_> = rel.components().collect();
    for c in parents.iter().take(parents.len().saturating_sub(1)) {
        at.push(c);
        if !fs_err::symlink_metadata(&at)?.is_dir() {
            return Err(DiskError::NotAFile { path: at });
        }
    }
    Ok(())
}

/// Orders version strings with runs of digits compared as numbers, so
/// `6.10.0` sorts after `6.9.0`.
fn version_cmp(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        match (a.first(), b.first()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let na = a.iter().take_while(|c| c.is_ascii_digit()).count();
                let nb = b.iter().take_while(|c| c.is_ascii_digit()).count();
                let (da, db) = (trim_zeros(&a[..na]), trim_zeros(&b[..nb]));
                let o = da.len().cmp(&db.len()).then_with(|| da.cmp(db));
                if o != Ordering::Equal {
                    return o;
                }
                a = &a[na..];
                b = &b[nb..];
            }
            (Some(x), Some(y)) => {
                if x != y {
                    return x.cmp(y);
                }
                a = &a[1..];
                b = &b[1..];
            }
        }
    }
}

fn trim_zeros(d: &[u8]) -> &[u8] {
    let n = d.iter().take_while(|c| **c == b'0').count();
    &d[n..]
}

/// `loader/loader.conf`: boot the one entry at once.
pub fn loader_conf() -> String {
    "timeout 0\ndefault kiln.conf\neditor no\n".to_string()
}

/// `loader/entries/kiln.conf`, a Boot Loader Specification type #1 entry.
pub fn loader_entry(title: &str, boot: &BootFiles, layout: &DiskLayout) -> String {
    format!(
        "title {title}\nversion {version}\nlinux /{kernel}\ninitrd /{initrd}\noptions root=UUID={uuid} {CMDLINE}\n",
        version = boot.kernel_version,
        kernel = boot.esp_kernel(),
        initrd = boot.esp_initrd(),
        uuid = layout.root_fs_uuid,
    )
}

/// `/etc/fstab`. `x-systemd.growfs` has systemd-growfs grow the root file
/// system to its partition at boot, after systemd-repart has grown the
/// partition to the disk (see [`repart_root`]). The ESP mounts at
/// /boot/efi so kernel updates can reach it; `nofail` because a system
/// that cannot mount it still runs.
pub fn fstab(layout: &DiskLayout) -> String {
    format!(
        "# Written by kiln: the root and EFI system partitions of this disk, by UUID.\n\
         UUID={root} / ext4 defaults,x-systemd.growfs 0 1\n\
         UUID={esp} /{ESP_MOUNT} vfat umask=0077,nofail 0 0\n",
        root = layout.root_fs_uuid,
        esp = layout.esp_serial,
    )
}

/// Where [`repart_root`] goes in the root tree. Under /usr/lib, the
/// vendor's place, so an administrator can override it in /etc/repart.d.
pub const REPART_DIR: &str = "usr/lib/repart.d";
pub const REPART_FILE: &str = "usr/lib/repart.d/50-kiln-root.conf";

/// A systemd-repart rule matching the existing root partition, without a
/// maximum size: on a disk larger than the image (a cloud volume, a
/// resized qcow2), systemd-repart.service grows the partition into the
/// free space at first boot.
pub fn repart_root() -> String {
    "# Written by kiln: grow the root partition to fill the disk.\n\
     [Partition]\n\
     Type=root\n"
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn efi_names_follow_the_architecture() {
        assert_eq!(esp_loader(Architecture::Amd64), "EFI/BOOT/BOOTX64.EFI");
        assert_eq!(esp_loader(Architecture::Arm64), "EFI/BOOT/BOOTAA64.EFI");
        assert_eq!(
            systemd_boot(Architecture::Arm64)[1],
            "usr/lib/systemd/boot/efi/systemd-bootaa64.efi"
        );
    }

    #[test]
    fn versions_compare_numerically() {
        assert_eq!(
            version_cmp("6.10.0-1-amd64", "6.9.0-1-amd64"),
            Ordering::Greater
        );
        assert_eq!(
            version_cmp("6.1.0-56-cloud-amd64", "6.1.0-9-cloud-amd64"),
            Ordering::Greater
        );
        assert_eq!(version_cmp("6.1.0", "6.1.0"), Ordering::Equal);
        assert_eq!(version_cmp("6.1", "6.1.0"), Ordering::Less);
    }

    /// A tree with a kernel, its initrd and the loaders named.
    fn boot_tree(loaders: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let boot = dir.path().join("boot");
        std::fs::create_dir_all(&boot).unwrap();
        std::fs::write(boot.join("vmlinuz-6.12.0-1-amd64"), b"k").unwrap();
        std::fs::write(boot.join("initrd.img-6.12.0-1-amd64"), b"i").unwrap();
        for l in loaders {
            let p = dir.path().join(l);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, b"MZ").unwrap();
        }
        dir
    }

    #[test]
    fn the_loader_is_found_signed_or_not() {
        let [signed, unsigned] = systemd_boot(Architecture::Amd64);
        let [signed, unsigned] = [signed.as_str(), unsigned.as_str()];
        assert_eq!(unsigned, "usr/lib/systemd/boot/efi/systemd-bootx64.efi");
        assert!(signed.ends_with(".efi.signed"));
        // trixie: systemd-boot-efi-amd64-signed alone.
        let t = boot_tree(&[signed]);
        let b = BootFiles::find(t.path(), Architecture::Amd64).unwrap();
        assert_eq!(b.loader, t.path().join(signed));
        // bookworm: systemd-boot-efi alone.
        let t = boot_tree(&[unsigned]);
        assert_eq!(
            BootFiles::find(t.path(), Architecture::Amd64)
                .unwrap()
                .loader,
            t.path().join(unsigned)
        );
        // Both: the signed one, which also boots with Secure Boot on.
        let t = boot_tree(&[unsigned, signed]);
        assert_eq!(
            BootFiles::find(t.path(), Architecture::Amd64)
                .unwrap()
                .loader,
            t.path().join(signed)
        );
        // Neither: the error names the package to install.
        let t = boot_tree(&[]);
        let e = BootFiles::find(t.path(), Architecture::Amd64).unwrap_err();
        assert!(matches!(e, DiskError::NoBootloader { .. }), "{e}");
    }

    #[test]
    fn entry_and_fstab_name_the_root_by_uuid() {
        let l = DiskLayout::plan(2 << 30, "sha256:x", Architecture::Amd64).unwrap();
        let b = BootFiles {
            kernel_version: "6.1.0-56-cloud-amd64".into(),
            kernel: "/r/boot/vmlinuz-6.1.0-56-cloud-amd64".into(),
            initrd: "/r/boot/initrd.img-6.1.0-56-cloud-amd64".into(),
            loader: "/r/x".into(),
        };
        let e = loader_entry("base 1.0.0", &b, &l);
        assert!(e.contains("linux /vmlinuz-6.1.0-56-cloud-amd64\n"), "{e}");
        assert!(
            e.contains("initrd /initrd.img-6.1.0-56-cloud-amd64\n"),
            "{e}"
        );
        assert!(
            e.contains(&format!("options root=UUID={} ro", l.root_fs_uuid)),
            "{e}"
        );
        assert!(
            e.trim_end().ends_with("console=ttyS0,115200"),
            "serial console last: {e}"
        );
        let f = fstab(&l);
        assert!(f.contains(&format!(
            "UUID={} / ext4 defaults,x-systemd.growfs 0 1",
            l.root_fs_uuid
        )));
        assert!(f.contains(&format!("UUID={} /boot/efi vfat", l.esp_serial)));
    }

    /// A root whose `/boot` (or the loader's directory) is an absolute
    /// symlink to a host directory holding a kernel: find must not take the
    /// host's files.
    #[test]
    fn an_absolute_boot_symlink_is_not_followed_onto_the_host() {
        let host = tempfile::tempdir().unwrap();
        let hboot = host.path().join("boot");
        fs_err::create_dir_all(&hboot).unwrap();
        fs_err::write(hboot.join("vmlinuz-9.9.9"), "host kernel").unwrap();
        fs_err::write(hboot.join("initrd.img-9.9.9"), "host initrd").unwrap();
        let loader_dir = host.path().join("efi");
        fs_err::create_dir_all(&loader_dir).unwrap();
        fs_err::write(loader_dir.join("systemd-bootx64.efi"), "host loader").unwrap();

        let image = tempfile::tempdir().unwrap();
        let root = image.path();
        std::os::unix::fs::symlink(&hboot, root.join("boot")).unwrap();
        let loader = root.join(&systemd_boot(Architecture::Amd64)[1]);
        fs_err::create_dir_all(loader.parent().unwrap().parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(&loader_dir, loader.parent().unwrap()).unwrap();
        let err = BootFiles::find(root, Architecture::Amd64).unwrap_err();
        assert!(matches!(err, DiskError::NoKernel { .. }), "{err}");

        // A real /boot, but the loader reached through the symlinked directory.
        fs_err::remove_file(root.join("boot")).unwrap();
        fs_err::create_dir_all(root.join("boot")).unwrap();
        fs_err::write(root.join("boot/vmlinuz-1.0"), "k").unwrap();
        fs_err::write(root.join("boot/initrd.img-1.0"), "i").unwrap();
        let err = BootFiles::find(root, Architecture::Amd64).unwrap_err();
        assert!(matches!(err, DiskError::NotAFile { .. }), "{err}");

        // The same files in real directories are found.
        fs_err::remove_file(loader.parent().unwrap()).unwrap();
        fs_err::create_dir_all(loader.parent().unwrap()).unwrap();
        fs_err::write(&loader, "l").unwrap();
        let found = BootFiles::find(root, Architecture::Amd64).unwrap();
        assert_eq!(found.kernel_version, "1.0");
        assert_eq!(found.loader, loader);
    }
}
