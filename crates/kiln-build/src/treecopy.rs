//! Copying a root filesystem on every core: a child image starts from a copy
//! of its parent's cached tree, and on a cold build that copy sits between
//! the parent's last step and the child's first.
//!
//! The copy keeps everything `cp -a` keeps and the image's outputs record:
//! owners, modes (setuid included), extended attributes (file
//! capabilities), modification times, symlinks, hard links within the tree,
//! device nodes and fifos. Directories are made first, in one pass; files are
//! then copied by several threads, hard links made once their first name
//! exists, and directory metadata set last, deepest first, so adding entries
//! does not move a directory's time after it is set.

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use rustix::fs::{AtFlags, CWD, Gid, Mode, Timespec, Timestamps, Uid};

/// What to make at one path of the copy.
enum Item {
    File,
    Symlink,
    Special,
}

/// How [`sync_tree`] treats what `to` already holds.
pub(crate) struct SyncOptions<'a> {
    /// Keep an entry of `to` when its source's status last changed before
    /// this time (its ctime, which no program can set back) and `to` holds
    /// it complete. `None`: `to` is empty (or missing), so nothing in it is
    /// looked at and everything is copied.
    pub since: Option<Timespec>,
    /// On the pool's threads; false copies on the calling thread alone (a
    /// copy in the background must not take the cores the build needs).
    pub parallel: bool,
    /// `from` is changing under us: skip what vanishes or cannot be read.
    /// A later sync with `since` repairs whatever this left wrong.
    pub best_effort: bool,
    /// Checked between entries; once set, the walk ends early (best effort).
    pub stop: Option<&'a AtomicBool>,
    /// Relative paths not to copy.
    pub skip: &'a [&'a str],
}

/// Copies the tree at `from` into `to` (created if missing).
pub(crate) fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    sync_tree(
        from,
        to,
        &SyncOptions {
            since: None,
            parallel: true,
            best_effort: false,
            stop: None,
            skip: &[],
        },
    )
}

/// Makes `to` what `from` is: entries kept where allowed (see
/// [`SyncOptions::since`]), the others copied again, and entries `from`
/// lacks removed.
///
/// A child image's copy of its parent starts while the parent's last dpkg
/// run goes on ([`SyncOptions::best_effort`]); once the parent is done, a
/// sync since that start copies only what changed after it.
pub(crate) fn sync_tree(from: &Path, to: &Path, opts: &SyncOptions) -> std::io::Result<()> {
    let stopped = || opts.stop.is_some_and(|s| s.load(Ordering::Relaxed));
    let fresh = opts.since.is_none();
    let mut dirs: Vec<PathBuf> = vec![PathBuf::new()];
    let mut items: Vec<(PathBuf, Item)> = Vec::new();
    let mut links: Vec<(PathBuf, PathBuf)> = Vec::new();
    let mut first_names: HashMap<(u64, u64), PathBuf> = HashMap::new();
    fs_err::create_dir_all(to)?;
    let mut i = 0;
    while i < dirs.len() && !stopped() {
        let rel = dirs[i].clone();
        i += 1;
        let names: Vec<OsString> = match sorted_names(&from.join(&rel)) {
            Ok(names) => names
                .into_iter()
                .filter(|n| !opts.skip.iter().any(|s| rel.join(n) == Path::new(s)))
                .collect(),
            Err(_) if opts.best_effort => continue,
            Err(e) => return Err(e),
        };
        if !fresh {
            let wanted: HashSet<&OsString> = names.iter().collect();
            for old in sorted_names(&to.join(&rel))? {
                if !wanted.contains(&old) {
                    remove_any(&to.join(&rel).join(&old))?;
                }
            }
        }
        for name in &names {
            let rel = rel.join(name);
            let (src, dst) = (from.join(&rel), to.join(&rel));
            let meta = match fs_err::symlink_metadata(&src) {
                Ok(meta) => meta,
                Err(_) if opts.best_effort => continue,
                Err(e) => return Err(e),
            };
            let have = if fresh {
                None
            } else {
                std::fs::symlink_metadata(&dst).ok()
            };
            let ft = meta.file_type();
            if ft.is_dir() {
                match &have {
                    Some(h) if h.is_dir() => {}
                    Some(_) => {
                        remove_any(&dst)?;
                        fs_err::create_dir(&dst)?;
                    }
                    None => fs_err::create_dir(&dst)?,
                }
                dirs.push(rel);
                continue;
            }
            let item = if ft.is_symlink() {
                Item::Symlink
            } else if ft.is_file() {
                if meta.nlink() > 1 {
                    let id = (meta.dev(), meta.ino());
                    if let Some(first) = first_names.get(&id) {
                        links.push((rel, first.clone()));
                        continue;
                    }
                    first_names.insert(id, rel.clone());
                }
                Item::File
            } else if ft.is_char_device() || ft.is_block_device() || ft.is_fifo() {
                Item::Special
            } else {
                // Sockets are never part of an image (a build leaves none).
                continue;
            };
            match &have {
                Some(h) if kept(&meta, h, opts.since) => {}
                Some(_) => {
                    remove_any(&dst)?;
                    items.push((rel, item));
                }
                None => items.push((rel, item)),
            }
        }
    }

    // Files, symlinks and nodes, several at once; hard links after, so the
    // first name always exists.
    let copy = |(rel, item): &(PathBuf, Item)| {
        if stopped() {
            return Ok(());
        }
        match copy_one(&from.join(rel), &to.join(rel), item) {
            Err(_) if opts.best_effort => Ok(()),
            other => other,
        }
    };
    if opts.parallel {
        kiln_deb::par::for_each(&items, copy)?;
    } else {
        items.iter().try_for_each(copy)?;
    }
    for (rel, first) in &links {
        let (dst, target) = (to.join(rel), to.join(first));
        let Ok(want) = std::fs::symlink_metadata(&target) else {
            if opts.best_effort {
                continue;
            }
            return Err(at_io(&target, "stat", std::io::ErrorKind::NotFound.into()));
        };
        if !fresh {
            match std::fs::symlink_metadata(&dst) {
                Ok(h) if h.dev() == want.dev() && h.ino() == want.ino() => continue,
                Ok(_) => remove_any(&dst)?,
                Err(_) => {}
            }
        }
        fs_err::hard_link(&target, &dst)?;
    }
    // Directory metadata last, deepest first, so adding entries does not
    // move a directory's time after it is set.
    for rel in dirs.iter().rev() {
        let (src, dst) = (from.join(rel), to.join(rel));
        // A directory kept from an earlier copy may hold an xattr its source
        // has lost since.
        let result =
            fs_err::symlink_metadata(&src).and_then(|m| finish(&src, &dst, &m, false, !fresh));
        match result {
            Err(_) if opts.best_effort => {}
            other => other?,
        }
    }
    Ok(())
}

/// Whether `have` (in the copy) is still a complete copy of the entry
/// described by `meta`. The times are set last, so a copy cut short never
/// has the source's modification time.
fn kept(meta: &std::fs::Metadata, have: &std::fs::Metadata, since: Option<Timespec>) -> bool {
    let Some(since) = since else {
        return false;
    };
    let changed = (meta.ctime(), meta.ctime_nsec());
    changed < (since.tv_sec, since.tv_nsec)
        && have.file_type() == meta.file_type()
        && have.len() == meta.len()
        && (have.mtime(), have.mtime_nsec()) == (meta.mtime(), meta.mtime_nsec())
        && have.mode() == meta.mode()
        && (have.uid(), have.gid()) == (meta.uid(), meta.gid())
        && have.rdev() == meta.rdev()
}

fn sorted_names(dir: &Path) -> std::io::Result<Vec<OsString>> {
    let mut names: Vec<OsString> = fs_err::read_dir(dir)?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<_, _>>()?;
    names.sort();
    Ok(names)
}

fn remove_any(path: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs_err::remove_dir_all(path),
        Ok(_) => fs_err::remove_file(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(at_io(path, "stat", e)),
    }
}

fn copy_one(src: &Path, dst: &Path, item: &Item) -> std::io::Result<()> {
    let meta = fs_err::symlink_metadata(src)?;
    match item {
        Item::File => {
            // std::fs::copy uses copy_file_range (or a reflink) where it can.
            fs_err::copy(src, dst)?;
            finish(src, dst, &meta, false, false)
        }
        Item::Symlink => {
            let target = fs_err::read_link(src)?;
            fs_err::os::unix::fs::symlink(&target, dst)?;
            finish(src, dst, &meta, true, false)
        }
        Item::Special => {
            let kind = rustix::fs::FileType::from_raw_mode(meta.mode());
            rustix::fs::mknodat(CWD, dst, kind, Mode::from_raw_mode(0o600), meta.rdev())
                .map_err(|e| at(dst, "mknod", e))?;
            finish(src, dst, &meta, false, false)
        }
    }
}

/// Gives `dst` the xattrs of `src`; with `prune`, also removes those `src`
/// lacks (a new entry has none to remove).
fn copy_xattrs(src: &Path, dst: &Path, prune: bool) -> std::io::Result<()> {
    let names: Vec<OsString> = xattr::list(src)
        .map_err(|e| at_io(src, "list xattrs of", e))?
        .collect();
    if prune {
        for name in xattr::list(dst).map_err(|e| at_io(dst, "list xattrs of", e))? {
            if !names.contains(&name) {
                xattr::remove(dst, &name).map_err(|e| at_io(dst, "remove xattr from", e))?;
            }
        }
    }
    for name in names {
        if let Some(value) = xattr::get(src, &name).map_err(|e| at_io(src, "read xattr of", e))? {
            xattr::set(dst, &name, &value).map_err(|e| at_io(dst, "set xattr on", e))?;
        }
    }
    Ok(())
}

/// Gives `dst` what `src` (described by `meta`) has: owner first (chown
/// clears setuid bits and file capabilities), then mode, extended
/// attributes (`prune`: see [`copy_xattrs`]), and times last.
fn finish(
    src: &Path,
    dst: &Path,
    meta: &std::fs::Metadata,
    link: bool,
    prune: bool,
) -> std::io::Result<()> {
    let flags = if link {
        AtFlags::SYMLINK_NOFOLLOW
    } else {
        AtFlags::empty()
    };
    rustix::fs::chownat(
        CWD,
        dst,
        Some(Uid::from_raw(meta.uid())),
        Some(Gid::from_raw(meta.gid())),
        flags,
    )
    .map_err(|e| at(dst, "chown", e))?;
    if !link {
        rustix::fs::chmodat(
            CWD,
            dst,
            Mode::from_raw_mode(meta.mode() & 0o7777),
            AtFlags::empty(),
        )
        .map_err(|e| at(dst, "chmod", e))?;
        copy_xattrs(src, dst, prune)?;
    }
    let times = Timestamps {
        last_access: Timespec {
            tv_sec: meta.atime(),
            tv_nsec: meta.atime_nsec(),
        },
        last_modification: Timespec {
            tv_sec: meta.mtime(),
            tv_nsec: meta.mtime_nsec(),
        },
    };
    rustix::fs::utimensat(CWD, dst, &times, flags).map_err(|e| at(dst, "set times of", e))
}

fn at(path: &Path, what: &str, e: rustix::io::Errno) -> std::io::Error {
    at_io(path, what, e.into())
}

fn at_io(path: &Path, what: &str, e: std::io::Error) -> std::io::Error {
    std::io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// Every path with its type, owner, mode, times, link target, inode
    /// group (hard links) and xattrs: what `cp -a` keeps.
    fn describe(root: &Path) -> Vec<String> {
        let out = Command::new("sh")
            .arg("-c")
            .arg("cd \"$1\" && find . -printf '%p %y %U:%G %m %T@ %n %l\\n' | sort && getfattr -R -d -m - -h . 2>/dev/null | sort")
            .arg("sh")
            .arg(root)
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn copies_what_cp_a_copies() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        let script = r#"set -e
mkdir -p "$1/usr/bin" "$1/etc/empty" "$1/tmp" "$1/dev"
printf 'bin' > "$1/usr/bin/tool"; chmod 4755 "$1/usr/bin/tool"; chown 0:5 "$1/usr/bin/tool"
ln "$1/usr/bin/tool" "$1/usr/bin/tool-again"
ln -s tool "$1/usr/bin/alias"; chown -h 7:7 "$1/usr/bin/alias"
ln -s /nowhere "$1/etc/dangling"
printf 'x' > "$1/etc/capped"; setfattr -n user.kiln -v yes "$1/etc/capped"; setfattr -n security.capability -v 0sAQAAAgAgAAAAAAAAAAAAAAAAAAA= "$1/usr/bin/tool"
chmod 1777 "$1/tmp"; chown 3:4 "$1/etc/empty"; chmod 0700 "$1/etc/empty"
mknod "$1/dev/null" c 1 3; mkfifo "$1/dev/fifo"
touch -h -d '2001-02-03 04:05:06' "$1/usr/bin/alias" "$1/etc/empty" "$1/usr/bin" "$1/usr/bin/tool"
"#;
        let status = Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg("sh")
            .arg(&src)
            .status()
            .unwrap();
        assert!(status.success());
        let ours = dir.path().join("ours");
        let theirs = dir.path().join("theirs");
        copy_tree(&src, &ours).unwrap();
        let status = Command::new("cp")
            .arg("-a")
            .arg(&src)
            .arg(&theirs)
            .status()
            .unwrap();
        assert!(status.success());
        let (a, b) = (describe(&ours), describe(&theirs));
        assert!(a.len() > 12, "{a:#?}");
        assert_eq!(a, b);
        assert_eq!(describe(&src), a);
    }

    fn sh(script: &str, root: &Path) {
        let status = Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg("sh")
            .arg(root)
            .status()
            .unwrap();
        assert!(status.success(), "{script}");
    }

    fn contents(root: &Path) -> String {
        let out = Command::new("sh")
            .arg("-c")
            .arg("cd \"$1\" && find . -type f -exec sha256sum {} + | sort")
            .arg("sh")
            .arg(root)
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    }

    #[test]
    fn a_sync_since_copies_again_exactly_what_changed() {
        let dir = tempfile::tempdir().unwrap();
        let (src, dst) = (dir.path().join("src"), dir.path().join("dst"));
        sh(
            r#"set -e
mkdir -p "$1/usr/bin" "$1/etc/empty" "$1/dir" "$1/old"
setfattr -n user.kiln -v dir "$1/etc/empty"
printf 'bin' > "$1/usr/bin/tool"; ln "$1/usr/bin/tool" "$1/usr/bin/tool-again"
printf 'same' > "$1/etc/kept"; printf 'same' > "$1/etc/quiet"; printf 'x' > "$1/etc/capped"
printf 'y' > "$1/etc/mode"; printf 'z' > "$1/gone"; printf 'f' > "$1/becomes-dir"
printf 'damaged' > "$1/etc/damaged"; printf 'l' > "$1/etc/linked"; ln "$1/etc/linked" "$1/etc/linked2"
ln -s tool "$1/usr/bin/alias"; mknod "$1/etc/null" c 1 3
touch -d '2001-02-03 04:05:06' "$1/etc/quiet" "$1/usr/bin/tool"
"#,
            &src,
        );
        copy_tree(&src, &dst).unwrap();
        let inode = |p: &str| std::fs::symlink_metadata(dst.join(p)).unwrap().ino();
        let kept_before = inode("etc/kept");
        // What a copy cut short, or a copy of a moving tree, leaves behind.
        sh(
            r#"set -e
printf 'da' > "$1/etc/damaged"; rm "$1/etc/linked2"; printf 'extra' > "$1/dir/extra"
"#,
            &dst,
        );
        std::thread::sleep(std::time::Duration::from_millis(30));
        let since = SystemTimeSpec::now();
        std::thread::sleep(std::time::Duration::from_millis(30));
        sh(
            r#"set -e
printf 'BIN' > "$1/usr/bin/tool"; touch -d '2001-02-03 04:05:06' "$1/usr/bin/tool"
chmod 4711 "$1/etc/mode"; setfattr -n user.kiln -v changed "$1/etc/capped"
ln -sfn elsewhere "$1/usr/bin/alias"; rm "$1/gone"; rm "$1/becomes-dir"; mkdir "$1/becomes-dir"
mkdir "$1/dir/new"; printf 'new' > "$1/dir/new/file"; ln "$1/etc/quiet" "$1/dir/quiet-link"
rmdir "$1/old"; printf 'old' > "$1/old"; setfattr -x user.kiln "$1/etc/empty"; chmod 0700 "$1/etc/empty"
"#,
            &src,
        );
        // Before its own damage, `etc/damaged` and `etc/linked` were
        // untouched in `src`: only the copy's state tells them apart.
        sh(r#"touch -d '1999-01-01' "$1/etc/damaged""#, &dst);
        sync_tree(
            &src,
            &dst,
            &SyncOptions {
                since: Some(since.0),
                parallel: true,
                best_effort: false,
                stop: None,
                skip: &[],
            },
        )
        .unwrap();
        assert_eq!(describe(&dst), describe(&src));
        assert_eq!(contents(&dst), contents(&src));
        assert_eq!(inode("etc/kept"), kept_before, "an unchanged file is kept");
    }

    /// Now, as a file time.
    struct SystemTimeSpec(Timespec);

    impl SystemTimeSpec {
        fn now() -> SystemTimeSpec {
            let d = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap();
            SystemTimeSpec(Timespec {
                tv_sec: d.as_secs() as i64,
                tv_nsec: i64::from(d.subsec_nanos()),
            })
        }
    }
}
