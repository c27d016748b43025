//! One suite of one mirror: its signed `InRelease` and the `Packages` indices
//! it vouches for, fetched, verified and kept in the store.
//!
//! Store layout: the verified `InRelease` and each verified, decompressed
//! `Packages` are blobs under their own digests; `indices-v1/releases/
//! <mirror>/<suite>/<InRelease digest>` records which InRelease files were
//! fetched for a suite (holding its `Date` in Unix seconds), so an offline run
//! can pick the newest.

use std::io::{Read, Write};
use std::path::PathBuf;

use kiln_deb::release::{IndexEntry, Release, ReleaseError, parse_release};
use kiln_deb::signature::{Keyring, verify_clearsigned};
use kiln_store::{Digest, Expected, FetchError, Fetcher, Staged, Store};

use crate::ArchiveError;

/// The bucket holding the suite records; bump the version when its layout
/// changes and old records are simply never read again.
pub const BUCKET: &str = "indices-v1";

/// The largest InRelease accepted; Debian's are well under 1 MiB.
const INRELEASE_LIMIT: u64 = 32 << 20;

/// What to fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuiteRequest {
    /// Base URI of the archive, such as a [`crate::Mirrors`] field.
    pub mirror: String,
    /// `bookworm`, `bookworm-updates`, `bookworm-security`, `stable`, …
    pub suite: String,
    pub components: Vec<String>,
    /// Debian's name: the `binary-<arch>` indices read.
    pub arch: String,
}

impl SuiteRequest {
    /// `main` for the image's architecture.
    pub fn new(mirror: &str, suite: &str, arch: kiln_deb::Architecture) -> SuiteRequest {
        SuiteRequest {
            mirror: mirror.trim_end_matches('/').to_string(),
            suite: suite.to_string(),
            components: vec!["main".to_string()],
            arch: arch.debian().to_string(),
        }
    }

    fn dists(&self) -> String {
        format!("{}/dists/{}", self.mirror.trim_end_matches('/'), self.suite)
    }

    fn inrelease_url(&self) -> String {
        format!("{}/InRelease", self.dists())
    }
}

/// A suite whose indices are verified and in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuiteIndex {
    pub mirror: String,
    pub suite: String,
    /// The Release `Date`, verbatim and in Unix seconds.
    pub date: String,
    pub date_unix: i64,
    pub valid_until: Option<i64>,
    pub inrelease_sha256: Digest,
    /// The verified InRelease in the store.
    pub inrelease_path: PathBuf,
    /// Fingerprint of the key (or subkey) whose signature verified.
    pub signer: String,
    /// Fingerprint of the primary key `signer` belongs to.
    pub signer_primary: String,
    pub release: Release,
    pub components: Vec<ComponentIndex>,
}

/// One verified, decompressed `Packages` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentIndex {
    pub component: String,
    pub arch: String,
    pub path: PathBuf,
    pub sha256: Digest,
    pub size: u64,
}

/// What the fetch is doing, for a progress display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    Fetching {
        url: String,
    },
    Fetched {
        url: String,
        bytes: u64,
    },
    /// The component's index was already in the store: nothing to download.
    Cached {
        component: String,
        sha256: Digest,
    },
}

/// Fetches and verifies one suite: its `InRelease` against `keyring`, the
/// suite name, `Valid-Until` against `now` (Unix seconds), then each
/// component's `Packages` (`.xz`, else `.gz`, else plain) against the
/// Release's digests. Indices already in the store are not downloaded again.
/// Only verified content is written to the store, and the InRelease only
/// once every index it lists for the request is there.
pub fn fetch_suite(
    store: &Store,
    fetcher: &Fetcher,
    keyring: &Keyring,
    req: &SuiteRequest,
    now: i64,
    progress: &mut dyn FnMut(Progress),
) -> Result<SuiteIndex, ArchiveError> {
    let _lock = store.lock_shared()?;
    let url = req.inrelease_url();
    progress(Progress::Fetching { url: url.clone() });
    let bytes = fetcher.fetch_bytes(&url, INRELEASE_LIMIT)?;
    progress(Progress::Fetched {
        url: url.clone(),
        bytes: bytes.len() as u64,
    });
    let checked = check_inrelease(&bytes, &url, keyring, req, Some(now))?;
    let mut components = Vec::new();
    for component in &req.components {
        let (rel, entry, digest) = listed_index(&checked.release, &url, req, component)?;
        let index = match intact_blob(store, &digest)? {
            Some(path) => {
                progress(Progress::Cached {
                    component: component.clone(),
                    sha256: digest,
                });
                path
            }
            None => fetch_index(
                store,
                fetcher,
                req,
                &checked.release,
                &rel,
                &entry,
                progress,
            )?,
        };
        components.push(ComponentIndex {
            component: component.clone(),
            arch: req.arch.clone(),
            path: index,
            sha256: digest,
            size: entry.size,
        });
    }
    let stored = store.put_blob(&bytes, &Expected::default(), &url)?;
    store.bucket(BUCKET)?.put(
        &record_key(req, Some(&stored.sha256)),
        checked.release.date_unix.to_string().as_bytes(),
    )?;
    Ok(checked.into_index(req, stored.sha256, stored.path, components))
}

/// The offline counterpart of [`fetch_suite`]: the newest InRelease stored
/// for this mirror and suite, verified again against `keyring`, and the
/// indices it lists, from the store alone. `now` checks `Valid-Until` as
/// online; `None` skips that check, for builds pinned by a lock.
pub fn load_suite(
    store: &Store,
    keyring: &Keyring,
    req: &SuiteRequest,
    now: Option<i64>,
) -> Result<SuiteIndex, ArchiveError> {
    let _lock = store.lock_shared()?;
    let offline = |missing: Vec<String>| ArchiveError::Offline {
        mirror: req.mirror.clone(),
        suite: req.suite.clone(),
        missing,
    };
    let bucket = store.bucket(BUCKET)?;
    let mut newest: Option<(i64, Digest)> = None;
    for name in bucket.list(&record_key(req, None))? {
        let Ok(digest) = Digest::from_hex(&name) else {
            continue;
        };
        let key = record_key(req, Some(&digest));
        let date = bucket
            .get(&key)?
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.trim().parse::<i64>().ok())
            .unwrap_or(i64::MIN);
        if newest.is_none_or(|(d, n)| (date, digest) > (d, n)) {
            newest = Some((date, digest));
        }
    }
    let Some((_, digest)) = newest else {
        return Err(offline(vec![format!("a verified {}", req.inrelease_url())]));
    };
    let Some(path) = store.blob(&digest) else {
        return Err(offline(vec![format!(
            "{} (blob {})",
            req.inrelease_url(),
            digest.hex()
        )]));
    };
    let shown = path.display().to_string();
    let bytes = fs_err::read(&path).map_err(kiln_store::StoreError::from)?;
    let checked = check_inrelease(&bytes, &shown, keyring, req, now)?;
    let mut components = Vec::new();
    let mut missing = Vec::new();
    for component in &req.components {
        let (rel, entry, sha256) = listed_index(&checked.release, &shown, req, component)?;
        match intact_blob(store, &sha256)? {
            Some(path) => components.push(ComponentIndex {
                component: component.clone(),
                arch: req.arch.clone(),
                path,
                sha256,
                size: entry.size,
            }),
            None => missing.push(format!("{}/{rel} (sha256 {})", req.dists(), sha256.hex())),
        }
    }
    if !missing.is_empty() {
        return Err(offline(missing));
    }
    Ok(checked.into_index(req, digest, path, components))
}

/// An InRelease that passed every check, before anything is stored.
struct Checked {
    release: Release,
    signer: String,
    signer_primary: String,
}

impl Checked {
    fn into_index(
        self,
        req: &SuiteRequest,
        inrelease_sha256: Digest,
        inrelease_path: PathBuf,
        components: Vec<ComponentIndex>,
    ) -> SuiteIndex {
        SuiteIndex {
            mirror: req.mirror.clone(),
            suite: req.suite.clone(),
            date: self.release.date.clone(),
            date_unix: self.release.date_unix,
            valid_until: self.release.valid_until,
            inrelease_sha256,
            inrelease_path,
            signer: self.signer,
            signer_primary: self.signer_primary,
            release: self.release,
            components,
        }
    }
}

fn check_inrelease(
    bytes: &[u8],
    url: &str,
    keyring: &Keyring,
    req: &SuiteRequest,
    now: Option<i64>,
) -> Result<Checked, ArchiveError> {
    let verified =
        verify_clearsigned(bytes, keyring).map_err(|source| ArchiveError::Signature {
            url: url.to_string(),
            source,
        })?;
    let release = parse_release(&verified.text).map_err(|source| ArchiveError::Release {
        url: url.to_string(),
        source,
    })?;
    // A validly signed Release for another suite is a replay or a
    // misconfigured mirror: either way not what was asked for.
    if !release.serves(&req.suite) {
        return Err(ArchiveError::WrongSuite {
            url: url.to_string(),
            asked: req.suite.clone(),
            suite: release.suite.clone().unwrap_or_else(|| "(none)".into()),
            codename: release.codename.clone().unwrap_or_else(|| "(none)".into()),
        });
    }
    if let (Some(now), Some(until)) = (now, release.valid_until)
        && now > until
    {
        return Err(ArchiveError::Expired {
            url: url.to_string(),
            valid_until: release.valid_until_text.clone().unwrap_or_default(),
        });
    }
    for component in &req.components {
        // Archives that list no Components (rare) are judged by their digests
        // alone. The security archive lists `updates/main` for `main`.
        let listed = release.components.iter().any(|c| {
            c == component
                || c.rsplit_once('/')
                    .is_some_and(|(_, last)| last == component)
        });
        if !release.components.is_empty() && !listed {
            return Err(ArchiveError::NoComponent {
                url: url.to_string(),
                component: component.clone(),
                available: release.components.join(" "),
            });
        }
    }
    Ok(Checked {
        release,
        signer: verified.signer,
        signer_primary: verified.primary,
    })
}

/// The uncompressed `Packages` entry for a component, which names the
/// digest the index is kept under.
fn listed_index(
    release: &Release,
    url: &str,
    req: &SuiteRequest,
    component: &str,
) -> Result<(String, IndexEntry, Digest), ArchiveError> {
    let rel = format!("{component}/binary-{}/Packages", req.arch);
    let entry = release
        .sha256
        .get(&rel)
        .cloned()
        .ok_or_else(|| ArchiveError::Unlisted {
            url: url.to_string(),
            path: rel.clone(),
        })?;
    let digest = Digest::from_hex(&entry.sha256).map_err(|_| ArchiveError::Release {
        url: url.to_string(),
        source: ReleaseError::BadEntry(entry.sha256.clone()),
    })?;
    Ok((rel, entry, digest))
}

#[derive(Clone, Copy)]
enum Compression {
    Xz,
    Gz,
    None,
}

/// Downloads the first available form of the index at `rel` (preferring the
/// smallest), verifies it and stores it decompressed.
fn fetch_index(
    store: &Store,
    fetcher: &Fetcher,
    req: &SuiteRequest,
    release: &Release,
    rel: &str,
    plain: &IndexEntry,
    progress: &mut dyn FnMut(Progress),
) -> Result<PathBuf, ArchiveError> {
    let mut tried = Vec::new();
    for (ext, compression) in [
        (".xz", Compression::Xz),
        (".gz", Compression::Gz),
        ("", Compression::None),
    ] {
        let path = format!("{rel}{ext}");
        let Some(entry) = release.sha256.get(&path) else {
            continue;
        };
        let expected = expected_of(entry, &path, req)?;
        let mut urls = Vec::new();
        // by-hash names never change content, so a mirror updating under us
        // cannot hand us a newer file than the Release we verified.
        if release.acquire_by_hash
            && let Some((dir, _)) = path.rsplit_once('/')
        {
            urls.push(format!(
                "{}/{dir}/by-hash/SHA256/{}",
                req.dists(),
                entry.sha256
            ));
        }
        urls.push(format!("{}/{path}", req.dists()));
        for url in urls {
            progress(Progress::Fetching { url: url.clone() });
            let stage = || match compression {
                Compression::None => store.stage_blob(),
                _ => store.stage_scratch(),
            };
            let staged = match fetcher.fetch(&url, &expected, &stage) {
                Ok(staged) => staged,
                Err(FetchError::NotFound { .. }) => {
                    tried.push(url);
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            progress(Progress::Fetched {
                url: url.clone(),
                bytes: staged.size(),
            });
            let plain_expected = expected_of(plain, rel, req)?;
            let stored = match compression {
                Compression::None => staged,
                Compression::Xz => {
                    let file =
                        fs_err::File::open(staged.path()).map_err(kiln_store::StoreError::from)?;
                    decompress(
                        store,
                        xz2::read::XzDecoder::new_multi_decoder(file),
                        plain,
                        &url,
                    )?
                }
                Compression::Gz => {
                    let file =
                        fs_err::File::open(staged.path()).map_err(kiln_store::StoreError::from)?;
                    decompress(store, flate2::read::MultiGzDecoder::new(file), plain, &url)?
                }
            };
            let what = match compression {
                Compression::None => url.clone(),
                _ => format!("{url} (decompressed)"),
            };
            let entry = store
                .commit_blob(stored, &plain_expected, &what)
                .map_err(|source| ArchiveError::Mismatch { url, source })?;
            return Ok(entry.path);
        }
    }
    Err(ArchiveError::NoIndex {
        url: req.inrelease_url(),
        component: rel.split('/').next().unwrap_or(rel).to_string(),
        arch: req.arch.clone(),
        tried: if tried.is_empty() {
            "nothing: the Release lists no Packages.xz, Packages.gz or Packages".to_string()
        } else {
            tried.join(", ")
        },
    })
}

fn expected_of(
    entry: &IndexEntry,
    path: &str,
    req: &SuiteRequest,
) -> Result<Expected, ArchiveError> {
    let digest = Digest::from_hex(&entry.sha256).map_err(|_| ArchiveError::Release {
        url: req.inrelease_url(),
        source: ReleaseError::BadEntry(format!("{} {path}", entry.sha256)),
    })?;
    Ok(Expected::new(digest, entry.size))
}

/// Streams a decompressed index into a staged blob, stopping one byte past
/// the size the Release promises so a decompression bomb cannot fill the disk.
fn decompress(
    store: &Store,
    decoder: impl Read,
    plain: &IndexEntry,
    url: &str,
) -> Result<Staged, ArchiveError> {
    let mut staged = store.stage_blob()?;
    let mut reader = decoder.take(plain.size.saturating_add(1));
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(source) => {
                return Err(ArchiveError::Decompress {
                    url: url.to_string(),
                    source,
                });
            }
        };
        staged
            .write_all(&buf[..n])
            .map_err(kiln_store::StoreError::from)?;
    }
    Ok(staged)
}

/// `releases/<mirror>/<suite>[/<digest>]`: the mirror is made a safe single
/// path component, with a digest suffix so different URLs never collide.
fn record_key(req: &SuiteRequest, digest: Option<&Digest>) -> String {
    let mirror = req.mirror.trim_end_matches('/');
    let readable = path_safe(mirror);
    let id = &Digest::of(mirror.as_bytes()).hex()[..12];
    let suite = path_safe(&req.suite);
    let base = format!("releases/{readable}-{id}/{suite}");
    match digest {
        Some(d) => format!("{base}/{}", d.hex()),
        None => base,
    }
}

/// `s` with everything but letters, digits, `.` and `-` replaced by `_`.
fn path_safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}
/// The stored index for `digest` if its bytes still hash to it: a cached
/// index is verified against the signed Release each time it is used. A
/// damaged one is removed, so a fetch downloads it again and an offline
/// load reports it missing.
fn intact_blob(store: &Store, digest: &Digest) -> Result<Option<PathBuf>, ArchiveError> {
    Ok(store.intact_blob(digest)?)
}
