//! `kiln pull`: an image from a registry as an OCI layout, with the disk
//! images attached to it, under the names `kiln build` gives them. Every
//! blob is hashed as it arrives and written under a temporary name that
//! becomes its real one only once it matched; names the registry supplies
//! (title, version) must be plain file names, so nothing lands outside DIR.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use kiln_image::{
    ANNOTATION_REF_NAME, ANNOTATION_TITLE, ANNOTATION_VERSION, Descriptor, Index, MEDIA_TYPE_INDEX,
    MEDIA_TYPE_MANIFEST, Manifest,
};
use kiln_registry::{Client, Reference, Target};
use kiln_store::Digest;
use serde::Serialize;

use crate::fsutil::io;
use crate::push::{DISK_ARTIFACT_PREFIX, RegistryOptions};
use crate::{Architecture, Error, Format, Progress};

#[derive(Debug, Clone, Serialize)]
pub struct PullReport {
    /// `REGISTRY/REPO@sha256:…`: the image manifest pulled.
    pub reference: String,
    pub image: String,
    pub version: String,
    pub layout: PathBuf,
    /// Disk images written, by format.
    pub disks: BTreeMap<String, PathBuf>,
    pub bytes: u64,
}

/// From an index of several platforms, the image for `arch` is taken.
pub fn pull(
    reference: &str,
    arch: Architecture,
    out: &Path,
    formats: &[Format],
    options: &RegistryOptions,
    progress: &dyn Progress,
) -> Result<PullReport, Error> {
    let reference = Reference::parse(reference)?;
    let client = options.client(&reference)?;
    let (digest, bytes) = image_manifest(&client, &reference, arch)?;
    let url = reference.with(Target::Digest(digest)).to_string();
    let manifest: Manifest = parse(&url, &bytes)?;
    let title = manifest.annotations.get(ANNOTATION_TITLE);
    let version = manifest
        .annotations
        .get(ANNOTATION_VERSION)
        .cloned()
        .or_else(|| match &reference.target {
            Target::Tag(t) => Some(t.clone()),
            _ => None,
        });
    let name = title.cloned().unwrap_or_else(|| {
        reference
            .repository
            .rsplit('/')
            .next()
            .unwrap_or("image")
            .to_string()
    });
    let version = version.unwrap_or_else(|| digest.hex()[..12].to_string());
    let stem = safe_name(&url, &format!("{name}-{version}"))?;
    fs_err::create_dir_all(out).map_err(io(out))?;

    progress.step(&format!("pulling {reference} ({digest})"));
    let mut total = 0;
    let layout = out.join(format!("{stem}.oci"));
    // Refused before anything is fetched, so a refusal writes nothing.
    let replaceable = |l: &Path| l.join("oci-layout").is_file() || !l.exists();
    if !replaceable(&layout) {
        return Err(Error::WontReplace { path: layout });
    }
    let temp = tempfile::Builder::new()
        .prefix(".tmp-pull-")
        .tempdir_in(out)
        .map_err(io(out))?;
    let blobs = kiln_image::oci_blob_dir(temp.path());
    fs_err::create_dir_all(&blobs).map_err(io(&blobs))?;
    for blob in std::iter::once(&manifest.config).chain(&manifest.layers) {
        total += client.pull_blob_to(
            &blob.digest,
            Some(blob.size),
            &blobs.join(blob.digest.hex()),
        )?;
    }
    write(&blobs.join(digest.hex()), &bytes)?;
    let index = Index {
        schema_version: 2,
        media_type: Some(MEDIA_TYPE_INDEX.to_string()),
        manifests: vec![Descriptor {
            media_type: MEDIA_TYPE_MANIFEST.to_string(),
            artifact_type: None,
            digest,
            size: bytes.len() as u64,
            platform: None,
            annotations: BTreeMap::from([(ANNOTATION_REF_NAME.to_string(), version.clone())]),
        }],
    };
    write(&temp.path().join("index.json"), &to_json(&index))?;
    write(
        &temp.path().join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )?;

    let mut disks = BTreeMap::new();
    for referrer in client.referrers(&digest)? {
        let Some(format) = referrer
            .artifact_type
            .as_deref()
            .and_then(|t| t.strip_prefix(DISK_ARTIFACT_PREFIX))
        else {
            continue;
        };
        if !formats.is_empty() && !formats.iter().any(|f| f.as_str() == format) {
            continue;
        }
        let Some(fetched) = client.manifest(&Target::Digest(referrer.digest))? else {
            continue;
        };
        let artifact: Manifest = parse(&url, &fetched.bytes)?;
        if artifact.subject.as_ref().map(|s| s.digest) != Some(digest) {
            continue;
        }
        let [blob] = artifact.layers.as_slice() else {
            return Err(Error::BadArtifact {
                reference: url.clone(),
                why: format!(
                    "the {format} artifact carries {} blobs, not one",
                    artifact.layers.len()
                ),
            });
        };
        let file = blob
            .annotations
            .get(ANNOTATION_TITLE)
            .cloned()
            .unwrap_or_else(|| format!("{stem}.{format}"));
        let file = safe_name(&url, &file)?;
        progress.step(&format!("pulling {file} ({} MiB)", blob.size >> 20));
        let path = out.join(&file);
        total += client.pull_blob_to(&blob.digest, Some(blob.size), &path)?;
        disks.insert(format.to_string(), path);
    }
    for wanted in formats.iter().filter(|f| f.is_disk()) {
        if !disks.contains_key(wanted.as_str()) {
            return Err(Error::BadArtifact {
                reference: url,
                why: format!("no {} disk image is attached to the image", wanted.as_str()),
            });
        }
    }

    if !replaceable(&layout) {
        return Err(Error::WontReplace { path: layout });
    }
    if layout.exists() {
        fs_err::remove_dir_all(&layout).map_err(io(&layout))?;
    }
    let kept = temp.keep();
    fs_err::rename(&kept, &layout).map_err(io(&layout))?;
    Ok(PullReport {
        reference: url,
        image: name,
        version,
        layout,
        disks,
        bytes: total,
    })
}

/// The digest and bytes of the image manifest at `reference`: an index is
/// followed to its linux/amd64 image.
fn image_manifest(
    client: &Client,
    reference: &Reference,
    arch: Architecture,
) -> Result<(Digest, Vec<u8>), Error> {
    let missing = || Error::NotInRegistry {
        reference: reference.to_string(),
    };
    let fetched = client.manifest(&reference.target)?.ok_or_else(missing)?;
    if fetched.media_type != MEDIA_TYPE_INDEX {
        return Ok((fetched.digest, fetched.bytes));
    }
    let index: Index = parse(&reference.to_string(), &fetched.bytes)?;
    let image = index
        .manifests
        .iter()
        .find(|d| {
            d.media_type == MEDIA_TYPE_MANIFEST
                && d.platform
                    .as_ref()
                    .is_some_and(|p| p.os == "linux" && p.architecture == arch.oci())
        })
        .ok_or_else(missing)?;
    let fetched = client
        .manifest(&Target::Digest(image.digest))?
        .ok_or_else(missing)?;
    Ok((fetched.digest, fetched.bytes))
}

/// A name from the registry used as a file name: one plain component.
fn safe_name(reference: &str, name: &str) -> Result<String, Error> {
    let plain = !name.is_empty()
        && name != "."
        && name != ".."
        && !name.starts_with('.')
        && !name.contains(['/', '\\', '\0']);
    if plain {
        Ok(name.to_string())
    } else {
        Err(Error::BadArtifact {
            reference: reference.to_string(),
            why: format!("`{name}` is not a plain file name"),
        })
    }
}

fn parse<T: for<'de> serde::Deserialize<'de>>(reference: &str, bytes: &[u8]) -> Result<T, Error> {
    serde_json::from_slice(bytes).map_err(|e| Error::BadArtifact {
        reference: reference.to_string(),
        why: format!("not an OCI manifest: {e}"),
    })
}

fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("OCI JSON structs always serialise")
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    fs_err::write(path, bytes).map_err(io(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_a_registry_must_be_plain_file_names() {
        assert_eq!(
            safe_name("r", "web-1.0.0.qcow2").unwrap(),
            "web-1.0.0.qcow2"
        );
        for bad in [
            "",
            ".",
            "..",
            "../x",
            "a/b",
            ".hidden",
            "/etc/passwd",
            "a\\b",
        ] {
            assert!(safe_name("r", bad).is_err(), "{bad}");
        }
    }
}
