//! kiln's outputs from root filesystem trees: deterministic tar layers and
//! OCI images.
//!
//! Flow: a rootfs directory becomes a layer ([`write_layer`] with
//! [`LayerSource::Tree`] for a base, [`LayerSource::Diff`] against the
//! parent's tree for a child); layers, bottom first, become an OCI layout
//! ([`write_oci_layout`]) and that layout an `oci-archive` tar
//! ([`write_oci_archive`]). [`read_oci_layout`] reads a layout back.
//!
//! Everything is byte-reproducible: the same trees and SOURCE_DATE_EPOCH
//! give the same tar, gzip and JSON bytes, so the same digests. A child
//! image is built from its parent's [`Layer`] as it is, so images on one base
//! share the base's blob.

mod archive;
mod diff;
mod digest;
mod error;
mod gzip;
mod layer;
mod oci;
mod tar;
mod tree;

pub use archive::write_oci_archive;
pub use diff::write_diff_tar;
pub use error::ImageError;
pub use layer::{
    GZIP_LEVEL, Layer, LayerSource, MEDIA_TYPE_LAYER_GZIP, Tarred, write_layer, write_layer_to,
};
pub use oci::{
    ANNOTATION_REF_NAME, ANNOTATION_TITLE, ANNOTATION_VERSION, ArtifactBlob, Attachment,
    DEFAULT_PATH, Descriptor, ImageInfo, ImageMeta, Index, LayerInfo, LayerInput,
    MEDIA_TYPE_CONFIG, MEDIA_TYPE_EMPTY, MEDIA_TYPE_INDEX, MEDIA_TYPE_MANIFEST, Manifest, Platform,
    artifact_manifest, image_manifest_digest, oci_blob_dir, oci_blob_path, read_oci_layout,
    write_oci_layout,
};
pub use tar::{TarOptions, TarSummary, write_tar};
pub use tree::xattr_kept;
