//! The tar format, written by hand so that every byte is ours to decide:
//! POSIX ustar headers, with a PAX extended header only where ustar cannot
//! say something (long names, large numbers, xattrs). No user or group names,
//! no atime/ctime, no PAX time records, no device or inode numbers beyond a
//! device node's own major:minor, and no padding to a record size beyond the
//! two closing zero blocks. A GNU tar, Go's archive/tar (skopeo, umoci) and
//! the `tar` crate all read it.

use std::io::{Read, Write};
use std::path::Path;

use crate::ImageError;
use crate::digest::HashingWriter;
use crate::tree::{Kind, Node, Tree};
use kiln_store::Digest;

const BLOCK: usize = 512;

/// How trees become tars. `source_date_epoch` comes from the lock, never the
/// clock: every mtime later than it is written as it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TarOptions {
    pub source_date_epoch: u64,
}

impl TarOptions {
    pub fn new(source_date_epoch: u64) -> TarOptions {
        TarOptions { source_date_epoch }
    }

    pub(crate) fn clamp(&self, mtime: i64) -> u64 {
        // Before 1970 cannot be said in ustar; such times are noise anyway.
        u64::try_from(mtime)
            .unwrap_or(0)
            .min(self.source_date_epoch)
    }
}

/// What was written: the SHA-256 and size of the uncompressed tar (for a
/// layer, its OCI `diff_id`) and how many entries it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TarSummary {
    pub digest: Digest,
    pub size: u64,
    pub entries: u64,
}

/// Writes a deterministic tar of everything inside `root` (not `root`
/// itself): entries sorted bytewise by path, numeric owners only, mtimes
/// clamped to `source_date_epoch`, hard links as tar hard links to the first
/// path in sort order, `security.capability` and `user.*` xattrs as PAX
/// `SCHILY.xattr.*` records. Sockets are left out; sparse files are written
/// in full.
pub fn write_tar(
    root: &Path,
    out: &mut dyn Write,
    opts: &TarOptions,
) -> Result<TarSummary, ImageError> {
    let tree = Tree::scan(root)?;
    let links = tree.hard_links(|_| true);
    let mut tar = TarWriter::new(out);
    for (node, link) in tree.nodes.iter().zip(&links) {
        tar.node(&tree, node, link.map(|j| &tree.nodes[j]), opts)?;
    }
    tar.finish()
}

/// The type of an entry, as the ustar typeflag says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TypeFlag {
    File = b'0' as isize,
    HardLink = b'1' as isize,
    Symlink = b'2' as isize,
    Char = b'3' as isize,
    Block = b'4' as isize,
    Dir = b'5' as isize,
    Fifo = b'6' as isize,
    Pax = b'x' as isize,
}

/// One tar header's content, before encoding.
pub(crate) struct Header<'a> {
    /// The name as it appears in the archive (directories end in `/`).
    pub name: &'a [u8],
    pub flag: TypeFlag,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: u64,
    pub size: u64,
    pub linkname: &'a [u8],
    pub device: (u32, u32),
    pub xattrs: &'a [(Vec<u8>, Vec<u8>)],
}

/// Streams tar entries to `out`, hashing and counting them.
pub(crate) struct TarWriter<'w> {
    out: HashingWriter<&'w mut dyn Write>,
    entries: u64,
    buf: Vec<u8>,
}

impl<'w> TarWriter<'w> {
    pub(crate) fn new(out: &'w mut dyn Write) -> TarWriter<'w> {
        TarWriter {
            out: HashingWriter::new(out),
            entries: 0,
            buf: vec![0; 256 * 1024],
        }
    }

    /// Writes a tree entry, and for a regular file its content.
    pub(crate) fn node(
        &mut self,
        tree: &Tree,
        node: &Node,
        link: Option<&Node>,
        opts: &TarOptions,
    ) -> Result<(), ImageError> {
        let mut name = node.path.clone();
        let mut header = Header {
            name: &[],
            flag: TypeFlag::File,
            mode: node.mode,
            uid: node.uid,
            gid: node.gid,
            mtime: opts.clamp(node.mtime),
            size: 0,
            linkname: &[],
            device: (0, 0),
            xattrs: &node.xattrs,
        };
        if let Some(link) = link {
            // The inode's metadata and xattrs travel with the first entry.
            header.flag = TypeFlag::HardLink;
            header.linkname = &link.path;
            header.xattrs = &[];
        } else {
            match &node.kind {
                Kind::File { size } => header.size = *size,
                Kind::Dir => {
                    header.flag = TypeFlag::Dir;
                    name.push(b'/');
                }
                Kind::Symlink { target } => {
                    header.flag = TypeFlag::Symlink;
                    header.linkname = target;
                }
                Kind::Char { major, minor } => {
                    header.flag = TypeFlag::Char;
                    header.device = (*major, *minor);
                }
                Kind::Block { major, minor } => {
                    header.flag = TypeFlag::Block;
                    header.device = (*major, *minor);
                }
                Kind::Fifo => header.flag = TypeFlag::Fifo,
            }
        }
        header.name = &name;
        let (major, minor) = header.device;
        if u64::from(major.max(minor)) > max_octal(8) {
            return Err(ImageError::DeviceTooLarge {
                path: tree.full_path(node),
                major,
                minor,
            });
        }
        self.header(&header).map_err(ImageError::Output)?;
        if header.flag == TypeFlag::File && header.size > 0 {
            self.content(&tree.full_path(node), header.size)?;
        }
        Ok(())
    }

    /// Writes `node` as a regular file holding `bytes` instead of what the
    /// tree has at its path.
    pub(crate) fn file_bytes(
        &mut self,
        node: &Node,
        bytes: &[u8],
        opts: &TarOptions,
    ) -> Result<(), ImageError> {
        self.header(&Header {
            name: &node.path,
            flag: TypeFlag::File,
            mode: node.mode,
            uid: node.uid,
            gid: node.gid,
            mtime: opts.clamp(node.mtime),
            size: bytes.len() as u64,
            linkname: &[],
            device: (0, 0),
            xattrs: &node.xattrs,
        })
        .map_err(ImageError::Output)?;
        self.out.write_all(bytes).map_err(ImageError::Output)?;
        self.pad(bytes.len() as u64).map_err(ImageError::Output)
    }

    /// Copies exactly `size` bytes of the file at `path`, then pads.
    fn content(&mut self, path: &Path, size: u64) -> Result<(), ImageError> {
        let mut file = fs_err::File::open(path)?;
        let mut left = size;
        while left > 0 {
            let want = self
                .buf
                .len()
                .min(usize::try_from(left).unwrap_or(usize::MAX));
            let n = file.read(&mut self.buf[..want])?;
            if n == 0 {
                return Err(ImageError::FileChanged {
                    path: path.to_path_buf(),
                    expected: size,
                });
            }
            self.out
                .write_all(&self.buf[..n])
                .map_err(ImageError::Output)?;
            left -= n as u64;
        }
        // A file that grew would make the archive lie about its size.
        if file.read(&mut self.buf[..1])? != 0 {
            return Err(ImageError::FileChanged {
                path: path.to_path_buf(),
                expected: size,
            });
        }
        self.pad(size).map_err(ImageError::Output)
    }

    fn pad(&mut self, size: u64) -> std::io::Result<()> {
        let rem = (size % BLOCK as u64) as usize;
        if rem != 0 {
            self.out.write_all(&[0; BLOCK][..BLOCK - rem])?;
        }
        Ok(())
    }

    /// Writes one entry's header, preceded by a PAX header when ustar's
    /// fields cannot hold everything.
    pub(crate) fn header(&mut self, h: &Header<'_>) -> std::io::Result<()> {
        let records = pax_records(h);
        if !records.is_empty() {
            let pax = encode(&Header {
                name: b"././@PaxHeader",
                flag: TypeFlag::Pax,
                mode: 0o644,
                uid: 0,
                gid: 0,
                mtime: 0,
                size: records.len() as u64,
                linkname: &[],
                device: (0, 0),
                xattrs: &[],
            });
            self.out.write_all(&pax)?;
            self.out.write_all(&records)?;
            self.pad(records.len() as u64)?;
        }
        let block = encode(h);
        self.out.write_all(&block)?;
        self.entries += 1;
        Ok(())
    }

    /// Writes the two zero blocks that end an archive.
    pub(crate) fn finish(mut self) -> Result<TarSummary, ImageError> {
        self.out
            .write_all(&[0; 2 * BLOCK])
            .and_then(|()| self.out.flush())
            .map_err(ImageError::Output)?;
        let entries = self.entries;
        let (digest, size, _) = self.out.finish().map_err(ImageError::Output)?;
        Ok(TarSummary {
            digest,
            size,
            entries,
        })
    }
}

/// The PAX records `h` needs, sorted by key; empty when ustar suffices.
fn pax_records(h: &Header<'_>) -> Vec<u8> {
    let mut pax: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    if h.name.len() > 100 {
        pax.push((b"path".to_vec(), h.name.to_vec()));
    }
    if h.linkname.len() > 100 {
        pax.push((b"linkpath".to_vec(), h.linkname.to_vec()));
    }
    for (key, value, width) in [
        ("uid", u64::from(h.uid), 8),
        ("gid", u64::from(h.gid), 8),
        ("size", h.size, 12),
    ] {
        if value > max_octal(width) {
            pax.push((key.as_bytes().to_vec(), value.to_string().into_bytes()));
        }
    }
    for (name, value) in h.xattrs {
        let mut key = b"SCHILY.xattr.".to_vec();
        key.extend_from_slice(name);
        pax.push((key, value.clone()));
    }
    pax.sort();
    let mut records = Vec::new();
    for (key, value) in &pax {
        pax_record(&mut records, key, value);
    }
    records
}

/// Encodes a ustar header block. Where a PAX record carries the real value,
/// the field gets what fits; readers that know PAX take the record.
fn encode(h: &Header<'_>) -> [u8; BLOCK] {
    let mut block = [0u8; BLOCK];
    copy_truncated(&mut block[0..100], h.name);
    octal(&mut block[100..108], u64::from(h.mode & 0o7777));
    octal(&mut block[108..116], u64::from(h.uid).min(max_octal(8)));
    octal(&mut block[116..124], u64::from(h.gid).min(max_octal(8)));
    octal(&mut block[124..136], h.size.min(max_octal(12)));
    octal(&mut block[136..148], h.mtime.min(max_octal(12)));
    block[156] = h.flag as u8;
    copy_truncated(&mut block[157..257], h.linkname);
    block[257..263].copy_from_slice(b"ustar\0");
    block[263..265].copy_from_slice(b"00");
    if matches!(h.flag, TypeFlag::Char | TypeFlag::Block) {
        // `node` refused numbers that do not fit.
        octal(&mut block[329..337], u64::from(h.device.0));
        octal(&mut block[337..345], u64::from(h.device.1));
    }
    // The checksum is taken with its own field as spaces.
    block[148..156].copy_from_slice(b"        ");
    let sum: u64 = block.iter().map(|&b| u64::from(b)).sum();
    octal(&mut block[148..155], sum);
    block[155] = b' ';
    block
}

/// The largest number a ustar field of `width` bytes holds: `width - 1`
/// octal digits and a NUL.
fn max_octal(width: usize) -> u64 {
    (1u64 << (3 * (width - 1))) - 1
}

/// Zero-padded octal filling the field but its last byte, which stays NUL.
fn octal(field: &mut [u8], value: u64) {
    let digits = field.len() - 1;
    let text = format!("{value:0digits$o}");
    field[..digits].copy_from_slice(&text.as_bytes()[text.len() - digits..]);
    field[digits] = 0;
}

fn copy_truncated(field: &mut [u8], value: &[u8]) {
    let n = value.len().min(field.len());
    field[..n].copy_from_slice(&value[..n]);
}

/// A PAX record is `<length> <key>=<value>\n`, its length counting its own
/// digits.
fn pax_record(out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    let rest = 1 + key.len() + 1 + value.len() + 1;
    let mut len = rest + 1;
    while len != rest + len.to_string().len() {
        len = rest + len.to_string().len();
    }
    out.extend_from_slice(len.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(key);
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_record_length_counts_its_own_digits() {
        let mut out = Vec::new();
        pax_record(&mut out, b"path", &[b'a'; 93]);
        // 1 + 4 + 1 + 93 + 1 = 100, plus 3 digits = 103.
        assert!(out.starts_with(b"103 path="));
        assert_eq!(out.len(), 103);
        let mut out = Vec::new();
        pax_record(&mut out, b"uid", b"1");
        assert_eq!(out, b"8 uid=1\n");
    }

    #[test]
    fn octal_fields_are_zero_padded_and_nul_terminated() {
        let mut field = [0xffu8; 8];
        octal(&mut field, 0o4755);
        assert_eq!(&field, b"0004755\0");
        assert_eq!(max_octal(8), 0o7777777);
        assert_eq!(max_octal(12), 0o77777777777);
    }
}
