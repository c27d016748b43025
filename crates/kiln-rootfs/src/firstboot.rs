//! Identity that each machine makes on its first boot, because the image
//! must not carry one (DESIGN principle 6). Normalisation strips SSH host
//! keys; this puts back the means to make new ones, before sshd starts.
//!
//! `/etc/machine-id` ships empty, which systemd reads as "first boot" and
//! fills; systemd-random-seed.service makes a missing seed. Those need
//! nothing here. SSH host keys do: Debian makes them only in openssh-server's
//! postinst, so without this unit `ssh.service` fails on every kiln image.

use std::path::Path;

use crate::confine::host_path;
use crate::error::RootfsError;
use crate::normalize::write_file;

/// The unit, in the vendor's directory so an administrator can mask it.
pub(crate) const SSH_KEYGEN_UNIT: &str = "/usr/lib/systemd/system/kiln-ssh-keygen.service";
const SSH_KEYGEN_WANTS: &str =
    "/usr/lib/systemd/system/multi-user.target.wants/kiln-ssh-keygen.service";

/// Runs on every boot and does nothing once a key exists (`ssh-keygen -A`
/// makes only the missing types). Ordered before every way Debian starts
/// sshd: the service, its socket, and the per-connection instances.
const SSH_KEYGEN: &str = "\
# Written by kiln: the image ships no SSH host keys (each machine needs its
# own), so they are made here on the machine's first boot.
[Unit]
Description=Generate this machine's SSH host keys
DefaultDependencies=no
After=local-fs.target systemd-remount-fs.service
Before=ssh.service ssh.socket sshd.service
ConditionPathExistsGlob=!/etc/ssh/ssh_host_*_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A
RemainAfterExit=yes

[Install]
WantedBy=multi-user.target
";

/// Adds what makes per-machine identity at first boot, for what the image
/// has installed. cloud-init makes SSH host keys itself (its `ssh` module),
/// so an image with it gets nothing.
pub(crate) fn add(root: &Path) -> Result<(), RootfsError> {
    let has = |p: &str| -> Result<bool, RootfsError> {
        match host_path(root, p, false) {
            Ok(host) => Ok(fs_err::symlink_metadata(host).is_ok()),
            // A missing parent directory: so the file is missing too.
            Err(RootfsError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    };
    if has("/usr/sbin/sshd")? && has("/usr/bin/ssh-keygen")? && !has("/usr/bin/cloud-init")? {
        write_file(root, SSH_KEYGEN_UNIT, SSH_KEYGEN.as_bytes(), 0o644, false)?;
        let link = host_path(root, SSH_KEYGEN_WANTS, true)?;
        if fs_err::symlink_metadata(&link).is_ok() {
            fs_err::remove_file(&link)?;
        }
        fs_err::os::unix::fs::symlink("../kiln-ssh-keygen.service", &link)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for f in files {
            let p = dir.path().join(f.trim_start_matches('/'));
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, b"").unwrap();
        }
        dir
    }

    fn unit(root: &Path) -> Option<String> {
        std::fs::read_to_string(root.join(SSH_KEYGEN_UNIT.trim_start_matches('/'))).ok()
    }

    #[test]
    fn an_image_with_sshd_makes_host_keys_at_first_boot() {
        let t = tree(&["/usr/sbin/sshd", "/usr/bin/ssh-keygen"]);
        add(t.path()).unwrap();
        let u = unit(t.path()).expect("unit written");
        assert!(u.contains("ExecStart=/usr/bin/ssh-keygen -A"), "{u}");
        assert!(u.contains("Before=ssh.service ssh.socket"), "{u}");
        let link = t.path().join(SSH_KEYGEN_WANTS.trim_start_matches('/'));
        assert_eq!(
            std::fs::read_link(&link).unwrap(),
            Path::new("../kiln-ssh-keygen.service")
        );
        // Idempotent: a second pass (a child image's) leaves one link.
        add(t.path()).unwrap();
        assert!(std::fs::symlink_metadata(&link).unwrap().is_symlink());
    }

    #[test]
    fn no_sshd_or_cloud_init_adds_nothing() {
        let t = tree(&["/usr/bin/ssh-keygen"]);
        add(t.path()).unwrap();
        assert_eq!(unit(t.path()), None);
        let t = tree(&[
            "/usr/sbin/sshd",
            "/usr/bin/ssh-keygen",
            "/usr/bin/cloud-init",
        ]);
        add(t.path()).unwrap();
        assert_eq!(unit(t.path()), None, "cloud-init makes the keys itself");
    }
}
