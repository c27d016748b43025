//! Every path in the tree, as `lstat` sees it, with regular files hashed.

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::fs::Metadata;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use fs_err::os::unix::fs::OpenOptionsExt as _;
use sha2::Digest as _;

use crate::Error;
use crate::model::{FileEntry, FileKind};

/// Every path under `root`, `/` first, sorted by path. Symlinks are recorded,
/// never followed; directories on another filesystem (a `/proc` left
/// mounted during a build) are recorded but not entered.
pub(crate) fn scan(root: &Path) -> Result<Vec<FileEntry>, Error> {
    let meta = fs_err::metadata(root)?;
    if !meta.is_dir() {
        return Err(Error::NotADirectory {
            path: root.to_path_buf(),
        });
    }
    let device = meta.dev();
    let mut files = vec![entry("/".to_string(), &meta, None)];
    // Regular files to hash: index into `files`, host path, and the inode so
    // that hard links are read once.
    let mut to_hash: Vec<(usize, PathBuf, (u64, u64))> = Vec::new();
    let mut dirs: Vec<(PathBuf, String)> = vec![(root.to_path_buf(), String::new())];
    while let Some((dir, prefix)) = dirs.pop() {
        for item in fs_err::read_dir(&dir)? {
            let item = item?;
            let host = item.path();
            let meta = fs_err::symlink_metadata(&host)?;
            let path = format!("{prefix}/{}", escape(&item.file_name()));
            let target = if meta.file_type().is_symlink() {
                Some(escape(fs_err::read_link(&host)?.as_os_str()))
            } else {
                None
            };
            let e = entry(path.clone(), &meta, target);
            match e.kind {
                FileKind::File => to_hash.push((files.len(), host, (meta.dev(), meta.ino()))),
                FileKind::Dir if meta.dev() == device => dirs.push((host, path)),
                _ => {}
            }
            files.push(e);
        }
    }
    for (index, digest) in hash_all(&to_hash)? {
        files[index].sha256 = Some(digest);
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

fn entry(path: String, meta: &Metadata, target: Option<String>) -> FileEntry {
    let t = meta.file_type();
    let kind = if t.is_file() {
        FileKind::File
    } else if t.is_dir() {
        FileKind::Dir
    } else if t.is_symlink() {
        FileKind::Symlink
    } else if t.is_char_device() {
        FileKind::Char
    } else if t.is_block_device() {
        FileKind::Block
    } else if t.is_fifo() {
        FileKind::Fifo
    } else {
        FileKind::Socket
    };
    let size = match kind {
        FileKind::File | FileKind::Symlink => meta.len(),
        _ => 0,
    };
    FileEntry {
        path,
        kind,
        mode: meta.mode() & 0o7777,
        uid: meta.uid(),
        gid: meta.gid(),
        size,
        sha256: None,
        target,
    }
}

/// Names are bytes; the manifest is JSON. Valid UTF-8 is kept as it is and
/// only invalid bytes become `\xNN`, so ordinary names read naturally.
fn escape(name: &OsStr) -> String {
    let mut out = String::new();
    for chunk in name.as_bytes().utf8_chunks() {
        out.push_str(chunk.valid());
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// (index, hex digest) for each file, hashing on the pool. Hard links
/// share an inode: each inode is read once and its digest given to every
/// path.
fn hash_all(jobs: &[(usize, PathBuf, (u64, u64))]) -> Result<Vec<(usize, String)>, Error> {
    let mut seen = HashSet::new();
    let unique: Vec<usize> = (0..jobs.len())
        .filter(|&j| seen.insert(jobs[j].2))
        .collect();
    let hashed = kiln_deb::par::map_with(
        &unique,
        || vec![0u8; 256 * 1024],
        |buf, &j| {
            let (_, path, inode) = &jobs[j];
            hash_file(path, buf).map(|d| (*inode, d))
        },
    )
    .map_err(Error::Io)?;
    let digests: HashMap<(u64, u64), String> = hashed.into_iter().collect();
    Ok(jobs
        .iter()
        .filter_map(|(index, _, inode)| digests.get(inode).map(|d| (*index, d.clone())))
        .collect())
}

fn hash_file(path: &Path, buf: &mut [u8]) -> std::io::Result<String> {
    // Were the file swapped for a symlink after the walk, O_NOFOLLOW makes
    // the open fail rather than hash whatever the link points at.
    let mut file = fs_err::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    let mut hasher = sha2::Sha256::new();
    loop {
        let n = file.read(buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_utf8_in_names_is_escaped() {
        assert_eq!(escape(OsStr::from_bytes(b"caf\xc3\xa9")), "café");
        assert_eq!(escape(OsStr::from_bytes(b"a\xffb")), "a\\xffb");
    }
}
