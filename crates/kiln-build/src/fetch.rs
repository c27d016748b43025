//! The fetch stage: every `.deb` a lock pins, verified into the store.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use kiln_archive::Mirrors;
use kiln_lock::LockedPackage;
use kiln_spec::Repository;
use kiln_store::{Digest, Expected, Fetcher, Retry, Store};

use crate::error::Error;
use crate::fsutil;
use crate::progress::Progress;

/// Downloads at once: enough to hide latency, few enough to be polite.
const PARALLEL: usize = 6;

/// A locked package and its blob in the store, verified on entry; the
/// rootfs stage hashes it again as it unpacks it, against `sha256`.
#[derive(Debug, Clone)]
pub(crate) struct Fetched {
    pub package: LockedPackage,
    pub path: PathBuf,
    pub sha256: Digest,
}

/// Makes sure the store holds every package of `packages`, downloading the
/// missing ones in parallel (bounded). Each download is checked against the
/// lock's sha256 and size before it enters the store, so a killed run leaves
/// only whole, verified blobs and the next run resumes where it stopped.
/// Offline, nothing is downloaded and the missing blobs are listed.
/// Local packages (`[packages] local`) are read from their file, relative
/// to `dir` (the definition's directory), offline too; packages of a
/// `[[repository]]` come from its URI.
pub(crate) fn fetch(
    store: &Store,
    packages: &[LockedPackage],
    mirrors: Option<&Mirrors>,
    repositories: &[&Repository],
    dir: &Path,
    progress: &dyn Progress,
) -> Result<Vec<Fetched>, Error> {
    let mut have = Vec::new();
    let mut missing = Vec::new();
    for p in packages {
        let sha = Digest::from_hex(&p.sha256).map_err(|_| Error::BadLockDigest {
            package: p.name.clone(),
            sha256: p.sha256.clone(),
        })?;
        let stored = stored_blob(store, &sha, p.size)?;
        if p.is_local() && stored.is_none() {
            have.push(local(store, p, sha, &dir.join(&p.path))?);
            continue;
        }
        match stored {
            Some(path) => have.push(Fetched {
                package: p.clone(),
                path,
                sha256: sha,
            }),
            None => missing.push((p, sha)),
        }
    }
    if missing.is_empty() {
        return Ok(have);
    }
    let Some(mirrors) = mirrors else {
        return Err(Error::OfflineMissing {
            missing: missing
                .iter()
                .map(|(p, sha)| format!("{} {} ({sha})", p.name, p.version))
                .collect(),
        });
    };
    let total: u64 = missing.iter().map(|(p, _)| p.size).sum();
    let count = missing.len();
    let done_bytes = AtomicU64::new(0);
    let fetcher = Fetcher::new(Retry::default());
    progress.counter("fetching packages", 0, total);
    // Downloads wait on the network: PARALLEL at once, off the CPU pool.
    let results = kiln_deb::par::bounded(&missing, PARALLEL, |&(p, sha)| {
        let r = package_url(mirrors, repositories, p)
            .and_then(|url| {
                fetcher
                    .fetch_blob(store, &url, &Expected::new(sha, p.size))
                    .map_err(|source| Error::Fetch {
                        package: format!("{} {}", p.name, p.version),
                        source,
                    })
            })
            .map(|entry| Fetched {
                package: p.clone(),
                path: entry.path,
                sha256: sha,
            });
        let bytes = done_bytes.fetch_add(p.size, Ordering::Relaxed) + p.size;
        progress.counter("fetching packages", bytes, total);
        r
    });
    for r in results {
        have.push(r?);
    }
    // Said only once every download is in: a failure above is the message.
    progress.step(&format!("fetched {count} packages ({} MiB)", total >> 20));
    have.sort_by(|a, b| a.package.name.cmp(&b.package.name));
    Ok(have)
}

/// Copies a local `.deb` into the store, checked against the lock.
fn local(store: &Store, p: &LockedPackage, sha: Digest, path: &Path) -> Result<Fetched, Error> {
    let bad = |why: String| Error::LocalDeb {
        path: path.to_path_buf(),
        why,
    };
    let mut file = fs_err::File::open(path).map_err(|e| bad(e.to_string()))?;
    let entry = store
        .put_blob_from(
            &mut file,
            &Expected::new(sha, p.size),
            &path.display().to_string(),
        )
        .map_err(|e| bad(format!("it is not the file `kiln lock` pinned: {e}")))?;
    Ok(Fetched {
        package: p.clone(),
        path: entry.path,
        sha256: sha,
    })
}

/// The stored blob of a package, unless its size already shows it is not
/// the one the lock pins (that costs one stat; its bytes are hashed as the
/// rootfs stage unpacks it). A blob of the wrong size is evicted.
fn stored_blob(store: &Store, sha: &Digest, size: u64) -> Result<Option<PathBuf>, Error> {
    let Some(path) = store.blob(sha) else {
        return Ok(None);
    };
    let len = fs_err::metadata(&path).map_err(fsutil::io(&path))?.len();
    if len == size {
        return Ok(Some(path));
    }
    store.evict(sha)?;
    Ok(None)
}

/// Where packages come from, for fetching them again.
pub(crate) struct Sources<'a> {
    pub mirrors: Option<&'a Mirrors>,
    pub repositories: &'a [&'a Repository],
    /// The definition's directory, which `[packages] local` is relative to.
    pub dir: &'a Path,
    pub progress: &'a dyn Progress,
}

/// Runs `stage` (the rootfs stage) over `debs`. When it finds a package
/// file damaged since it was verified into the store, the file is evicted,
/// fetched again (and verified on download) and the stage runs again; a
/// file found damaged twice is the error, naming the package and the path.
/// `head_start` goes to the first run only: a failed run discards it.
pub(crate) fn refetching<T, H>(
    store: &Store,
    mut debs: Vec<Fetched>,
    sources: &Sources<'_>,
    head_start: Option<H>,
    mut stage: impl FnMut(&[Fetched], Option<H>) -> Result<T, Error>,
) -> Result<T, Error> {
    let mut head_start = head_start;
    let mut refetched: Vec<PathBuf> = Vec::new();
    loop {
        let path = match stage(&debs, head_start.take()) {
            Err(Error::Rootfs(kiln_rootfs::RootfsError::DebMismatch { path, .. }))
                if !refetched.contains(&path) =>
            {
                path
            }
            other => return other,
        };
        let Some(i) = debs.iter().position(|d| d.path == path) else {
            return Err(Error::Internal(format!(
                "{} was found damaged but is no package of this image",
                path.display()
            )));
        };
        let p = debs[i].package.clone();
        sources.progress.step(&format!(
            "{} {}: {} was damaged since it was stored; fetching it again",
            p.name,
            p.version,
            path.display()
        ));
        store.evict(&debs[i].sha256)?;
        let again = fetch(
            store,
            std::slice::from_ref(&p),
            sources.mirrors,
            sources.repositories,
            sources.dir,
            sources.progress,
        )?;
        debs[i] = again
            .into_iter()
            .next()
            .ok_or_else(|| Error::Internal(format!("fetching {} again gave nothing", p.name)))?;
        refetched.push(path);
    }
}

/// The package's URL: a repository's packages live under its URI, security
/// updates on the security mirror.
fn package_url(
    mirrors: &Mirrors,
    repositories: &[&Repository],
    p: &LockedPackage,
) -> Result<String, Error> {
    let root = match &p.origin {
        Some(name) => {
            let repo = repositories.iter().find(|r| &r.name == name);
            &repo
                .ok_or_else(|| Error::StaleLock {
                    path: PathBuf::from(crate::chain::LOCKFILE),
                    changes: vec![format!(
                        "{} comes from repository {name}, which no definition of the chain has",
                        p.name
                    )],
                })?
                .uri
        }
        None if p.suite.ends_with("-security") => &mirrors.security,
        None => &mirrors.debian,
    };
    Ok(format!("{}/{}", root.trim_end_matches('/'), p.path))
}

/// The mirrors for a suite, unless offline.
pub(crate) fn mirrors(
    explicit: Option<&str>,
    suite: &str,
    offline: bool,
) -> Result<Option<Mirrors>, Error> {
    if offline {
        return Ok(None);
    }
    Mirrors::discover(explicit, suite, Path::new("/"))
        .map(Some)
        .map_err(|e| Error::Archive(e.into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_rootfs::RootfsError;

    /// A local package (no network needed to fetch it again) in `store`.
    fn local_package(dir: &Path, store: &Store) -> Fetched {
        let bytes = b"!<arch>\nnot really a package, but bytes with a digest\n";
        fs_err::write(dir.join("app.deb"), bytes).unwrap();
        let package = LockedPackage {
            name: "app".into(),
            version: "1".into(),
            architecture: "amd64".into(),
            suite: "local".into(),
            path: "app.deb".into(),
            size: bytes.len() as u64,
            sha256: Digest::of(bytes).hex(),
            reason: "requested".into(),
            needed_by: Vec::new(),
            origin: Some(kiln_lock::LOCAL_ORIGIN.into()),
        };
        let got = fetch(store, &[package], None, &[], dir, &crate::Quiet).unwrap();
        got.into_iter().next().unwrap()
    }

    fn mismatch(f: &Fetched) -> Error {
        Error::Rootfs(RootfsError::DebMismatch {
            package: f.package.name.clone(),
            version: f.package.version.clone(),
            path: f.path.clone(),
            source: Box::new(kiln_store::StoreError::NoRoot),
        })
    }

    #[test]
    fn a_damaged_package_is_fetched_again_once_and_damage_twice_is_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("store")).unwrap();
        let deb = local_package(dir.path(), &store);
        let sources = Sources {
            mirrors: None,
            repositories: &[],
            dir: dir.path(),
            progress: &crate::Quiet,
        };

        // Damaged once: evicted, copied in again from its source, built again.
        fs_err::write(&deb.path, b"damaged").unwrap();
        let mut runs = 0;
        let built = refetching(&store, vec![deb.clone()], &sources, Some(()), |debs, h| {
            runs += 1;
            if runs == 1 {
                assert!(h.is_some(), "the head start goes to the first run");
                return Err(mismatch(&debs[0]));
            }
            assert!(h.is_none(), "a failed run discarded the head start");
            Ok(fs_err::read(&debs[0].path).unwrap())
        })
        .unwrap();
        assert_eq!(runs, 2);
        assert_eq!(Digest::of(&built), deb.sha256);

        // Damaged again after fetching it again: the error, naming the file.
        let mut runs = 0;
        let err = refetching(
            &store,
            vec![deb.clone()],
            &sources,
            None::<()>,
            |debs, _| {
                runs += 1;
                Err::<(), _>(mismatch(&debs[0]))
            },
        )
        .unwrap_err();
        assert_eq!(runs, 2);
        assert!(
            err.to_string().contains(&deb.path.display().to_string()),
            "{err}"
        );
    }
}
