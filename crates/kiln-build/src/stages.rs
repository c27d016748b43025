//! The cached stages of a build. Each looks its key up in a versioned store
//! bucket first and, on a miss, builds into a temporary place and renames it
//! into the store, so a killed build leaves nothing half made and two builds
//! of the same key both succeed (the second rename finds the first's). A
//! root filesystem counts as cached only with its completion record, written
//! last (see `kiln_store::Bucket::complete_tree`).

use std::path::{Path, PathBuf};
use std::time::Instant;

use kiln_image::{Attachment, ImageMeta, Layer, LayerInput, LayerSource, TarOptions};
use kiln_spec::{Architecture, Definition, Format};
use kiln_store::{Digest, Store};

use crate::error::Error;
use crate::fetch::Fetched;
use crate::fsutil;
use crate::headstart::{Copied, HeadStart};
use crate::keys;
use crate::progress::Progress;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub(crate) const LAYERS: &str = "layers-v1";

/// A root filesystem in the store.
#[derive(Clone)]
pub(crate) struct Built {
    pub key: String,
    pub root: PathBuf,
    pub image: String,
    pub version: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LayerRecord {
    pub image: String,
    pub digest: String,
    pub size: u64,
    pub diff_id: String,
    pub uncompressed_size: u64,
}

/// One image's layer in the store.
pub(crate) struct BuiltLayer {
    pub record: LayerRecord,
    pub layer: Layer,
    pub created_by: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StageRecord {
    pub stage: String,
    pub image: String,
    pub key: String,
    pub cached: bool,
    pub seconds: f64,
    /// How a built stage went, when that is worth knowing (e.g. a child's
    /// copy of its parent begun while the parent built).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The stage's result came from the remote cache (`--cache`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub remote: bool,
}

fn timed(
    stages: &mut Vec<StageRecord>,
    stage: &str,
    image: &str,
    key: &str,
    cached: bool,
    started: Instant,
) {
    stages.push(StageRecord {
        stage: stage.into(),
        image: image.into(),
        key: key.into(),
        cached,
        seconds: started.elapsed().as_secs_f64(),
        note: None,
        remote: false,
    });
}

/// Where a build of `key` assembles its tree: a new name each call (one
/// process, `kiln rebuild`, may build two images of one key at once), held
/// by this process until [`fsutil::release_tmp`].
pub(crate) fn tmp_dir(bucket: &Path, key: &str) -> Result<PathBuf, Error> {
    fsutil::owned_tmp(bucket, &tmp_prefix(key))
}

/// Begins the tree of `child` as a copy of `parent`'s, which is final (it
/// came from the remote cache), so the copy runs while the child's
/// packages download; `None` when the store has the child already. The
/// child's rootfs stage takes it over (`HeadStart::stop`, then
/// `Copied::finish`), exactly as a copy begun while a parent built.
pub(crate) fn copy_for_child(
    store: &Store,
    parent: &Built,
    child: &str,
) -> Result<Option<HeadStart>, Error> {
    let bucket = store.bucket(keys::ROOTFS_STAGE)?;
    if bucket.complete_tree(child)?.is_some() {
        return Ok(None);
    }
    let to = tmp_dir(bucket.dir(), child)?;
    let copy = HeadStart::default();
    // Nothing to leave out: no dpkg scratch in a finished tree.
    copy.start(
        &parent.root,
        &to,
        "",
        "while this image's packages downloaded",
    );
    Ok(Some(copy))
}

/// What every temporary tree of `key` is named from.
fn tmp_prefix(key: &str) -> String {
    format!(".tmp-{key}-")
}

/// Drops what the store and `out` keep for the root filesystems `keys`
/// (trees, layer records, output records), so the next build makes them
/// again: `kiln build --refresh-network-steps`.
pub(crate) fn forget(store: &Store, keys: &[String], out: &Path) -> Result<(), Error> {
    let trees = store.bucket(keys::ROOTFS_STAGE)?;
    let layers = store.bucket(LAYERS)?;
    for key in keys {
        remove_tree(&trees, key)?;
        let record = layers.dir().join(format!("{key}.json"));
        if std::fs::symlink_metadata(&record).is_ok() {
            std::fs::remove_file(&record).map_err(fsutil::io(&record))?;
        }
    }
    // An output's record names the key it was built from: drop those.
    let records = records_dir(out);
    if let Ok(entries) = std::fs::read_dir(&records) {
        for e in entries {
            let path = e.map_err(fsutil::io(&records))?.path();
            let built_from = std::fs::read_to_string(&path).unwrap_or_default();
            let key = built_from.split_whitespace().next().unwrap_or_default();
            if path.extension().is_some_and(|x| x == "key") && keys.iter().any(|k| k == key) {
                std::fs::remove_file(&path).map_err(fsutil::io(&path))?;
            }
        }
    }
    Ok(())
}

/// Removes the tree of `key`, its completion record first so nobody trusts
/// it meanwhile, then renamed aside, so a build killed while removing it
/// leaves no half tree under its key.
fn remove_tree(trees: &kiln_store::Bucket, key: &str) -> Result<(), Error> {
    trees.unmark_complete(key)?;
    let tree = trees.dir().join(key);
    if std::fs::symlink_metadata(&tree).is_ok() {
        let doomed = tmp_dir(trees.dir(), &format!("{key}-forgotten"))?;
        std::fs::rename(&tree, &doomed).map_err(fsutil::io(&tree))?;
        fsutil::remove_tree(&doomed)?;
        fsutil::release_tmp(&doomed);
    }
    Ok(())
}

/// Whether the tree of `key` in place is (or within a second becomes)
/// complete: another build writes its record right after its rename.
fn completed_by_another(trees: &kiln_store::Bucket, key: &str) -> Result<bool, Error> {
    for _ in 0..10 {
        if trees.complete_tree(key)?.is_some() {
            return Ok(true);
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    Ok(false)
}

/// What one image's root filesystem is made from.
pub(crate) struct RootfsInput<'a> {
    pub def: &'a Definition,
    pub debs: &'a [Fetched],
    /// The previous image of the chain, which this one starts from.
    pub parent: Option<&'a Built>,
    /// Its cache key (`keys::rootfs_key`).
    pub key: &'a str,
    pub sde: i64,
    /// A copy of the parent made while the parent built (see `headstart`).
    pub head_start: Option<Copied>,
    /// The key of the next image of the chain: asks for a copy of this
    /// image, returned beside it when the child is not cached.
    pub child: Option<&'a str>,
}

/// An image's root filesystem from the store, or assembled there.
pub(crate) fn rootfs(
    store: &Store,
    input: RootfsInput<'_>,
    progress: &dyn Progress,
    stages: &mut Vec<StageRecord>,
) -> Result<(Built, Option<Copied>), Error> {
    let RootfsInput {
        def,
        debs,
        parent,
        key,
        sde,
        head_start,
        child,
    } = input;
    let started = Instant::now();
    let bucket = store.bucket(keys::ROOTFS_STAGE)?;
    let dir = bucket.dir().join(key);
    let built = Built {
        key: key.to_string(),
        root: dir.clone(),
        image: def.image.name.clone(),
        version: def.image.version.clone(),
    };
    let cached = bucket.complete_tree(key)?.is_some();
    // A head start is this image's tree begun while its parent built, in
    // a temporary directory named for this key.
    let ours = tmp_prefix(key);
    let head_start = match head_start {
        Some(h)
            if !cached
                && h.dir.parent() == Some(bucket.dir())
                && h.dir
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(&ours)) =>
        {
            Some(h)
        }
        Some(h) => {
            h.discard()?;
            None
        }
        None => None,
    };
    if cached {
        timed(stages, "rootfs", &def.image.name, key, true, started);
        return Ok((built, None));
    }
    fsutil::sweep_dead(bucket.dir())?;
    let tmp = match &head_start {
        Some(h) => h.dir.clone(),
        None => tmp_dir(bucket.dir(), key)?,
    };
    let child_tmp = match child {
        Some(c) if bucket.complete_tree(c)?.is_none() => Some(tmp_dir(bucket.dir(), c)?),
        _ => None,
    };
    let reserved = child_tmp.clone();
    let note = head_start
        .as_ref()
        .zip(parent)
        .map(|(h, p)| format!("began from a copy of {} made {}", p.image, h.during));
    let copy = Arc::new(HeadStart::default());
    // The rootfs steps report from their own threads; their events come
    // back over a channel so the caller's progress needs no 'static bound.
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let result = std::thread::scope(|scope| {
        scope.spawn(move || {
            for line in rx {
                progress.step(&line);
            }
        });
        let name = def.image.name.clone();
        let mut env = kiln_rootfs::BuildEnv::new(sde);
        if let Some(kind) = keys::initramfs(def) {
            env.initramfs = kind;
        }
        let (copy, from) = (copy.clone(), tmp.clone());
        env.on_event = Some(Box::new(move |e| match e {
            kiln_rootfs::Event::Step(step) => {
                let _ = tx.send(format!("{name}: {step}"));
            }
            kiln_rootfs::Event::LastDpkgRun { scratch } => {
                if let Some(to) = &child_tmp {
                    copy.start(&from, to, scratch, "while it built");
                }
            }
            kiln_rootfs::Event::Output(_) => {}
        }));
        let r = assemble(def, debs, parent, &tmp, &env, progress, head_start);
        drop(env);
        r
    });
    // Stopped before the rename: the copy reads `tmp`. On failure it is
    // dropped unfinished, which removes it.
    let copied = copy.stop();
    if copied.is_none()
        && let Some(unused) = &reserved
    {
        fsutil::release_tmp(unused);
    }
    if let Err(e) = result {
        // Keep nothing of a failed build; the error is what matters.
        let _ = fsutil::remove_tree(&tmp);
        fsutil::release_tmp(&tmp);
        return Err(e);
    }
    let placed = place(&bucket, key, &tmp, &dir);
    fsutil::release_tmp(&tmp);
    placed?;
    // Last: only now is the tree whole and in place.
    bucket.mark_complete(key)?;
    timed(stages, "rootfs", &def.image.name, key, false, started);
    if let Some(last) = stages.last_mut() {
        last.note = note;
    }
    Ok((built, copied))
}

/// Renames the finished tree `tmp` to `dir`, its place under `key`.
pub(crate) fn place(
    bucket: &kiln_store::Bucket,
    key: &str,
    tmp: &Path,
    dir: &Path,
) -> Result<(), Error> {
    if fs_err::rename(tmp, dir).is_ok() {
        return Ok(());
    }
    if completed_by_another(bucket, key)? {
        // Another build of the same key finished first: theirs is as good.
        return fsutil::remove_tree(tmp);
    }
    // A tree without its record (a build killed before writing it, a
    // directory that merely exists) is never trusted: ours replaces it.
    remove_tree(bucket, key)?;
    fs_err::rename(tmp, dir).map_err(fsutil::io(dir))
}

fn assemble(
    def: &Definition,
    debs: &[Fetched],
    parent: Option<&Built>,
    tmp: &Path,
    env: &kiln_rootfs::BuildEnv,
    progress: &dyn Progress,
    head_start: Option<Copied>,
) -> Result<(), Error> {
    match parent {
        Some(p) => {
            let how = if head_start.is_some() {
                " (copying what changed since its copy began)"
            } else {
                ""
            };
            progress.step(&format!(
                "{}: starting from {}'s root filesystem{how}",
                def.image.name, p.image
            ));
            match head_start {
                Some(copied) => copied.finish(&p.root)?,
                None => fsutil::copy_tree(&p.root, tmp)?,
            }
        }
        None => fs_err::create_dir_all(tmp).map_err(fsutil::io(tmp))?,
    }
    let debs: Vec<kiln_rootfs::Deb> = debs
        .iter()
        .map(|f| kiln_rootfs::Deb {
            name: f.package.name.clone(),
            version: f.package.version.clone(),
            path: f.path.clone(),
            sha256: f.sha256,
            essential: f.package.reason == "essential",
        })
        .collect();
    progress.step(&format!(
        "{}: installing {} packages",
        def.image.name,
        debs.len()
    ));
    let report = kiln_rootfs::install(tmp, &debs, env)?;
    // Where the time went, for whoever watches a build on a terminal.
    for (what, took) in &report.timings {
        progress.step(&format!(
            "{}: {what}: {:.1}s",
            def.image.name,
            took.as_secs_f64()
        ));
    }
    kiln_rootfs::customize(tmp, def, env)?;
    kiln_rootfs::normalize(tmp, env)?;
    Ok(())
}

pub(crate) fn layer(
    store: &Store,
    built: &Built,
    parent: Option<&Built>,
    sde: i64,
    progress: &dyn Progress,
    stages: &mut Vec<StageRecord>,
) -> Result<BuiltLayer, Error> {
    let started = Instant::now();
    let bucket = store.bucket(LAYERS)?;
    let record_key = format!("{}.json", built.key);
    let created_by = format!("kiln build {} {}", built.image, built.version);
    if let Some(bytes) = bucket.get(&record_key)?
        && let Ok(record) = serde_json::from_slice::<LayerRecord>(&bytes)
        && let Some(layer) = stored_layer(store, &record)?
    {
        timed(stages, "layer", &built.image, &built.key, true, started);
        return Ok(BuiltLayer {
            record,
            layer,
            created_by,
        });
    }
    progress.step(&format!("{}: writing its layer", built.image));
    let source = match parent {
        Some(p) => LayerSource::Diff {
            parent: &p.root,
            child: &built.root,
        },
        None => LayerSource::Tree(&built.root),
    };
    let layer = write_layer(
        store,
        source,
        &TarOptions::new(sde.max(0) as u64),
        &built.image,
    )?;
    let record = LayerRecord {
        image: built.image.clone(),
        digest: layer.digest.to_string(),
        size: layer.size,
        diff_id: layer.diff_id.to_string(),
        uncompressed_size: layer.uncompressed_size,
    };
    let json = serde_json::to_vec_pretty(&record).map_err(|e| Error::Internal(e.to_string()))?;
    bucket.put(&record_key, &json)?;
    timed(stages, "layer", &built.image, &built.key, false, started);
    Ok(BuiltLayer {
        record,
        layer,
        created_by,
    })
}

/// Writes a layer as a blob of the store, which hashes and files it.
fn write_layer(
    store: &Store,
    source: LayerSource<'_>,
    opts: &TarOptions,
    image: &str,
) -> Result<Layer, Error> {
    let mut staged = store.stage_blob()?;
    let path = staged.path().to_path_buf();
    let tarred = kiln_image::write_layer_to(source, opts, &mut staged, &path)?;
    let what = format!("{image}'s layer");
    let blob = store.commit_blob(staged, &kiln_store::Expected::default(), &what)?;
    Ok(Layer {
        path: blob.path,
        digest: blob.sha256,
        size: blob.size,
        diff_id: tarred.diff_id,
        uncompressed_size: tarred.uncompressed_size,
    })
}

/// A recorded layer whose blob is still in the store, intact: the OCI
/// layout copies it out (hashing it again), and a damaged one is evicted
/// here so the layer is written again rather than the build failing.
fn stored_layer(store: &Store, r: &LayerRecord) -> Result<Option<Layer>, Error> {
    let (Some(digest), Some(diff_id)) = (parse_digest(&r.digest), parse_digest(&r.diff_id)) else {
        return Ok(None);
    };
    let Some(path) = store.intact_blob(&digest)? else {
        return Ok(None);
    };
    Ok(Some(Layer {
        path,
        digest,
        size: r.size,
        diff_id,
        uncompressed_size: r.uncompressed_size,
    }))
}

fn parse_digest(s: &str) -> Option<Digest> {
    s.parse().ok()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OutputRecord {
    pub format: String,
    pub path: PathBuf,
    pub digest: String,
    pub size: u64,
}

/// kiln's own records in an output directory (what each output was built
/// from, the last build's report): one hidden directory, so the rest of
/// `out/` is exactly what ships.
pub(crate) fn records_dir(out: &Path) -> PathBuf {
    out.join(".kiln")
}

/// The SBOM and provenance to attach to the OCI image, made from the
/// outputs written before it.
pub(crate) type Attach<'a> = dyn FnMut(&[OutputRecord]) -> Result<Vec<Attachment>, Error> + 'a;

/// What the outputs of the leaf image are made from.
#[derive(Clone, Copy)]
pub(crate) struct OutputsInput<'a> {
    pub def: &'a Definition,
    pub leaf: &'a Built,
    /// One per image of the chain, base first (empty without `oci`).
    pub layers: &'a [BuiltLayer],
    pub formats: &'a [Format],
    pub arch: Architecture,
    pub out: &'a Path,
    pub sde: i64,
}

/// Writes the outputs asked for: the tar and the disks first, the OCI image
/// last, so the documents attached to it can name the others.
pub(crate) fn outputs(
    input: &OutputsInput<'_>,
    progress: &dyn Progress,
    stages: &mut Vec<StageRecord>,
    attach: &mut Attach<'_>,
) -> Result<Vec<OutputRecord>, Error> {
    let OutputsInput {
        def,
        leaf,
        formats,
        out,
        sde,
        ..
    } = *input;
    let stem = format!("{}-{}", def.image.name, def.image.version);
    fs_err::create_dir_all(out).map_err(fsutil::io(out))?;
    let mut records = Vec::new();
    if formats.contains(&Format::Tar) {
        let started = Instant::now();
        let key = keys::output_key(&leaf.key, "tar", "");
        let path = out.join(format!("{stem}.tar"));
        let (digest, size, cached) = rootfs_tar(leaf, &key, sde, &path, progress)?;
        timed(stages, "tar", &def.image.name, &key, cached, started);
        records.push(OutputRecord {
            format: "tar".into(),
            path,
            digest,
            size,
        });
    }
    // Disks are written together: the conversions read the raw one.
    let disks: Vec<Format> = formats.iter().copied().filter(|f| f.is_disk()).collect();
    if !disks.is_empty() {
        records.extend(disk_outputs(
            input,
            &disks,
            &out.join(&stem),
            progress,
            stages,
        )?);
    }
    if formats.contains(&Format::Oci) {
        let started = Instant::now();
        progress.step(&format!("{}: writing the OCI image", def.image.name));
        records.extend(oci_outputs(input, &stem, &records, attach)?);
        timed(stages, "oci", &def.image.name, &leaf.key, false, started);
    }
    Ok(records)
}

fn oci_outputs(
    input: &OutputsInput<'_>,
    stem: &str,
    before: &[OutputRecord],
    attach: &mut Attach<'_>,
) -> Result<Vec<OutputRecord>, Error> {
    let OutputsInput {
        def,
        layers,
        arch,
        out,
        sde,
        ..
    } = *input;
    let inputs: Vec<LayerInput> = layers
        .iter()
        .map(|l| LayerInput {
            layer: l.layer.clone(),
            created: sde.max(0) as u64,
            created_by: l.created_by.clone(),
            comment: None,
        })
        .collect();
    let mut meta = ImageMeta::new(&def.image.name, &def.image.version, sde.max(0) as u64, arch);
    let layout = out.join(format!("{stem}.oci"));
    // The image manifest does not depend on its referrers: its digest comes
    // first, then the documents that name it, then the layout with them.
    let (manifest, manifest_size) = kiln_image::image_manifest_digest(&inputs, &meta)?;
    let image = OutputRecord {
        format: "oci".into(),
        path: layout.clone(),
        digest: manifest.to_string(),
        size: manifest_size,
    };
    let mut subjects = before.to_vec();
    subjects.push(image.clone());
    meta.attachments = attach(&subjects)?;
    let info = kiln_image::write_oci_layout(&inputs, &meta, &layout)?;
    if info.manifest != manifest {
        return Err(Error::Internal(format!(
            "the image manifest written to {} is not the one computed for it",
            layout.display()
        )));
    }
    let archive = out.join(format!("{stem}.oci.tar"));
    let name = format!("{}:{}", def.image.name, def.image.version);
    let digest = kiln_image::write_oci_archive(&layout, &archive, Some(&name))?;
    let size = fs_err::metadata(&archive)
        .map_err(fsutil::io(&archive))?
        .len();
    Ok(vec![
        image,
        OutputRecord {
            format: "oci-archive".into(),
            path: archive,
            digest: digest.to_string(),
            size,
        },
    ])
}

/// Raw, qcow2, vmdk and vhd from the leaf's rootfs, with kiln's test agent
/// (inert unless `kiln test` attaches its port). A disk already in `out`
/// whose digest the previous build recorded for the same key is kept.
fn disk_outputs(
    input: &OutputsInput<'_>,
    disks: &[Format],
    stem: &Path,
    progress: &dyn Progress,
    stages: &mut Vec<StageRecord>,
) -> Result<Vec<OutputRecord>, Error> {
    let OutputsInput {
        def,
        leaf,
        arch,
        sde,
        ..
    } = *input;
    let started = Instant::now();
    let extra_files = kiln_vm::agent_files()
        .into_iter()
        .map(|f| (f.path, f.mode, f.contents))
        .collect();
    let extra_links = kiln_vm::agent_links()
        .into_iter()
        .map(|l| (l.path, l.target))
        .collect();
    let mut spec = kiln_disk::DiskSpec {
        size: def.disk.size,
        image_digest: String::new(),
        source_date_epoch: sde,
        title: format!("{} {}", def.image.name, def.image.version),
        architecture: arch,
        extra_files,
        extra_links,
    };
    // Every identifier on the disk derives from its key.
    let key = keys::disk_key(&leaf.key, &spec, &kiln_disk::tool_versions());
    spec.image_digest = key.clone();
    let raw = with_suffix(stem, "raw");
    let raw_wanted = disks.contains(&Format::Raw);
    let conversions: Vec<(kiln_disk::DiskFormat, &str, PathBuf, Option<String>)> = disks
        .iter()
        .filter_map(|f| match f {
            Format::Qcow2 => Some((kiln_disk::DiskFormat::Qcow2, "qcow2")),
            Format::Vmdk => Some((kiln_disk::DiskFormat::Vmdk, "vmdk")),
            Format::Vhd => Some((kiln_disk::DiskFormat::Vhd, "vhd")),
            _ => None,
        })
        .map(|(df, name)| {
            let path = with_suffix(stem, df.extension());
            kept(&path, &key, name).map(|k| (df, name, path, k))
        })
        .collect::<Result<_, _>>()?;
    let mut records = Vec::new();
    let mut cached = true;
    // The raw disk is written when it is asked for or a conversion needs it.
    let need_raw = raw_wanted || conversions.iter().any(|c| c.3.is_none());
    let raw_digest = match kept(&raw, &key, "raw")? {
        Some(d) => Some(d),
        None if need_raw => {
            cached = false;
            progress.step(&format!(
                "{}: writing the raw disk ({} MiB)",
                def.image.name,
                def.disk.size >> 20
            ));
            let boot = crate::bootfiles::find(&leaf.root, arch)?;
            let disk = kiln_disk::write_raw(&leaf.root, &boot, &spec, &raw)?;
            remember(&raw, &key, "raw", &disk.digest)?;
            Some(disk.digest)
        }
        None => None,
    };
    if raw_wanted && let Some(digest) = raw_digest {
        records.push(OutputRecord {
            format: "raw".into(),
            path: raw.clone(),
            digest,
            size: def.disk.size,
        });
    }
    for (df, name, path, kept_digest) in conversions {
        let (digest, size) = match kept_digest {
            Some(d) => (d, file_size(&path)?),
            None => {
                cached = false;
                progress.step(&format!("{}: converting to {name}", def.image.name));
                let c = kiln_disk::convert(&raw, df, &spec, &path)?;
                remember(&path, &key, name, &c.digest)?;
                (c.digest, c.size)
            }
        };
        records.push(OutputRecord {
            format: name.into(),
            path,
            digest,
            size,
        });
    }
    if !raw_wanted {
        // Only an intermediate here: the next build writes it again if a
        // conversion needs it.
        let _ = fs_err::remove_file(&raw);
        let _ = fs_err::remove_file(record_path(&raw));
    }
    timed(stages, "disk", &def.image.name, &key, cached, started);
    Ok(records)
}

/// `web-1.0.0` + `qcow2` → `web-1.0.0.qcow2` (`with_extension` would eat `.0`).
fn with_suffix(stem: &Path, ext: &str) -> PathBuf {
    let mut name = stem
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(format!(".{}", ext.trim_start_matches('.')));
    stem.with_file_name(name)
}

/// Beside the outputs, in the one hidden directory kiln keeps there, so
/// `out/` lists only what a user ships.
fn record_path(output: &Path) -> PathBuf {
    let name = output.file_name().unwrap_or_default();
    let records = records_dir(output.parent().unwrap_or(Path::new(".")));
    with_suffix(&records.join(name), "key")
}

/// The digest of `output` if it is still what a build with `key` wrote.
fn kept(output: &Path, key: &str, what: &str) -> Result<Option<String>, Error> {
    let Ok(record) = fs_err::read_to_string(record_path(output)) else {
        return Ok(None);
    };
    let mut parts = record.split_whitespace();
    let (Some(k), Some(w), Some(digest)) = (parts.next(), parts.next(), parts.next()) else {
        return Ok(None);
    };
    if k != key || w != what || !output.exists() {
        return Ok(None);
    }
    // Re-hashing costs about a second; shipping a disk someone edited would
    // cost far more.
    let now = kiln_disk::sha256_file(output)?;
    Ok((now == digest).then(|| digest.to_string()))
}

fn remember(output: &Path, key: &str, what: &str, digest: &str) -> Result<(), Error> {
    fsutil::write_atomic(
        &record_path(output),
        format!("{key} {what} {digest}\n").as_bytes(),
    )
}

fn file_size(path: &Path) -> Result<u64, Error> {
    Ok(fs_err::metadata(path).map_err(fsutil::io(path))?.len())
}

/// The whole root filesystem as one deterministic tar at `dest`, kept when
/// it is still what a build with `key` wrote there.
///
/// The store holds no copy: the cached tree gives the same bytes again in
/// under half a second, while a second copy (350 MB written and fsynced on
/// every build) cost a cold build about that long and the store that much
/// disk.
fn rootfs_tar(
    leaf: &Built,
    key: &str,
    sde: i64,
    dest: &Path,
    progress: &dyn Progress,
) -> Result<(String, u64, bool), Error> {
    if let Some(digest) = kept(dest, key, "tar")? {
        return Ok((digest, file_size(dest)?, true));
    }
    progress.step(&format!("{}: writing the rootfs tar", leaf.image));
    let mut file = fsutil::AtomicFile::create(dest)?;
    // The tar writer hashes on another thread as it goes.
    let summary = kiln_image::write_tar(
        &leaf.root,
        file.writer(),
        &TarOptions::new(sde.max(0) as u64),
    )?;
    file.commit()?;
    // `sha256:<hex>`, the form `kept` reads back.
    let digest = summary.digest.to_string();
    remember(dest, key, "tar", &digest)?;
    Ok((digest, summary.size, false))
}
