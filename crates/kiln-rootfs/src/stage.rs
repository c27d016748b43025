//! The package files as the image's dpkg reads them: copies inside the root
//! whose `data.tar` is already decompressed.
//!
//! Decompressing is most of the CPU time of unpacking, and dpkg does it on
//! one core. Done here it runs on every core, and for the essential set it
//! is done once for both the extraction and dpkg's own unpack. dpkg reads an
//! uncompressed `data.tar` member as it reads a compressed one, and records
//! nothing about the compression: the installed result is the same.
//!
//! The copies are removed when the install is over, whatever its outcome.
//!
//! Making a copy is the one full read of a package file, so it is where the
//! file is verified: hashed as it is read, against the lock's sha256. Every
//! later step reads the copy, and a copy is used only once it is written,
//! so nothing of a damaged file reaches the image.

use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};

use kiln_store::Digest;

use crate::deb::{Control, VerifiedAr, damaged_or};
use crate::error::RootfsError;

/// Where the package files are, inside the image, while dpkg runs.
pub(crate) const DEBS_DIR: &str = "/var/cache/kiln-debs";

pub(crate) struct StagedDebs {
    dir: PathBuf,
    /// Path inside the image of each package, by index in the control list.
    pub inside: Vec<String>,
    /// Path on the host of each package's copy.
    pub host: Vec<PathBuf>,
    /// What each package file must hash to.
    sha256: Vec<Digest>,
    removed: bool,
}

impl StagedDebs {
    /// Names the copies; nothing is written until a [`Repacker`] writes
    /// them. `sha256` is what each package file must hash to, in the
    /// order of `controls`.
    pub(crate) fn new(
        root: &Path,
        controls: &[Control],
        sha256: Vec<Digest>,
    ) -> Result<StagedDebs, RootfsError> {
        if sha256.len() != controls.len() {
            return Err(RootfsError::BadRoot {
                root: root.to_path_buf(),
                why: "one expected digest per package is needed".into(),
            });
        }
        let dir = crate::confine::host_path(root, DEBS_DIR, true)?;
        fs_err::create_dir_all(&dir)?;
        let mut inside = Vec::with_capacity(controls.len());
        let mut host = Vec::with_capacity(controls.len());
        for c in controls {
            let name = format!(
                "{}_{}_{}.deb",
                c.package,
                c.version.replace(':', "%3a"),
                c.architecture
            );
            inside.push(format!("{DEBS_DIR}/{name}"));
            host.push(dir.join(name));
        }
        Ok(StagedDebs {
            dir,
            inside,
            host,
            sha256,
            removed: false,
        })
    }

    /// A queue that writes the copies of `order` in that order, for
    /// [`Repacker::work`] on any number of threads while the install runs.
    pub(crate) fn queue<'a>(&'a self, controls: &'a [Control], order: Vec<usize>) -> Repacker<'a> {
        let done = vec![false; controls.len()];
        Repacker {
            staged: self,
            controls,
            order,
            next: AtomicUsize::new(0),
            state: Mutex::new(QueueState { done, failed: None }),
            changed: Condvar::new(),
        }
    }

    /// Removes the copies; errors are reported, unlike on drop.
    pub(crate) fn remove(mut self) -> Result<(), RootfsError> {
        self.removed = true;
        fs_err::remove_dir_all(&self.dir)?;
        Ok(())
    }
}

impl Drop for StagedDebs {
    fn drop(&mut self) {
        if !self.removed {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Copies being written in install order, so a batch can start as soon as
/// its own packages are ready while later ones (the kernel, last) are still
/// being decompressed by the other cores.
pub(crate) struct Repacker<'a> {
    staged: &'a StagedDebs,
    controls: &'a [Control],
    order: Vec<usize>,
    next: AtomicUsize,
    state: Mutex<QueueState>,
    changed: Condvar,
}

struct QueueState {
    /// By index in the control list.
    done: Vec<bool>,
    failed: Option<RootfsError>,
}

impl Repacker<'_> {
    /// Starts no more copies.
    pub(crate) fn stop(&self) {
        self.next.store(self.order.len(), Ordering::Relaxed);
    }

    /// Writes copies until none is left to start.
    pub(crate) fn work(&self) {
        while self.work_one() {}
    }

    /// Writes the next copy; false when there was none left to start.
    fn work_one(&self) -> bool {
        let Some(&i) = self.order.get(self.next.fetch_add(1, Ordering::Relaxed)) else {
            return false;
        };
        let result = repack(
            &self.controls[i],
            self.staged.sha256[i],
            &self.staged.host[i],
        );
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match result {
            Ok(()) => state.done[i] = true,
            Err(e) => {
                state.failed.get_or_insert(e);
                self.next.store(self.order.len(), Ordering::Relaxed);
            }
        }
        self.changed.notify_all();
        true
    }

    /// Returns once the copies of `members` are written, writing copies
    /// itself while there are any to start.
    pub(crate) fn wait_for(&self, members: &[usize]) -> Result<(), RootfsError> {
        loop {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(e) = state.failed.take() {
                return Err(e);
            }
            if members.iter().all(|&i| state.done[i]) {
                return Ok(());
            }
            drop(state);
            if !self.work_one() {
                let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
                let ready =
                    |s: &QueueState| s.failed.is_some() || members.iter().all(|&i| s.done[i]);
                if !ready(&state) {
                    let _unused = self
                        .changed
                        .wait_while(state, |s| !ready(s))
                        .unwrap_or_else(|e| e.into_inner());
                }
            }
        }
    }
}

/// Copies the `.deb` of `control` to `dest` with its `data.tar`
/// decompressed, checking as it goes that the file hashes to `sha256`.
fn repack(control: &Control, sha256: Digest, dest: &Path) -> Result<(), RootfsError> {
    let src = &control.path;
    let damaged = |e| damaged_or(e, &control.package, &control.version, src, sha256);
    let mut ar = VerifiedAr::open_verified(src, sha256).map_err(damaged)?;
    // A damaged file says so by its digest, whatever else it breaks first.
    let copied = copy_repacked(&mut ar, src, dest);
    let verified = ar.finish().map_err(|source| RootfsError::DebMismatch {
        package: control.package.clone(),
        version: control.version.clone(),
        path: src.clone(),
        source: Box::new(source),
    });
    verified.and(copied)
}

fn copy_repacked(ar: &mut VerifiedAr, src: &Path, dest: &Path) -> Result<(), RootfsError> {
    let mut out = std::io::BufWriter::with_capacity(1 << 20, fs_err::File::create(dest)?);
    out.write_all(b"!<arch>\n")?;
    while let Some(member) = ar.next_member()? {
        if member.name.starts_with("data.tar") {
            // The size goes in the header, before the bytes; write a
            // placeholder and fill it in once the stream has ended.
            let header_at = out.stream_position()?;
            out.write_all(&header("data.tar", 0))?;
            let mut reader = ar.decompressed(&member, "data.tar")?;
            let size = std::io::copy(&mut reader, &mut out).map_err(|e| RootfsError::BadDeb {
                path: src.to_path_buf(),
                why: format!("member {}: {e}", member.name),
            })?;
            if size & 1 == 1 {
                out.write_all(b"\n")?;
            }
            out.seek(SeekFrom::Start(header_at))?;
            out.write_all(&header("data.tar", size))?;
            out.flush()?;
            // dpkg requires data.tar to be the last member it needs.
            return Ok(());
        }
        out.write_all(&header(&member.name, member.size))?;
        std::io::copy(&mut ar.body(&member), &mut out)?;
        if member.size & 1 == 1 {
            out.write_all(b"\n")?;
        }
    }
    Err(RootfsError::BadDeb {
        path: src.to_path_buf(),
        why: "no data.tar member".into(),
    })
}

/// An `ar` member header as dpkg-deb writes it: zero owner and time.
fn header(name: &str, size: u64) -> [u8; 60] {
    let text = format!(
        "{name:<16}{:<12}{:<6}{:<6}{:<8}{size:<10}`\n",
        0, 0, 0, "100644"
    );
    let mut h = [b' '; 60];
    h.copy_from_slice(text.as_bytes());
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deb::read_control;
    use crate::testdeb::{Entry, craft_deb};

    fn deb(dir: &Path) -> (PathBuf, Digest) {
        let path = craft_deb(
            dir,
            "app",
            "Package: app\nVersion: 1.0\nArchitecture: amd64\n",
            vec![Entry::File(
                "./usr/share/app/data".into(),
                "kiln ".repeat(20_000),
            )],
        );
        let sha = Digest::of(&fs_err::read(&path).unwrap());
        (path, sha)
    }

    #[test]
    fn a_package_file_is_verified_as_it_is_repacked() {
        let dir = tempfile::tempdir().unwrap();
        let (path, sha) = deb(dir.path());
        let control = read_control(&path, "").unwrap();
        let dest = dir.path().join("copy.deb");
        repack(&control, sha, &dest).unwrap();
        assert!(fs_err::metadata(&dest).unwrap().len() >= 100_000);

        // A byte flipped anywhere (the ar magic, inside data.tar, the last
        // byte) is reported as damage, naming the package and the file.
        let len = fs_err::metadata(&path).unwrap().len() as usize;
        for at in [0, len / 2, len - 1] {
            let mut bytes = fs_err::read(&path).unwrap();
            bytes[at] ^= 0x20;
            let damaged = dir.path().join(format!("damaged-{at}.deb"));
            fs_err::write(&damaged, &bytes).unwrap();
            let control = Control {
                path: damaged.clone(),
                ..control.clone()
            };
            let err = repack(&control, sha, &dest).unwrap_err();
            assert!(
                matches!(&err, RootfsError::DebMismatch { package, path, .. }
                    if package == "app" && path == &damaged),
                "byte {at}: {err}"
            );
            assert!(err.to_string().contains(&damaged.display().to_string()));
        }
    }
}
