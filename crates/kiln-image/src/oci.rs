//! OCI image layouts: writing one image from layer blobs, and reading a
//! layout back for `kiln inspect`.
//!
//! The JSON is kiln's own structs, not the `oci-spec` crate's: those keep
//! annotations and labels in `HashMap`s, whose order (and so whose bytes)
//! changes from run to run. Here every object is a struct (fields in
//! declaration order) or a `BTreeMap` (keys sorted), and `serde_json` writes
//! it compactly: the same image gives the same bytes, so the same digests.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use kiln_deb::Architecture;
use serde::{Deserialize, Serialize};

use crate::digest::HashingWriter;
use crate::{ImageError, Layer, MEDIA_TYPE_LAYER_GZIP};
use kiln_store::Digest;

pub const MEDIA_TYPE_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MEDIA_TYPE_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MEDIA_TYPE_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
/// The config of an artifact manifest that has none: the two bytes `{}`.
pub const MEDIA_TYPE_EMPTY: &str = "application/vnd.oci.empty.v1+json";
pub const ANNOTATION_TITLE: &str = "org.opencontainers.image.title";
pub const ANNOTATION_VERSION: &str = "org.opencontainers.image.version";
const ANNOTATION_CREATED: &str = "org.opencontainers.image.created";

/// Debian's default PATH for root, as `/etc/profile` sets it.
pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What the image says about itself, beyond its layers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageMeta {
    /// `org.opencontainers.image.title`.
    pub name: String,
    /// `org.opencontainers.image.version`, and the reference name in
    /// `index.json` (so `skopeo … oci:DIR:VERSION`).
    pub version: String,
    /// The image's creation time, from the lock.
    pub source_date_epoch: u64,
    /// The machine the image is for; OCI spells it with Go's name.
    pub architecture: Architecture,
    pub env: Vec<String>,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    /// Config labels, beside the title, version and created ones kiln sets.
    pub labels: BTreeMap<String, String>,
    /// Manifest annotations, beside the title, version and created ones.
    pub annotations: BTreeMap<String, String>,
    /// Documents about the image (SBOM, provenance), each written as an
    /// OCI 1.1 referrer: an artifact manifest whose `subject` is the image.
    pub attachments: Vec<Attachment>,
}

/// One document attached to the image as a referrer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// The manifest's `artifactType` and the blob's media type, e.g.
    /// `application/spdx+json`.
    pub media_type: String,
    pub bytes: Vec<u8>,
}

impl ImageMeta {
    pub fn new(
        name: &str,
        version: &str,
        source_date_epoch: u64,
        architecture: Architecture,
    ) -> ImageMeta {
        ImageMeta {
            name: name.to_string(),
            version: version.to_string(),
            source_date_epoch,
            architecture,
            env: vec![DEFAULT_PATH.to_string()],
            entrypoint: None,
            cmd: None,
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            attachments: Vec::new(),
        }
    }

    /// kiln's standard annotations, then the caller's (which may override).
    fn standard(&self, extra: &BTreeMap<String, String>) -> BTreeMap<String, String> {
        let mut out = BTreeMap::from([
            (ANNOTATION_TITLE.to_string(), self.name.clone()),
            (ANNOTATION_VERSION.to_string(), self.version.clone()),
            (
                ANNOTATION_CREATED.to_string(),
                rfc3339(self.source_date_epoch),
            ),
        ]);
        out.extend(extra.iter().map(|(k, v)| (k.clone(), v.clone())));
        out
    }
}

/// One layer of an image and the history entry that explains it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerInput {
    pub layer: Layer,
    /// When the image that made this layer was built (its lock's
    /// SOURCE_DATE_EPOCH): a parent's layer keeps its parent's time.
    pub created: u64,
    /// What made the layer, e.g. `kiln build base 1.0.0`.
    pub created_by: String,
    pub comment: Option<String>,
}

/// One image in a layout, as written or as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    /// `org.opencontainers.image.ref.name` in `index.json`.
    pub ref_name: Option<String>,
    pub manifest: Digest,
    pub manifest_size: u64,
    pub config: Digest,
    pub config_size: u64,
    pub created: Option<String>,
    pub layers: Vec<LayerInfo>,
    /// The referrers beside the image, as (artifact type, manifest digest),
    /// in index order.
    pub referrers: Vec<(String, Digest)>,
    /// The image index holding the image and its referrers, when there are
    /// referrers: what `index.json` names.
    pub index: Option<Digest>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerInfo {
    pub media_type: String,
    /// Digest and size of the (compressed) blob.
    pub digest: Digest,
    pub size: u64,
    /// Digest of the uncompressed tar.
    pub diff_id: Digest,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub manifests: Vec<Descriptor>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Config {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    created: Option<String>,
    architecture: String,
    os: String,
    #[serde(default)]
    config: ExecConfig,
    rootfs: RootFs,
    #[serde(default)]
    history: Vec<History>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ExecConfig {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    env: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cmd: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    labels: BTreeMap<String, String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct RootFs {
    #[serde(rename = "type")]
    kind: String,
    diff_ids: Vec<Digest>,
}

#[derive(Debug, Serialize, Deserialize)]
struct History {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    created_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    comment: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LayoutVersion {
    image_layout_version: String,
}

/// Writes an OCI image layout at `out_dir` holding one image made of
/// `layers` (bottom first), named `meta.version`.
///
/// The layout is assembled in a temporary directory beside `out_dir` and
/// renamed into place, so `out_dir` is never half written. An existing
/// `out_dir` is replaced only if it is an OCI layout (or empty): kiln will
/// not delete a directory it did not make. Layer blobs are copied from
/// where they are (the store) and verified as they are copied, never hard
/// linked: editing the layout cannot change the store.
pub fn write_oci_layout(
    layers: &[LayerInput],
    meta: &ImageMeta,
    out_dir: &Path,
) -> Result<ImageInfo, ImageError> {
    if layers.is_empty() {
        return Err(ImageError::NoLayers);
    }
    let parent = match out_dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    check_replaceable(out_dir)?;
    let temp = kiln_deb::scratch::Scratch::new_in(parent, ".tmp-oci-layout-")
        .map_err(|e| ImageError::io_at(&e.path, "creating a temporary directory", e.source))?;
    let blobs = oci_blob_dir(temp.path());
    fs_err::create_dir_all(&blobs)?;

    for input in layers {
        place_blob(&input.layer, &blobs)?;
    }
    let created = rfc3339(meta.source_date_epoch);
    let (config, manifest) = image_json(layers, meta);
    let (config_digest, config_size) = write_blob(&blobs, &config)?;
    let (manifest_digest, manifest_size) = write_blob(&blobs, &manifest)?;
    let image = Descriptor {
        media_type: MEDIA_TYPE_MANIFEST.to_string(),
        artifact_type: None,
        digest: manifest_digest,
        size: manifest_size,
        platform: None,
        annotations: BTreeMap::new(),
    };
    let ref_name = BTreeMap::from([(ANNOTATION_REF_NAME.to_string(), meta.version.clone())]);
    let mut referrers = Vec::new();
    let (top, index_digest) = if meta.attachments.is_empty() {
        (
            Descriptor {
                annotations: ref_name,
                ..image
            },
            None,
        )
    } else {
        // With documents, `index.json` names one image index holding the
        // image and its referrers, as `docker buildx` lays out attestations:
        // tools that want one image (skopeo's `oci-archive:FILE`, podman
        // load) pick the image by platform, and the referrers' `unknown`
        // platform never matches.
        let mut nested = vec![Descriptor {
            platform: Some(Platform {
                architecture: meta.architecture.oci().to_string(),
                os: "linux".to_string(),
            }),
            ..image.clone()
        }];
        for attachment in &meta.attachments {
            let mut desc = write_referrer(&blobs, attachment, image.clone(), &created)?;
            referrers.push((attachment.media_type.clone(), desc.digest));
            desc.platform = Some(Platform {
                architecture: "unknown".to_string(),
                os: "unknown".to_string(),
            });
            nested.push(desc);
        }
        let (digest, size) = write_json_blob(
            &blobs,
            &Index {
                schema_version: 2,
                media_type: Some(MEDIA_TYPE_INDEX.to_string()),
                manifests: nested,
            },
        )?;
        (
            Descriptor {
                media_type: MEDIA_TYPE_INDEX.to_string(),
                artifact_type: None,
                digest,
                size,
                platform: None,
                annotations: ref_name,
            },
            Some(digest),
        )
    };
    let index = Index {
        schema_version: 2,
        media_type: Some(MEDIA_TYPE_INDEX.to_string()),
        manifests: vec![top],
    };
    write_json(&temp.path().join("index.json"), &index)?;
    write_json(
        &temp.path().join("oci-layout"),
        &LayoutVersion {
            image_layout_version: "1.0.0".to_string(),
        },
    )?;

    if out_dir.exists() {
        fs_err::remove_dir_all(out_dir)?;
    }
    fs_err::rename(temp.path(), out_dir)?;
    // Renamed away: nothing is left for the guard to remove.
    temp.keep();

    Ok(ImageInfo {
        ref_name: Some(meta.version.clone()),
        manifest: manifest_digest,
        manifest_size,
        config: config_digest,
        config_size,
        created: Some(created),
        layers: layers
            .iter()
            .map(|l| LayerInfo {
                media_type: MEDIA_TYPE_LAYER_GZIP.to_string(),
                digest: l.layer.digest,
                size: l.layer.size,
                diff_id: l.layer.diff_id,
            })
            .collect(),
        referrers,
        index: index_digest,
    })
}

/// The digest and size of the image manifest `write_oci_layout` would
/// write for these inputs, without writing anything: documents about the
/// image (which name it) can be made before the layout that carries them.
pub fn image_manifest_digest(
    layers: &[LayerInput],
    meta: &ImageMeta,
) -> Result<(Digest, u64), ImageError> {
    if layers.is_empty() {
        return Err(ImageError::NoLayers);
    }
    let (_, manifest) = image_json(layers, meta);
    Ok((Digest::of(&manifest), manifest.len() as u64))
}

/// The image's config and manifest JSON: pure functions of the inputs.
fn image_json(layers: &[LayerInput], meta: &ImageMeta) -> (Vec<u8>, Vec<u8>) {
    let config = Config {
        created: Some(rfc3339(meta.source_date_epoch)),
        architecture: meta.architecture.oci().to_string(),
        os: "linux".to_string(),
        config: ExecConfig {
            env: meta.env.clone(),
            entrypoint: meta.entrypoint.clone(),
            cmd: meta.cmd.clone(),
            labels: meta.standard(&meta.labels),
        },
        rootfs: RootFs {
            kind: "layers".to_string(),
            diff_ids: layers.iter().map(|l| l.layer.diff_id).collect(),
        },
        history: layers
            .iter()
            .map(|l| History {
                created: Some(rfc3339(l.created)),
                created_by: Some(l.created_by.clone()),
                comment: l.comment.clone(),
            })
            .collect(),
    };
    let config = to_json(&config);
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(MEDIA_TYPE_MANIFEST.to_string()),
        artifact_type: None,
        config: Descriptor {
            media_type: MEDIA_TYPE_CONFIG.to_string(),
            artifact_type: None,
            digest: Digest::of(&config),
            size: config.len() as u64,
            platform: None,
            annotations: BTreeMap::new(),
        },
        layers: layers
            .iter()
            .map(|l| Descriptor {
                media_type: MEDIA_TYPE_LAYER_GZIP.to_string(),
                artifact_type: None,
                digest: l.layer.digest,
                size: l.layer.size,
                platform: None,
                annotations: BTreeMap::new(),
            })
            .collect(),
        annotations: meta.standard(&meta.annotations),
        subject: None,
    };
    (config, to_json(&manifest))
}

/// Writes `attachment` as an artifact manifest whose subject is the image,
/// and returns its descriptor for `index.json`. It carries no ref name, so
/// `oci:DIR:VERSION` still names exactly one image.
fn write_referrer(
    blobs: &Path,
    attachment: &Attachment,
    subject: Descriptor,
    created: &str,
) -> Result<Descriptor, ImageError> {
    let (blob, _) = write_blob(blobs, &attachment.bytes)?;
    let empty = b"{}";
    let (empty_digest, _) = write_blob(blobs, empty)?;
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(MEDIA_TYPE_MANIFEST.to_string()),
        artifact_type: Some(attachment.media_type.clone()),
        config: Descriptor {
            media_type: MEDIA_TYPE_EMPTY.to_string(),
            artifact_type: None,
            digest: empty_digest,
            size: empty.len() as u64,
            platform: None,
            annotations: BTreeMap::new(),
        },
        layers: vec![Descriptor {
            media_type: attachment.media_type.clone(),
            artifact_type: None,
            digest: blob,
            size: attachment.bytes.len() as u64,
            platform: None,
            annotations: BTreeMap::new(),
        }],
        subject: Some(subject),
        annotations: BTreeMap::from([(ANNOTATION_CREATED.to_string(), created.to_string())]),
    };
    let (digest, size) = write_json_blob(blobs, &manifest)?;
    Ok(Descriptor {
        media_type: MEDIA_TYPE_MANIFEST.to_string(),
        artifact_type: Some(attachment.media_type.clone()),
        digest,
        size,
        platform: None,
        annotations: BTreeMap::new(),
    })
}

/// One file carried as the single blob of an artifact manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactBlob {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    /// `org.opencontainers.image.title`: the file name a puller gives it.
    pub title: String,
}

/// The bytes of an OCI 1.1 artifact manifest carrying `blob`, typed
/// `artifact_type`, whose `subject` is the image manifest `subject`
/// (digest, size): how a disk image travels beside its OCI image. Its
/// config is the empty `{}` blob, which the caller must also provide.
pub fn artifact_manifest(
    artifact_type: &str,
    blob: &ArtifactBlob,
    subject: (Digest, u64),
    created: u64,
) -> Vec<u8> {
    let empty = b"{}";
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(MEDIA_TYPE_MANIFEST.to_string()),
        artifact_type: Some(artifact_type.to_string()),
        config: Descriptor {
            media_type: MEDIA_TYPE_EMPTY.to_string(),
            artifact_type: None,
            digest: Digest::of(empty),
            size: empty.len() as u64,
            platform: None,
            annotations: BTreeMap::new(),
        },
        layers: vec![Descriptor {
            media_type: blob.media_type.clone(),
            artifact_type: None,
            digest: blob.digest,
            size: blob.size,
            platform: None,
            annotations: BTreeMap::from([(ANNOTATION_TITLE.to_string(), blob.title.clone())]),
        }],
        subject: Some(Descriptor {
            media_type: MEDIA_TYPE_MANIFEST.to_string(),
            artifact_type: None,
            digest: subject.0,
            size: subject.1,
            platform: None,
            annotations: BTreeMap::new(),
        }),
        annotations: BTreeMap::from([(ANNOTATION_CREATED.to_string(), rfc3339(created))]),
    };
    to_json(&manifest)
}

/// Refuses to replace anything but an OCI layout or an empty directory.
fn check_replaceable(out_dir: &Path) -> Result<(), ImageError> {
    match fs_err::symlink_metadata(out_dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e.into()),
        Ok(m) if !m.is_dir() => {
            return Err(ImageError::BadLayout {
                path: out_dir.to_path_buf(),
                why: "exists and is not a directory; not replacing it".to_string(),
            });
        }
        Ok(_) => {}
    }
    let empty = fs_err::read_dir(out_dir)?.next().is_none();
    if empty || out_dir.join("oci-layout").is_file() {
        Ok(())
    } else {
        Err(ImageError::BadLayout {
            path: out_dir.to_path_buf(),
            why: "exists and is not an OCI layout; not replacing it".to_string(),
        })
    }
}

/// Puts a layer blob into `blobs`: a copy, hashed as it is made, so the
/// store's blob is verified on use and an output edited in place (out/ is
/// the user's) can never change the store, as a hard link would let it.
fn place_blob(layer: &Layer, blobs: &Path) -> Result<(), ImageError> {
    let dest = blobs.join(layer.digest.hex());
    if dest.exists() {
        // The same layer twice in one image.
        return Ok(());
    }
    {
        let mut from = fs_err::File::open(&layer.path)?;
        let mut to = HashingWriter::new(fs_err::File::create(&dest)?);
        std::io::copy(&mut from, &mut to)?;
        let (digest, _, _) = to.finish()?;
        if digest != layer.digest {
            return Err(ImageError::DigestMismatch {
                path: layer.path.clone(),
                what: "layer blob",
                expected: layer.digest,
                got: digest,
            });
        }
    }
    let size = fs_err::metadata(&dest)?.len();
    if size != layer.size {
        return Err(ImageError::SizeMismatch {
            path: layer.path.clone(),
            expected: layer.size,
            got: size,
        });
    }
    Ok(())
}

/// The layout's `index.json` with its image named `ref_name` instead: what
/// an archive of the layout carries, since `podman load` takes the image's
/// name from it (a bare version would load as `localhost/1.0.0`).
pub(crate) fn index_named(layout_dir: &Path, ref_name: &str) -> Result<Vec<u8>, ImageError> {
    let path = layout_dir.join("index.json");
    let mut index: Index =
        serde_json::from_slice(&fs_err::read(&path)?).map_err(|e| ImageError::BadLayout {
            path: path.clone(),
            why: format!("index.json is not an OCI index: {e}"),
        })?;
    for m in &mut index.manifests {
        if let Some(name) = m.annotations.get_mut(ANNOTATION_REF_NAME) {
            *name = ref_name.to_string();
        }
    }
    Ok(to_json(&index))
}

fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    // Structs, string-keyed BTreeMaps and strings: nothing here can fail to
    // serialise, and an empty blob in its place would be a silent lie.
    serde_json::to_vec(value).expect("OCI JSON structs always serialise")
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), ImageError> {
    fs_err::write(path, to_json(value))?;
    Ok(())
}

fn write_json_blob<T: Serialize>(blobs: &Path, value: &T) -> Result<(Digest, u64), ImageError> {
    write_blob(blobs, &to_json(value))
}

fn write_blob(blobs: &Path, bytes: &[u8]) -> Result<(Digest, u64), ImageError> {
    let digest = Digest::of(bytes);
    fs_err::write(blobs.join(digest.hex()), bytes)?;
    Ok((digest, bytes.len() as u64))
}

/// Reads every image an OCI layout's `index.json` names, checking that the
/// manifests and configs match their digests and that each layer blob is
/// there with its size (layer contents are not hashed: that is a read of the
/// whole image).
pub fn read_oci_layout(dir: &Path) -> Result<Vec<ImageInfo>, ImageError> {
    let bad = |why: String| ImageError::BadLayout {
        path: dir.to_path_buf(),
        why,
    };
    let layout: LayoutVersion = read_json(&dir.join("oci-layout"), "oci-layout")?;
    if !layout.image_layout_version.starts_with("1.") {
        return Err(bad(format!(
            "image layout version {} (kiln reads 1.x)",
            layout.image_layout_version
        )));
    }
    let index: Index = read_json(&dir.join("index.json"), "an OCI index")?;
    let mut images = Vec::new();
    let mut referrers = Vec::new();
    for top in &index.manifests {
        let ref_name = top.annotations.get(ANNOTATION_REF_NAME);
        let (entries, nested) = if top.media_type == MEDIA_TYPE_INDEX {
            let nested: Index = read_blob(dir, top, "an OCI image index")?;
            (nested.manifests, Some(top.digest))
        } else {
            (vec![top.clone()], None)
        };
        for desc in &entries {
            if desc.media_type != MEDIA_TYPE_MANIFEST {
                return Err(bad(format!(
                    "the layout names a {} (kiln reads image manifests and indexes)",
                    desc.media_type
                )));
            }
            let manifest: Manifest = read_blob(dir, desc, "an OCI manifest")?;
            // Referrers (SBOM, provenance) are documents about an image. The
            // manifest says so itself: copies by older tools drop
            // `artifactType` from the index entry.
            if let Some(subject) = &manifest.subject {
                let kind = manifest
                    .artifact_type
                    .clone()
                    .or_else(|| desc.artifact_type.clone())
                    .unwrap_or_else(|| manifest.config.media_type.clone());
                for layer in &manifest.layers {
                    check_blob_size(dir, layer)?;
                }
                referrers.push((subject.digest, kind, desc.digest));
                continue;
            }
            let mut image = read_image(dir, desc, &manifest)?;
            image.ref_name = ref_name.cloned();
            image.index = nested;
            images.push(image);
        }
    }
    for (subject, kind, digest) in referrers {
        let image = images
            .iter_mut()
            .find(|i| i.manifest == subject)
            .ok_or_else(|| {
                bad(format!(
                    "referrer {digest} names {subject}, not in the layout"
                ))
            })?;
        image.referrers.push((kind, digest));
    }
    Ok(images)
}

/// One image: its manifest (read), its config, and its layer blobs' sizes.
fn read_image(dir: &Path, desc: &Descriptor, manifest: &Manifest) -> Result<ImageInfo, ImageError> {
    let bad = |why: String| ImageError::BadLayout {
        path: dir.to_path_buf(),
        why,
    };
    let config: Config = read_blob(dir, &manifest.config, "an OCI image config")?;
    if config.rootfs.diff_ids.len() != manifest.layers.len() {
        return Err(bad(format!(
            "manifest {} has {} layers but its config {} diff_ids",
            desc.digest,
            manifest.layers.len(),
            config.rootfs.diff_ids.len()
        )));
    }
    let mut layers = Vec::new();
    for (layer, diff_id) in manifest.layers.iter().zip(&config.rootfs.diff_ids) {
        check_blob_size(dir, layer)?;
        layers.push(LayerInfo {
            media_type: layer.media_type.clone(),
            digest: layer.digest,
            size: layer.size,
            diff_id: *diff_id,
        });
    }
    Ok(ImageInfo {
        ref_name: None,
        manifest: desc.digest,
        manifest_size: desc.size,
        config: manifest.config.digest,
        config_size: manifest.config.size,
        created: config.created,
        layers,
        referrers: Vec::new(),
        index: None,
    })
}

/// The blob `desc` names is there with its size (contents are not hashed:
/// that would read the whole image).
fn check_blob_size(dir: &Path, desc: &Descriptor) -> Result<(), ImageError> {
    let path = oci_blob_path(dir, &desc.digest);
    let size = fs_err::metadata(&path)?.len();
    if size != desc.size {
        return Err(ImageError::SizeMismatch {
            path,
            expected: desc.size,
            got: size,
        });
    }
    Ok(())
}

/// Where an OCI layout keeps its blobs (the OCI image-layout
/// specification's place, not kiln's store).
pub fn oci_blob_dir(layout: &Path) -> PathBuf {
    layout.join("blobs/sha256")
}

/// Where an OCI layout keeps the blob `digest`.
pub fn oci_blob_path(layout: &Path, digest: &Digest) -> PathBuf {
    oci_blob_dir(layout).join(digest.hex())
}

fn read_json<T: for<'de> Deserialize<'de>>(
    path: &Path,
    what: &'static str,
) -> Result<T, ImageError> {
    let bytes = fs_err::read(path)?;
    serde_json::from_slice(&bytes).map_err(|source| ImageError::Json {
        path: path.to_path_buf(),
        what,
        source,
    })
}

fn read_blob<T: for<'de> Deserialize<'de>>(
    dir: &Path,
    desc: &Descriptor,
    what: &'static str,
) -> Result<T, ImageError> {
    let path = oci_blob_path(dir, &desc.digest);
    let bytes = fs_err::read(&path)?;
    if bytes.len() as u64 != desc.size {
        return Err(ImageError::SizeMismatch {
            path,
            expected: desc.size,
            got: bytes.len() as u64,
        });
    }
    let got = Digest::of(&bytes);
    if got != desc.digest {
        return Err(ImageError::DigestMismatch {
            path,
            what,
            expected: desc.digest,
            got,
        });
    }
    serde_json::from_slice(&bytes).map_err(|source| ImageError::Json { path, what, source })
}

/// Seconds since the epoch as RFC 3339 in UTC (`1970-01-01T00:00:00Z`).
/// A time past jiff's range (year 9999) is written as its last second, so
/// a wild SOURCE_DATE_EPOCH still gives a valid document.
pub(crate) fn rfc3339(secs: u64) -> String {
    let ts = i64::try_from(secs)
        .ok()
        .and_then(|s| jiff::Timestamp::from_second(s).ok())
        .unwrap_or(jiff::Timestamp::MAX);
    format!("{ts:.0}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_matches_known_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(4_107_542_399), "2100-02-28T23:59:59Z");
    }
}
