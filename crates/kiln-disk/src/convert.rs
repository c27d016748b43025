//! raw → qcow2, vmdk (streamOptimized) and vhd (fixed) with `qemu-img
//! convert`, every option pinned. qcow2 comes out the same every time;
//! vmdk and vhd get a random ID (and vhd the clock) from qemu-img, which
//! kiln overwrites with values derived from the image digest and
//! SOURCE_DATE_EPOCH, so all three are byte-reproducible.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::DiskSpec;
use crate::error::DiskError;
use crate::ids::{Uuid, derive_bytes};
use crate::layout::ALIGN;
use crate::sparse::sha256_file;
use crate::tool::QEMU_IMG;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DiskFormat {
    /// QEMU's format, zlib-compressed: smallest to ship, boots as is.
    Qcow2,
    /// VMware's streamOptimized: what vSphere and VirtualBox import.
    Vmdk,
    /// Fixed VHD (raw data and a 512-byte footer): what Azure takes.
    Vhd,
}

impl DiskFormat {
    pub const ALL: [DiskFormat; 3] = [DiskFormat::Qcow2, DiskFormat::Vmdk, DiskFormat::Vhd];

    pub fn extension(self) -> &'static str {
        match self {
            DiskFormat::Qcow2 => "qcow2",
            DiskFormat::Vmdk => "vmdk",
            DiskFormat::Vhd => "vhd",
        }
    }

    /// The name qemu-img uses.
    fn qemu_format(self) -> &'static str {
        match self {
            DiskFormat::Qcow2 => "qcow2",
            DiskFormat::Vmdk => "vmdk",
            DiskFormat::Vhd => "vpc",
        }
    }

    /// Every creation option spelled out, so a qemu-img whose defaults
    /// change does not silently change the bytes.
    fn options(self) -> &'static str {
        match self {
            DiskFormat::Qcow2 => {
                "compat=1.1,cluster_size=65536,compression_type=zlib,lazy_refcounts=off,refcount_bits=16"
            }
            DiskFormat::Vmdk => "subformat=streamOptimized,adapter_type=ide,hwversion=4",
            // force_size: the virtual size is exactly the raw size, not
            // rounded to a CHS geometry (Azure wants whole MiB).
            DiskFormat::Vhd => "subformat=fixed,force_size=on",
        }
    }
}

/// A converted image.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Converted {
    pub format: DiskFormat,
    pub path: PathBuf,
    /// `sha256:` of the file.
    pub digest: String,
    /// Bytes of the file (holes counted).
    pub size: u64,
    /// The disk size a machine sees: the raw image's.
    pub virtual_size: u64,
}

/// Converts the raw image `raw` (from [`crate::write_raw`] with the same
/// `spec`) to `format` at `out`. `out`'s file name is recorded inside a
/// vmdk, so it is part of that format's bytes.
pub fn convert(
    raw: &Path,
    format: DiskFormat,
    spec: &DiskSpec,
    out: &Path,
) -> Result<Converted, DiskError> {
    let raw_size = fs_err::metadata(raw)?.len();
    if format == DiskFormat::Vhd && raw_size % ALIGN != 0 {
        return Err(DiskError::unexpected(
            raw,
            "a VHD needs a size in whole MiB",
        ));
    }
    let name = out
        .file_name()
        .ok_or_else(|| DiskError::unexpected(out, "not a file name"))?;
    let work = crate::work_dir(out)?;
    let tmp = work.path().join(name);

    let mut cmd = QEMU_IMG.command(spec.source_date_epoch)?;
    cmd.args([
        "convert",
        "-q",
        "-f",
        "raw",
        "-O",
        format.qemu_format(),
        "-o",
        format.options(),
    ]);
    if format == DiskFormat::Qcow2 {
        cmd.arg("-c");
    }
    cmd.arg(raw).arg(&tmp);
    QEMU_IMG.run(&mut cmd, raw)?;

    match format {
        DiskFormat::Qcow2 => {}
        DiskFormat::Vmdk => patch_vmdk_cid(&tmp, &spec.image_digest)?,
        DiskFormat::Vhd => patch_vhd_footer(&tmp, &spec.image_digest, spec.source_date_epoch)?,
    }
    let virtual_size = verify(&tmp, format, spec.source_date_epoch)?;
    if virtual_size != raw_size {
        return Err(DiskError::unexpected(
            &tmp,
            format!("qemu-img made a {virtual_size}-byte disk from a {raw_size}-byte raw image"),
        ));
    }
    fs_err::rename(&tmp, out)?;
    Ok(Converted {
        format,
        path: out.to_path_buf(),
        digest: sha256_file(out)?,
        size: fs_err::metadata(out)?.len(),
        virtual_size,
    })
}

/// `qemu-img check` where the format has one, then `qemu-img info`;
/// returns the virtual size.
fn verify(path: &Path, format: DiskFormat, epoch: i64) -> Result<u64, DiskError> {
    if format != DiskFormat::Vhd {
        QEMU_IMG.run_args(
            epoch,
            [
                "check".as_ref(),
                "-q".as_ref(),
                "-f".as_ref(),
                format.qemu_format().as_ref(),
                path.as_os_str(),
            ],
            path,
        )?;
    }
    let ran = QEMU_IMG.run_args(
        epoch,
        [
            "info".as_ref(),
            "--output=json".as_ref(),
            "-f".as_ref(),
            format.qemu_format().as_ref(),
            path.as_os_str(),
        ],
        path,
    )?;
    let info: serde_json::Value = serde_json::from_str(&ran.stdout)
        .map_err(|e| DiskError::unexpected(path, format!("qemu-img info: not JSON: {e}")))?;
    if info["format"] != format.qemu_format() {
        return Err(DiskError::unexpected(
            path,
            format!("qemu-img info says format {}", info["format"]),
        ));
    }
    info["virtual-size"]
        .as_u64()
        .ok_or_else(|| DiskError::unexpected(path, "qemu-img info: no virtual-size"))
}

/// The embedded descriptor's `CID=` (a random content ID qemu-img picks)
/// becomes one derived from the image digest.
///
/// qemu-img prints the CID unpadded (`%x`), so it has 1 to 8 digits: the
/// whole descriptor area, as the sparse header places it, is rewritten
/// with an 8-digit CID and zero padding, so any random CID gives the same
/// bytes.
fn patch_vmdk_cid(path: &Path, seed: &str) -> Result<(), DiskError> {
    use std::os::unix::fs::FileExt;
    let file = fs_err::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)?;
    let mut header = [0u8; 512];
    file.file()
        .read_exact_at(&mut header, 0)
        .map_err(|e| DiskError::io_at(path, "reading the vmdk header", e))?;
    if &header[0..4] != b"KDMV" {
        return Err(DiskError::unexpected(
            path,
            "no vmdk sparse header (`KDMV`)",
        ));
    }
    let sectors = |at: usize| u64::from_le_bytes(header[at..at + 8].try_into().unwrap_or([0; 8]));
    let (offset, size) = (sectors(28) * 512, sectors(36) * 512);
    if offset == 0 || size == 0 || size > 1 << 20 {
        return Err(DiskError::unexpected(
            path,
            "the vmdk header places no embedded descriptor",
        ));
    }
    let mut area = vec![0u8; size as usize];
    file.file()
        .read_exact_at(&mut area, offset)
        .map_err(|e| DiskError::io_at(path, "reading the vmdk descriptor", e))?;
    let text_len = area.iter().position(|&b| b == 0).unwrap_or(area.len());
    let text = std::str::from_utf8(&area[..text_len])
        .map_err(|_| DiskError::unexpected(path, "the vmdk descriptor is not text"))?;
    let h = derive_bytes("kiln-vmdk-cid", seed);
    let cid = format!("CID={:08x}", u32::from_be_bytes([h[0], h[1], h[2], h[3]]));
    let mut found = false;
    let mut patched = String::with_capacity(text.len() + 8);
    for line in text.split_inclusive('\n') {
        let value = line.strip_prefix("CID=").map(str::trim_end);
        if let Some(v) = value
            && (1..=8).contains(&v.len())
            && v.bytes().all(|b| b.is_ascii_hexdigit())
        {
            patched.push_str(&cid);
            patched.push('\n');
            found = true;
        } else {
            patched.push_str(line);
        }
    }
    if !found {
        return Err(DiskError::unexpected(
            path,
            "no `CID=` line of 1 to 8 hex digits in the vmdk descriptor",
        ));
    }
    if patched.len() > area.len() {
        return Err(DiskError::unexpected(
            path,
            "no room in the vmdk descriptor for an 8-digit CID",
        ));
    }
    let mut out = patched.into_bytes();
    out.resize(area.len(), 0);
    file.file()
        .write_all_at(&out, offset)
        .map_err(|e| DiskError::io_at(path, "writing the vmdk descriptor", e))
}

/// VHD's footer (its last 512 bytes) holds the creation time, read from the
/// clock, and a random UUID: both become the image's, and the checksum is
/// recomputed.
fn patch_vhd_footer(path: &Path, seed: &str, epoch: i64) -> Result<(), DiskError> {
    use std::os::unix::fs::FileExt;
    let file = fs_err::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)?;
    let len = file.metadata()?.len();
    let mut f = [0u8; 512];
    file.file()
        .read_exact_at(&mut f, len - 512)
        .map_err(|e| DiskError::io_at(path, "reading the vhd footer", e))?;
    if &f[0..8] != b"conectix" {
        return Err(DiskError::unexpected(
            path,
            "no vhd footer (`conectix`) in the last 512 bytes",
        ));
    }
    set_vhd_footer(&mut f, Uuid::derive("kiln-vhd-uuid", seed), epoch);
    file.file()
        .write_all_at(&f, len - 512)
        .map_err(|e| DiskError::io_at(path, "writing the vhd footer", e))
}

/// VHD times count seconds from 2000-01-01 00:00:00 UTC.
const VHD_EPOCH: i64 = 946_684_800;

fn set_vhd_footer(f: &mut [u8; 512], uuid: Uuid, epoch: i64) {
    let stamp = u32::try_from((epoch - VHD_EPOCH).max(0)).unwrap_or(u32::MAX);
    f[24..28].copy_from_slice(&stamp.to_be_bytes());
    f[68..84].copy_from_slice(&uuid.0);
    f[64..68].fill(0);
    let sum = f.iter().fold(0u32, |s, b| s.wrapping_add(u32::from(*b)));
    f[64..68].copy_from_slice(&(!sum).to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vhd_footer_checksum_is_the_complement_of_the_byte_sum() {
        let mut f = [0u8; 512];
        f[0..8].copy_from_slice(b"conectix");
        set_vhd_footer(&mut f, Uuid([7; 16]), VHD_EPOCH + 10);
        assert_eq!(&f[24..28], &10u32.to_be_bytes());
        let stored = u32::from_be_bytes(f[64..68].try_into().unwrap());
        let mut z = f;
        z[64..68].fill(0);
        let sum = z.iter().fold(0u32, |s, b| s.wrapping_add(u32::from(*b)));
        assert_eq!(stored, !sum);
    }

    /// qemu-img writes the CID with `%x`: one time in sixteen it has fewer
    /// than 8 digits, and the patched file must still be the same bytes.
    #[test]
    fn a_short_cid_becomes_the_same_eight_digits_as_a_long_one() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, cid: &str| {
            let mut bytes = vec![0u8; 4096];
            bytes[0..4].copy_from_slice(b"KDMV");
            // The descriptor: from sector 1, 2 sectors long.
            bytes[28..36].copy_from_slice(&1u64.to_le_bytes());
            bytes[36..44].copy_from_slice(&2u64.to_le_bytes());
            let text = format!("# Disk DescriptorFile\nversion=1\nCID={cid}\nparentCID=ffffffff\n");
            bytes[512..512 + text.len()].copy_from_slice(text.as_bytes());
            // What follows the descriptor area is left alone.
            bytes[1536..1540].copy_from_slice(b"DATA");
            let path = dir.path().join(name);
            std::fs::write(&path, &bytes).unwrap();
            patch_vmdk_cid(&path, "seed").unwrap();
            std::fs::read(&path).unwrap()
        };
        let long = write("long", "8badf00d");
        assert_eq!(write("short", "f00d"), long);
        assert_eq!(write("one", "7"), long);
        let text = String::from_utf8_lossy(&long[512..600]);
        assert!(text.contains("\nparentCID=ffffffff\n"), "{text}");
        assert!(!text.contains("CID=8badf00d"), "{text}");
        assert_eq!(&long[1536..1540], b"DATA");
    }
}
