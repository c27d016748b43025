//! Content on its way into the store: a temporary file next to its final
//! place, hashed as it is written, renamed into place only once verified.
//! Dropping a `Staged` removes the file, so failed or abandoned writes leave
//! nothing behind.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::mpsc::SyncSender;
use std::thread::JoinHandle;

use tempfile::NamedTempFile;

use crate::digest::Hasher;
use crate::{Expected, Sha256, StoreError};

pub struct Staged {
    file: NamedTempFile,
    hasher: Mutex<Hasher>,
    /// Set by [`Staged::hash_in_background`]: the writes go to a thread
    /// that hashes them while the writer carries on.
    background: Mutex<Option<Background>>,
}

struct Background {
    chunks: SyncSender<Vec<u8>>,
    done: JoinHandle<Hasher>,
}

/// The prefix of temporary files, so a sweep can tell them from entries.
pub(crate) const TEMP_PREFIX: &str = ".tmp-";

impl Staged {
    /// Starts a temporary file in `dir`, which must be on the same file
    /// system as the final place for the rename to be atomic.
    pub(crate) fn new_in(dir: &Path) -> Result<Staged, StoreError> {
        let file = tempfile::Builder::new()
            .prefix(TEMP_PREFIX)
            .tempfile_in(dir)
            .map_err(|e| with_path(e, "creating a temporary file in", dir))?;
        Ok(Staged {
            file,
            hasher: Mutex::new(Hasher::default()),
            background: Mutex::new(None),
        })
    }

    /// Hashes what is written on another thread, so a large stream (a
    /// rootfs tar) is hashed while it is produced rather than after each
    /// write. Call before the first write.
    pub fn hash_in_background(mut self) -> Staged {
        let (chunks, received) = std::sync::mpsc::sync_channel::<Vec<u8>>(16);
        let done = std::thread::spawn(move || {
            let mut h = Hasher::default();
            for chunk in received {
                h.update(&chunk);
            }
            h
        });
        *self.background.get_mut().unwrap_or_else(|e| e.into_inner()) =
            Some(Background { chunks, done });
        self
    }

    /// Waits for the background hasher, if any, to catch up.
    fn settle(&self) {
        let bg = self
            .background
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(bg) = bg {
            drop(bg.chunks);
            if let Ok(h) = bg.done.join() {
                *self.hasher.lock().unwrap_or_else(|e| e.into_inner()) = h;
            }
        }
    }

    pub fn size(&self) -> u64 {
        self.settle();
        self.hasher.lock().unwrap_or_else(|e| e.into_inner()).size()
    }

    pub fn sha256(&self) -> Sha256 {
        self.settle();
        self.hasher
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .digest()
    }

    /// The temporary file, for reading the content back before committing.
    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// Checks the content against `expected`; `what` (a URL or file name)
    /// names it in the error.
    pub fn verify(&self, expected: &Expected, what: &str) -> Result<Sha256, StoreError> {
        check(expected, self.size(), self.sha256(), what)
    }

    /// Verifies, then renames into `dest` (replacing any previous file,
    /// which for content addressing holds the same bytes).
    pub(crate) fn commit(
        mut self,
        expected: &Expected,
        what: &str,
        dest: &Path,
    ) -> Result<Sha256, StoreError> {
        let digest = self.verify(expected, what)?;
        self.file
            .flush()
            .and_then(|()| self.file.as_file().sync_data())
            .map_err(|e| with_path(e, "writing", self.file.path()))?;
        self.file
            .persist(dest)
            .map_err(|e| with_path(e.error, "renaming a temporary file to", dest))?;
        Ok(digest)
    }
}

impl Write for Staged {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self
            .file
            .write(buf)
            .map_err(|e| with_path(e, "writing", self.file.path()))?;
        let bg = self.background.get_mut().unwrap_or_else(|e| e.into_inner());
        if let Some(bg) = bg {
            if bg.chunks.send(buf[..n].to_vec()).is_err() {
                return Err(io::Error::other("the hashing thread stopped"));
            }
        } else {
            self.hasher
                .get_mut()
                .unwrap_or_else(|e| e.into_inner())
                .update(&buf[..n]);
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

pub(crate) fn check(
    expected: &Expected,
    size: u64,
    digest: Sha256,
    what: &str,
) -> Result<Sha256, StoreError> {
    if let Some(want) = expected.size
        && want != size
    {
        return Err(StoreError::SizeMismatch {
            what: what.to_string(),
            expected: want,
            got: size,
        });
    }
    if let Some(want) = expected.sha256
        && want != digest
    {
        return Err(StoreError::DigestMismatch {
            what: what.to_string(),
            expected: want,
            got: digest,
        });
    }
    Ok(digest)
}

pub(crate) fn with_path(e: io::Error, doing: &str, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{doing} {}: {e}", path.display()))
}

/// Where a committed entry lives, and what it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub path: PathBuf,
    pub sha256: Sha256,
    pub size: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn background_hashing_gives_the_inline_digest() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let mut inline = Staged::new_in(dir.path()).unwrap();
        let mut background = Staged::new_in(dir.path()).unwrap().hash_in_background();
        for chunk in data.chunks(4093) {
            inline.write_all(chunk).unwrap();
            background.write_all(chunk).unwrap();
        }
        assert_eq!(background.size(), data.len() as u64);
        assert_eq!(background.sha256(), inline.sha256());
        assert_eq!(background.sha256(), Sha256::of(&data));
        let expected = Expected::new(Sha256::of(&data), data.len() as u64);
        let dest = dir.path().join("blob");
        background.commit(&expected, "test", &dest).unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), data);
    }
}
