//! The store's layout: `blobs/sha256/<hex>` for content addressed by its
//! digest, versioned buckets (`indices-v1`, `rootfs-v2`, …) for everything
//! keyed otherwise, `tmp/` for content on its way elsewhere, and a lock file.

use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

use crate::staged::TEMP_PREFIX;
use crate::{Digest, Entry, Expected, Staged, StoreError};

#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

/// A held lock on the whole store; released when dropped.
#[derive(Debug)]
pub struct StoreLock {
    _file: fs_err::File,
}

impl Store {
    /// Opens (creating if needed) the store at `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Store, StoreError> {
        let store = Store { root: root.into() };
        for dir in [store.blob_dir(), store.root.join("tmp")] {
            fs_err::create_dir_all(dir)?;
        }
        // Made up front so that taking the lock later never adds a file.
        fs_err::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(store.lock_path())?;
        Ok(store)
    }

    /// Opens the store where the environment says: `KILN_CACHE`, else
    /// `$XDG_CACHE_HOME/kiln`, else `$HOME/.cache/kiln`.
    pub fn open_default() -> Result<Store, StoreError> {
        let var = |name: &str| std::env::var_os(name).map(PathBuf::from);
        let root = default_root(var("KILN_CACHE"), var("XDG_CACHE_HOME"), var("HOME"))
            .ok_or(StoreError::NoRoot)?;
        Store::open(root)
    }

    fn lock_path(&self) -> PathBuf {
        self.root.join(".lock")
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory of the blobs, named by the hex of their digests: for
    /// listing them (gc); a blob's own place is [`Store::blob_path`].
    pub fn blob_dir(&self) -> PathBuf {
        self.root.join("blobs/sha256")
    }

    /// Where the blob with this digest lives, whether or not it is there.
    pub fn blob_path(&self, sha256: &Digest) -> PathBuf {
        self.blob_dir().join(sha256.hex())
    }

    /// The blob's path if the store holds it.
    pub fn blob(&self, sha256: &Digest) -> Option<PathBuf> {
        let path = self.blob_path(sha256);
        path.is_file().then_some(path)
    }

    /// The blob's path if the store holds it and it still hashes to its
    /// name, read whole: for content used without being read (a cached
    /// index, a layer copied out). A damaged blob is evicted, so the
    /// caller makes or fetches it again.
    pub fn intact_blob(&self, sha256: &Digest) -> Result<Option<PathBuf>, StoreError> {
        let Some(path) = self.blob(sha256) else {
            return Ok(None);
        };
        let file = fs_err::File::open(&path)?;
        let what = path.display().to_string();
        match crate::VerifyingReader::new(file, Expected::sha256(*sha256), what).finish() {
            Ok(_) => Ok(Some(path)),
            Err(StoreError::DigestMismatch { .. }) => {
                self.evict(sha256)?;
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Removes a blob found damaged on use, so the next fetch writes it
    /// again; a blob already gone is no error.
    pub fn evict(&self, sha256: &Digest) -> Result<(), StoreError> {
        match fs_err::remove_file(self.blob_path(sha256)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }

    /// Starts writing content that will become a blob.
    pub fn stage_blob(&self) -> Result<Staged, StoreError> {
        Staged::new_in(&self.blob_dir())
    }

    /// Starts writing content that will not be kept as written (a
    /// compressed download that is kept decompressed, say).
    pub fn stage_scratch(&self) -> Result<Staged, StoreError> {
        Staged::new_in(&self.root.join("tmp"))
    }

    /// Verifies staged content and files it under its digest.
    pub fn commit_blob(
        &self,
        staged: Staged,
        expected: &Expected,
        what: &str,
    ) -> Result<Entry, StoreError> {
        let size = staged.size();
        let sha256 = staged.verify(expected, what)?;
        let path = self.blob_path(&sha256);
        if !path.is_file() {
            staged.commit(expected, what, &path)?;
        }
        Ok(Entry { path, sha256, size })
    }

    /// Writes `bytes` as a blob after checking them against `expected`.
    pub fn put_blob(
        &self,
        bytes: &[u8],
        expected: &Expected,
        what: &str,
    ) -> Result<Entry, StoreError> {
        let sha256 = crate::staged::check(expected, bytes.len() as u64, Digest::of(bytes), what)?;
        if let Some(path) = self.blob(&sha256) {
            return Ok(Entry {
                path,
                sha256,
                size: bytes.len() as u64,
            });
        }
        let mut staged = self.stage_blob()?;
        staged.write_all(bytes)?;
        self.commit_blob(staged, expected, what)
    }

    /// Streams `reader` into a blob, checking it against `expected`.
    pub fn put_blob_from(
        &self,
        reader: &mut dyn Read,
        expected: &Expected,
        what: &str,
    ) -> Result<Entry, StoreError> {
        let mut staged = self.stage_blob()?;
        std::io::copy(reader, &mut staged)?;
        self.commit_blob(staged, expected, what)
    }

    /// A versioned bucket such as `indices-v1`, created if needed.
    pub fn bucket(&self, name: &str) -> Result<Bucket, StoreError> {
        check_key(name, name)?;
        let dir = self.root.join(name);
        fs_err::create_dir_all(&dir)?;
        Ok(Bucket {
            dir,
            name: name.to_string(),
        })
    }

    /// Takes the store lock exclusively, waiting for other holders.
    pub fn lock(&self) -> Result<StoreLock, StoreError> {
        self.take_lock(true)
    }

    /// Takes the store lock shared: many may hold it at once, none while
    /// someone holds it exclusively.
    pub fn lock_shared(&self) -> Result<StoreLock, StoreError> {
        self.take_lock(false)
    }

    fn take_lock(&self, exclusive: bool) -> Result<StoreLock, StoreError> {
        let path = self.lock_path();
        let file = fs_err::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)?;
        let locked = if exclusive {
            file.file().lock()
        } else {
            file.file().lock_shared()
        };
        locked.map_err(|source| StoreError::Lock { path, source })?;
        Ok(StoreLock { _file: file })
    }

    /// Removes temporary files older than `age` that killed processes left
    /// in the blob directory and directly in each bucket. Entries are never
    /// touched, and the walk never enters an entry's tree (a rootfs holds a
    /// hundred thousand files): temporary trees have owners, see
    /// `kiln_deb::scratch`.
    pub fn sweep_temporaries(&self, age: std::time::Duration) -> Result<usize, StoreError> {
        let mut removed = 0;
        let mut dirs = vec![self.blob_dir()];
        for top in fs_err::read_dir(&self.root)? {
            let top = top?;
            if top.file_type()?.is_dir() && top.file_name() != "blobs" {
                dirs.push(top.path());
            }
        }
        for dir in dirs {
            let Ok(entries) = fs_err::read_dir(&dir) else {
                continue;
            };
            for entry in entries {
                let entry = entry?;
                let meta = entry.metadata()?;
                let is_temp = entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX);
                let old = meta
                    .modified()
                    .ok()
                    .and_then(|m| m.elapsed().ok())
                    .is_some_and(|elapsed| elapsed >= age);
                if is_temp && old && meta.is_file() {
                    fs_err::remove_file(entry.path())?;
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }
}

/// The store root the environment asks for: `KILN_CACHE`, else
/// `$XDG_CACHE_HOME/kiln`, else `$HOME/.cache/kiln`. Empty values count as
/// unset, as the XDG specification says.
pub fn default_root(
    kiln_cache: Option<PathBuf>,
    xdg_cache_home: Option<PathBuf>,
    home: Option<PathBuf>,
) -> Option<PathBuf> {
    let set = |p: Option<PathBuf>| p.filter(|p| !p.as_os_str().is_empty());
    set(kiln_cache)
        .or_else(|| set(xdg_cache_home).map(|p| p.join("kiln")))
        .or_else(|| set(home).map(|p| p.join(".cache/kiln")))
}

/// A directory of the store keyed by relative paths of the caller's choosing.
#[derive(Debug, Clone)]
pub struct Bucket {
    dir: PathBuf,
    name: String,
}

impl Bucket {
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where `key` (a relative path such as `releases/abc/bookworm`) lives.
    pub fn path(&self, key: &str) -> Result<PathBuf, StoreError> {
        check_key(&self.name, key)?;
        Ok(self.dir.join(key))
    }

    /// The entry's bytes, or `None` if there is none.
    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let path = self.path(key)?;
        if !path.is_file() {
            return Ok(None);
        }
        Ok(Some(fs_err::read(path)?))
    }

    /// Writes an entry atomically, replacing any previous one.
    pub fn put(&self, key: &str, bytes: &[u8]) -> Result<Entry, StoreError> {
        let mut staged = self.stage(key)?;
        staged.write_all(bytes)?;
        self.commit(staged, key, &Expected::default(), key)
    }

    /// Starts writing the entry `key`.
    pub fn stage(&self, key: &str) -> Result<Staged, StoreError> {
        let path = self.path(key)?;
        let parent = path.parent().unwrap_or(&self.dir);
        fs_err::create_dir_all(parent)?;
        Staged::new_in(parent)
    }

    /// Verifies staged content and renames it into place as `key`.
    pub fn commit(
        &self,
        staged: Staged,
        key: &str,
        expected: &Expected,
        what: &str,
    ) -> Result<Entry, StoreError> {
        let path = self.path(key)?;
        let size = staged.size();
        let sha256 = staged.commit(expected, what, &path)?;
        Ok(Entry { path, sha256, size })
    }

    /// The names of the entries directly under the directory `key` (`""`
    /// for the bucket's top), sorted; temporary files are not entries.
    pub fn list(&self, key: &str) -> Result<Vec<String>, StoreError> {
        let dir = if key.is_empty() {
            self.dir.clone()
        } else {
            self.path(key)?
        };
        if !dir.is_dir() {
            return Ok(Vec::new());
        }
        let mut names = Vec::new();
        for entry in fs_err::read_dir(&dir)? {
            let name = entry?.file_name().to_string_lossy().into_owned();
            if !name.starts_with(TEMP_PREFIX) {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }
}

/// Keys are plain relative paths: nothing may escape the bucket or collide
/// with temporary files.
fn check_key(bucket: &str, key: &str) -> Result<(), StoreError> {
    let bad = |why| StoreError::BadKey {
        bucket: bucket.to_string(),
        key: key.to_string(),
        why,
    };
    if key.is_empty() {
        return Err(bad("it is empty"));
    }
    for c in Path::new(key).components() {
        match c {
            Component::Normal(part) if !part.to_string_lossy().starts_with(TEMP_PREFIX) => {}
            Component::Normal(_) => return Err(bad("it starts like a temporary file")),
            _ => return Err(bad("it must be a plain relative path")),
        }
    }
    Ok(())
}
