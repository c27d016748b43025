//! Layers as compressed blobs: a tree (or the difference of two) is tarred
//! in one thread and gzipped in another, both digests are taken as the bytes
//! stream by, and the blob lands under its digest by an atomic rename. No
//! layer is ever held in memory or written uncompressed.
//!
//! A [`Layer`] is a value the pipeline keeps: a child image is assembled
//! from its parent's `Layer` as it is, never re-tarred, so images on one
//! base share the base's blob byte for byte.

use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use crate::digest::HashingWriter;
use crate::gzip::GzipWriter;
use crate::{ImageError, TarOptions, write_diff_tar, write_tar};
use kiln_store::Digest;

/// The OCI media type of kiln's layers.
pub const MEDIA_TYPE_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// Gzip level. Measured on a 216 MB Debian rootfs with miniz_oxide: level 6
/// takes 6.3 s for 76.9 MB, level 3 takes 2.9 s for 78.8 MB (2.5 % more),
/// level 1 1.1 s for 92.4 MB. Level 3 keeps a layer within a few seconds
/// for a small price in size. The bytes are fixed for a given level and
/// miniz_oxide version, which `Cargo.lock` pins.
pub const GZIP_LEVEL: u8 = 3;

/// Size of the pieces handed from the tar thread to the gzip thread.
const CHUNK: usize = 1 << 20;

/// What a layer is made of.
#[derive(Debug, Clone, Copy)]
pub enum LayerSource<'a> {
    /// Everything inside a directory.
    Tree(&'a Path),
    /// What `child` changes relative to `parent`.
    Diff { parent: &'a Path, child: &'a Path },
    /// An uncompressed tar already written (by [`write_tar`] or another
    /// deterministic writer), compressed as it is.
    Tar(&'a Path),
}

/// A compressed layer blob on disk, and the digests an OCI image names it by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    /// The blob file, named by the hex of `digest`.
    pub path: PathBuf,
    /// SHA-256 of the compressed blob (the manifest's layer digest).
    pub digest: Digest,
    /// Size of the compressed blob.
    pub size: u64,
    /// SHA-256 of the uncompressed tar (the config's `rootfs.diff_ids`).
    pub diff_id: Digest,
    /// Size of the uncompressed tar.
    pub uncompressed_size: u64,
}

/// What a layer's uncompressed tar was: the digests of the compressed bytes
/// are the sink's to take (a store hashes what it commits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tarred {
    /// SHA-256 of the uncompressed tar (the config's `rootfs.diff_ids`).
    pub diff_id: Digest,
    /// Size of the uncompressed tar.
    pub uncompressed_size: u64,
}

/// Writes a gzip-compressed layer into `dir` as `<dir>/<hex of its digest>`
/// (an OCI layout's `blobs/sha256` fits), atomically: a temporary file
/// beside it, synced, then renamed.
pub fn write_layer(
    source: LayerSource<'_>,
    opts: &TarOptions,
    dir: &Path,
) -> Result<Layer, ImageError> {
    let mut temp = tempfile::Builder::new()
        .prefix(".tmp-layer-")
        .tempfile_in(dir)
        .map_err(|e| ImageError::io_at(dir, "creating a temporary file", e))?;
    let temp_path = temp.path().to_path_buf();
    let mut out = HashingWriter::new(temp.as_file_mut());
    let tarred = write_layer_to(source, opts, &mut out, &temp_path)?;
    let (digest, size, _) = out
        .finish()
        .map_err(|e| ImageError::io_at(&temp_path, "writing a layer blob", e))?;
    temp.as_file()
        .sync_all()
        .map_err(|e| ImageError::io_at(&temp_path, "syncing a layer blob", e))?;
    let path = dir.join(digest.hex());
    temp.persist(&path)
        .map_err(|e| ImageError::io_at(&path, "renaming a layer blob into place", e.error))?;
    Ok(Layer {
        path,
        digest,
        size,
        diff_id: tarred.diff_id,
        uncompressed_size: tarred.uncompressed_size,
    })
}

/// Writes a gzip-compressed layer into `out` (a blob the store is staging,
/// say), tarring in this thread and gzipping in another; `path` names the
/// output in errors. The caller owns what `out` holds, finished or not.
pub fn write_layer_to(
    source: LayerSource<'_>,
    opts: &TarOptions,
    out: &mut (dyn Write + Send),
    path: &Path,
) -> Result<Tarred, ImageError> {
    let (tarred, gzipped) = std::thread::scope(|scope| {
        let (mut pipe, tar) = kiln_deb::pipe::pipe();
        let gzip = scope.spawn(|| compress(tar, out, path));
        // Only a whole tar ends the stream cleanly: a failed one, dropped
        // unfinished, stops the gzip thread without finishing the blob.
        let tarred = produce(source, &mut pipe, opts)
            .and_then(|summary| pipe.finish().map_err(ImageError::Output).map(|()| summary));
        (tarred, gzip.join())
    });
    let gzipped = gzipped.map_err(|_| ImageError::Panicked(path.to_path_buf()))?;
    // A gzip failure (a full disk) shows up in the tar thread as a closed
    // pipe: the gzip thread's own error says what really happened.
    let (diff_id, uncompressed_size) = match (tarred, gzipped) {
        (_, Err(gzip)) => return Err(gzip),
        (Err(tar), Ok(_)) => return Err(tar),
        (Ok(tarred), Ok(true)) => tarred,
        (Ok(_), Ok(false)) => {
            return Err(ImageError::Output(io::Error::other(
                "the gzip thread saw the tar stop before its end",
            )));
        }
    };
    Ok(Tarred {
        diff_id,
        uncompressed_size,
    })
}

/// Writes the uncompressed tar into `out`; gives its digest and size.
fn produce(
    source: LayerSource<'_>,
    out: &mut dyn Write,
    opts: &TarOptions,
) -> Result<(Digest, u64), ImageError> {
    let summary = match source {
        LayerSource::Tree(root) => write_tar(root, out, opts)?,
        LayerSource::Diff { parent, child } => write_diff_tar(parent, child, out, opts)?,
        LayerSource::Tar(path) => {
            let mut file = fs_err::File::open(path)?;
            let mut out = HashingWriter::new(out);
            let mut buf = vec![0; CHUNK];
            loop {
                let n = file.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                out.write_all(&buf[..n]).map_err(ImageError::Output)?;
            }
            let (digest, size, _) = out.finish().map_err(ImageError::Output)?;
            return Ok((digest, size));
        }
    };
    Ok((summary.digest, summary.size))
}

/// Gzips the tar read from `tar` into `out`: `false` when the tar stopped
/// before its end (the tar thread's error says why).
fn compress(
    mut tar: kiln_deb::pipe::PipeReader,
    out: &mut (dyn Write + Send),
    path: &Path,
) -> Result<bool, ImageError> {
    let io_err = |e| ImageError::io_at(path, "writing a layer blob", e);
    let mut out = BufWriter::with_capacity(CHUNK, out);
    let mut gz = GzipWriter::new(&mut out, GZIP_LEVEL);
    loop {
        match tar.next_chunk() {
            Ok(Some(chunk)) => gz.write_all(chunk).map_err(io_err)?,
            Ok(None) => break,
            Err(_) => return Ok(false),
        }
    }
    gz.finish().map_err(io_err)?;
    out.flush().map_err(io_err)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Layer digests are only as stable as the deflate bytes. If this digest
    /// changes, miniz_oxide was upgraded (or GZIP_LEVEL changed) and every
    /// layer digest kiln makes changes with it: update it only together with
    /// a version bump of the store's layer bucket.
    #[test]
    fn gzip_output_is_pinned() {
        let mut input = Vec::new();
        for i in 0..20_000u32 {
            input.extend_from_slice(
                format!("usr/share/doc/package-{}/copyright {i}\n", i % 97).as_bytes(),
            );
        }
        let mut gz = GzipWriter::new(Vec::new(), GZIP_LEVEL);
        gz.write_all(&input).unwrap();
        let out = gz.finish().unwrap();
        assert_eq!(
            Digest::of(&out).to_string(),
            "sha256:e45f549717a92841f6320def8ac7e3247f9982d981d860b9c86cdee5ed7f9e84",
            "gzip bytes changed ({} bytes)",
            out.len()
        );
    }
}
