//! kiln's bootable disk images, made without mounting anything and without
//! loop devices, byte-reproducibly.
//!
//! [`write_raw`] turns a finished root tree into a raw GPT disk:
//!
//! | partition | type (Discoverable Partitions) | holds |
//! | --- | --- | --- |
//! | `esp`, 256 MiB, FAT32 | `C12A7328-…` EFI system | systemd-boot as `EFI/BOOT/BOOTX64.EFI`, a loader entry, the kernel and initrd |
//! | `root-x86-64`, the rest | `4F68BCE3-…` root x86-64 | the tree as ext4, plus `/etc/fstab`, `/boot/efi` and a systemd-repart rule |
//!
//! Every GUID, the ext4 UUID and hash seed and the FAT serial derive from
//! [`DiskSpec::image_digest`]; every timestamp is
//! [`DiskSpec::source_date_epoch`]. The root grows to fill a larger disk at
//! first boot: systemd-repart grows the partition (a `Type=root` rule in
//! `/usr/lib/repart.d`) and systemd-growfs the file system
//! (`x-systemd.growfs` in fstab). [`convert`] then makes qcow2, vmdk and vhd
//! from the raw image.

mod boot;
mod convert;
mod error;
mod ext4;
mod fat;
mod gpt;
mod ids;
mod layout;
mod sparse;
mod tool;

use std::path::{Path, PathBuf};

use kiln_deb::Architecture;
use serde::{Deserialize, Serialize};

pub use boot::{BootFiles, CMDLINE};
pub use convert::{Converted, DiskFormat, convert};
pub use error::DiskError;
pub use ids::{FatSerial, Uuid};
pub use layout::{DiskLayout, ESP_SIZE, Partition, TYPE_ESP, root_type};
pub use sparse::sha256_file;
pub use tool::versions as tool_versions;

/// What to make: everything [`write_raw`] needs besides the tree.
#[derive(Debug, Clone)]
pub struct DiskSpec {
    /// Bytes (`[disk].size`); rounded up to a whole MiB.
    pub size: u64,
    /// The seed of every identifier on the disk: the image's digest (any
    /// string that changes exactly when the image does).
    pub image_digest: String,
    pub source_date_epoch: i64,
    /// The boot menu's title, e.g. `web 1.0.0`.
    pub title: String,
    /// The machine the disk boots on: its loader's name, its root's type.
    pub architecture: Architecture,
    /// Files kiln adds to the root file system of the disk only (its test
    /// agent), as `(absolute path, mode, contents)`; owned by root.
    pub extra_files: Vec<(String, u32, Vec<u8>)>,
    /// Symbolic links added the same way, as `(absolute path, target)`.
    pub extra_links: Vec<(String, String)>,
}

/// A raw disk image written by [`write_raw`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RawDisk {
    pub path: PathBuf,
    pub layout: DiskLayout,
    /// `sha256:` of the image's bytes.
    pub digest: String,
    pub kernel_version: String,
}

/// Writes a bootable raw disk image of the tree `root` to `out`, booting
/// the kernel, initrd and loader `boot` names in it.
///
/// `root` is only read (it is a store entry): kiln's own files reach the
/// file system through `debugfs` after `mke2fs -d` has copied the tree.
/// Scratch files live beside `out`, and `out` appears whole or not at all.
pub fn write_raw(
    root: &Path,
    boot: &BootFiles,
    spec: &DiskSpec,
    out: &Path,
) -> Result<RawDisk, DiskError> {
    let layout = DiskLayout::plan(spec.size, &spec.image_digest, spec.architecture)?;
    let sources = boot.in_tree(root)?;
    let work = work_dir(out)?;
    let w = work.path();

    let mut staged = stage_files(w, spec, boot, &sources, &layout)?;
    staged.root.extend(stage_extra(w, root, spec)?);
    let esp = w.join("esp.img");
    fat::Fat {
        size: layout.esp.size(),
        serial: layout.esp_serial,
        label: "ESP",
        hidden_sectors: layout.esp.first_lba,
        epoch: spec.source_date_epoch,
        dirs: &["EFI", "EFI/BOOT", "loader", "loader/entries"],
        files: &staged.esp,
    }
    .make(&esp)?;
    let rootfs = w.join("root.ext4");
    ext4::Ext4 {
        root,
        size: layout.root.size(),
        uuid: layout.root_fs_uuid,
        hash_seed: layout.root_hash_seed,
        label: "root",
        epoch: spec.source_date_epoch,
        edits: &staged.root,
    }
    .make(&rootfs, w)?;

    let disk = w.join("disk.raw");
    let file = fs_err::File::create(&disk)?;
    file.set_len(layout.size)?;
    gpt::write(file.file(), &disk, &layout)?;
    sparse::copy_into(&esp, file.file(), &disk, layout.esp.offset())?;
    sparse::copy_into(&rootfs, file.file(), &disk, layout.root.offset())?;
    file.sync_all()?;
    drop(file);
    fs_err::rename(&disk, out)?;
    Ok(RawDisk {
        path: out.to_path_buf(),
        digest: sha256_file(out)?,
        layout,
        kernel_version: boot.kernel_version.clone(),
    })
}

/// kiln's files for each partition, written to the work directory.
struct Staged {
    /// `(path on the ESP, source)`.
    esp: Vec<(String, PathBuf)>,
    /// Changes to the root file system.
    root: Vec<ext4::Edit>,
}

fn stage_files(
    work: &Path,
    spec: &DiskSpec,
    boot: &BootFiles,
    [kernel, initrd, loader]: &[PathBuf; 3],
    layout: &DiskLayout,
) -> Result<Staged, DiskError> {
    let put = |name: &str, text: String| -> Result<PathBuf, DiskError> {
        let p = work.join(name);
        fs_err::write(&p, text)?;
        Ok(p)
    };
    let esp = vec![
        (boot::esp_loader(spec.architecture), loader.clone()),
        (
            "loader/loader.conf".into(),
            put("loader.conf", boot::loader_conf())?,
        ),
        (
            "loader/entries/kiln.conf".into(),
            put("kiln.conf", boot::loader_entry(&spec.title, boot, layout))?,
        ),
        (boot.esp_kernel(), kernel.clone()),
        (boot.esp_initrd(), initrd.clone()),
    ];
    put("fstab", boot::fstab(layout))?;
    put("repart-root.conf", boot::repart_root())?;
    let dir = |path: &str| ext4::Edit::Mkdir {
        path: format!("/{path}"),
        mode: 0o755,
    };
    let root = vec![
        ext4::Edit::Write {
            path: "/etc/fstab".into(),
            local: "fstab".into(),
            mode: 0o644,
        },
        dir("boot"),
        dir(boot::ESP_MOUNT),
        dir(boot::REPART_DIR),
        ext4::Edit::Write {
            path: format!("/{}", boot::REPART_FILE),
            local: "repart-root.conf".into(),
            mode: 0o644,
        },
    ];
    Ok(Staged { esp, root })
}

/// The caller's extra files and links, with any parent directory the tree
/// lacks made first (0755, root's).
fn stage_extra(work: &Path, root: &Path, spec: &DiskSpec) -> Result<Vec<ext4::Edit>, DiskError> {
    let mut edits = Vec::new();
    let mut made: Vec<String> = Vec::new();
    let paths = spec
        .extra_files
        .iter()
        .map(|(p, _, _)| p)
        .chain(spec.extra_links.iter().map(|(p, _)| p));
    for path in paths {
        let mut parents: Vec<&str> = Path::new(path)
            .ancestors()
            .skip(1)
            .filter_map(|a| a.to_str())
            .filter(|a| *a != "/" && !a.is_empty())
            .collect();
        parents.reverse();
        for dir in parents {
            let missing = fs_err::symlink_metadata(root.join(dir.trim_start_matches('/'))).is_err();
            if missing && !made.iter().any(|m| m == dir) {
                made.push(dir.to_string());
                edits.push(ext4::Edit::Mkdir {
                    path: dir.to_string(),
                    mode: 0o755,
                });
            }
        }
    }
    for (i, (path, mode, contents)) in spec.extra_files.iter().enumerate() {
        let local = format!("extra-{i}");
        fs_err::write(work.join(&local), contents)?;
        edits.push(ext4::Edit::Write {
            path: path.clone(),
            local,
            mode: *mode,
        });
    }
    for (path, target) in &spec.extra_links {
        edits.push(ext4::Edit::Symlink {
            path: path.clone(),
            target: target.clone(),
        });
    }
    Ok(edits)
}

/// A scratch directory beside `out`, so renames into place stay on one
/// file system; removed when dropped, and by the next build if a killed
/// one left it.
fn work_dir(out: &Path) -> Result<kiln_deb::scratch::Scratch, DiskError> {
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    kiln_deb::scratch::Scratch::new_in(parent, ".kiln-disk-")
        .map_err(|e| DiskError::io_at(&e.path, "making a scratch directory", e.source))
}
