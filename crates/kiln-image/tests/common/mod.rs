//! Fixtures shared by the tests: a small root filesystem with every kind of
//! entry a Debian rootfs holds, and a layer applier that honours whiteouts.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{PermissionsExt, chown, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

pub const SDE: u64 = 1_700_000_000;
/// An mtime older than SDE, which the clamp must keep.
pub const OLD: u64 = 1_000_000_000;

/// `security.capability` v2 granting cap_net_raw (bit 13), effective: what
/// `setcap cap_net_raw+ep` writes for Debian's `ping`.
pub const CAP_NET_RAW: [u8; 20] = [
    0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
];

pub const LONG_DIR: &str =
    "usr/share/doc/a-package-whose-name-is-long-enough-to-push-paths-past-the-ustar-limit-of-100";

pub fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn dir(root: &Path, rel: &str, mode: u32) {
    let p = root.join(rel);
    std::fs::create_dir_all(&p).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
}

pub fn file(root: &Path, rel: &str, content: &[u8], mode: u32) {
    let p = root.join(rel);
    std::fs::write(&p, content).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
}

pub fn owner(root: &Path, rel: &str, uid: u32, gid: u32, mode: u32) {
    let p = root.join(rel);
    // chown clears setuid/setgid, so the mode goes on after.
    std::os::unix::fs::lchown(&p, Some(uid), Some(gid)).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Deterministic incompressible-ish bytes.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Builds the fixture tree inside `root` (which must exist).
pub fn base_tree(root: &Path) {
    dir(root, "bin", 0o755);
    file(root, "bin/dash", b"#!dash\n", 0o755);
    symlink("dash", root.join("bin/sh")).unwrap();
    file(root, "bin/ping", b"ping binary\n", 0o755);
    xattr::set(root.join("bin/ping"), "security.capability", &CAP_NET_RAW).unwrap();
    xattr::set(root.join("bin/ping"), "user.kiln.note", b"kept").unwrap();
    // Host-internal: must not reach the layer.
    xattr::set(root.join("bin/ping"), "trusted.kiln.internal", b"dropped").unwrap();

    dir(root, "usr/bin", 0o755);
    dir(root, "usr/lib", 0o755);
    file(root, "usr/bin/passwd", b"passwd\n", 0o755);
    owner(root, "usr/bin/passwd", 0, 0, 0o4755);
    file(root, "usr/bin/wall", b"wall\n", 0o755);
    owner(root, "usr/bin/wall", 0, 5, 0o2755);
    // Created in the opposite of sort order: the tar must still make the
    // first path in sort order the file.
    file(root, "usr/bin/perl5.36", b"perl\n", 0o755);
    std::fs::hard_link(root.join("usr/bin/perl5.36"), root.join("usr/bin/perl")).unwrap();
    std::fs::hard_link(
        root.join("usr/bin/perl5.36"),
        root.join("usr/lib/perl-link"),
    )
    .unwrap();
    file(root, "usr/lib/big.bin", &noise(3 << 20, 7), 0o644);
    symlink("usr/lib", root.join("lib")).unwrap();

    dir(root, LONG_DIR, 0o755);
    file(
        root,
        &format!("{LONG_DIR}/changelog.Debian.gz"),
        b"log\n",
        0o644,
    );
    let long_target = format!("../../../{LONG_DIR}/changelog.Debian.gz");
    symlink(&long_target, root.join("usr/share/doc/long-link")).unwrap();

    dir(root, "tmp", 0o1777);
    dir(root, "empty", 0o700);
    dir(root, "home/user", 0o755);
    owner(root, "home/user", 1234, 1234, 0o750);
    file(root, "home/user/.profile", b"# profile\n", 0o644);
    owner(root, "home/user/.profile", 1234, 1234, 0o644);

    dir(root, "run", 0o755);
    run(Command::new("mkfifo")
        .arg("-m")
        .arg("600")
        .arg(root.join("run/initctl")));
    dir(root, "dev", 0o755);
    run(Command::new("mknod")
        .args(["-m", "666"])
        .arg(root.join("dev/null"))
        .args(["c", "1", "3"]));

    // `a.b` sorts between `a` and `a/b` bytewise ('.' < '/').
    dir(root, "etc/a", 0o755);
    file(root, "etc/a/b", b"b\n", 0o644);
    file(root, "etc/a.b", b"a.b\n", 0o644);
    file(root, "etc/a-b", b"a-b\n", 0o644);
    file(root, "etc/hostname", b"kiln\n", 0o644);
    file(root, "etc/old", b"old\n", 0o644);

    dir(root, "var/cache/x", 0o755);
    file(root, "var/cache/x/one", b"1\n", 0o644);
    file(root, "var/cache/x/two", b"2\n", 0o644);
    dir(root, "var/lib/gone/b", 0o755);
    file(root, "var/lib/gone/a", b"a\n", 0o644);
    file(root, "var/lib/gone/b/c", b"c\n", 0o644);
    file(root, "var/lib/keep", b"keep\n", 0o644);
    file(root, "var/lib/stays", b"stays\n", 0o644);
    touch_all(root, SDE + 1000);
}

/// Sets every mtime in the tree to `t` (without following symlinks), except
/// `etc/old`, which stays older than SDE.
pub fn touch_all(root: &Path, t: u64) {
    run(Command::new("find")
        .arg(root)
        .args(["-exec", "touch", "-h", "-d"])
        .arg(format!("@{t}"))
        .args(["{}", "+"]));
    if root.join("etc/old").is_file() {
        run(Command::new("touch")
            .args(["-h", "-d"])
            .arg(format!("@{OLD}"))
            .arg(root.join("etc/old")));
    }
}

pub fn tar_of(root: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    kiln_image::write_tar(root, &mut out, &kiln_image::TarOptions::new(SDE)).unwrap();
    out
}

/// One entry of a tar, as a reader independent of kiln sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub path: String,
    pub kind: tar::EntryType,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
    pub size: u64,
    pub link: Option<String>,
    pub xattrs: Vec<(String, Vec<u8>)>,
    pub device: Option<(u32, u32)>,
    pub uname: Vec<u8>,
    pub gname: Vec<u8>,
}

pub fn list(tar_bytes: &[u8]) -> Vec<Listed> {
    let mut ar = tar::Archive::new(tar_bytes);
    let mut out = Vec::new();
    for entry in ar.entries().unwrap() {
        let mut e = entry.unwrap();
        let mut xattrs = Vec::new();
        if let Some(pax) = e.pax_extensions().unwrap() {
            for ext in pax {
                let ext = ext.unwrap();
                if let Some(name) = ext.key().unwrap().strip_prefix("SCHILY.xattr.") {
                    xattrs.push((name.to_string(), ext.value_bytes().to_vec()));
                }
            }
        }
        let h = e.header();
        let kind = h.entry_type();
        let device = (kind.is_character_special() || kind.is_block_special()).then(|| {
            (
                h.device_major().unwrap().unwrap(),
                h.device_minor().unwrap().unwrap(),
            )
        });
        out.push(Listed {
            path: String::from_utf8(e.path_bytes().into_owned()).unwrap(),
            kind,
            mode: h.mode().unwrap(),
            uid: h.uid().unwrap(),
            gid: h.gid().unwrap(),
            mtime: h.mtime().unwrap(),
            size: e.size(),
            link: e
                .link_name_bytes()
                .map(|l| String::from_utf8(l.into_owned()).unwrap()),
            xattrs,
            device,
            uname: h.username_bytes().unwrap_or_default().to_vec(),
            gname: h.groupname_bytes().unwrap_or_default().to_vec(),
        });
    }
    out
}

fn remove_any(path: &Path) {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path).unwrap(),
        Ok(_) => std::fs::remove_file(path).unwrap(),
        Err(_) => {}
    }
}

/// Extracts a layer over `dest` as an OCI applier does: whiteouts delete
/// from what lower layers put there, an entry replaces whatever non-directory
/// (or, for a non-directory entry, whatever) is at its path.
pub fn apply(tar_bytes: &[u8], dest: &Path) {
    let mut ar = tar::Archive::new(tar_bytes);
    ar.set_preserve_permissions(true);
    ar.set_preserve_ownerships(true);
    ar.set_unpack_xattrs(true);
    ar.set_preserve_mtime(true);
    ar.set_overwrite(true);
    for entry in ar.entries().unwrap() {
        let mut e = entry.unwrap();
        let raw = e.path_bytes().into_owned();
        // Components drop a directory's trailing slash.
        let path: PathBuf = Path::new(OsStr::from_bytes(&raw)).components().collect();
        let name = path.file_name().unwrap().as_bytes().to_vec();
        let parent = dest.join(path.parent().unwrap_or(Path::new("")));
        if name == b".wh..wh..opq" {
            for child in std::fs::read_dir(&parent).unwrap() {
                remove_any(&child.unwrap().path());
            }
            continue;
        }
        if let Some(gone) = name.strip_prefix(b".wh.") {
            let gone = parent.join(OsStr::from_bytes(gone));
            assert!(
                std::fs::symlink_metadata(&gone).is_ok(),
                "whiteout for {gone:?}, which no lower layer has"
            );
            remove_any(&gone);
            continue;
        }
        let target = dest.join(&path);
        let kind = e.header().entry_type();
        if let Ok(m) = std::fs::symlink_metadata(&target)
            && !(m.is_dir() && kind.is_dir())
        {
            remove_any(&target);
        }
        if kind.is_fifo() || kind.is_character_special() || kind.is_block_special() {
            // The tar crate writes these as regular files; make them here.
            let h = e.header();
            let mut cmd = Command::new("mknod");
            cmd.arg(&target);
            if kind.is_fifo() {
                cmd.arg("p");
            } else {
                cmd.arg(if kind.is_character_special() {
                    "c"
                } else {
                    "b"
                })
                .arg(h.device_major().unwrap().unwrap().to_string())
                .arg(h.device_minor().unwrap().unwrap().to_string());
            }
            run(&mut cmd);
            chown(
                &target,
                Some(h.uid().unwrap() as u32),
                Some(h.gid().unwrap() as u32),
            )
            .unwrap();
            std::fs::set_permissions(&target, std::fs::Permissions::from_mode(h.mode().unwrap()))
                .unwrap();
            run(Command::new("touch")
                .args(["-h", "-d"])
                .arg(format!("@{}", h.mtime().unwrap()))
                .arg(&target));
            continue;
        }
        e.unpack_in(dest).unwrap();
    }
}

/// Copies a tree with everything (hard links, xattrs, owners, times).
pub fn copy_tree(from: &Path, to: &Path) {
    run(Command::new("cp").arg("-a").arg(from).arg(to));
}
