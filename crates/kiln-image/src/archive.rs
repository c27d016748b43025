//! The `oci-archive` transport: an OCI layout as a single tar, as
//! `skopeo copy oci-archive:FILE …` and `podman load` read it.

use std::io::{BufWriter, Write};
use std::path::Path;

use crate::tar::TarWriter;
use crate::tree::{Kind, Tree};
use crate::{ImageError, TarOptions};
use kiln_store::Digest;

/// Writes the layout at `layout_dir` as a tar at `out`, atomically (temp
/// file, then rename), and gives the archive's digest.
///
/// The archive is an envelope, so its entries say nothing of the host:
/// owner 0:0, directories 0755, files 0644, mtime 0 (the image's own time is
/// in its config), no xattrs, no hard links (a blob hard-linked from the
/// store is written whole). Anything but files and directories is refused.
///
/// `ref_name` (`web:1.0.0`) replaces the image's ref name in the archive's
/// `index.json`: container tools name a loaded image by it, while the
/// layout directory keeps the bare version that `oci:DIR:VERSION` selects.
pub fn write_oci_archive(
    layout_dir: &Path,
    out: &Path,
    ref_name: Option<&str>,
) -> Result<Digest, ImageError> {
    let tree = Tree::scan(layout_dir)?;
    let index = ref_name
        .map(|name| crate::oci::index_named(layout_dir, name))
        .transpose()?;
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut temp = tempfile::Builder::new()
        .prefix(".tmp-oci-archive-")
        .tempfile_in(parent)
        .map_err(|e| ImageError::io_at(parent, "creating a temporary file", e))?;
    let temp_path = temp.path().to_path_buf();
    let opts = TarOptions::new(0);
    let summary = {
        let mut file = BufWriter::new(temp.as_file_mut());
        let mut tar = TarWriter::new(&mut file);
        for node in &tree.nodes {
            let mut node = node.clone();
            node.mode = match node.kind {
                Kind::Dir => 0o755,
                Kind::File { .. } => 0o644,
                _ => {
                    return Err(ImageError::BadLayout {
                        path: tree.full_path(&node),
                        why: "holds something other than files and directories".to_string(),
                    });
                }
            };
            (node.uid, node.gid, node.mtime) = (0, 0, 0);
            node.xattrs.clear();
            match &index {
                Some(bytes) if node.path == b"index.json" => tar.file_bytes(&node, bytes, &opts)?,
                _ => tar.node(&tree, &node, None, &opts)?,
            }
        }
        let summary = tar.finish()?;
        file.flush()
            .map_err(|e| ImageError::io_at(&temp_path, "writing an OCI archive", e))?;
        summary
    };
    // tempfile makes 0600; an archive is for anyone who may read `out/`.
    fs_err::set_permissions(
        &temp_path,
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )?;
    temp.as_file()
        .sync_all()
        .map_err(|e| ImageError::io_at(&temp_path, "syncing an OCI archive", e))?;
    temp.persist(out)
        .map_err(|e| ImageError::io_at(out, "renaming an OCI archive into place", e.error))?;
    Ok(summary.digest)
}
