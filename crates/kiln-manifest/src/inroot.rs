//! Reading a file of the image by its path inside the image. The image's
//! symlinks point into the image: followed from the host, `/usr/share/doc/x`
//! -> `/usr/share/doc/y` would read the host's file, and `../../..` could
//! leave the tree. So resolve as a chroot would, one component at a time.

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// Linux's own limit on symlinks followed in one lookup.
const MAX_HOPS: u32 = 40;

/// The host path of `path` (absolute inside the image), with every symlink
/// resolved inside `root`; `None` when it does not exist or loops.
pub(crate) fn resolve(root: &Path, path: &str) -> io::Result<Option<PathBuf>> {
    // Components still to walk, last first, so a symlink's target can be
    // pushed in front of what remains.
    let mut pending: Vec<Vec<u8>> = components(Path::new(path)).rev().collect();
    let mut done: Vec<Vec<u8>> = Vec::new();
    let mut hops = 0;
    while let Some(name) = pending.pop() {
        match name.as_slice() {
            b"" | b"." => continue,
            b".." => {
                done.pop();
                continue;
            }
            _ => {}
        }
        let mut here = join(root, &done);
        here.push(OsStr::from_bytes(&name));
        let meta = match fs_err::symlink_metadata(&here) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotADirectory => return Ok(None),
            Err(e) => return Err(e),
        };
        if meta.file_type().is_symlink() {
            hops += 1;
            if hops > MAX_HOPS {
                return Ok(None);
            }
            let target = fs_err::read_link(&here)?;
            if target.is_absolute() {
                done.clear();
            }
            pending.extend(components(&target).rev());
        } else {
            done.push(name);
        }
    }
    Ok(Some(join(root, &done)))
}

fn components(path: &Path) -> impl DoubleEndedIterator<Item = Vec<u8>> + '_ {
    path.components().filter_map(|c| match c {
        Component::Normal(n) => Some(n.as_bytes().to_vec()),
        Component::ParentDir => Some(b"..".to_vec()),
        Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
    })
}

fn join(root: &Path, parts: &[Vec<u8>]) -> PathBuf {
    let mut p = root.to_path_buf();
    for part in parts {
        p.push(OsStr::from_bytes(part));
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn symlinks_resolve_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let doc = root.join("usr/share/doc");
        std::fs::create_dir_all(doc.join("real")).unwrap();
        std::fs::write(doc.join("real/copyright"), "x").unwrap();
        symlink("/usr/share/doc/real", doc.join("absolute")).unwrap();
        symlink("real", doc.join("relative")).unwrap();
        symlink(
            "../../../../../../../usr/share/doc/real",
            doc.join("climbing"),
        )
        .unwrap();
        symlink("loop", doc.join("loop")).unwrap();
        std::fs::write(dir.path().join("outside"), "host").unwrap();
        symlink("../../../../outside", doc.join("escape")).unwrap();

        let want = Some(doc.join("real/copyright"));
        for via in ["real", "absolute", "relative", "climbing"] {
            let got = resolve(&root, &format!("/usr/share/doc/{via}/copyright")).unwrap();
            assert_eq!(got, want, "via {via}");
        }
        assert_eq!(
            resolve(&root, "/usr/share/doc/loop/copyright").unwrap(),
            None
        );
        // `..` stops at the root, so this names <root>/outside, which is absent.
        assert_eq!(resolve(&root, "/usr/share/doc/escape").unwrap(), None);
        assert_eq!(
            resolve(&root, "/usr/share/doc/real/copyright/x").unwrap(),
            None
        );
    }
}
