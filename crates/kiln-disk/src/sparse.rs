//! Moving file system images into the disk image without filling holes:
//! only blocks holding data are written, so a 2 GiB raw image with 400 MiB
//! of files takes 400 MiB on disk. Hashing reads holes as the zeros they are
//! without touching the disk.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::Path;

use rustix::fs::SeekFrom;
use sha2::{Digest, Sha256};

use crate::error::DiskError;

/// ext4's and the page cache's block size; partitions are MiB-aligned, so
/// blocks of the source line up with blocks of the image.
const BLOCK: usize = 4096;
const CHUNK: usize = 1 << 20;

/// The data regions of `file`, as `(start, end)` byte ranges; holes
/// between them read as zeros.
fn data_regions(file: &File, path: &Path) -> Result<Vec<(u64, u64)>, DiskError> {
    let len = file
        .metadata()
        .map_err(|e| DiskError::io_at(path, "stat", e))?
        .len();
    let mut out = Vec::new();
    let mut pos = 0u64;
    while pos < len {
        let start = match rustix::fs::seek(file, SeekFrom::Data(pos)) {
            Ok(s) => s,
            // ENXIO: no data after `pos`.
            Err(rustix::io::Errno::NXIO) => break,
            // A file system without SEEK_DATA: all of it is data.
            Err(rustix::io::Errno::INVAL) if pos == 0 => {
                out.push((0, len));
                break;
            }
            Err(e) => return Err(DiskError::io_at(path, "seeking to data", e.into())),
        };
        let end = rustix::fs::seek(file, SeekFrom::Hole(start))
            .map_err(|e| DiskError::io_at(path, "seeking to a hole", e.into()))?
            .min(len);
        out.push((start, end));
        pos = end;
    }
    Ok(out)
}

/// Writes `src` into `dst` at `offset`, skipping blocks that are all zero
/// (`dst` is a fresh sparse file, so skipped blocks read as zero there).
pub(crate) fn copy_into(
    src: &Path,
    dst: &File,
    dst_path: &Path,
    offset: u64,
) -> Result<(), DiskError> {
    let file = fs_err::File::open(src)?;
    let mut buf = vec![0u8; CHUNK];
    for (start, end) in data_regions(file.file(), src)? {
        let mut pos = start;
        while pos < end {
            let n = ((end - pos) as usize).min(CHUNK);
            file.file()
                .read_exact_at(&mut buf[..n], pos)
                .map_err(|e| DiskError::io_at(src, "reading", e))?;
            let mut i = 0;
            while i < n {
                // A run of non-zero blocks, written at once.
                let j = (i..n)
                    .step_by(BLOCK)
                    .find(|&b| is_zero(&buf[b..(b + BLOCK).min(n)]))
                    .unwrap_or(n);
                if j > i {
                    dst.write_all_at(&buf[i..j], offset + pos + i as u64)
                        .map_err(|e| DiskError::io_at(dst_path, "writing", e))?;
                }
                i = j + BLOCK;
            }
            pos += n as u64;
        }
    }
    Ok(())
}

fn is_zero(b: &[u8]) -> bool {
    b.iter().all(|x| *x == 0)
}

/// `sha256:<hex>` of the file's bytes, holes included as zeros.
pub fn sha256_file(path: &Path) -> Result<String, DiskError> {
    let mut file = fs_err::File::open(path)?;
    let regions = data_regions(file.file(), path)?;
    let len = file.metadata()?.len();
    let mut h = Sha256::new();
    let zeros = vec![0u8; CHUNK];
    let mut buf = vec![0u8; CHUNK];
    let mut pos = 0u64;
    let feed_zeros = |h: &mut Sha256, mut n: u64| {
        while n > 0 {
            let k = n.min(CHUNK as u64) as usize;
            h.update(&zeros[..k]);
            n -= k as u64;
        }
    };
    for (start, end) in regions {
        feed_zeros(&mut h, start - pos);
        let mut p = start;
        while p < end {
            let n = ((end - p) as usize).min(CHUNK);
            file.file()
                .read_exact_at(&mut buf[..n], p)
                .map_err(|e| DiskError::io_at(path, "reading", e))?;
            h.update(&buf[..n]);
            p += n as u64;
        }
        pos = end;
    }
    feed_zeros(&mut h, len - pos);
    // Reading to the end proves the length did not change underneath us.
    let mut rest = Vec::new();
    std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(len))?;
    file.read_to_end(&mut rest)?;
    if !rest.is_empty() {
        return Err(DiskError::unexpected(
            path,
            "grew while it was being hashed",
        ));
    }
    Ok(format!("sha256:{}", hex::encode(h.finalize())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_keeps_data_and_holes_and_hash_matches_a_plain_read() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        let f = std::fs::File::create(&src).unwrap();
        f.set_len(8 << 20).unwrap();
        f.write_all_at(b"hello", 4096 * 3 + 7).unwrap();
        f.write_all_at(&[1u8; 10000], 5 << 20).unwrap();
        // Data that is zero: written, but must not be copied.
        f.write_all_at(&vec![0u8; 65536], 6 << 20).unwrap();
        drop(f);

        let dst_path = dir.path().join("dst");
        let dst = std::fs::File::create(&dst_path).unwrap();
        dst.set_len(16 << 20).unwrap();
        copy_into(&src, &dst, &dst_path, 1 << 20).unwrap();
        drop(dst);

        let s = std::fs::read(&src).unwrap();
        let d = std::fs::read(&dst_path).unwrap();
        assert_eq!(&d[1 << 20..(1 << 20) + s.len()], &s[..]);
        assert!(d[..1 << 20].iter().all(|b| *b == 0));
        let want = format!("sha256:{}", hex::encode(Sha256::digest(&d)));
        assert_eq!(sha256_file(&dst_path).unwrap(), want);
        // Only the two data blocks' worth is allocated, not 16 MiB.
        let used =
            std::os::unix::fs::MetadataExt::blocks(&std::fs::metadata(&dst_path).unwrap()) * 512;
        assert!(used < 1 << 20, "{used} bytes allocated");
    }
}
