//! Manifests and referrers. A manifest is fetched whole (bounded), hashed,
//! and refused unless it is the digest asked for (or, by tag, the digest
//! the registry names); referrers come from the OCI 1.1 API, or from the
//! `sha256-HEX` tag schema on registries without it, which a push keeps.

use kiln_image::{Descriptor, Index, MEDIA_TYPE_INDEX, MEDIA_TYPE_MANIFEST};
use kiln_store::Digest;

use crate::client::{MANIFEST_LIMIT, header, read_limited, unexpected};
use crate::{Client, RegistryError, Target};

/// A manifest as the registry served it, verified.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub bytes: Vec<u8>,
    pub digest: Digest,
    pub media_type: String,
}

const ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, \
                      application/vnd.oci.image.index.v1+json, \
                      application/vnd.docker.distribution.manifest.v2+json, \
                      application/vnd.docker.distribution.manifest.list.v2+json";

impl Client {
    /// The manifest at `target` (a tag or a digest), or `None` if the
    /// repository has none there.
    pub fn manifest(&self, target: &Target) -> Result<Option<Fetched>, RegistryError> {
        let name = match target {
            Target::Tag(t) => t.clone(),
            Target::Digest(d) => d.to_string(),
            Target::None => "latest".to_string(),
        };
        let url = self.url(&format!("manifests/{name}"));
        let resp = self.send("GET", &url, &[("accept", ACCEPT)], b"")?;
        match resp.status().as_u16() {
            200 => {}
            404 => return Ok(None),
            _ => return Err(unexpected(resp, &url)),
        }
        let media_type = header(&resp, "content-type").unwrap_or_default();
        let named = header(&resp, "docker-content-digest").and_then(|d| d.parse::<Digest>().ok());
        let bytes = read_limited(resp, &url, MANIFEST_LIMIT)?;
        let got = Digest::of(&bytes);
        let expected = match target {
            Target::Digest(d) => Some(*d),
            _ => named,
        };
        if let Some(expected) = expected
            && expected != got
        {
            return Err(RegistryError::DigestMismatch {
                url,
                what: "a manifest",
                expected,
                got,
            });
        }
        Ok(Some(Fetched {
            bytes,
            digest: got,
            media_type,
        }))
    }

    /// The digest of the manifest under `name` (a tag or digest), as the
    /// registry reports it, or `None` when there is none: what a push asks
    /// before putting a manifest, so a second push writes nothing.
    pub fn manifest_digest(&self, name: &str) -> Result<Option<Digest>, RegistryError> {
        let url = self.url(&format!("manifests/{name}"));
        let resp = self.send("HEAD", &url, &[("accept", ACCEPT)], b"")?;
        match resp.status().as_u16() {
            200 => Ok(header(&resp, "docker-content-digest").and_then(|d| d.parse().ok())),
            404 => Ok(None),
            _ => Err(unexpected(resp, &url)),
        }
    }

    /// Puts a manifest under `name` (its digest, or a tag). Returns whether
    /// the registry handled its `subject` itself (`OCI-Subject`), so the
    /// tag-schema fallback is not needed.
    pub fn put_manifest(
        &self,
        name: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<bool, RegistryError> {
        let ours = Digest::of(bytes);
        if self.manifest_digest(name)? == Some(ours) {
            // Already there; a registry that handles `subject` did so then.
            return Ok(true);
        }
        let url = self.url(&format!("manifests/{name}"));
        let len = bytes.len().to_string();
        let resp = self.send(
            "PUT",
            &url,
            &[("content-type", media_type), ("content-length", &len)],
            bytes,
        )?;
        if resp.status() != 201 {
            return Err(unexpected(resp, &url));
        }
        if let Some(theirs) = header(&resp, "docker-content-digest").and_then(|d| d.parse().ok())
            && theirs != ours
        {
            return Err(RegistryError::DigestMismatch {
                url,
                what: "the stored manifest",
                expected: ours,
                got: theirs,
            });
        }
        Ok(header(&resp, "oci-subject").is_some())
    }

    /// The referrers of `subject`: the OCI 1.1 API where the registry has
    /// it, else the `sha256-HEX` tag's index.
    pub fn referrers(&self, subject: &Digest) -> Result<Vec<Descriptor>, RegistryError> {
        let url = self.url(&format!("referrers/{subject}"));
        let resp = self.send("GET", &url, &[("accept", MEDIA_TYPE_INDEX)], b"")?;
        let index: Index = match resp.status().as_u16() {
            200 => parse(&url, &read_limited(resp, &url, MANIFEST_LIMIT)?)?,
            404 => match self.manifest(&fallback_tag(subject))? {
                Some(f) => parse(&url, &f.bytes)?,
                None => return Ok(Vec::new()),
            },
            _ => return Err(unexpected(resp, &url)),
        };
        Ok(index.manifests)
    }

    /// Adds `referrer` to the `sha256-HEX` tag index of `subject`, for
    /// registries that do not answer the referrers API.
    pub fn add_referrer_tag(
        &self,
        subject: &Digest,
        referrer: Descriptor,
    ) -> Result<(), RegistryError> {
        let tag = fallback_tag(subject);
        let mut index = match self.manifest(&tag)? {
            Some(f) => parse::<Index>(&self.url("manifests"), &f.bytes)?,
            None => Index {
                schema_version: 2,
                media_type: Some(MEDIA_TYPE_INDEX.to_string()),
                manifests: Vec::new(),
            },
        };
        if index.manifests.iter().any(|d| d.digest == referrer.digest) {
            return Ok(());
        }
        index.manifests.push(referrer);
        // Sorted so that pushes in any order agree on the index's bytes.
        index.manifests.sort_by_key(|d| d.digest);
        let bytes = serde_json::to_vec(&index).map_err(|e| RegistryError::BadResponse {
            url: self.url("manifests"),
            why: e.to_string(),
        })?;
        let Target::Tag(name) = tag else {
            unreachable!("fallback_tag makes a tag")
        };
        self.put_manifest(&name, MEDIA_TYPE_INDEX, &bytes)?;
        Ok(())
    }
}

fn fallback_tag(subject: &Digest) -> Target {
    Target::Tag(format!("sha256-{}", subject.hex()))
}

pub(crate) fn parse<T: for<'de> serde::Deserialize<'de>>(
    url: &str,
    bytes: &[u8],
) -> Result<T, RegistryError> {
    serde_json::from_slice(bytes).map_err(|e| RegistryError::BadResponse {
        url: url.to_string(),
        why: format!("not an OCI manifest or index: {e}"),
    })
}

/// A descriptor for a manifest's bytes, as an index lists it.
pub fn manifest_descriptor(bytes: &[u8], artifact_type: Option<&str>) -> Descriptor {
    Descriptor {
        media_type: MEDIA_TYPE_MANIFEST.to_string(),
        artifact_type: artifact_type.map(str::to_string),
        digest: Digest::of(bytes),
        size: bytes.len() as u64,
        platform: None,
        annotations: Default::default(),
    }
}
