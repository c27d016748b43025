//! Making two builds of the same inputs the same tree. Each rule says why.
//!
//! Nothing here follows a symlink out of the root: paths are resolved with
//! [`crate::confine`], and the timestamp walk uses `lstat` and
//! `utimensat(AT_SYMLINK_NOFOLLOW)`.

use std::io::ErrorKind;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::BuildEnv;
use crate::confine::host_path;
use crate::error::RootfsError;
use crate::extract::io_at;

/// Files removed when present.
const REMOVE: &[(&str, &str)] = &[
    // Logs of this build, with its wall-clock times (as mmdebstrap removes).
    ("/var/log/dpkg.log", "install log with build times"),
    ("/var/log/alternatives.log", "install log with build times"),
    ("/var/log/bootstrap.log", "install log with build times"),
    ("/var/log/apt/history.log", "install log with build times"),
    ("/var/log/apt/term.log", "install log with build times"),
    ("/var/log/apt/eipp.log.xz", "install log with build times"),
    // ldconfig's cache of file stat data (inode numbers, ctimes).
    (
        "/var/cache/ldconfig/aux-cache",
        "holds inode numbers and times",
    ),
    // Identity that must be made per machine, never baked (DESIGN principle 6).
    (
        "/var/lib/dbus/machine-id",
        "machine identity; dbus reads /etc/machine-id",
    ),
    (
        "/var/lib/systemd/random-seed",
        "a random seed shared by every machine is no seed",
    ),
    ("/var/lib/systemd/credential.secret", "per-machine secret"),
    // Backups the shadow tools leave on every change; the real files remain.
    ("/etc/passwd-", "backup with the previous contents"),
    ("/etc/group-", "backup with the previous contents"),
    ("/etc/shadow-", "backup with the previous contents"),
    ("/etc/gshadow-", "backup with the previous contents"),
    ("/etc/subuid-", "backup with the previous contents"),
    ("/etc/subgid-", "backup with the previous contents"),
    // dpkg's and debconf's copies of their databases before the last change.
    ("/var/lib/dpkg/status-old", "previous database state"),
    ("/var/lib/dpkg/available-old", "previous database state"),
    ("/var/lib/dpkg/diversions-old", "previous database state"),
    ("/var/lib/dpkg/statoverride-old", "previous database state"),
    (
        "/var/cache/debconf/config.dat-old",
        "previous database state",
    ),
    (
        "/var/cache/debconf/templates.dat-old",
        "previous database state",
    ),
    (
        "/var/cache/debconf/passwords.dat-old",
        "previous database state",
    ),
    // apt's binary caches: rebuilt on demand, and they embed times.
    (
        "/var/cache/apt/pkgcache.bin",
        "binary cache, rebuilt on demand",
    ),
    (
        "/var/cache/apt/srcpkgcache.bin",
        "binary cache, rebuilt on demand",
    ),
];

/// Directories emptied (kept themselves).
const EMPTY: &[(&str, &str, &[&str])] = &[
    ("/tmp", "scratch files of the build", &[]),
    ("/var/tmp", "scratch files of the build", &[]),
    // /run is a tmpfs at boot; anything left by the build is stale. /run/lock
    // stays: /var/lock points to it (Debian policy 9.1.4), as mmdebstrap keeps it.
    ("/run", "a tmpfs at boot", &["lock"]),
    // Indices of whatever mirror the build used: the mirror is not part of
    // the image. `partial/` and `lock` are apt's, kept as apt keeps them.
    (
        "/var/lib/apt/lists",
        "mirror indices are not part of the image",
        &["partial", "lock"],
    ),
    ("/var/lib/apt/lists/partial", "half-downloaded indices", &[]),
    (
        "/var/cache/apt/archives",
        "downloaded packages",
        &["partial", "lock"],
    ),
    (
        "/var/cache/apt/archives/partial",
        "half-downloaded packages",
        &[],
    ),
];

pub(crate) fn normalize(root: &Path, env: &BuildEnv) -> Result<(), RootfsError> {
    for (path, _why) in REMOVE {
        remove_file(root, path)?;
    }
    for (path, _why, keep) in EMPTY {
        empty_dir(root, path, keep)?;
    }
    // SSH host keys: per machine, generated at first boot (DESIGN principle 6).
    remove_matching(root, "/etc/ssh", |name| name.starts_with("ssh_host_"))?;
    crate::firstboot::add(root)?;
    // machine-id(5): an image ships an empty /etc/machine-id, so each machine
    // makes its own at first boot (and a read-only image can bind one over it).
    write_file(root, "/etc/machine-id", b"", 0o444, false)?;
    // The build host's name must not leak in; "localhost" until the machine is named.
    write_file(root, "/etc/hostname", b"localhost\n", 0o644, false)?;
    // resolv.conf is the build host's network, not the machine's; a symlink a
    // package installed (systemd-resolved's) is kept, it is the same on every build.
    let resolv = host_path(root, "/etc/resolv.conf", false)?;
    if fs_err::symlink_metadata(&resolv).is_ok_and(|m| !m.file_type().is_symlink()) {
        fs_err::remove_file(&resolv)?;
    }
    // The day of the last password change is written from the clock by tools
    // that ignore SOURCE_DATE_EPOCH; pin it to the build's day.
    pin_last_change(root, "/etc/shadow", env.source_date_epoch)?;
    // Last: every change above touched timestamps. Files and directories the
    // build made carry the build's wall-clock time; clamp to SOURCE_DATE_EPOCH.
    clamp_times(root, env.source_date_epoch)?;
    Ok(())
}

fn remove_file(root: &Path, path: &str) -> Result<(), RootfsError> {
    let host = match host_path(root, path, false) {
        Ok(h) => h,
        Err(RootfsError::Io(e)) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    match fs_err::symlink_metadata(&host) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Ok(fs_err::remove_file(&host)?),
        Err(_) => Ok(()),
    }
}

/// The host path of an existing directory inside the image, or `None`.
fn existing_dir(root: &Path, path: &str) -> Result<Option<std::path::PathBuf>, RootfsError> {
    let host = match host_path(root, path, false) {
        Ok(h) => h,
        Err(RootfsError::Io(e)) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(RootfsError::BadPath { .. }) => return Ok(None),
        Err(e) => return Err(e),
    };
    Ok(fs_err::symlink_metadata(&host)
        .ok()
        .filter(|m| m.is_dir())
        .map(|_| host))
}

fn empty_dir(root: &Path, path: &str, keep: &[&str]) -> Result<(), RootfsError> {
    remove_matching(root, path, |name| !keep.contains(&name))
}

fn remove_matching(root: &Path, dir: &str, pick: impl Fn(&str) -> bool) -> Result<(), RootfsError> {
    let Some(host) = existing_dir(root, dir)? else {
        return Ok(());
    };
    let mut names: Vec<_> = fs_err::read_dir(&host)?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<_, _>>()?;
    names.sort();
    for name in names {
        if !pick(&name.to_string_lossy()) {
            continue;
        }
        let path = host.join(&name);
        // remove_dir_all does not follow symlinks: it removes the link itself.
        if fs_err::symlink_metadata(&path)?.is_dir() {
            fs_err::remove_dir_all(&path)?;
        } else {
            fs_err::remove_file(&path)?;
        }
    }
    Ok(())
}

/// Writes `content` at `path` (replacing a file, never following a link
/// there), unless `only_if_present` and it is absent.
pub(crate) fn write_file(
    root: &Path,
    path: &str,
    content: &[u8],
    mode: u32,
    only_if_present: bool,
) -> Result<(), RootfsError> {
    let host = host_path(root, path, true)?;
    let existing = fs_err::symlink_metadata(&host).ok();
    if existing.is_none() && only_if_present {
        return Ok(());
    }
    let mode = match &existing {
        Some(m) if m.is_file() => m.permissions().mode() & 0o7777,
        _ => mode,
    };
    if existing.is_some() {
        fs_err::remove_file(&host)?;
    }
    fs_err::write(&host, content)?;
    fs_err::set_permissions(&host, std::fs::Permissions::from_mode(mode))?;
    Ok(())
}

/// Sets field 3 of shadow(5) (days since 1970 of the last password change)
/// to the build's day wherever it holds a date. Empty and `0` (must change
/// at next login) mean something else and stay.
fn pin_last_change(root: &Path, path: &str, epoch: i64) -> Result<(), RootfsError> {
    let host = host_path(root, path, false)?;
    let Ok(text) = fs_err::read_to_string(&host) else {
        return Ok(());
    };
    let day = (epoch / 86_400).to_string();
    let pinned: String = text
        .lines()
        .map(|line| {
            let mut fields: Vec<&str> = line.split(':').collect();
            if fields.len() > 2 && fields[2].parse::<u64>().is_ok_and(|d| d > 0) {
                fields[2] = &day;
            }
            fields.join(":") + "\n"
        })
        .collect();
    if pinned != text {
        // Rewrite in place: keeps the owner (root:shadow) and mode (0640).
        fs_err::write(&host, pinned)?;
    }
    Ok(())
}

/// Sets every timestamp later than `epoch` to `epoch`, without following
/// symlinks. Older ones (from the packages) stay: they are already the same
/// on every build.
pub(crate) fn clamp_times(root: &Path, epoch: i64) -> Result<(), RootfsError> {
    use std::os::unix::fs::MetadataExt;
    let t = rustix::fs::Timespec {
        tv_sec: epoch,
        tv_nsec: 0,
    };
    let times = rustix::fs::Timestamps {
        last_access: t,
        last_modification: t,
    };
    let mut stack = vec![root.to_path_buf()];
    while let Some(path) = stack.pop() {
        let meta = fs_err::symlink_metadata(&path)?;
        if meta.is_dir() {
            for entry in fs_err::read_dir(&path)? {
                stack.push(entry?.path());
            }
        }
        if meta.mtime() > epoch || (meta.mtime() == epoch && meta.mtime_nsec() != 0) {
            rustix::fs::utimensat(
                rustix::fs::CWD,
                &path,
                &times,
                rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
            )
            .map_err(|e| io_at(&path, "set times of", e))?;
        }
    }
    Ok(())
}
