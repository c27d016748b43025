//! The catalog stage: each image of the chain recorded with what it
//! contains (its manifest), what it was built from, and the documents that
//! say so (an SPDX SBOM and an in-toto provenance statement).
//!
//! A build's id is its root filesystem's cache key: the hash of every input
//! the image's bytes depend on. The same inputs are the same image, so a
//! rebuild widens the record's time span instead of adding a twin, and a
//! parent built inside a child's chain has the id its own build has.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use kiln_catalog::{Catalog, NewBuild, Output};
use kiln_lock::{Lock, LockedPackage};
use kiln_manifest::Manifest;
use kiln_manifest::provenance::{self, Material, ProvenanceInput};
use kiln_manifest::spdx::{self, SbomInput};
use kiln_spec::Definition;
use kiln_store::Store;

use crate::error::Error;
use crate::stages::Built;
use crate::stages::OutputRecord;

/// Manifests of root filesystems, by rootfs key.
pub(crate) const MANIFESTS: &str = "manifests-v1";
pub const SBOM_MEDIA_TYPE: &str = "application/spdx+json";
pub const PROVENANCE_MEDIA_TYPE: &str = "application/vnd.in-toto+json";
pub const KILN_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The catalog at `location`, else `KILN_CATALOG`, else the SQLite file in
/// the store.
pub fn open(location: Option<&str>) -> Result<Catalog, Error> {
    let from_env = std::env::var("KILN_CATALOG").ok().filter(|s| !s.is_empty());
    let location = match location.map(str::to_string).or(from_env) {
        Some(l) => l,
        None => Store::open_default()?
            .root()
            .join("catalog.sqlite")
            .to_string_lossy()
            .into_owned(),
    };
    Ok(Catalog::open(&location)?)
}

pub(crate) fn build_id(rootfs_key: &str) -> String {
    format!("sha256:{rootfs_key}")
}

/// The encoded manifest of a built tree, made once per rootfs key and kept
/// as the bytes the catalog stores: a warm build neither hashes the tree
/// nor re-encodes it. `debs` gives each package's `.deb` digest from the
/// locks of the whole chain.
pub(crate) fn manifest_bytes(
    store: &Store,
    built: &Built,
    debs: &BTreeMap<(String, String), LockedPackage>,
) -> Result<Vec<u8>, Error> {
    let bucket = store.bucket(MANIFESTS)?;
    if let Some(bytes) = bucket.get(&built.key)? {
        return Ok(bytes);
    }
    let mut m = Manifest::from_rootfs(&built.root).map_err(|source| Error::Manifest {
        path: built.root.clone(),
        source,
    })?;
    for p in &mut m.packages {
        let locked = debs.get(&(p.name.clone(), p.version.clone()));
        p.sha256 = locked.map(|l| l.sha256.clone());
        p.origin = locked.and_then(|l| l.origin.clone());
    }
    let bytes = m.to_bytes();
    bucket.put(&built.key, &bytes)?;
    Ok(bytes)
}

/// What an image was built from, read once per build.
pub(crate) struct Source {
    /// `sha256:` of kiln.toml.
    pub definition: String,
    /// `sha256:` of kiln.lock.
    pub lock: String,
    pub git_commit: Option<String>,
}

impl Source {
    pub(crate) fn of(dir: &Path) -> Result<Source, Error> {
        Ok(Source {
            definition: kiln_lock::digest(&dir.join("kiln.toml"))?,
            lock: kiln_lock::digest(&dir.join(crate::chain::LOCKFILE))?,
            git_commit: git_commit(dir),
        })
    }
}

/// Every locked package of the chain, by (name, version): the manifest
/// takes each `.deb`'s digest and origin from it.
pub(crate) fn deb_digests<'a>(
    locks: impl IntoIterator<Item = &'a Lock>,
) -> BTreeMap<(String, String), LockedPackage> {
    locks
        .into_iter()
        .flat_map(|l| &l.packages)
        .map(|p| ((p.name.clone(), p.version.clone()), p.clone()))
        .collect()
}

/// What the build says about its leaf image.
pub(crate) struct Documents {
    pub sbom: Vec<u8>,
    pub provenance: Vec<u8>,
}

pub(crate) struct DocumentInput<'a> {
    pub def: &'a Definition,
    pub build_id: &'a str,
    pub manifest: &'a Manifest,
    pub suite: &'a str,
    pub source_date_epoch: i64,
    pub source: &'a Source,
    /// What this build was asked to make (`--format` or `[outputs]`).
    pub formats: &'a [kiln_spec::Format],
}

/// The SBOM and provenance, reproducible (times are SOURCE_DATE_EPOCH) so
/// that attaching them keeps the OCI layout's bytes stable. The subjects
/// are the outputs so far; an oci-archive cannot name itself.
pub(crate) fn documents(
    input: &DocumentInput<'_>,
    subjects: &[OutputRecord],
) -> Result<Documents, Error> {
    let def = input.def;
    let distro = distro(input.suite);
    let tool = format!("kiln-{KILN_VERSION}");
    let sbom = spdx::document(
        input.manifest,
        &SbomInput {
            name: &def.image.name,
            version: &def.image.version,
            namespace: spdx::namespace(input.build_id),
            created: input.source_date_epoch,
            tool: &tool,
            distro: &distro,
        },
    );
    let subjects = subjects
        .iter()
        .filter(|o| o.format != "oci-archive")
        .map(|o| (subject_name(o), o.digest.clone()))
        .collect();
    let materials = input
        .manifest
        .packages
        .iter()
        .filter_map(|p| Material::of_package(p, &distro))
        .collect();
    let statement = provenance::statement(&ProvenanceInput {
        subjects,
        definition: (
            "kiln.toml".to_string(),
            hex_of(&input.source.definition).to_string(),
        ),
        lock: (
            "kiln.lock".to_string(),
            hex_of(&input.source.lock).to_string(),
        ),
        parameters: {
            let mut p = serde_json::json!({
                "image": def.image.name,
                "version": def.image.version,
                "formats": input.formats.iter().map(|f| f.as_str()).collect::<Vec<_>>(),
            });
            // `[[run]]` steps that had the network: the lock does not pin
            // what they fetched, so the build is not hermetic.
            let non_hermetic = def.lock_inputs().non_hermetic;
            if !non_hermetic.is_empty() {
                p["hermetic"] = false.into();
                p["nonHermeticRunSteps"] = non_hermetic.into();
            }
            p
        },
        builder_id: std::env::var("KILN_BUILDER_ID")
            .unwrap_or_else(|_| "urn:kiln:builder:local".to_string()),
        kiln_version: KILN_VERSION.to_string(),
        materials,
        source_date_epoch: input.source_date_epoch,
        git_commit: input.source.git_commit.clone(),
        invocation_id: None,
    });
    let json = |v: &serde_json::Value| {
        serde_json::to_vec_pretty(v).map_err(|e| Error::Internal(format!("document JSON: {e}")))
    };
    Ok(Documents {
        sbom: json(&sbom)?,
        provenance: json(&statement)?,
    })
}

fn subject_name(o: &OutputRecord) -> String {
    o.path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| o.format.clone())
}

fn hex_of(digest: &str) -> &str {
    digest.strip_prefix("sha256:").unwrap_or(digest)
}

/// The purl `distro` qualifier: Debian's release number where known.
fn distro(suite: &str) -> String {
    let number = match suite {
        "buster" => "10",
        "bullseye" => "11",
        "bookworm" => "12",
        "trixie" => "13",
        "forky" => "14",
        other => other,
    };
    format!("debian-{number}")
}

/// One image of the chain, ready to record.
pub(crate) struct Entry<'a> {
    pub def: &'a Definition,
    pub built: &'a Built,
    pub source: &'a Source,
    /// The encoded manifest, as `manifest_bytes` keeps it.
    pub manifest: &'a [u8],
    pub outputs: &'a [OutputRecord],
}

/// Records the chain, base first, each with its parent; returns the leaf's
/// id. Images the run only passed through are recorded without outputs:
/// the outputs their own builds recorded stay.
pub(crate) fn record(
    catalog: &Catalog,
    chain: &[Entry<'_>],
    source_date_epoch: i64,
    built_at: i64,
) -> Result<String, Error> {
    let mut parent: Option<String> = None;
    for e in chain {
        let id = build_id(&e.built.key);
        catalog.record_build(&NewBuild {
            id: id.clone(),
            name: e.def.image.name.clone(),
            version: e.def.image.version.clone(),
            parent: parent.clone(),
            definition_digest: e.source.definition.clone(),
            lock_digest: e.source.lock.clone(),
            kiln_version: KILN_VERSION.to_string(),
            git_commit: e.source.git_commit.clone(),
            built_at,
            source_date_epoch,
            outputs: e
                .outputs
                .iter()
                .map(|o| Output {
                    format: o.format.clone(),
                    // Relative to where kiln ran is meaningless to a reader
                    // of the catalog elsewhere.
                    path: std::path::absolute(&o.path)
                        .unwrap_or_else(|_| o.path.clone())
                        .to_string_lossy()
                        .into_owned(),
                    digest: o.digest.clone(),
                    size: o.size,
                })
                .collect(),
            manifest: e.manifest.to_vec(),
        })?;
        parent = Some(id);
    }
    parent.ok_or_else(|| Error::Internal("a chain has at least one image".into()))
}

/// The commit of the repository holding `dir`, `-dirty` when the
/// definition's directory has uncommitted changes; none outside git.
fn git_commit(dir: &Path) -> Option<String> {
    let git = |args: &[&str]| {
        Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let commit = git(&["rev-parse", "HEAD"])?;
    let dirty = git(&["status", "--porcelain", "--", "."]).is_some_and(|s| !s.is_empty());
    Some(if dirty {
        format!("{commit}-dirty")
    } else {
        commit
    })
}

/// Who is acting, for promotion records: `KILN_USER`, else the user sudo
/// was run by, else the login name, else the account of the process's uid.
pub fn who() -> String {
    ["KILN_USER", "SUDO_USER", "USER", "LOGNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| {
            let uid = rustix::process::getuid().as_raw();
            account(uid).unwrap_or_else(|| format!("uid {uid}"))
        })
}

fn account(uid: u32) -> Option<String> {
    let passwd = fs_err::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        (fields.nth(1)?.parse() == Ok(uid)).then(|| name.to_string())
    })
}

/// Writes the documents beside the outputs.
pub(crate) fn write_documents(
    out: &Path,
    stem: &str,
    docs: &Documents,
) -> Result<(PathBuf, PathBuf), Error> {
    let sbom = out.join(format!("{stem}.spdx.json"));
    let provenance = out.join(format!("{stem}.intoto.json"));
    crate::fsutil::write_atomic(&sbom, &docs.sbom)?;
    crate::fsutil::write_atomic(&provenance, &docs.provenance)?;
    Ok((sbom, provenance))
}
