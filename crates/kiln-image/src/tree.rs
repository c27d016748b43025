//! Reading a directory tree into a sorted list of entries: the one view of a
//! root filesystem that the tar writer and the differ share, so both agree on
//! what an entry is, which metadata counts and in which order entries come.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::ImageError;

/// The extended attributes carried into layers. `security.capability` is how
/// Debian grants e.g. `ping` CAP_NET_RAW; `user.*` is set only on purpose.
/// Left out on purpose: `security.selinux`/`ima`/`evm` (labels of the build
/// host's policy, applied again where the image runs), `trusted.*` (overlayfs
/// and host internals) and `system.posix_acl_*` (inherited from the build
/// directory's default ACLs, which would make bytes depend on the host).
pub fn xattr_kept(name: &[u8]) -> bool {
    name == b"security.capability" || name.starts_with(b"user.")
}

/// Extended attributes as (name, value), sorted by name.
pub(crate) type Xattrs = Vec<(Vec<u8>, Vec<u8>)>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    File { size: u64 },
    Dir,
    Symlink { target: Vec<u8> },
    Char { major: u32, minor: u32 },
    Block { major: u32, minor: u32 },
    Fifo,
}

/// One entry of a tree, with the metadata that goes into a tar header.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    /// Relative to the root, `/`-separated, no leading `./`, no trailing `/`.
    pub path: Vec<u8>,
    pub kind: Kind,
    /// Permission bits including setuid, setgid and sticky; no type bits.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: i64,
    /// Kept xattrs, sorted by name.
    pub xattrs: Xattrs,
    /// Identity of the inode, for hard links and cheap content equality.
    pub dev: u64,
    pub ino: u64,
    pub nlink: u64,
}

/// A scanned tree: its root and its entries sorted bytewise by path. The root
/// directory itself is not an entry: layers describe what is inside `/`.
pub(crate) struct Tree {
    pub root: PathBuf,
    pub nodes: Vec<Node>,
}

impl Tree {
    pub fn scan(root: &Path) -> Result<Tree, ImageError> {
        let meta = fs_err::metadata(root)?;
        if !meta.is_dir() {
            return Err(ImageError::NotADirectory(root.to_path_buf()));
        }
        let root_dev = meta.dev();
        let mut nodes = Vec::new();
        let mut dirs = vec![Vec::new()];
        while let Some(rel) = dirs.pop() {
            let dir = join(root, &rel);
            for entry in fs_err::read_dir(&dir)? {
                let entry = entry?;
                let mut path = rel.clone();
                if !path.is_empty() {
                    path.push(b'/');
                }
                path.extend_from_slice(entry.file_name().as_bytes());
                let full = entry.path();
                if entry.file_name().as_bytes().starts_with(b".wh.") {
                    return Err(ImageError::WhiteoutName { path: full });
                }
                let Some(node) = read_node(&full, path, root_dev)? else {
                    continue;
                };
                if node.kind == Kind::Dir {
                    dirs.push(node.path.clone());
                }
                nodes.push(node);
            }
        }
        nodes.sort_unstable_by(|a, b| a.path.cmp(&b.path));
        Ok(Tree {
            root: root.to_path_buf(),
            nodes,
        })
    }

    pub fn full_path(&self, node: &Node) -> PathBuf {
        join(&self.root, &node.path)
    }

    /// For each entry, the index of the entry it is a hard link to, among
    /// the entries `selected` keeps: the first path in sort order holding an
    /// inode is written as itself, every later one links to it.
    pub fn hard_links(&self, selected: impl Fn(usize) -> bool) -> Vec<Option<usize>> {
        let mut first: HashMap<(u64, u64), usize> = HashMap::new();
        let mut links = vec![None; self.nodes.len()];
        for (i, node) in self.nodes.iter().enumerate() {
            if node.nlink < 2 || node.kind == Kind::Dir || !selected(i) {
                continue;
            }
            match first.entry((node.dev, node.ino)) {
                std::collections::hash_map::Entry::Occupied(e) => links[i] = Some(*e.get()),
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(i);
                }
            }
        }
        links
    }
}

pub(crate) fn join(root: &Path, rel: &[u8]) -> PathBuf {
    if rel.is_empty() {
        root.to_path_buf()
    } else {
        root.join(OsStr::from_bytes(rel))
    }
}

/// Reads one entry without following symlinks; `None` for sockets, which a
/// tar cannot hold and which only a running program gives meaning to.
fn read_node(full: &Path, path: Vec<u8>, root_dev: u64) -> Result<Option<Node>, ImageError> {
    let meta = fs_err::symlink_metadata(full)?;
    let ft = meta.file_type();
    let (major, minor) = dev_numbers(meta.rdev());
    let kind = if ft.is_file() {
        Kind::File { size: meta.len() }
    } else if ft.is_dir() {
        // Only directories are checked: on overlayfs, other files may report
        // the device of the layer they come from.
        if meta.dev() != root_dev {
            return Err(ImageError::MountPoint {
                path: full.to_path_buf(),
            });
        }
        Kind::Dir
    } else if ft.is_symlink() {
        let target = fs_err::read_link(full)?;
        Kind::Symlink {
            target: target.as_os_str().as_bytes().to_vec(),
        }
    } else if ft.is_char_device() {
        Kind::Char { major, minor }
    } else if ft.is_block_device() {
        Kind::Block { major, minor }
    } else if ft.is_fifo() {
        Kind::Fifo
    } else {
        return Ok(None);
    };
    Ok(Some(Node {
        path,
        kind,
        mode: meta.mode() & 0o7777,
        uid: meta.uid(),
        gid: meta.gid(),
        mtime: meta.mtime(),
        xattrs: read_xattrs(full)?,
        dev: meta.dev(),
        ino: meta.ino(),
        nlink: meta.nlink(),
    }))
}

/// Linux's errno for "operation not supported", what `listxattr` answers on
/// file systems without xattrs.
const EOPNOTSUPP: i32 = 95;

fn read_xattrs(full: &Path) -> Result<Xattrs, ImageError> {
    let names = match xattr::list(full) {
        Ok(names) => names,
        // A file system without xattrs has none to lose.
        Err(e) if e.raw_os_error() == Some(EOPNOTSUPP) => return Ok(Vec::new()),
        Err(e) => return Err(ImageError::io_at(full, "listing extended attributes", e)),
    };
    let mut out = Vec::new();
    for name in names {
        if !xattr_kept(name.as_bytes()) {
            continue;
        }
        // `xattr::get` does not follow symlinks, like `list`.
        match xattr::get(full, &name) {
            Ok(Some(value)) => out.push((name.as_bytes().to_vec(), value)),
            // Removed between listing and reading.
            Ok(None) => {}
            Err(e) => return Err(ImageError::io_at(full, "reading extended attributes", e)),
        }
    }
    out.sort();
    Ok(out)
}

/// Splits a Linux `dev_t` as glibc's `major()`/`minor()` do.
fn dev_numbers(rdev: u64) -> (u32, u32) {
    let major = ((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff);
    let minor = (rdev & 0xff) | ((rdev >> 12) & !0xff);
    (major as u32, minor as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_numbers_split_like_glibc() {
        // /dev/null is 1:3; 259:1048575 needs the high bits of both
        // (glibc's makedev: major in bits 8-19 and 44-63, minor in 0-7 and 20-43).
        assert_eq!(dev_numbers(0x0103), (1, 3));
        let (major, minor) = (259u64, 1_048_575u64);
        let rdev =
            (major & 0xfff) << 8 | (major & !0xfff) << 32 | (minor & 0xff) | (minor & !0xff) << 12;
        assert_eq!(dev_numbers(rdev), (259, 1_048_575));
    }
}
