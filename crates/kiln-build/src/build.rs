//! `kiln build`: lock → fetch → rootfs → layers → outputs, for every image
//! of the chain from the distribution base down to the one asked for.

use std::path::{Path, PathBuf};
use std::time::Instant;

use kiln_image::Attachment;
use kiln_lock::Lock;
use kiln_manifest::Manifest;
use kiln_spec::{Definition, Format};
use kiln_store::Store;
use serde::{Deserialize, Serialize};

use crate::catalog::{self, DocumentInput};
use crate::chain::Chain;
use crate::error::Error;
use crate::fetch::{self, Fetched};
use crate::keys;
use crate::progress::Progress;
use crate::remote::{Remote, RemoteCache, RemoteReport};
use crate::stages::{
    self, Built, LayerRecord, OutputRecord, OutputsInput, RootfsInput, StageRecord, records_dir,
};

pub struct BuildOptions<'a> {
    pub dir: PathBuf,
    /// Only the store: no network at all.
    pub offline: bool,
    /// Rebuild the root filesystem of every image with a `network = true`
    /// step (and what is built on it) instead of reusing the cached one:
    /// what such a step fetched may have changed.
    pub refresh_network_steps: bool,
    /// Overrides `[outputs].formats`.
    pub formats: Option<Vec<Format>>,
    /// Default: `<dir>/out`.
    pub out: Option<PathBuf>,
    pub mirror: Option<String>,
    /// Where to record the build; default `KILN_CATALOG`, else the store's.
    pub catalog: Option<String>,
    /// `--cache REGISTRY/REPO`: root filesystems shared through a registry.
    pub remote_cache: Option<RemoteCache>,
    pub progress: &'a dyn Progress,
}

/// What a build made: written to `<out>/.kiln/<name>.build.json` too, where
/// `kiln inspect` and later stages read it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BuildReport {
    /// The build's id in the catalog: `sha256:` of its root filesystem's
    /// cache key, so equal inputs are one build.
    #[serde(default)]
    pub build: String,
    pub image: String,
    pub version: String,
    /// `sha256:` of kiln.lock.
    pub lock: String,
    pub source_date_epoch: i64,
    /// One per image in the chain, base first.
    pub layers: Vec<LayerRecord>,
    pub outputs: Vec<OutputRecord>,
    /// SPDX 2.3 JSON, beside the outputs (and attached to the OCI image).
    #[serde(default)]
    pub sbom: PathBuf,
    /// in-toto statement with a SLSA v1 provenance predicate.
    #[serde(default)]
    pub provenance: PathBuf,
    /// Where the build was recorded.
    #[serde(default)]
    pub catalog: String,
    pub packages: Vec<PackageRecord>,
    /// Which stages ran and which came from the cache.
    pub stages: Vec<StageRecord>,
    /// What the remote cache did, when one was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_cache: Option<RemoteReport>,
    pub seconds: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PackageRecord {
    pub name: String,
    pub version: String,
    pub size: u64,
    /// The image of the chain that added it.
    pub image: String,
    /// `debian`, `local` or a `[[repository]]`'s name.
    #[serde(default = "debian_origin")]
    pub origin: String,
}

/// Reports written before origins were recorded held Debian's packages only.
fn debian_origin() -> String {
    kiln_lock::DEBIAN_ORIGIN.to_owned()
}

pub fn build(opts: &BuildOptions<'_>) -> Result<BuildReport, Error> {
    let started = Instant::now();
    let chain = Chain::load(&opts.dir)?;
    crate::needs::architecture(&chain)?;
    let leaf_lock = fresh_lock(&chain)?;
    let formats = opts
        .formats
        .clone()
        .unwrap_or_else(|| chain.def.outputs.formats.clone());
    crate::needs::check(&chain, &leaf_lock, &formats)?;
    let store = Store::open_default()?;
    // Shared with other builds; `kiln gc` takes it exclusively.
    let _gc_guard = store.lock_shared()?;
    let images = images(&chain, &leaf_lock);
    let sde = source_date_epoch(images[0].1)?;
    let out = opts
        .out
        .clone()
        .unwrap_or_else(|| chain.def.dir.join("out"));
    let mut stages = Vec::new();
    // `--offline` means no network, the registry included.
    let mut remote = opts
        .remote_cache
        .as_ref()
        .filter(|_| !opts.offline)
        .map(Remote::open)
        .transpose()?;

    let chain_input = ChainInput {
        opts,
        chain: &chain,
        images: &images,
        store: &store,
        sde,
        out: &out,
    };
    let trees = root_filesystems(&chain_input, &mut remote, &mut stages)?;
    let layers = layers(
        &store,
        &trees.built,
        &formats,
        sde,
        opts.progress,
        &mut stages,
    )?;
    if let Some(r) = remote.as_mut() {
        crate::remote::push_all(r, &store, &trees.built, &layers, sde, opts.progress)?;
    }
    let leaf = trees
        .built
        .last()
        .ok_or_else(|| Error::Internal("a chain has at least one image".into()))?;
    let sources = images
        .iter()
        .map(|(d, _)| catalog::Source::of(&d.dir))
        .collect::<Result<Vec<_>, _>>()?;
    let build_id = catalog::build_id(&leaf.key);
    let input = OutputsInput {
        def: &chain.def,
        leaf,
        layers: &layers,
        formats: &formats,
        arch: chain.distro().architecture,
        out: &out,
        sde,
    };
    let doc_input = DocumentInput {
        def: &chain.def,
        build_id: &build_id,
        manifest: &trees.leaf_manifest()?,
        suite: chain.distro().suite.as_str(),
        source_date_epoch: sde,
        source: &sources[sources.len() - 1],
        formats: &formats,
    };
    let (outputs, sbom, provenance) = outputs(&input, &doc_input, opts.progress, &mut stages)?;
    let catalog = record(opts, &images, &trees, &sources, &outputs, sde)?;

    let def = &chain.def;
    let mut packages = trees.packages;
    packages.sort_by(|a, b| a.name.cmp(&b.name));
    let report = BuildReport {
        build: build_id,
        image: def.image.name.clone(),
        version: def.image.version.clone(),
        lock: sources[sources.len() - 1].lock.clone(),
        source_date_epoch: sde,
        layers: layers.iter().map(|l| l.record.clone()).collect(),
        outputs,
        sbom,
        provenance,
        catalog,
        packages,
        stages,
        remote_cache: remote.map(|r| r.report),
        seconds: started.elapsed().as_secs_f64(),
    };
    write_report(&out, &report)?;
    Ok(report)
}

/// Every image's root filesystem, base first, with what the catalog and the
/// documents need of each.
struct Trees {
    built: Vec<Built>,
    packages: Vec<PackageRecord>,
    /// Each tree's manifest, encoded.
    manifests: Vec<Vec<u8>>,
}

impl Trees {
    /// Only the leaf's documents need the manifest itself.
    fn leaf_manifest(&self) -> Result<Manifest, Error> {
        let (Some(bytes), Some(leaf)) = (self.manifests.last(), self.built.last()) else {
            return Err(Error::Internal("a chain has at least one image".into()));
        };
        Manifest::from_bytes(bytes).map_err(|source| Error::Manifest {
            path: leaf.root.clone(),
            source,
        })
    }
}

/// What the rootfs stages of a chain build from.
struct ChainInput<'a> {
    opts: &'a BuildOptions<'a>,
    chain: &'a Chain,
    /// Base first.
    images: &'a [(&'a Definition, &'a Lock)],
    store: &'a Store,
    sde: i64,
    out: &'a Path,
}

/// The rootfs stage of each image: from the store, from the remote cache,
/// or fetched and assembled, each child begun from a copy of its parent
/// made while the parent built (or its own packages downloaded).
fn root_filesystems(
    input: &ChainInput<'_>,
    remote: &mut Option<Remote>,
    stages: &mut Vec<StageRecord>,
) -> Result<Trees, Error> {
    let ChainInput {
        opts,
        chain,
        images,
        store,
        sde,
        out,
    } = *input;
    let mirrors = fetch::mirrors(
        opts.mirror.as_deref(),
        chain.distro().suite.as_str(),
        opts.offline,
    )?;
    let repositories = crate::origins::repositories(chain);
    let mut packages = Vec::new();
    let mut built: Vec<Built> = Vec::new();
    let digests = std::sync::Arc::new(catalog::deb_digests(images.iter().map(|(_, l)| *l)));
    // Each image's manifest is hashed while the next image builds (mostly one
    // core's work: dpkg and its scripts).
    let mut manifest_jobs = Vec::new();
    // Every key first: an image's build starts its child's copy of it.
    let mut rootfs_keys: Vec<String> = Vec::with_capacity(images.len());
    for (def, lock) in images {
        let parent = rootfs_keys.last().map(String::as_str);
        rootfs_keys.push(keys::rootfs_key(parent, def, lock, sde)?);
    }
    if opts.refresh_network_steps
        && let Some(first) = images
            .iter()
            .position(|(d, _)| d.run.iter().any(|r| r.network))
    {
        stages::forget(store, &rootfs_keys[first..], out)?;
    }
    let mut head_start: Option<crate::headstart::Copied> = None;
    // A child's copy of a parent that came from the remote cache.
    let mut copying: Option<crate::headstart::HeadStart> = None;
    for (i, (def, lock)) in images.iter().enumerate() {
        let parent = built.last();
        // From the remote cache, its packages are not even fetched.
        let restored = match remote.as_mut() {
            Some(r) => r.restore(store, def, parent, &rootfs_keys[i], opts.progress, stages)?,
            None => None,
        };
        let rootfs = match restored {
            Some(rootfs) => {
                if let Some(h) = head_start.take().or_else(|| copying.take()?.stop()) {
                    h.discard()?;
                }
                // The child, unless the registry has it too, begins from a
                // copy of this tree made while its packages download.
                if let Some(child) = rootfs_keys.get(i + 1)
                    && remote.as_mut().is_some_and(|r| !r.holds(child))
                {
                    copying = stages::copy_for_child(store, &rootfs, child)?;
                }
                rootfs
            }
            None => {
                let debs: Vec<Fetched> = fetch::fetch(
                    store,
                    &lock.packages,
                    mirrors.as_ref(),
                    &repositories,
                    &def.dir,
                    opts.progress,
                )?;
                if let Some(copy) = copying.take() {
                    head_start = copy.stop();
                }
                let sources = fetch::Sources {
                    mirrors: mirrors.as_ref(),
                    repositories: &repositories,
                    dir: &def.dir,
                    progress: opts.progress,
                };
                let (rootfs, copied) =
                    fetch::refetching(store, debs, &sources, head_start.take(), |debs, h| {
                        let input = RootfsInput {
                            def,
                            debs,
                            parent,
                            key: &rootfs_keys[i],
                            sde,
                            head_start: h,
                            child: rootfs_keys.get(i + 1).map(String::as_str),
                        };
                        stages::rootfs(store, input, opts.progress, stages)
                    })?;
                head_start = copied;
                rootfs
            }
        };
        packages.extend(lock.packages.iter().map(|p| PackageRecord {
            name: p.name.clone(),
            version: p.version.clone(),
            size: p.size,
            image: def.image.name.clone(),
            origin: p.origin().to_owned(),
        }));
        let (store, digests, tree) = (store.clone(), digests.clone(), rootfs.clone());
        manifest_jobs.push(std::thread::spawn(move || {
            kiln_deb::par::background_priority();
            catalog::manifest_bytes(&store, &tree, &digests)
        }));
        built.push(rootfs);
    }
    let manifests = manifest_jobs
        .into_iter()
        .map(|job| {
            job.join()
                .unwrap_or_else(|_| Err(Error::Internal("hashing a manifest panicked".into())))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Trees {
        built,
        packages,
        manifests,
    })
}

/// Each image's OCI layer, when an OCI image is asked for: a tar alone
/// does not need them.
fn layers(
    store: &Store,
    built: &[Built],
    formats: &[Format],
    sde: i64,
    progress: &dyn Progress,
    stages: &mut Vec<StageRecord>,
) -> Result<Vec<stages::BuiltLayer>, Error> {
    if !formats.contains(&Format::Oci) {
        return Ok(Vec::new());
    }
    built
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let parent = i.checked_sub(1).map(|p| &built[p]);
            stages::layer(store, b, parent, sde, progress, stages)
        })
        .collect()
}

/// The outputs, and the SBOM and provenance beside them (attached to the
/// OCI image too, so they are made once its subjects are known).
fn outputs(
    input: &OutputsInput<'_>,
    doc_input: &DocumentInput<'_>,
    progress: &dyn Progress,
    stages: &mut Vec<StageRecord>,
) -> Result<(Vec<OutputRecord>, PathBuf, PathBuf), Error> {
    let mut documents = None;
    let outputs = stages::outputs(input, progress, stages, &mut |subjects| {
        let docs = catalog::documents(doc_input, subjects)?;
        let attachments = vec![
            Attachment {
                media_type: catalog::SBOM_MEDIA_TYPE.into(),
                bytes: docs.sbom.clone(),
            },
            Attachment {
                media_type: catalog::PROVENANCE_MEDIA_TYPE.into(),
                bytes: docs.provenance.clone(),
            },
        ];
        documents = Some(docs);
        Ok(attachments)
    })?;
    let documents = match documents {
        Some(d) => d,
        None => catalog::documents(doc_input, &outputs)?,
    };
    let def = input.def;
    let stem = format!("{}-{}", def.image.name, def.image.version);
    let (sbom, provenance) = catalog::write_documents(input.out, &stem, &documents)?;
    Ok((outputs, sbom, provenance))
}

/// Records every image of the chain in the catalog (the outputs on the
/// leaf); returns where.
fn record(
    opts: &BuildOptions<'_>,
    images: &[(&Definition, &Lock)],
    trees: &Trees,
    sources: &[catalog::Source],
    outputs: &[OutputRecord],
    sde: i64,
) -> Result<String, Error> {
    let catalog = catalog::open(opts.catalog.as_deref())?;
    let leaf = trees.built.len() - 1;
    let entries: Vec<catalog::Entry<'_>> = images
        .iter()
        .zip(&trees.built)
        .zip(&trees.manifests)
        .zip(sources)
        .enumerate()
        .map(|(i, ((((d, _), b), m), source))| catalog::Entry {
            def: d,
            built: b,
            source,
            manifest: m,
            outputs: if i == leaf { outputs } else { &[] },
        })
        .collect();
    catalog::record(&catalog, &entries, sde, unix_now())?;
    Ok(catalog.describe())
}

/// Seconds since 1970, as the catalog records times.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// What `kiln fetch` did.
#[derive(Debug, Clone, Serialize)]
pub struct FetchReport {
    pub packages: usize,
    pub bytes: u64,
    pub seconds: f64,
}

/// Puts every package of the image and its parents into the store, so a
/// later `kiln build --offline` (here or on a machine the store is copied
/// to) needs no network.
pub fn fetch(
    dir: &Path,
    mirror: Option<&str>,
    progress: &dyn Progress,
) -> Result<FetchReport, Error> {
    let started = Instant::now();
    let chain = Chain::load(dir)?;
    let leaf = fresh_lock(&chain)?;
    let store = Store::open_default()?;
    let mirrors = fetch::mirrors(mirror, chain.distro().suite.as_str(), false)?;
    let mut report = FetchReport {
        packages: 0,
        bytes: 0,
        seconds: 0.0,
    };
    let repositories = crate::origins::repositories(&chain);
    for (def, lock) in images(&chain, &leaf) {
        let got = fetch::fetch(
            &store,
            &lock.packages,
            mirrors.as_ref(),
            &repositories,
            &def.dir,
            progress,
        )?;
        report.packages += got.len();
        report.bytes += got.iter().map(|f| f.package.size).sum::<u64>();
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// The images of the chain, base first, each with its lock.
fn images<'c>(chain: &'c Chain, leaf: &'c Lock) -> Vec<(&'c Definition, &'c Lock)> {
    let mut v: Vec<(&Definition, &Lock)> = chain
        .ancestors
        .iter()
        .rev()
        .map(|a| (&a.def, &a.lock))
        .collect();
    v.push((&chain.def, leaf));
    v
}

/// A build never resolves: it needs a lock that matches the definition.
fn fresh_lock(chain: &Chain) -> Result<Lock, Error> {
    let (report, lock) = crate::lock::check_chain(chain)?;
    if !report.fresh {
        return Err(Error::StaleLock {
            path: report.lockfile,
            changes: report.changes,
        });
    }
    Ok(lock)
}

/// Time comes from the lock, never the clock: the newest Release date of
/// the base image's suites.
fn source_date_epoch(lock: &Lock) -> Result<i64, Error> {
    lock.suites
        .iter()
        .map(|s| {
            kiln_deb::release::parse_date(&s.date).ok_or_else(|| Error::BadLockDate {
                suite: s.name.clone(),
                date: s.date.clone(),
            })
        })
        .try_fold(0, |max, d| d.map(|d| max.max(d)))
}

fn report_path(out: &Path, image: &str) -> PathBuf {
    records_dir(out).join(format!("{image}.build.json"))
}

fn write_report(out: &Path, report: &BuildReport) -> Result<(), Error> {
    let path = report_path(out, &report.image);
    let text = serde_json::to_string_pretty(report).map_err(|e| Error::Internal(e.to_string()))?;
    crate::fsutil::write_atomic(&path, text.as_bytes())
}

/// Reads what the last build of `dir` recorded.
pub fn inspect(dir: &Path, out: Option<&Path>) -> Result<BuildReport, Error> {
    let def = kiln_spec::load(dir)?;
    let out = out
        .map(Path::to_path_buf)
        .unwrap_or_else(|| def.dir.join("out"));
    let path = report_path(&out, &def.image.name);
    let text = match fs_err::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Error::NotBuilt { path }),
        Err(source) => return Err(Error::Io { path, source }),
    };
    serde_json::from_str(&text).map_err(|e| Error::Internal(format!("{}: {e}", path.display())))
}
