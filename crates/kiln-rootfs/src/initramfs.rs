//! The initramfs the kernel's package builds (`[disk].initramfs`).
//!
//! Debian's kernels build the drivers of virtio, SCSI, SATA, Hyper-V, VMware
//! and Xen disks as modules (the cloud kernel: `CONFIG_VIRTIO_BLK=m`,
//! `CONFIG_VIRTIO_PCI=m`), and the loader entry names the root by
//! `root=UUID=`, which only an initramfs resolves: a kernel without one
//! cannot mount the root of any disk kiln ships. So the choice is which
//! initramfs. Debian's (`MODULES=most`) carries nearly every storage driver
//! the kernel has; "minimal" carries only those below, which mount the root
//! on every disk format kiln ships on the UEFI machines that run them. udev
//! in the initramfs loads the ones the machine's devices ask for.
//!
//! The configuration stays in the image, so a kernel upgraded on a running
//! machine gets the same initramfs.

use std::path::Path;

use kiln_spec::Initramfs;

use crate::confine::host_path;
use crate::error::RootfsError;
use crate::normalize::write_file;

pub(crate) const CONF: &str = "/etc/initramfs-tools/conf.d/kiln";
pub(crate) const HOOK: &str = "/etc/initramfs-tools/hooks/kiln";

/// Overrides `MODULES=most` from initramfs.conf (conf.d is read after it).
const CONF_TEXT: &str = "\
# Written by kiln ([disk].initramfs = \"minimal\"): only the drivers that
# /etc/initramfs-tools/hooks/kiln adds; \"full\" keeps Debian's default.
MODULES=list
";

/// The drivers, by the machines and formats that need them. Modules a
/// kernel lacks or has built in are skipped (`manual_add_modules` asks
/// modprobe quietly); their dependencies come along.
const MODULES: &[(&str, &[&str])] = &[
    (
        "QEMU/KVM and clouds on it (qcow2, raw): virtio disks",
        &["virtio_pci", "virtio_blk", "virtio_scsi"],
    ),
    ("NVMe disks (clouds, QEMU, VMware)", &["nvme"]),
    ("SATA and IDE disks", &["ahci", "ata_piix"]),
    ("Hyper-V and Azure (vhd)", &["hv_vmbus", "hv_storvsc"]),
    (
        "VMware (vmdk): paravirtual and LSI Logic SCSI",
        &["vmw_pvscsi", "mptspi", "mptsas"],
    ),
    ("Xen", &["xen_blkfront"]),
    ("SCSI disks behind any of the above", &["sd_mod"]),
    (
        "the root file system kiln writes",
        &["ext4", "crc32c_generic", "crc32c_intel"],
    ),
];

/// The hook script: run by mkinitramfs, with its helper functions.
fn hook_text() -> String {
    let mut s = String::from(
        "#!/bin/sh\n\
         # Written by kiln ([disk].initramfs = \"minimal\"): with MODULES=list\n\
         # (conf.d/kiln), the initramfs holds these drivers and no others.\n\
         set -e\n\
         case \"$1\" in prereqs) exit 0 ;; esac\n\
         . /usr/share/initramfs-tools/hook-functions\n",
    );
    for (why, modules) in MODULES {
        s.push_str(&format!(
            "# {why}\nmanual_add_modules {}\n",
            modules.join(" ")
        ));
    }
    s
}

/// Writes the configuration `kind` asks for, before the kernel's package
/// runs mkinitramfs. Debian's default needs nothing; an image without
/// initramfs-tools (dracut, or no kernel) gets nothing.
pub(crate) fn configure(root: &Path, kind: Initramfs) -> Result<(), RootfsError> {
    if kind == Initramfs::Full {
        return Ok(());
    }
    let tools = host_path(root, "/usr/sbin/mkinitramfs", false)
        .ok()
        .is_some_and(|p| fs_err::symlink_metadata(p).is_ok());
    if !tools {
        return Ok(());
    }
    write_file(root, CONF, CONF_TEXT.as_bytes(), 0o644, false)?;
    write_file(root, HOOK, hook_text().as_bytes(), 0o755, false)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn root_with_tools() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("usr/sbin")).unwrap();
        std::fs::write(dir.path().join("usr/sbin/mkinitramfs"), b"").unwrap();
        dir
    }

    fn at(root: &Path, p: &str) -> std::path::PathBuf {
        root.join(p.trim_start_matches('/'))
    }

    #[test]
    fn minimal_writes_the_list_and_an_executable_hook() {
        let t = root_with_tools();
        configure(t.path(), Initramfs::Minimal).unwrap();
        let conf = std::fs::read_to_string(at(t.path(), CONF)).unwrap();
        assert!(conf.lines().any(|l| l == "MODULES=list"), "{conf}");
        let hook = at(t.path(), HOOK);
        let text = std::fs::read_to_string(&hook).unwrap();
        for m in [
            "virtio_blk",
            "virtio_pci",
            "nvme",
            "hv_storvsc",
            "vmw_pvscsi",
        ] {
            assert!(text.contains(&format!(" {m}")), "{m} missing:\n{text}");
        }
        let mode = std::fs::metadata(&hook).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o777,
            0o755,
            "mkinitramfs runs only executable hooks"
        );
    }

    #[test]
    fn full_and_images_without_initramfs_tools_get_nothing() {
        let t = root_with_tools();
        configure(t.path(), Initramfs::Full).unwrap();
        assert!(!at(t.path(), CONF).exists() && !at(t.path(), HOOK).exists());
        let bare = tempfile::tempdir().unwrap();
        configure(bare.path(), Initramfs::Minimal).unwrap();
        assert!(!at(bare.path(), CONF).exists());
    }

    #[test]
    fn a_hostile_link_in_the_image_stays_inside_it() {
        let t = root_with_tools();
        let outside = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("etc")).unwrap();
        std::os::unix::fs::symlink(outside.path(), t.path().join("etc/initramfs-tools")).unwrap();
        configure(t.path(), Initramfs::Minimal).unwrap();
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
    }
}
