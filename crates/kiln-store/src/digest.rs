//! SHA-256 digests: the store's only kind of address, and the digests OCI
//! images are made of. One type for both, so no caller converts between them.

use std::fmt;
use std::str::FromStr;

use sha2::Digest as _;

/// A SHA-256 digest. Displays (and serializes) in the OCI form,
/// `sha256:<64 lowercase hex digits>`; [`Digest::hex`] gives the bare hex
/// used for blob file names, lock files and Debian's indices.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest([u8; 32]);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BadDigest {
    #[error("`{0}` is not a SHA-256 digest (64 hex digits)")]
    Hex(String),
    #[error("`{0}` is not a digest (sha256: and 64 hex digits)")]
    Oci(String),
}

impl Digest {
    pub fn of(bytes: &[u8]) -> Digest {
        Digest(sha2::Sha256::digest(bytes).into())
    }

    /// A digest computed elsewhere (a hasher fed while bytes streamed).
    pub fn from_bytes(bytes: [u8; 32]) -> Digest {
        Digest(bytes)
    }

    /// Parses bare hex, in either case (as Debian's indices and kiln's lock
    /// files write it).
    pub fn from_hex(hex: &str) -> Result<Digest, BadDigest> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(hex, &mut out).map_err(|_| BadDigest::Hex(hex.to_string()))?;
        Ok(Digest(out))
    }

    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex())
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex())
    }
}

impl FromStr for Digest {
    type Err = BadDigest;
    /// Parses the OCI form, `sha256:<hex>`; OCI digests are lower case.
    fn from_str(s: &str) -> Result<Digest, BadDigest> {
        let bad = || BadDigest::Oci(s.to_string());
        let hex = s.strip_prefix("sha256:").ok_or_else(bad)?;
        if hex.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(bad());
        }
        Digest::from_hex(hex).map_err(|_| bad())
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Digest, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// What a piece of content must be. Unset parts are not checked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Expected {
    pub sha256: Option<Digest>,
    pub size: Option<u64>,
}

impl Expected {
    pub fn new(sha256: Digest, size: u64) -> Expected {
        Expected {
            sha256: Some(sha256),
            size: Some(size),
        }
    }

    pub fn sha256(sha256: Digest) -> Expected {
        Expected {
            sha256: Some(sha256),
            size: None,
        }
    }
}

/// Incremental hashing of content as it streams by.
#[derive(Clone, Default)]
pub(crate) struct Hasher {
    inner: sha2::Sha256,
    size: u64,
}

impl Hasher {
    pub(crate) fn update(&mut self, bytes: &[u8]) {
        self.inner.update(bytes);
        self.size += bytes.len() as u64;
    }

    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    pub(crate) fn digest(&self) -> Digest {
        Digest(self.inner.clone().finalize().into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ABC: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    #[test]
    fn known_digest_round_trips_through_hex_and_the_oci_form() {
        let d = Digest::of(b"abc");
        assert_eq!(d.hex(), ABC);
        assert_eq!(Digest::from_hex(ABC), Ok(d));
        assert_eq!(Digest::from_hex(&ABC.to_uppercase()), Ok(d));
        let oci = format!("sha256:{ABC}");
        assert_eq!(d.to_string(), oci);
        assert_eq!(format!("{d:?}"), oci);
        assert_eq!(oci.parse::<Digest>(), Ok(d));
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(json, format!("\"{oci}\""));
        assert_eq!(serde_json::from_str::<Digest>(&json).unwrap(), d);
        let mut h = Hasher::default();
        h.update(b"a");
        h.update(b"bc");
        assert_eq!((h.digest(), h.size()), (d, 3));
    }

    #[test]
    fn malformed_hex_is_refused() {
        for bad in ["", "abc", &"g".repeat(64), &"a".repeat(66)] {
            assert_eq!(Digest::from_hex(bad), Err(BadDigest::Hex(bad.to_string())));
        }
    }

    #[test]
    fn malformed_oci_digests_are_refused() {
        for bad in [
            String::new(),
            ABC.to_string(),
            format!("sha512:{ABC}"),
            format!("sha256:{}", ABC.to_uppercase()),
            format!("sha256:{}", &ABC[1..]),
        ] {
            assert_eq!(bad.parse::<Digest>(), Err(BadDigest::Oci(bad.clone())));
        }
    }
}
