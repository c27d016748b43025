//! What a disk boots, found in the root filesystem by Debian's names: the
//! newest `boot/vmlinuz-<version>` with its `boot/initrd.img-<version>`, and
//! systemd-boot where its packages install it. kiln-disk takes the three
//! paths and knows nothing of who put them there.

use std::cmp::Ordering;
use std::path::{Path, PathBuf};

use kiln_disk::BootFiles;
use kiln_spec::Architecture;

use crate::error::Error;
use crate::fsutil;

/// systemd-boot, in the order it is taken: signed for Secure Boot
/// (`systemd-boot-efi-amd64-signed`, which trixie's `systemd-boot` pulls in
/// first) or unsigned (`systemd-boot-efi`). Firmware with Secure Boot off
/// runs either; the signed one also boots where it is on.
fn systemd_boot(arch: Architecture) -> [PathBuf; 2] {
    let efi = format!(
        "usr/lib/systemd/boot/efi/systemd-boot{}.efi",
        arch.efi_suffix()
    );
    [PathBuf::from(format!("{efi}.signed")), PathBuf::from(efi)]
}

/// The boot files of the tree `root`, as paths inside it. Only names are
/// looked at here (without following symbolic links: `/boot -> /host/path`
/// would list the host's kernels); kiln-disk checks each file it copies.
pub fn find(root: &Path, arch: Architecture) -> Result<BootFiles, Error> {
    let boot = Path::new("boot");
    let mut versions = Vec::new();
    let dir = root.join(boot);
    if fs_err::symlink_metadata(&dir).is_ok_and(|m| m.is_dir()) {
        for e in fs_err::read_dir(&dir).map_err(fsutil::io(&dir))? {
            let e = e.map_err(fsutil::io(&dir))?;
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
    let kernel_version = versions.pop().ok_or_else(|| Error::NoKernel {
        root: root.into(),
        arch,
    })?;
    let kernel = boot.join(format!("vmlinuz-{kernel_version}"));
    let initrd = boot.join(format!("initrd.img-{kernel_version}"));
    if fs_err::symlink_metadata(root.join(&initrd)).is_err() {
        return Err(Error::NoInitrd {
            path: root.join(kernel),
        });
    }
    let [signed, unsigned] = systemd_boot(arch);
    let loader = [&signed, &unsigned]
        .into_iter()
        .find(|p| fs_err::symlink_metadata(root.join(p)).is_ok())
        .cloned()
        .ok_or_else(|| Error::NoBootloader {
            path: root.join(&unsigned),
        })?;
    Ok(BootFiles {
        kernel_version,
        kernel,
        initrd,
        loader,
    })
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

#[cfg(test)]
mod tests {
    use super::*;

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

    /// A tree with two kernels, their initrds and the loaders named.
    fn boot_tree(loaders: &[&Path]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let boot = dir.path().join("boot");
        fs_err::create_dir_all(&boot).unwrap();
        for v in ["6.9.0-1-amd64", "6.12.0-1-amd64"] {
            fs_err::write(boot.join(format!("vmlinuz-{v}")), b"k").unwrap();
            fs_err::write(boot.join(format!("initrd.img-{v}")), b"i").unwrap();
        }
        for l in loaders {
            let p = dir.path().join(l);
            fs_err::create_dir_all(p.parent().unwrap()).unwrap();
            fs_err::write(p, b"MZ").unwrap();
        }
        dir
    }

    #[test]
    fn the_newest_kernel_and_the_loader_signed_or_not() {
        let [signed, unsigned] = systemd_boot(Architecture::Amd64);
        assert_eq!(
            unsigned,
            Path::new("usr/lib/systemd/boot/efi/systemd-bootx64.efi")
        );
        assert_eq!(
            systemd_boot(Architecture::Arm64)[1],
            Path::new("usr/lib/systemd/boot/efi/systemd-bootaa64.efi")
        );
        let find = |t: &tempfile::TempDir| find(t.path(), Architecture::Amd64);
        // trixie: systemd-boot-efi-amd64-signed alone.
        let t = boot_tree(&[&signed]);
        let b = find(&t).unwrap();
        assert_eq!(b.loader, signed);
        assert_eq!(b.kernel_version, "6.12.0-1-amd64");
        assert_eq!(b.kernel, Path::new("boot/vmlinuz-6.12.0-1-amd64"));
        assert_eq!(b.initrd, Path::new("boot/initrd.img-6.12.0-1-amd64"));
        // bookworm: systemd-boot-efi alone.
        let t = boot_tree(&[&unsigned]);
        assert_eq!(find(&t).unwrap().loader, unsigned);
        // Both: the signed one, which also boots with Secure Boot on.
        let t = boot_tree(&[&unsigned, &signed]);
        assert_eq!(find(&t).unwrap().loader, signed);
        // An arm64 image has no x64 loader.
        assert!(matches!(
            super::find(t.path(), Architecture::Arm64),
            Err(Error::NoBootloader { .. })
        ));
    }

    #[test]
    fn what_is_missing_names_the_package_to_install() {
        let t = boot_tree(&[]);
        let e = find(t.path(), Architecture::Amd64).unwrap_err();
        assert!(matches!(e, Error::NoBootloader { .. }), "{e}");
        assert!(e.hint().unwrap().contains("systemd-boot"), "{e}");

        fs_err::remove_file(t.path().join("boot/initrd.img-6.12.0-1-amd64")).unwrap();
        let e = find(t.path(), Architecture::Amd64).unwrap_err();
        assert!(matches!(e, Error::NoInitrd { .. }), "{e}");
        assert!(e.hint().unwrap().contains("initramfs-tools"), "{e}");

        fs_err::remove_dir_all(t.path().join("boot")).unwrap();
        let e = find(t.path(), Architecture::Amd64).unwrap_err();
        assert!(matches!(e, Error::NoKernel { .. }), "{e}");
        let hint = e.hint().unwrap();
        assert!(hint.contains("linux-image-cloud-amd64"), "{hint}");
        let e = find(t.path(), Architecture::Arm64).unwrap_err();
        assert!(e.hint().unwrap().contains("linux-image-cloud-arm64"), "{e}");
    }

    /// `/boot` an absolute symlink to a host directory holding a kernel:
    /// its kernels are not listed.
    #[test]
    fn an_absolute_boot_symlink_is_not_followed_onto_the_host() {
        let host = tempfile::tempdir().unwrap();
        let hboot = host.path().join("boot");
        fs_err::create_dir_all(&hboot).unwrap();
        fs_err::write(hboot.join("vmlinuz-9.9.9"), "host kernel").unwrap();
        fs_err::write(hboot.join("initrd.img-9.9.9"), "host initrd").unwrap();
        let image = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(&hboot, image.path().join("boot")).unwrap();
        let err = find(image.path(), Architecture::Amd64).unwrap_err();
        assert!(matches!(err, Error::NoKernel { .. }), "{err}");
    }
}
