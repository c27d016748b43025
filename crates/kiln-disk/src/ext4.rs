//! The root file system: `mke2fs -d` straight from the (read-only) root tree
//! in the store, then a few files kiln adds or replaces written with
//! `debugfs`, then every inode's ctime and atime set to the image's time.
//!
//! Why the last step: `mke2fs -d` copies ctime and atime from the source
//! files, and those say when the store entry was written and last read, not
//! what it holds. With them fixed, and the UUID, hash seed, "now" and
//! every mke2fs setting pinned, the same tree gives the same bytes.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::Path;

use crate::error::DiskError;
use crate::ids::Uuid;
use crate::tool::{DEBUGFS, DUMPE2FS, E2FSCK, MKE2FS};

/// mke2fs's settings, all of them, so neither the host's /etc/mke2fs.conf
/// nor a newer e2fsprogs's defaults change the file system. The features
/// are bookworm's ext4 defaults; `orphan_file` and `metadata_csum_seed` stay
/// off so older kernels and e2fsprogs can still mount and check it.
const MKE2FS_CONF: &str = "\
[defaults]
\tbase_features = sparse_super,large_file,filetype,resize_inode,dir_index,ext_attr
\tdefault_mntopts = acl,user_xattr
\tenable_periodic_fsck = 0
\tblocksize = 4096
\tinode_size = 256
\tinode_ratio = 16384
\treserved_ratio = 5.0
\tlazy_itable_init = 1
\tlazy_journal_init = 1

[fs_types]
\text4 = {
\t\tfeatures = has_journal,extent,huge_file,flex_bg,metadata_csum,64bit,dir_nlink,extra_isize
\t}
";

/// A change to the tree as the file system holds it, applied in order.
#[derive(Debug, Clone)]
pub(crate) enum Edit {
    /// A directory at `path` (absolute inside the image), made if missing.
    Mkdir { path: String, mode: u32 },
    /// The file at `path` becomes a copy of `local`, a file in the work
    /// directory named without spaces (debugfs splits its commands on them).
    Write {
        path: String,
        local: String,
        mode: u32,
    },
    /// A symbolic link at `path` to `target`, replacing what is there.
    Symlink { path: String, target: String },
}

pub(crate) struct Ext4<'a> {
    /// The tree to copy; only read.
    pub root: &'a Path,
    pub size: u64,
    pub uuid: Uuid,
    pub hash_seed: Uuid,
    pub label: &'a str,
    pub epoch: i64,
    pub edits: &'a [Edit],
}

impl Ext4<'_> {
    /// Writes the file system into a new file `out` of `self.size` bytes;
    /// `work` holds the scratch files.
    pub fn make(&self, out: &Path, work: &Path) -> Result<(), DiskError> {
        let conf = work.join("mke2fs.conf");
        fs_err::write(&conf, MKE2FS_CONF)?;
        let file = fs_err::File::create(out)?;
        file.set_len(self.size)?;
        drop(file);
        self.mkfs(out, &conf)?;
        self.debugfs(out, work, "edits.debugfs", &self.edit_script())?;
        let used = used_inodes(out, self.epoch)?;
        self.debugfs(out, work, "times.debugfs", &times_script(&used, self.epoch))?;
        // A last check that every step left a consistent file system.
        E2FSCK.run_args(
            self.epoch,
            ["-f".as_ref(), "-n".as_ref(), out.as_os_str()],
            out,
        )?;
        Ok(())
    }

    fn mkfs(&self, out: &Path, conf: &Path) -> Result<(), DiskError> {
        let mut cmd = MKE2FS.command(self.epoch)?;
        cmd.env("MKE2FS_CONFIG", conf)
            .args(["-q", "-F", "-t", "ext4", "-L", self.label])
            .arg("-U")
            .arg(self.uuid.to_string())
            .arg("-E")
            // The file is new, so already zero: mke2fs need not write zeros.
            .arg(format!(
                "hash_seed={},root_owner=0:0,assume_storage_prezeroed=1",
                self.hash_seed
            ))
            .arg("-d")
            .arg(self.root)
            .arg(out);
        let out_ = cmd
            .output()
            .map_err(|e| DiskError::io_at(out, "mke2fs", e))?;
        if !out_.status.success() {
            let said = format!(
                "{}{}",
                String::from_utf8_lossy(&out_.stdout),
                String::from_utf8_lossy(&out_.stderr)
            );
            if said.contains("Could not allocate") || said.contains("No space left") {
                return Err(DiskError::RootDoesNotFit {
                    root: self.root.to_path_buf(),
                    partition: self.size,
                    output: crate::tool::tail(&said, 10),
                });
            }
            return Err(DiskError::ToolFailed {
                tool: MKE2FS.name,
                path: out.to_path_buf(),
                status: out_.status.to_string(),
                output: crate::tool::tail(&said, 40),
            });
        }
        Ok(())
    }

    fn edit_script(&self) -> String {
        let mut s = String::new();
        for edit in self.edits {
            match edit {
                Edit::Mkdir { path, mode } => {
                    if !self.exists(path) {
                        let _ = writeln!(s, "mkdir {path}");
                    }
                    owner_mode_mtime(&mut s, path, 0o040000 | mode, self.epoch);
                }
                Edit::Write { path, local, mode } => {
                    if self.exists(path) {
                        let _ = writeln!(s, "rm {path}");
                    }
                    let _ = writeln!(s, "write {local} {path}");
                    owner_mode_mtime(&mut s, path, 0o100000 | mode, self.epoch);
                }
                Edit::Symlink { path, target } => {
                    if self.exists(path) {
                        let _ = writeln!(s, "rm {path}");
                    }
                    let _ = writeln!(s, "symlink {path} {target}");
                    owner_mode_mtime(&mut s, path, 0o120777, self.epoch);
                }
            }
        }
        s
    }

    /// Whether the tree has `path`, symbolic links not followed.
    fn exists(&self, path: &str) -> bool {
        fs_err::symlink_metadata(self.root.join(path.trim_start_matches('/'))).is_ok()
    }

    /// debugfs exits 0 whatever its commands do, so anything it says on
    /// stderr beyond its banner is taken as a failure.
    fn debugfs(
        &self,
        image: &Path,
        work: &Path,
        name: &str,
        script: &str,
    ) -> Result<(), DiskError> {
        if script.is_empty() {
            return Ok(());
        }
        let file = work.join(name);
        fs_err::write(&file, script)?;
        let mut cmd = DEBUGFS.command(self.epoch)?;
        cmd.current_dir(work)
            .arg("-w")
            .arg("-f")
            .arg(&file)
            .arg(image);
        let ran = DEBUGFS.run(&mut cmd, image)?;
        let complaints: Vec<&str> = ran
            .stderr
            .lines()
            .filter(|l| !l.starts_with("debugfs ") && !l.trim().is_empty())
            .collect();
        if !complaints.is_empty() {
            return Err(DiskError::ToolFailed {
                tool: DEBUGFS.name,
                path: file,
                status: "errors on stderr".into(),
                output: crate::tool::tail(&complaints.join("\n"), 40),
            });
        }
        Ok(())
    }
}

fn owner_mode_mtime(s: &mut String, path: &str, mode: u32, epoch: i64) {
    let _ = writeln!(s, "sif {path} mode 0{mode:o}");
    let _ = writeln!(s, "sif {path} uid 0");
    let _ = writeln!(s, "sif {path} gid 0");
    let _ = writeln!(s, "sif {path} mtime @{epoch}");
}

fn times_script(inodes: &[u32], epoch: i64) -> String {
    let mut s = String::with_capacity(inodes.len() * 64);
    for ino in inodes {
        let _ = writeln!(s, "sif <{ino}> ctime @{epoch}");
        let _ = writeln!(s, "sif <{ino}> atime @{epoch}");
    }
    s
}

/// The root directory and every allocated inode past the reserved ones,
/// from dumpe2fs's per-group free inode lists.
fn used_inodes(image: &Path, epoch: i64) -> Result<Vec<u32>, DiskError> {
    let ran = DUMPE2FS.run_args(epoch, [image], image)?;
    parse_used_inodes(&ran.stdout)
        .map_err(|why| DiskError::unexpected(image, format!("dumpe2fs: {why}")))
}

fn parse_used_inodes(dump: &str) -> Result<Vec<u32>, String> {
    let field = |name: &str| -> Result<u32, String> {
        dump.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| format!("no `{name}` line"))
    };
    let count = field("Inode count:")?;
    let first = field("First inode:")?;
    let mut free = BTreeSet::new();
    for line in dump.lines() {
        let Some(list) = line.trim_start().strip_prefix("Free inodes: ") else {
            continue;
        };
        for range in list.split(',').map(str::trim).filter(|r| !r.is_empty()) {
            let (a, b) = range.split_once('-').unwrap_or((range, range));
            let a: u32 = a
                .parse()
                .map_err(|_| format!("bad free inode range `{range}`"))?;
            let b: u32 = b
                .parse()
                .map_err(|_| format!("bad free inode range `{range}`"))?;
            free.extend(a..=b);
        }
    }
    let root = 2;
    Ok(std::iter::once(root)
        .chain(first..=count)
        .filter(|i| !free.contains(i))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn used_inodes_are_the_complement_of_the_free_lists() {
        let dump = "Inode count:              20\nFirst inode:              11\n\
                    Group 0: (Blocks 0-32767)\n  Free inodes: 14-15, 17\n\
                    Group 1: (Blocks 32768-65535)\n  Free inodes: \n  Free inodes: 19-20\n";
        assert_eq!(
            parse_used_inodes(dump).unwrap(),
            vec![2, 11, 12, 13, 16, 18]
        );
        assert!(parse_used_inodes("nothing").is_err());
    }
}
