//! Every identifier on the disk (GUIDs, the file system UUID, the FAT
//! serial) is derived from the image digest, so two builds of one image
//! carry the same ones and two different images never share them.

use std::fmt;

use sha2::{Digest, Sha256};

/// A UUID in RFC 4122 byte order (as printed); GPT stores the first three
/// fields little-endian, see [`Uuid::to_gpt_bytes`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct Uuid(pub [u8; 16]);

impl Uuid {
    /// sha256(`label` NUL `seed`), truncated, with the version 4 and RFC
    /// 4122 variant bits set: a random-looking UUID that is a pure function
    /// of its inputs.
    pub fn derive(label: &str, seed: &str) -> Uuid {
        let h = derive_bytes(label, seed);
        let mut b = [0u8; 16];
        b.copy_from_slice(&h[..16]);
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        Uuid(b)
    }

    /// Parses the usual `8-4-4-4-12` form; type GUIDs are written this way.
    pub const fn from_str_const(s: &str) -> Uuid {
        let s = s.as_bytes();
        let mut out = [0u8; 16];
        let mut i = 0;
        let mut n = 0;
        while i < s.len() {
            if s[i] != b'-' {
                let v = match s[i] {
                    b'0'..=b'9' => s[i] - b'0',
                    b'a'..=b'f' => s[i] - b'a' + 10,
                    b'A'..=b'F' => s[i] - b'A' + 10,
                    _ => panic!("not a hex digit"),
                };
                out[n / 2] |= if n % 2 == 0 { v << 4 } else { v };
                n += 1;
            }
            i += 1;
        }
        assert!(n == 32, "a UUID has 32 hex digits");
        Uuid(out)
    }

    /// The mixed-endian layout of GPT (and of EFI's GUID type).
    pub fn to_gpt_bytes(self) -> [u8; 16] {
        let b = self.0;
        [
            b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], b[8], b[9], b[10], b[11], b[12], b[13],
            b[14], b[15],
        ]
    }
}

impl fmt::Display for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let h = hex::encode(self.0);
        write!(
            f,
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        )
    }
}

impl fmt::Debug for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl From<Uuid> for String {
    fn from(u: Uuid) -> String {
        u.to_string()
    }
}

impl TryFrom<String> for Uuid {
    type Error = String;
    fn try_from(s: String) -> Result<Uuid, String> {
        let hex: String = s.chars().filter(|c| *c != '-').collect();
        let bytes = hex::decode(&hex).map_err(|e| format!("{s}: not a UUID: {e}"))?;
        let b: [u8; 16] = bytes
            .try_into()
            .map_err(|_| format!("{s}: not a UUID: wrong length"))?;
        Ok(Uuid(b))
    }
}

/// A FAT volume serial, printed as Linux shows it (`/dev/disk/by-uuid`,
/// fstab): `ABCD-1234`.
#[derive(Clone, Copy, PartialEq, Eq, Debug, serde::Serialize, serde::Deserialize)]
pub struct FatSerial(pub u32);

impl FatSerial {
    pub fn derive(label: &str, seed: &str) -> FatSerial {
        let h = derive_bytes(label, seed);
        FatSerial(u32::from_be_bytes([h[0], h[1], h[2], h[3]]))
    }

    /// The form `mformat -N` takes.
    pub fn hex(self) -> String {
        format!("{:08x}", self.0)
    }
}

impl fmt::Display for FatSerial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04X}-{:04X}", self.0 >> 16, self.0 & 0xffff)
    }
}

pub(crate) fn derive_bytes(label: &str, seed: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(label.as_bytes());
    h.update([0u8]);
    h.update(seed.as_bytes());
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_uuids_are_stable_version_4_and_distinct_per_label() {
        let a = Uuid::derive("disk", "sha256:00");
        assert_eq!(a, Uuid::derive("disk", "sha256:00"));
        assert_ne!(a, Uuid::derive("root", "sha256:00"));
        assert_ne!(a, Uuid::derive("disk", "sha256:01"));
        let s = a.to_string();
        assert_eq!(s.len(), 36);
        assert_eq!(&s[14..15], "4", "version nibble in {s}");
        assert!("89ab".contains(&s[19..20]), "variant in {s}");
        assert_eq!(Uuid::try_from(s).unwrap(), a);
    }

    #[test]
    fn gpt_byte_order_swaps_the_first_three_fields() {
        // The EFI system partition type, as the UEFI spec lists its bytes.
        let esp = Uuid::from_str_const("C12A7328-F81F-11D2-BA4B-00A0C93EC93B");
        assert_eq!(
            esp.to_gpt_bytes(),
            [
                0x28, 0x73, 0x2a, 0xc1, 0x1f, 0xf8, 0xd2, 0x11, 0xba, 0x4b, 0x00, 0xa0, 0xc9, 0x3e,
                0xc9, 0x3b
            ]
        );
    }

    #[test]
    fn fat_serial_prints_like_blkid() {
        assert_eq!(FatSerial(0x1234abcd).to_string(), "1234-ABCD");
        assert_eq!(FatSerial(0x1234abcd).hex(), "1234abcd");
    }
}
