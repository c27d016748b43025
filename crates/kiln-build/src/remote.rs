//! The remote cache (`kiln build --cache REGISTRY/REPO`): root filesystems
//! shared through an OCI registry, keyed by their cache key, so a machine
//! that never built an image's parent gets its tree from the registry
//! instead of fetching its packages and running dpkg.
//!
//! One entry per rootfs key: a manifest tagged `rootfs-KEY`, with
//! `artifactType` [`ARTIFACT_TYPE`], whose only layer is the image's OCI
//! layer (the very blob the build puts in the OCI image: the whole tree for
//! a base, the diff against the parent for a child) and whose config holds
//! what a tar cannot say: the root directory's owner, mode and time, the
//! times of entries a diff does not carry, the parent's key. A tree comes
//! back as the copy of its parent's tree plus that layer, digests checked
//! before anything is unpacked and the diff_id while it is, and is renamed
//! into the store only when all of it matched.
//!
//! The registry is a cache, never a dependency: unreachable, a miss or an
//! entry that does not verify is a note in the report and the stage builds
//! locally.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use kiln_image::{MEDIA_TYPE_LAYER_GZIP, MEDIA_TYPE_MANIFEST};
use kiln_registry::{BlobSource, Client, Fetched, Reference, Target};
use kiln_store::Digest;
use kiln_store::Store;
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::progress::Progress;
use crate::push::RegistryOptions;
use crate::stages::{self, Built, BuiltLayer};
use crate::stages::{LayerRecord, StageRecord};
use crate::{fsutil, keys};

/// The `artifactType` of a cache entry.
pub const ARTIFACT_TYPE: &str = "application/vnd.kiln.rootfs.v1";
const CONFIG_MEDIA_TYPE: &str = "application/vnd.kiln.rootfs.config.v1+json";

/// `--cache-mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum CacheMode {
    /// Use entries, never push (builds of untrusted changes).
    Read,
    /// Use entries and push what was built here.
    #[default]
    Readwrite,
}

/// Where the remote cache is and how to use it.
#[derive(Debug, Clone)]
pub struct RemoteCache {
    /// `REGISTRY/REPO`.
    pub reference: String,
    pub mode: CacheMode,
    pub registry: RegistryOptions,
}

/// What the remote cache did for a build (`remote_cache` in its report).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RemoteReport {
    pub cache: String,
    pub mode: CacheMode,
    /// Images whose root filesystem came from the registry.
    pub restored: Vec<String>,
    /// Images whose root filesystem this build pushed.
    pub pushed: Vec<String>,
    /// Misses, an unreachable registry, refused entries: never failures.
    pub notes: Vec<String>,
}

/// The config blob of an entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct EntryConfig {
    key: String,
    parent: Option<String>,
    image: String,
    layer: LayerRecord,
    /// The root directory: mode, uid, gid, mtime (seconds, nanoseconds).
    root: (u32, u32, u32, i64, u32),
    /// Entries whose time or xattrs the layer does not carry.
    entries: Vec<EntryMeta>,
}

/// What a restore sets on one entry after the layer.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct EntryMeta {
    path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mtime: Option<(i64, u32)>,
    /// Name and hex value (`None`: removed) of xattrs layers leave out.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    xattrs: Vec<(String, Option<String>)>,
}

pub(crate) struct Remote {
    client: Option<Client>,
    mode: CacheMode,
    pub report: RemoteReport,
    /// Keys of root filesystems that came from the registry.
    restored_keys: Vec<String>,
    /// The registry's answer for each key asked about: [`Remote::holds`]
    /// and [`Remote::restore`] ask once between them.
    entries: HashMap<String, Option<Fetched>>,
}

impl Remote {
    /// Parses the reference (a malformed one is the user's error) and
    /// connects; a registry that cannot be reached is a note.
    pub(crate) fn open(cache: &RemoteCache) -> Result<Remote, Error> {
        let reference = Reference::parse(&cache.reference)?;
        if reference.target != Target::None {
            return Err(Error::Registry(kiln_registry::RegistryError::BadReference(
                format!(
                    "{} (a cache is a repository, without tag or digest)",
                    cache.reference
                ),
            )));
        }
        let mut report = RemoteReport {
            cache: cache.reference.clone(),
            mode: cache.mode,
            ..RemoteReport::default()
        };
        let client = match cache.registry.client(&reference) {
            Ok(c) => Some(c),
            Err(e) => {
                report.notes.push(format!("remote cache not used: {e}"));
                None
            }
        };
        Ok(Remote {
            client,
            mode: cache.mode,
            report,
            restored_keys: Vec::new(),
            entries: HashMap::new(),
        })
    }

    /// The manifest the registry holds for `key`, asked once.
    fn entry(&mut self, key: &str) -> Result<Option<Fetched>, Miss> {
        if let Some(known) = self.entries.get(key) {
            return Ok(known.clone());
        }
        let Some(client) = &self.client else {
            return Ok(None);
        };
        let fetched = client.manifest(&Target::Tag(tag(key))).map_err(registry)?;
        self.entries.insert(key.to_string(), fetched.clone());
        Ok(fetched)
    }

    /// Whether the registry has an entry for `key` (a lookup only; the
    /// entry is checked when restored).
    pub(crate) fn holds(&mut self, key: &str) -> bool {
        matches!(self.entry(key), Ok(Some(_)))
    }

    pub(crate) fn was_restored(&self, key: &str) -> bool {
        self.restored_keys.iter().any(|k| k == key)
    }

    /// The root filesystem of `key` from the registry, when the store lacks
    /// it and the registry has a sound entry; `None` otherwise (the stage
    /// then builds as usual).
    pub(crate) fn restore(
        &mut self,
        store: &Store,
        def: &kiln_spec::Definition,
        parent: Option<&Built>,
        key: &str,
        progress: &dyn Progress,
        stages: &mut Vec<StageRecord>,
    ) -> Result<Option<Built>, Error> {
        let (image, version) = (def.image.name.as_str(), def.image.version.as_str());
        let started = Instant::now();
        let bucket = store.bucket(keys::ROOTFS_STAGE)?;
        let dir = bucket.dir().join(key);
        if self.client.is_none() || bucket.complete_tree(key)?.is_some() {
            return Ok(None);
        }
        let fetched = match self.entry(key) {
            Ok(None) => {
                self.report
                    .notes
                    .push(format!("rootfs {image}: not in the remote cache"));
                return Ok(None);
            }
            Ok(Some(manifest)) => {
                let tmp = stages::tmp_dir(bucket.dir(), key)?;
                let client = self
                    .client
                    .as_ref()
                    .ok_or_else(|| Error::Internal("the remote cache's client went away".into()))?;
                let fetched =
                    fetch_tree(client, store, image, parent, key, &manifest, &tmp, progress);
                if fetched.is_err() {
                    let _ = fsutil::remove_tree(&tmp);
                    fsutil::release_tmp(&tmp);
                }
                fetched.map(|()| tmp)
            }
            Err(why) => Err(why),
        };
        let tmp = match fetched {
            Ok(tmp) => tmp,
            Err(why) => {
                progress.step(&format!("rootfs {image}: remote cache not used: {why}"));
                self.report
                    .notes
                    .push(format!("rootfs {image}: remote cache not used: {why}"));
                if why.unreachable {
                    self.client = None;
                }
                return Ok(None);
            }
        };
        let placed = stages::place(&bucket, key, &tmp, &dir);
        fsutil::release_tmp(&tmp);
        placed?;
        bucket.mark_complete(key)?;
        progress.step(&format!("rootfs {image}: from remote cache"));
        self.report.restored.push(image.to_string());
        self.restored_keys.push(key.to_string());
        stages.push(StageRecord {
            stage: "rootfs".into(),
            image: image.into(),
            key: key.into(),
            cached: true,
            seconds: started.elapsed().as_secs_f64(),
            note: Some("from remote cache".into()),
            remote: true,
        });
        Ok(Some(Built {
            key: key.to_string(),
            root: dir,
            image: image.to_string(),
            version: version.to_string(),
        }))
    }

    /// Pushes the root filesystem of `built` (its layer `layer`) unless the
    /// registry has it or it came from there. Failures are notes.
    pub(crate) fn push(
        &mut self,
        built: &Built,
        parent: Option<&Built>,
        layer: &BuiltLayer,
        progress: &dyn Progress,
    ) {
        if self.mode != CacheMode::Readwrite || self.was_restored(&built.key) {
            return;
        }
        let Some(client) = &self.client else {
            return;
        };
        match push_entry(client, built, parent, layer, progress) {
            Ok(true) => self.report.pushed.push(built.image.clone()),
            Ok(false) => {}
            Err(why) => {
                self.report.notes.push(format!(
                    "rootfs {}: not pushed to the remote cache: {why}",
                    built.image
                ));
                if why.unreachable {
                    self.client = None;
                }
            }
        }
    }
}

/// Why the cache was not used; `unreachable` stops asking the registry.
#[derive(Debug)]
struct Miss {
    why: String,
    unreachable: bool,
}

impl std::fmt::Display for Miss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.why)
    }
}

fn refused(why: impl std::fmt::Display) -> Miss {
    Miss {
        why: why.to_string(),
        unreachable: false,
    }
}

fn registry(e: kiln_registry::RegistryError) -> Miss {
    let unreachable = matches!(e, kiln_registry::RegistryError::Transport { .. });
    Miss {
        why: e.to_string(),
        unreachable,
    }
}

fn tag(key: &str) -> String {
    format!("rootfs-{key}")
}

/// Assembles the tree of `key` at `tmp` from the registry's entry
/// `manifest`.
#[allow(clippy::too_many_arguments)]
fn fetch_tree(
    client: &Client,
    store: &Store,
    image: &str,
    parent: Option<&Built>,
    key: &str,
    manifest: &Fetched,
    tmp: &Path,
    progress: &dyn Progress,
) -> Result<(), Miss> {
    let m: kiln_image::Manifest = serde_json::from_slice(&manifest.bytes)
        .map_err(|e| refused(format!("its entry is not a manifest: {e}")))?;
    if m.artifact_type.as_deref() != Some(ARTIFACT_TYPE) || m.layers.len() != 1 {
        return Err(refused("its entry is not a kiln rootfs"));
    }
    let mut config_bytes = Vec::new();
    client
        .pull_blob(&m.config.digest, Some(m.config.size), &mut config_bytes)
        .map_err(registry)?;
    let config: EntryConfig = serde_json::from_slice(&config_bytes)
        .map_err(|e| refused(format!("its config is not kiln's: {e}")))?;
    let layer = &m.layers[0];
    if config.key != key
        || config.parent.as_deref() != parent.map(|p| p.key.as_str())
        || config.layer.digest != layer.digest.to_string()
        || config.layer.size != layer.size
    {
        return Err(refused("its entry does not match its key"));
    }
    // The layer goes into the store's blobs, where the layer stage and the
    // OCI image read it: a held copy is re-hashed (and evicted if damaged),
    // a pulled one is verified as it streams in. It is unpacked as it
    // streams too (download, inflate, unpack: three threads), into a
    // temporary tree that is placed only once both its digest and its
    // diff_id matched.
    let held = store.intact_blob(&layer.digest).map_err(refused)?;
    progress.step(&format!(
        "rootfs {image}: {} its layer ({} MiB)",
        if held.is_some() {
            "unpacking"
        } else {
            "fetching and unpacking"
        },
        layer.size >> 20
    ));
    match parent {
        Some(p) => fsutil::copy_tree(&p.root, tmp).map_err(refused)?,
        None => fs_err::create_dir_all(tmp).map_err(refused)?,
    }
    let blob = store.blob_path(&layer.digest);
    let unpack = |tar: &mut kiln_deb::pipe::PipeReader| -> Result<(), Miss> {
        kiln_rootfs::apply_layer(tmp, tar, &blob).map_err(refused)?;
        std::io::copy(tar, &mut std::io::sink()).map_err(refused)?;
        Ok(())
    };
    let inflate =
        |gz: Box<dyn Read + Send>| kiln_store::HashingReader::new(flate2::read::GzDecoder::new(gz));
    let diff_id = match held {
        Some(path) => {
            let file = fs_err::File::open(&path).map_err(refused)?;
            let (unpacked, tar) = kiln_deb::pipe::read_ahead(
                inflate(Box::new(std::io::BufReader::new(file))),
                unpack,
            );
            unpacked?;
            tar.digest()
        }
        None => {
            let mut staged = store.stage_blob().map_err(refused)?;
            let (to_unpack, from_download) = kiln_deb::pipe::pipe();
            let (pulled, unpacked, diff_id) = std::thread::scope(|scope| {
                let download = scope.spawn(|| {
                    let mut tee = Tee {
                        file: &mut staged,
                        pipe: Some(to_unpack),
                    };
                    let pulled = client.pull_blob(&layer.digest, Some(layer.size), &mut tee);
                    match (&pulled, tee.pipe.take()) {
                        (Ok(_), Some(pipe)) => drop(pipe.finish()),
                        (Err(e), Some(pipe)) => pipe.fail(std::io::Error::other(e.to_string())),
                        (_, None) => {}
                    }
                    pulled
                });
                let (unpacked, tar) =
                    kiln_deb::pipe::read_ahead(inflate(Box::new(from_download)), unpack);
                let diff_id = tar.digest();
                // Drops the download's reading end before waiting for the
                // download: one still running after the unpack stopped early
                // (a corrupt layer) must end, not wait on a full pipe.
                drop(tar);
                (download.join(), unpacked, diff_id)
            });
            // A broken or corrupt download explains a failed unpack: its
            // error goes first.
            pulled
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                .map_err(registry)?;
            let expected = kiln_store::Expected::new(layer.digest, layer.size);
            store
                .commit_blob(staged, &expected, &layer.digest.to_string())
                .map_err(refused)?;
            unpacked?;
            diff_id
        }
    };
    if diff_id.to_string() != config.layer.diff_id {
        return Err(refused(format!(
            "its layer unpacks to {diff_id}, not {}",
            config.layer.diff_id
        )));
    }
    for e in &config.entries {
        let xattrs = e
            .xattrs
            .iter()
            .map(|(name, value)| {
                let value = value.as_deref().map(hex::decode).transpose();
                value.map(|v| (name.as_bytes().to_vec(), v))
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| refused(format!("its config holds a bad xattr value: {e}")))?;
        let meta = kiln_rootfs::Metadata {
            owner: None,
            mtime: e.mtime,
            xattrs,
        };
        kiln_rootfs::set_metadata(tmp, e.path.as_bytes(), &meta).map_err(refused)?;
    }
    let (mode, uid, gid, secs, nsecs) = config.root;
    let meta = kiln_rootfs::Metadata {
        owner: Some((mode, uid, gid)),
        mtime: Some((secs, nsecs)),
        xattrs: Vec::new(),
    };
    kiln_rootfs::set_metadata(tmp, b"", &meta).map_err(refused)?;
    // The layer stage finds its record as if it had written the layer.
    store
        .bucket(stages::LAYERS)
        .and_then(|b| {
            let json = serde_json::to_vec_pretty(&config.layer).unwrap_or_default();
            b.put(&format!("{key}.json"), &json)
        })
        .map_err(refused)?;
    Ok(())
}

/// Pushes the entry of `built`: `false` when the registry had it.
fn push_entry(
    client: &Client,
    built: &Built,
    parent: Option<&Built>,
    layer: &BuiltLayer,
    progress: &dyn Progress,
) -> Result<bool, Miss> {
    let tag = tag(&built.key);
    if client.manifest_digest(&tag).map_err(registry)?.is_some() {
        return Ok(false);
    }
    progress.step(&format!(
        "rootfs {}: pushing to the remote cache",
        built.image
    ));
    let root = fs_err::symlink_metadata(&built.root).map_err(refused)?;
    let config = EntryConfig {
        key: built.key.clone(),
        parent: parent.map(|p| p.key.clone()),
        image: built.image.clone(),
        layer: layer.record.clone(),
        root: (
            root.mode() & 0o7777,
            root.uid(),
            root.gid(),
            root.mtime(),
            root.mtime_nsec() as u32,
        ),
        entries: beyond_the_layer(&built.root, parent.map(|p| p.root.as_path()))
            .map_err(refused)?,
    };
    let config_bytes = serde_json::to_vec(&config).map_err(refused)?;
    let config_digest = Digest::of(&config_bytes);
    client
        .push_blob(
            &config_digest,
            config_bytes.len() as u64,
            BlobSource::Bytes(&config_bytes),
            None,
        )
        .map_err(registry)?;
    client
        .push_blob(
            &layer.layer.digest,
            layer.layer.size,
            BlobSource::File(&layer.layer.path),
            None,
        )
        .map_err(registry)?;
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPE_MANIFEST,
        "artifactType": ARTIFACT_TYPE,
        "config": {
            "mediaType": CONFIG_MEDIA_TYPE,
            "digest": config_digest.to_string(),
            "size": config_bytes.len(),
        },
        "layers": [{
            "mediaType": MEDIA_TYPE_LAYER_GZIP,
            "digest": layer.layer.digest.to_string(),
            "size": layer.layer.size,
        }],
        "annotations": {
            "org.opencontainers.image.title": format!("{} {} rootfs", built.image, built.version),
        },
    });
    let bytes = serde_json::to_vec(&manifest).map_err(refused)?;
    client
        .put_manifest(&tag, MEDIA_TYPE_MANIFEST, &bytes)
        .map_err(registry)?;
    Ok(true)
}

/// What a restore of `tree` needs beyond its layer, entry by entry: the
/// time of entries with sub-second parts (a tar has whole seconds) or, for a
/// child, whose time differs from the parent's (a diff layer leaves out
/// entries whose content did not change, and directories it only adds
/// to); and the xattrs layers leave out (POSIX ACLs systemd sets on
/// /var/log/journal, say), which `mke2fs -d` copies into disks.
fn beyond_the_layer(tree: &Path, parent: Option<&Path>) -> std::io::Result<Vec<EntryMeta>> {
    let mut out = Vec::new();
    let mut todo = vec![PathBuf::new()];
    while let Some(rel) = todo.pop() {
        let dir = tree.join(&rel);
        let mut names: Vec<_> = std::fs::read_dir(&dir)
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", dir.display())))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()?;
        names.sort();
        for name in names {
            let rel = rel.join(&name);
            let path = tree.join(&rel);
            let meta = std::fs::symlink_metadata(&path)?;
            let before = parent.map(|p| p.join(&rel));
            let theirs = before
                .as_deref()
                .and_then(|p| std::fs::symlink_metadata(p).ok());
            let (secs, nsecs) = (meta.mtime(), meta.mtime_nsec() as u32);
            let moved = nsecs != 0
                || theirs
                    .as_ref()
                    .is_some_and(|m| m.mtime() != secs || m.mtime_nsec() as u32 != nsecs);
            let ours = extra_xattrs(&path)?;
            let mut xattrs: Vec<(String, Option<String>)> = ours
                .iter()
                .map(|(n, v)| (n.clone(), Some(hex::encode(v))))
                .collect();
            if theirs.is_some()
                && let Some(before) = &before
            {
                for (n, _) in extra_xattrs(before)? {
                    if !ours.iter().any(|(o, _)| *o == n) {
                        xattrs.push((n, None));
                    }
                }
            }
            if moved || !xattrs.is_empty() {
                out.push(EntryMeta {
                    path: String::from_utf8_lossy(OsStr::as_bytes(rel.as_os_str())).into_owned(),
                    mtime: moved.then_some((secs, nsecs)),
                    xattrs,
                });
            }
            if meta.is_dir() {
                todo.push(rel);
            }
        }
    }
    Ok(out)
}

/// The xattrs of `path` (not followed) that layers do not carry.
fn extra_xattrs(path: &Path) -> std::io::Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    for name in xattr::list(path)? {
        let bytes = name.as_bytes();
        if kiln_image::xattr_kept(bytes) {
            continue;
        }
        if let Some(value) = xattr::get(path, &name)? {
            out.push((String::from_utf8_lossy(bytes).into_owned(), value));
        }
    }
    out.sort();
    Ok(out)
}

/// What a download writes: the store's staged blob, and the unpacking.
/// An unpack that stopped (a corrupt layer) lets the download go on to its
/// end, where its digest is checked: that verdict names what was wrong.
struct Tee<'a, W> {
    file: &'a mut W,
    pipe: Option<kiln_deb::pipe::PipeWriter>,
}

impl<W: std::io::Write> std::io::Write for Tee<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.file.write_all(buf)?;
        if let Some(pipe) = &mut self.pipe
            && pipe.write_all(buf).is_err()
        {
            self.pipe = None;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

/// After the layers stage: pushes every root filesystem of the chain the
/// registry lacks, with its layer (written now when no OCI image was asked
/// for, so `layers` is empty).
pub(crate) fn push_all(
    remote: &mut Remote,
    store: &Store,
    built: &[Built],
    layers: &[BuiltLayer],
    sde: i64,
    progress: &dyn Progress,
) -> Result<(), Error> {
    if remote.mode != CacheMode::Readwrite || remote.client.is_none() {
        return Ok(());
    }
    for (i, b) in built.iter().enumerate() {
        let parent = i.checked_sub(1).map(|p| &built[p]);
        let written;
        let layer = match layers.get(i) {
            Some(l) => l,
            None => {
                written = stages::layer(store, b, parent, sde, progress, &mut Vec::new())?;
                &written
            }
        };
        remote.push(b, parent, layer, progress);
    }
    Ok(())
}
