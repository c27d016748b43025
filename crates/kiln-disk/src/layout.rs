//! Where everything sits on the disk: a GPT with an EFI system partition and
//! a root partition filling the rest, all aligned to 1 MiB.

use kiln_deb::Architecture;
use serde::{Deserialize, Serialize};

use crate::error::DiskError;
use crate::ids::{FatSerial, Uuid};

pub const SECTOR: u64 = 512;
/// Partitions start and end on MiB boundaries (what every partitioner does,
/// and what VHD's fixed format asks of the whole disk).
pub const ALIGN: u64 = 1 << 20;
/// FAT32 needs at least 65525 clusters; 256 MiB with 2 KiB clusters has
/// twice that, and room for two kernels with their initrds.
pub const ESP_SIZE: u64 = 256 << 20;
/// The smallest root partition worth making; whether the tree fits is
/// mke2fs's call.
pub const MIN_ROOT_SIZE: u64 = 64 << 20;
/// 128 entries of 128 bytes: 32 sectors, the size every tool expects.
pub const GPT_ENTRIES: u32 = 128;
pub const GPT_ENTRY_SIZE: u32 = 128;
pub const GPT_ENTRY_SECTORS: u64 = (GPT_ENTRIES as u64 * GPT_ENTRY_SIZE as u64) / SECTOR;

/// Discoverable Partitions Specification type GUIDs.
pub const TYPE_ESP: Uuid = Uuid::from_str_const("C12A7328-F81F-11D2-BA4B-00A0C93EC93B");

/// The root partition's type GUID: the one systemd looks for on `arch`.
pub fn root_type(arch: Architecture) -> Uuid {
    Uuid::from_str_const(arch.gpt_root_type())
}

/// One GPT partition, in sectors, `last_lba` inclusive as GPT has it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Partition {
    pub name: String,
    pub type_guid: Uuid,
    pub part_uuid: Uuid,
    pub first_lba: u64,
    pub last_lba: u64,
}

impl Partition {
    pub fn offset(&self) -> u64 {
        self.first_lba * SECTOR
    }

    pub fn size(&self) -> u64 {
        (self.last_lba + 1 - self.first_lba) * SECTOR
    }
}

/// The identifiers and geometry of a disk image: all of it follows from the
/// size and the image digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskLayout {
    /// Bytes; the requested size rounded up to a MiB.
    pub size: u64,
    pub disk_guid: Uuid,
    pub esp: Partition,
    pub root: Partition,
    /// The ext4 UUID: `root=UUID=` on the kernel command line and fstab.
    pub root_fs_uuid: Uuid,
    /// ext4's directory hash seed (mke2fs would pick a random one).
    pub root_hash_seed: Uuid,
    /// The FAT volume serial: the ESP's `UUID=` in fstab.
    pub esp_serial: FatSerial,
}

impl DiskLayout {
    pub fn plan(
        size: u64,
        image_digest: &str,
        arch: Architecture,
    ) -> Result<DiskLayout, DiskError> {
        let size = size.div_ceil(ALIGN) * ALIGN;
        let min = ALIGN + ESP_SIZE + MIN_ROOT_SIZE + ALIGN;
        if size < min {
            return Err(DiskError::DiskTooSmall { size, min });
        }
        let sectors = size / SECTOR;
        let per_mib = ALIGN / SECTOR;
        let esp_first = per_mib;
        let esp_last = esp_first + ESP_SIZE / SECTOR - 1;
        let root_first = esp_last + 1;
        // The backup GPT takes the last 33 sectors; the root ends at the
        // last MiB boundary before it.
        let last_usable = sectors - 1 - GPT_ENTRY_SECTORS - 1;
        let root_last = (last_usable + 1) / per_mib * per_mib - 1;
        let id = |label: &str| Uuid::derive(label, image_digest);
        Ok(DiskLayout {
            size,
            disk_guid: id("kiln-disk-guid"),
            esp: Partition {
                name: "esp".into(),
                type_guid: TYPE_ESP,
                part_uuid: id("kiln-esp-partuuid"),
                first_lba: esp_first,
                last_lba: esp_last,
            },
            root: Partition {
                name: format!("root-{}", arch.dps_name()),
                type_guid: root_type(arch),
                part_uuid: id("kiln-root-partuuid"),
                first_lba: root_first,
                last_lba: root_last,
            },
            root_fs_uuid: id("kiln-root-fs-uuid"),
            root_hash_seed: id("kiln-root-hash-seed"),
            esp_serial: FatSerial::derive("kiln-esp-serial", image_digest),
        })
    }

    pub fn sectors(&self) -> u64 {
        self.size / SECTOR
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_gib_disk_has_aligned_partitions_clear_of_both_gpts() {
        let l = DiskLayout::plan(2 << 30, "sha256:ab", Architecture::Amd64).unwrap();
        assert_eq!(l.size, 2 << 30);
        assert_eq!(l.esp.offset(), 1 << 20);
        assert_eq!(l.esp.size(), ESP_SIZE);
        assert_eq!(l.root.offset(), (1 << 20) + ESP_SIZE);
        assert_eq!(l.root.offset() % ALIGN, 0);
        assert_eq!((l.root.offset() + l.root.size()) % ALIGN, 0);
        // Primary GPT ends at LBA 33, backup starts at sectors - 33.
        assert!(l.esp.first_lba > 33);
        assert!(l.root.last_lba < l.sectors() - 33);
        assert_eq!(l.root.size(), (2 << 30) - 2 * ALIGN - ESP_SIZE);
    }

    #[test]
    fn sizes_round_up_to_a_mib_and_too_small_is_an_error() {
        let l = DiskLayout::plan((1 << 30) + 1, "x", Architecture::Amd64).unwrap();
        assert_eq!(l.size, (1 << 30) + ALIGN);
        let e = DiskLayout::plan(100 << 20, "x", Architecture::Amd64).unwrap_err();
        assert!(e.to_string().contains("too small"), "{e}");
    }

    #[test]
    fn the_root_partition_is_typed_for_the_architecture() {
        let amd64 = DiskLayout::plan(2 << 30, "x", Architecture::Amd64).unwrap();
        assert_eq!(amd64.root.name, "root-x86-64");
        assert_eq!(
            amd64.root.type_guid,
            Uuid::from_str_const("4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709")
        );
        let arm64 = DiskLayout::plan(2 << 30, "x", Architecture::Arm64).unwrap();
        assert_eq!(arm64.root.name, "root-arm64");
        assert_eq!(
            arm64.root.type_guid,
            Uuid::from_str_const("B921B045-1DF0-41C3-AF44-4C6F280D3FAE")
        );
    }

    #[test]
    fn identifiers_follow_the_digest() {
        let a = DiskLayout::plan(2 << 30, "sha256:aa", Architecture::Amd64).unwrap();
        let b = DiskLayout::plan(2 << 30, "sha256:aa", Architecture::Amd64).unwrap();
        let c = DiskLayout::plan(2 << 30, "sha256:bb", Architecture::Amd64).unwrap();
        assert_eq!(a, b);
        assert_ne!(a.disk_guid, c.disk_guid);
        assert_ne!(a.root_fs_uuid, c.root_fs_uuid);
        assert_ne!(a.esp_serial, c.esp_serial);
        let all = [
            a.disk_guid,
            a.esp.part_uuid,
            a.root.part_uuid,
            a.root_fs_uuid,
            a.root_hash_seed,
        ];
        for (i, x) in all.iter().enumerate() {
            for y in &all[i + 1..] {
                assert_ne!(x, y);
            }
        }
    }
}
