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

use std::ffi::OsString;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use rustix::fs::{AtFlags, CWD, Gid, Mode, Timespec, Timestamps, Uid};

/// What to make at one path of the copy.
enum Item {
    File,
    Symlink,
    Special,
    /// A further name of a file already copied (relative path of the first).
    HardLink(PathBuf),
}

/// Copies the tree at `from` into `to` (created if missing).
pub(crate) fn copy_tree(from: &Path, to: &Path, threads: usize) -> std::io::Result<()> {
    let mut dirs: Vec<PathBuf> = vec![PathBuf::new()];
    let mut items: Vec<(PathBuf, Item)> = Vec::new();
    let mut first_names: std::collections::HashMap<(u64, u64), PathBuf> =
        std::collections::HashMap::new();
    fs_err::create_dir_all(to)?;
    let mut i = 0;
    while i < dirs.len() {
        let rel = dirs[i].clone();
        i += 1;
        let mut names: Vec<OsString> = fs_err::read_dir(from.join(&rel))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()?;
        names.sort();
        for name in names {
            let rel = rel.join(&name);
            let src = from.join(&rel);
            let meta = fs_err::symlink_metadata(&src)?;
            let ft = meta.file_type();
            if ft.is_dir() {
                fs_err::create_dir(to.join(&rel))?;
                dirs.push(rel);
            } else if ft.is_symlink() {
                items.push((rel, Item::Symlink));
            } else if ft.is_file() {
                if meta.nlink() > 1 {
                    match first_names.get(&(meta.dev(), meta.ino())) {
                        Some(first) => {
                            items.push((rel, Item::HardLink(first.clone())));
                            continue;
                        }
                        None => {
                            first_names.insert((meta.dev(), meta.ino()), rel.clone());
                        }
                    }
                }
                items.push((rel, Item::File));
            } else if ft.is_char_device() || ft.is_block_device() || ft.is_fifo() {
                items.push((rel, Item::Special));
            }
            // Sockets are never part of an image (a build leaves none behind).
        }
    }

    // Files, links and nodes, several at once; hard links after, so the
    // first name always exists.
    let (links, others): (Vec<_>, Vec<_>) = items
        .into_iter()
        .partition(|(_, item)| matches!(item, Item::HardLink(_)));
    run_all(&others, threads, |(rel, item)| {
        copy_one(&from.join(rel), &to.join(rel), item)
    })?;
    for (rel, item) in &links {
        if let Item::HardLink(first) = item {
            fs_err::hard_link(to.join(first), to.join(rel))?;
        }
    }
    for rel in dirs.iter().rev() {
        let src = from.join(rel);
        let dst = to.join(rel);
        let meta = fs_err::symlink_metadata(&src)?;
        finish(&src, &dst, &meta, false)?;
    }
    Ok(())
}

fn copy_one(src: &Path, dst: &Path, item: &Item) -> std::io::Result<()> {
    let meta = fs_err::symlink_metadata(src)?;
    match item {
        Item::File => {
            // std::fs::copy uses copy_file_range (or a reflink) where it can.
            fs_err::copy(src, dst)?;
            finish(src, dst, &meta, false)
        }
        Item::Symlink => {
            let target = fs_err::read_link(src)?;
            fs_err::os::unix::fs::symlink(&target, dst)?;
            finish(src, dst, &meta, true)
        }
        Item::Special => {
            let kind = rustix::fs::FileType::from_raw_mode(meta.mode());
            rustix::fs::mknodat(CWD, dst, kind, Mode::from_raw_mode(0o600), meta.rdev())
                .map_err(|e| at(dst, "mknod", e))?;
            finish(src, dst, &meta, false)
        }
        Item::HardLink(_) => Ok(()),
    }
}

fn copy_xattrs(src: &Path, dst: &Path) -> std::io::Result<()> {
    for name in xattr::list(src).map_err(|e| at_io(src, "list xattrs of", e))? {
        if let Some(value) = xattr::get(src, &name).map_err(|e| at_io(src, "read xattr of", e))? {
            xattr::set(dst, &name, &value).map_err(|e| at_io(dst, "set xattr on", e))?;
        }
    }
    Ok(())
}

/// Gives `dst` what `src` (described by `meta`) has: owner first (chown
/// clears setuid bits and file capabilities), then mode, extended
/// attributes, and times last.
fn finish(src: &Path, dst: &Path, meta: &std::fs::Metadata, link: bool) -> std::io::Result<()> {
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
        copy_xattrs(src, dst)?;
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

/// Runs `job` on every item on `threads` threads; the first error wins.
fn run_all<T: Sync>(
    items: &[T],
    threads: usize,
    job: impl Fn(&T) -> std::io::Result<()> + Sync,
) -> std::io::Result<()> {
    let next = AtomicUsize::new(0);
    let failed: Mutex<Option<std::io::Error>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1) {
            scope.spawn(|| {
                while let Some(item) = items.get(next.fetch_add(1, Ordering::Relaxed)) {
                    if let Err(e) = job(item) {
                        next.store(items.len(), Ordering::Relaxed);
                        failed
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .get_or_insert(e);
                        return;
                    }
                }
            });
        }
    });
    match failed.into_inner().unwrap_or_else(|e| e.into_inner()) {
        Some(e) => Err(e),
        None => Ok(()),
    }
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
        copy_tree(&src, &ours, 3).unwrap();
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
}
