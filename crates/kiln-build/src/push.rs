//! `kiln push`: what the last build made, to an OCI registry. The image
//! manifest goes up by digest and under its tags; SBOM and provenance as
//! the referrers the layout already holds; each disk image as an artifact
//! (`artifactType` `application/vnd.kiln.disk.FORMAT`) whose `subject` is
//! the image. Every blob is HEADed first, so a second push uploads nothing.

use std::path::{Path, PathBuf};

use kiln_image::{
    ArtifactBlob, Descriptor, Index, MEDIA_TYPE_INDEX, MEDIA_TYPE_MANIFEST, Manifest,
};
use kiln_registry::{BlobSource, Client, ClientOptions, Reference, Target, Upload};
use kiln_store::Digest;
use serde::Serialize;

use crate::{Error, Progress, inspect};

/// `application/vnd.kiln.disk.` + the format: a disk's artifact type, and
/// how `kiln pull` finds disks among an image's referrers.
pub const DISK_ARTIFACT_PREFIX: &str = "application/vnd.kiln.disk.";

/// How to reach a registry (`--ca-file`, `--insecure`).
#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    pub ca_file: Option<PathBuf>,
    pub insecure: bool,
}

impl RegistryOptions {
    pub(crate) fn client(&self, reference: &Reference) -> Result<Client, Error> {
        let RegistryOptions { ca_file, insecure } = self;
        Ok(Client::connect(
            reference,
            &ClientOptions {
                ca_file: ca_file.clone(),
                insecure: *insecure,
                credentials: None,
            },
        )?)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct PushReport {
    /// `REGISTRY/REPO@sha256:…`: the image manifest.
    pub reference: String,
    pub image: String,
    pub version: String,
    pub build: String,
    pub tags: Vec<String>,
    /// Referrers of the image: SBOM, provenance, disks.
    pub artifacts: Vec<PushedArtifact>,
    /// Blobs sent, found already there, or mounted.
    pub uploaded: usize,
    pub present: usize,
    pub mounted: usize,
    pub bytes_uploaded: u64,
    /// The catalog that recorded the push (`kiln show` lists it), if the
    /// build is in it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub catalog: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PushedArtifact {
    pub artifact_type: String,
    pub digest: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
}

/// Pushes the last build of the definition in `dir` to `to`
/// (`REGISTRY/REPO[:TAG]`).
pub fn push(
    dir: &Path,
    out: Option<&Path>,
    to: &str,
    options: &RegistryOptions,
    catalog: Option<&str>,
    progress: &dyn Progress,
) -> Result<PushReport, Error> {
    let build = inspect(dir, out)?;
    let reference = Reference::parse(to)?;
    if let Target::Digest(_) = reference.target {
        return Err(Error::PushToDigest { to: to.to_string() });
    }
    let oci = build
        .outputs
        .iter()
        .find(|o| o.format == "oci")
        .ok_or_else(|| Error::NoOciImage {
            image: build.image.clone(),
        })?;
    let client = options.client(&reference)?;
    let catalog = crate::open_catalog(catalog)?;
    let mut pusher = Pusher {
        client: &client,
        sessions: crate::uploads::StoreSessions::open(format!(
            "{}/{}",
            reference.registry, reference.repository
        )),
        mount_from: mount_source(&catalog, &build.build, &reference)?,
        layout: &oci.path,
        report: PushReport {
            reference: String::new(),
            image: build.image.clone(),
            version: build.version.clone(),
            build: build.build.clone(),
            tags: Vec::new(),
            artifacts: Vec::new(),
            uploaded: 0,
            present: 0,
            mounted: 0,
            bytes_uploaded: 0,
            catalog: None,
        },
    };

    let (image, referrers) = read_layout(&oci.path)?;
    progress.step(&format!(
        "pushing {} {} to {reference}",
        build.image, build.version
    ));
    let image_bytes = pusher.push_manifest_with_blobs(&image)?;
    let image_desc = (image.digest, image_bytes.len() as u64);
    for referrer in referrers {
        pusher.push_manifest_with_blobs(&referrer)?;
        let artifact_type = referrer.artifact_type.clone().unwrap_or_default();
        pusher.link(&image.digest, referrer, artifact_type, None)?;
    }
    for disk in build.outputs.iter().filter(|o| is_disk(&o.format)) {
        let artifact_type = format!("{DISK_ARTIFACT_PREFIX}{}", disk.format);
        let file = disk
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let blob = ArtifactBlob {
            media_type: artifact_type.clone(),
            digest: disk.digest.parse().map_err(|_| {
                Error::Internal(format!(
                    "{}: a malformed digest in the build record",
                    disk.path.display()
                ))
            })?,
            size: disk.size,
            title: file.clone(),
        };
        progress.step(&format!("pushing {file}"));
        let empty = b"{}";
        pusher.blob(&Digest::of(empty), 2, BlobSource::Bytes(empty))?;
        pusher.blob(&blob.digest, blob.size, BlobSource::File(&disk.path))?;
        let bytes = kiln_image::artifact_manifest(
            &artifact_type,
            &blob,
            image_desc,
            build.source_date_epoch.max(0) as u64,
        );
        let desc = kiln_registry::manifest_descriptor(&bytes, Some(&artifact_type));
        client.put_manifest(&desc.digest.to_string(), MEDIA_TYPE_MANIFEST, &bytes)?;
        pusher.link(&image.digest, desc, artifact_type, Some(file))?;
    }

    let mut tags = match &reference.target {
        Target::Tag(t) => vec![t.clone()],
        _ => vec![build.version.clone()],
    };
    if let Some(hex) = build.build.strip_prefix("sha256:") {
        tags.push(format!("build-{hex}"));
    }
    for tag in &tags {
        client.put_manifest(tag, MEDIA_TYPE_MANIFEST, &image_bytes)?;
    }
    let mut report = pusher.report;
    report.tags = tags;
    report.reference = reference.with(Target::Digest(image.digest)).to_string();
    report.catalog = record(&catalog, &build.build, &report, progress)?;
    Ok(report)
}

/// Records the push against the build in the catalog. A build the catalog
/// does not know (made with another catalog) is pushed all the same.
fn record(
    catalog: &kiln_catalog::Catalog,
    build: &str,
    report: &PushReport,
    progress: &dyn Progress,
) -> Result<Option<String>, Error> {
    let push = kiln_catalog::Push {
        reference: report.reference.clone(),
        tags: report.tags.clone(),
        at: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64),
    };
    match catalog.record_push(build, &push) {
        Ok(()) => Ok(Some(catalog.describe())),
        Err(kiln_catalog::Error::UnknownBuild { .. }) => {
            progress.step(&format!(
                "build {build} is not in {}: the push is not recorded",
                catalog.describe()
            ));
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

/// Another repository of the same registry that a parent of `build` was
/// pushed to (the catalog knows): blobs the child shares with it (the
/// parent's layer) are mounted from there instead of uploaded again.
fn mount_source(
    catalog: &kiln_catalog::Catalog,
    build: &str,
    to: &Reference,
) -> Result<Option<String>, Error> {
    let lineage = match catalog.lineage(build) {
        Ok(l) => l,
        Err(kiln_catalog::Error::UnknownBuild { .. } | kiln_catalog::Error::NotFound { .. }) => {
            return Ok(None);
        }
        Err(e) => return Err(e.into()),
    };
    for parent in lineage.iter().skip(1) {
        for push in catalog.pushes(&parent.id)? {
            if let Ok(r) = Reference::parse(&push.reference)
                && r.registry == to.registry
                && r.repository != to.repository
            {
                return Ok(Some(r.repository));
            }
        }
    }
    Ok(None)
}

fn is_disk(format: &str) -> bool {
    kiln_spec::Format::ALL
        .iter()
        .any(|f| f.is_disk() && f.as_str() == format)
}

struct Pusher<'a> {
    client: &'a Client,
    sessions: crate::uploads::StoreSessions,
    mount_from: Option<String>,
    layout: &'a Path,
    report: PushReport,
}

impl Pusher<'_> {
    fn blob(&mut self, digest: &Digest, size: u64, source: BlobSource<'_>) -> Result<(), Error> {
        let from = self.mount_from.as_deref();
        match self
            .client
            .push_blob_resuming(digest, size, source, from, &self.sessions)?
        {
            Upload::Present => self.report.present += 1,
            Upload::Mounted => self.report.mounted += 1,
            Upload::Uploaded { .. } => {
                self.report.uploaded += 1;
                self.report.bytes_uploaded += size;
            }
        }
        Ok(())
    }

    /// Pushes the manifest `desc` of the layout, its config and layers
    /// first; returns its bytes.
    fn push_manifest_with_blobs(&mut self, desc: &Descriptor) -> Result<Vec<u8>, Error> {
        let path = kiln_image::oci_blob_path(self.layout, &desc.digest);
        let bytes = read_verified(&path, &desc.digest)?;
        let manifest: Manifest = serde_json::from_slice(&bytes)
            .map_err(|e| bad_layout(&path, &format!("not an image manifest: {e}")))?;
        for blob in std::iter::once(&manifest.config).chain(&manifest.layers) {
            let blob_file = kiln_image::oci_blob_path(self.layout, &blob.digest);
            self.blob(&blob.digest, blob.size, BlobSource::File(&blob_file))?;
        }
        self.client
            .put_manifest(&desc.digest.to_string(), MEDIA_TYPE_MANIFEST, &bytes)?;
        Ok(bytes)
    }

    /// Makes `referrer` findable from `subject`: by the registry itself
    /// when it handles `subject`, else through the referrers tag.
    fn link(
        &mut self,
        subject: &Digest,
        mut referrer: Descriptor,
        artifact_type: String,
        file: Option<String>,
    ) -> Result<(), Error> {
        referrer.platform = None;
        referrer.artifact_type = Some(artifact_type.clone());
        let digest = referrer.digest;
        if !self
            .client
            .referrers(subject)?
            .iter()
            .any(|d| d.digest == digest)
        {
            self.client.add_referrer_tag(subject, referrer)?;
        }
        self.report.artifacts.push(PushedArtifact {
            artifact_type,
            digest: digest.to_string(),
            file,
        });
        Ok(())
    }
}

/// The image manifest a kiln layout names, and its referrers.
fn read_layout(layout: &Path) -> Result<(Descriptor, Vec<Descriptor>), Error> {
    let index_path = layout.join("index.json");
    let index: Index =
        serde_json::from_slice(&fs_err::read(&index_path).map_err(|e| Error::Io {
            path: index_path.clone(),
            source: e,
        })?)
        .map_err(|e| bad_layout(&index_path, &e.to_string()))?;
    let top = index
        .manifests
        .first()
        .ok_or_else(|| bad_layout(&index_path, "names no image"))?;
    if top.media_type == MEDIA_TYPE_MANIFEST {
        return Ok((top.clone(), Vec::new()));
    }
    if top.media_type != MEDIA_TYPE_INDEX {
        return Err(bad_layout(
            &index_path,
            &format!("unknown media type {}", top.media_type),
        ));
    }
    let nested_path = kiln_image::oci_blob_path(layout, &top.digest);
    let nested: Index = serde_json::from_slice(&read_verified(&nested_path, &top.digest)?)
        .map_err(|e| bad_layout(&nested_path, &e.to_string()))?;
    let (images, referrers): (Vec<_>, Vec<_>) = nested
        .manifests
        .into_iter()
        .partition(|d| d.artifact_type.is_none());
    let image = images
        .into_iter()
        .next()
        .ok_or_else(|| bad_layout(&nested_path, "holds no image"))?;
    Ok((image, referrers))
}

/// A small blob of the layout, checked against its digest.
fn read_verified(path: &Path, digest: &Digest) -> Result<Vec<u8>, Error> {
    let bytes = fs_err::read(path).map_err(|e| Error::Io {
        path: path.to_path_buf(),
        source: e,
    })?;
    if Digest::of(&bytes) != *digest {
        return Err(bad_layout(path, &format!("does not hash to {digest}")));
    }
    Ok(bytes)
}

fn bad_layout(path: &Path, why: &str) -> Error {
    Error::BadLayout {
        path: path.to_path_buf(),
        why: why.to_string(),
    }
}
