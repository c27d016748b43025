//! What makes the disk boot: the kernel, initrd and UEFI loader the caller
//! names in the root tree, and the small text files kiln writes around them
//! (the loader's configuration and entry, fstab, the repart rule that grows
//! the root partition). The root tree itself is never touched.

use std::path::{Path, PathBuf};

use kiln_deb::Architecture;

use crate::error::DiskError;
use crate::layout::DiskLayout;

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

/// The boot files of a root tree, as paths inside it: the caller knows
/// where its distribution puts them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootFiles {
    /// e.g. `6.1.0-56-cloud-amd64`: the boot entry's `version`.
    pub kernel_version: String,
    /// e.g. `boot/vmlinuz-6.1.0-56-cloud-amd64`; copied to the ESP's root
    /// under its own file name, as are the initrd's.
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    /// The UEFI loader, e.g. `usr/lib/systemd/boot/efi/systemd-bootx64.efi`.
    pub loader: PathBuf,
}

impl BootFiles {
    /// The three files under `root`, each a regular file reached through
    /// real directories only: a symbolic link would resolve on the host,
    /// not in the image.
    pub(crate) fn in_tree(&self, root: &Path) -> Result<[PathBuf; 3], DiskError> {
        let mut out = [PathBuf::new(), PathBuf::new(), PathBuf::new()];
        for (slot, rel) in out
            .iter_mut()
            .zip([&self.kernel, &self.initrd, &self.loader])
        {
            let plain = rel
                .components()
                .all(|c| matches!(c, std::path::Component::Normal(_)));
            if !plain || rel.as_os_str().is_empty() {
                return Err(DiskError::NotAFile {
                    path: root.join(rel),
                });
            }
            let path = regular_file(root.join(rel))?;
            inside(root, &path)?;
            *slot = path;
        }
        Ok(out)
    }

    /// Names on the ESP, in its root as the Boot Loader Specification's
    /// `linux`/`initrd` keys reference them.
    pub fn esp_kernel(&self) -> String {
        file_name(&self.kernel)
    }

    pub fn esp_initrd(&self) -> String {
        file_name(&self.initrd)
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
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

    fn files() -> BootFiles {
        BootFiles {
            kernel_version: "1.0".into(),
            kernel: "boot/vmlinuz-1.0".into(),
            initrd: "boot/initrd.img-1.0".into(),
            loader: "usr/lib/efi/loader.efi".into(),
        }
    }

    /// A loader reached through a directory that is an absolute symlink to
    /// the host: refused, as are paths that leave the tree.
    #[test]
    fn files_reached_through_a_symlink_or_outside_the_tree_are_refused() {
        let host = tempfile::tempdir().unwrap();
        let loader_dir = host.path().join("efi");
        fs_err::create_dir_all(&loader_dir).unwrap();
        fs_err::write(loader_dir.join("loader.efi"), "host loader").unwrap();

        let image = tempfile::tempdir().unwrap();
        let root = image.path();
        fs_err::create_dir_all(root.join("boot")).unwrap();
        fs_err::write(root.join("boot/vmlinuz-1.0"), "k").unwrap();
        fs_err::write(root.join("boot/initrd.img-1.0"), "i").unwrap();
        fs_err::create_dir_all(root.join("usr/lib")).unwrap();
        std::os::unix::fs::symlink(&loader_dir, root.join("usr/lib/efi")).unwrap();
        let err = files().in_tree(root).unwrap_err();
        assert!(matches!(err, DiskError::NotAFile { .. }), "{err}");

        for bad in ["../boot/vmlinuz-1.0", "/boot/vmlinuz-1.0", ""] {
            let b = BootFiles {
                kernel: bad.into(),
                ..files()
            };
            let err = b.in_tree(root).unwrap_err();
            assert!(matches!(err, DiskError::NotAFile { .. }), "{bad}: {err}");
        }

        // The same files in real directories are taken.
        fs_err::remove_file(root.join("usr/lib/efi")).unwrap();
        fs_err::create_dir_all(root.join("usr/lib/efi")).unwrap();
        fs_err::write(root.join("usr/lib/efi/loader.efi"), "l").unwrap();
        let [kernel, _, loader] = files().in_tree(root).unwrap();
        assert_eq!(kernel, root.join("boot/vmlinuz-1.0"));
        assert_eq!(loader, root.join("usr/lib/efi/loader.efi"));
        assert_eq!(files().esp_kernel(), "vmlinuz-1.0");
        assert_eq!(files().esp_initrd(), "initrd.img-1.0");
    }
}
