//! Reading back what kiln-disk wrote, with the same tools a user has: the
//! GPT by hand, the partitions through e2fsprogs and mtools.
#![allow(dead_code)]

use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::Command;

/// One GPT entry as read from the disk.
#[derive(Debug, PartialEq, Eq)]
pub struct Entry {
    pub type_guid: String,
    pub part_uuid: String,
    pub first_lba: u64,
    pub last_lba: u64,
    pub name: String,
}

/// The disk GUID and used entries of the GPT at `lba`, after checking its
/// signature and both CRCs.
pub fn read_gpt(disk: &Path, lba: u64) -> (String, u64, Vec<Entry>) {
    let f = std::fs::File::open(disk).unwrap();
    let mut h = [0u8; 512];
    f.read_exact_at(&mut h, lba * 512).unwrap();
    assert_eq!(&h[0..8], b"EFI PART", "GPT signature at LBA {lba}");
    let mut z = h;
    z[16..20].fill(0);
    assert_eq!(
        crc32fast::hash(&z[..92]),
        u32_at(&h, 16),
        "header CRC at LBA {lba}"
    );
    assert_eq!(u64_at(&h, 24), lba, "my LBA");
    let entries_lba = u64_at(&h, 72);
    let n = u32_at(&h, 80) as usize;
    let size = u32_at(&h, 84) as usize;
    let mut e = vec![0u8; n * size];
    f.read_exact_at(&mut e, entries_lba * 512).unwrap();
    assert_eq!(crc32fast::hash(&e), u32_at(&h, 88), "entries CRC");
    let entries = e
        .chunks(size)
        .filter(|c| c[..16].iter().any(|b| *b != 0))
        .map(|c| Entry {
            type_guid: guid(&c[0..16]),
            part_uuid: guid(&c[16..32]),
            first_lba: u64_at(c, 32),
            last_lba: u64_at(c, 40),
            name: String::from_utf16(
                &c[56..128]
                    .chunks(2)
                    .map(|u| u16::from_le_bytes([u[0], u[1]]))
                    .take_while(|u| *u != 0)
                    .collect::<Vec<_>>(),
            )
            .unwrap(),
        })
        .collect();
    (guid(&h[56..72]), u64_at(&h, 32), entries)
}

fn u32_at(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes(b[i..i + 4].try_into().unwrap())
}

fn u64_at(b: &[u8], i: usize) -> u64 {
    u64::from_le_bytes(b[i..i + 8].try_into().unwrap())
}

/// GPT's mixed-endian GUID bytes, printed the usual way.
fn guid(b: &[u8]) -> String {
    format!(
        "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{}-{}",
        b[3],
        b[2],
        b[1],
        b[0],
        b[5],
        b[4],
        b[7],
        b[6],
        hex(&b[8..10]),
        hex(&b[10..16])
    )
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Copies `len` bytes at `offset` of `disk` into their own file.
pub fn extract(disk: &Path, offset: u64, len: u64, out: &Path) {
    let f = std::fs::File::open(disk).unwrap();
    let mut buf = vec![0u8; len as usize];
    f.read_exact_at(&mut buf, offset).unwrap();
    std::fs::write(out, buf).unwrap();
}

/// Runs a tool (looked up in the sbin directories too) and returns stdout.
pub fn run(tool: &str, args: &[&str]) -> String {
    let path = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
        .iter()
        .map(|d| Path::new(d).join(tool))
        .find(|p| p.is_file())
        .unwrap_or_else(|| tool.into());
    let out = Command::new(&path)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{tool}: {e}"));
    assert!(
        out.status.success(),
        "{tool} {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
