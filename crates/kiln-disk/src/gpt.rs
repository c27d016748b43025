//! The partition table, written by hand: a protective MBR, the primary GPT
//! at the start and its backup at the end. Nothing in it depends on the
//! clock or on a tool's version.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::error::DiskError;
use crate::layout::{
    DiskLayout, GPT_ENTRIES, GPT_ENTRY_SECTORS, GPT_ENTRY_SIZE, Partition, SECTOR,
};

const HEADER_SIZE: u32 = 92;

pub(crate) fn write(file: &File, path: &Path, layout: &DiskLayout) -> Result<(), DiskError> {
    let sectors = layout.sectors();
    let entries = entries(&[&layout.esp, &layout.root]);
    let entries_crc = crc32fast::hash(&entries);
    let backup_lba = sectors - 1;
    let backup_entries_lba = backup_lba - GPT_ENTRY_SECTORS;
    let at = |what, buf: &[u8], lba: u64| {
        file.write_all_at(buf, lba * SECTOR)
            .map_err(|e| DiskError::io_at(path, what, e))
    };
    at("writing the protective MBR", &protective_mbr(sectors), 0)?;
    at(
        "writing the GPT",
        &header(layout, 1, backup_lba, 2, entries_crc),
        1,
    )?;
    at("writing the GPT entries", &entries, 2)?;
    at(
        "writing the backup GPT entries",
        &entries,
        backup_entries_lba,
    )?;
    at(
        "writing the backup GPT",
        &header(layout, backup_lba, 1, backup_entries_lba, entries_crc),
        backup_lba,
    )?;
    Ok(())
}

/// One partition of type 0xEE covering the disk (or as much as 32 bits
/// say), so MBR-only tools see the disk as in use.
fn protective_mbr(sectors: u64) -> [u8; 512] {
    let mut mbr = [0u8; 512];
    let e = &mut mbr[446..462];
    e[0] = 0x00; // not bootable
    e[1..4].copy_from_slice(&[0x00, 0x02, 0x00]); // CHS of LBA 1
    e[4] = 0xEE;
    e[5..8].copy_from_slice(&[0xFF, 0xFF, 0xFF]);
    e[8..12].copy_from_slice(&1u32.to_le_bytes());
    let len = u32::try_from(sectors - 1).unwrap_or(u32::MAX);
    e[12..16].copy_from_slice(&len.to_le_bytes());
    mbr[510] = 0x55;
    mbr[511] = 0xAA;
    mbr
}

fn header(
    layout: &DiskLayout,
    my_lba: u64,
    alternate_lba: u64,
    entries_lba: u64,
    entries_crc: u32,
) -> [u8; 512] {
    let sectors = layout.sectors();
    let mut h = [0u8; 512];
    h[0..8].copy_from_slice(b"EFI PART");
    h[8..12].copy_from_slice(&0x0001_0000u32.to_le_bytes());
    h[12..16].copy_from_slice(&HEADER_SIZE.to_le_bytes());
    // 16..20: CRC32 of the header, filled in last.
    h[24..32].copy_from_slice(&my_lba.to_le_bytes());
    h[32..40].copy_from_slice(&alternate_lba.to_le_bytes());
    h[40..48].copy_from_slice(&(2 + GPT_ENTRY_SECTORS).to_le_bytes());
    h[48..56].copy_from_slice(&(sectors - 2 - GPT_ENTRY_SECTORS).to_le_bytes());
    h[56..72].copy_from_slice(&layout.disk_guid.to_gpt_bytes());
    h[72..80].copy_from_slice(&entries_lba.to_le_bytes());
    h[80..84].copy_from_slice(&GPT_ENTRIES.to_le_bytes());
    h[84..88].copy_from_slice(&GPT_ENTRY_SIZE.to_le_bytes());
    h[88..92].copy_from_slice(&entries_crc.to_le_bytes());
    let crc = crc32fast::hash(&h[..HEADER_SIZE as usize]);
    h[16..20].copy_from_slice(&crc.to_le_bytes());
    h
}

fn entries(parts: &[&Partition]) -> Vec<u8> {
    let mut out = vec![0u8; (GPT_ENTRIES * GPT_ENTRY_SIZE) as usize];
    for (p, e) in parts.iter().zip(out.chunks_mut(GPT_ENTRY_SIZE as usize)) {
        e[0..16].copy_from_slice(&p.type_guid.to_gpt_bytes());
        e[16..32].copy_from_slice(&p.part_uuid.to_gpt_bytes());
        e[32..40].copy_from_slice(&p.first_lba.to_le_bytes());
        e[40..48].copy_from_slice(&p.last_lba.to_le_bytes());
        // 48..56: attributes, none.
        for (i, unit) in p.name.encode_utf16().take(36).enumerate() {
            e[56 + 2 * i..58 + 2 * i].copy_from_slice(&unit.to_le_bytes());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_carry_valid_crcs_and_point_at_each_other() {
        let l = DiskLayout::plan(1 << 30, "seed", kiln_deb::Architecture::Amd64).unwrap();
        let e = entries(&[&l.esp, &l.root]);
        let crc = crc32fast::hash(&e);
        let h = header(&l, 1, l.sectors() - 1, 2, crc);
        let mut z = h;
        z[16..20].fill(0);
        assert_eq!(
            crc32fast::hash(&z[..92]),
            u32::from_le_bytes(h[16..20].try_into().unwrap())
        );
        assert_eq!(
            u64::from_le_bytes(h[32..40].try_into().unwrap()),
            l.sectors() - 1
        );
        assert_eq!(&e[56..62], &[b'e', 0, b's', 0, b'p', 0]);
        assert_eq!(
            u64::from_le_bytes(e[128 + 32..128 + 40].try_into().unwrap()),
            l.root.first_lba
        );
        assert!(e[256..].iter().all(|b| *b == 0));
    }
}
