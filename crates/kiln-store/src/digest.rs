//! SHA-256 digests: the store's only kind of address.

use std::fmt;
use std::str::FromStr;

use sha2::Digest as _;

/// A SHA-256 digest. Displays as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sha256([u8; 32]);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("`{0}` is not a SHA-256 digest (64 hex digits)")]
pub struct BadDigest(pub String);

impl Sha256 {
    pub fn of(bytes: &[u8]) -> Sha256 {
        Sha256(sha2::Sha256::digest(bytes).into())
    }

    pub fn from_hex(hex: &str) -> Result<Sha256, BadDigest> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(hex, &mut out).map_err(|_| BadDigest(hex.to_string()))?;
        Ok(Sha256(out))
    }

    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.hex())
    }
}

impl fmt::Debug for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex())
    }
}

impl FromStr for Sha256 {
    type Err = BadDigest;
    fn from_str(s: &str) -> Result<Sha256, BadDigest> {
        Sha256::from_hex(s)
    }
}

/// What a piece of content must be. Unset parts are not checked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Expected {
    pub sha256: Option<Sha256>,
    pub size: Option<u64>,
}

impl Expected {
    pub fn new(sha256: Sha256, size: u64) -> Expected {
        Expected {
            sha256: Some(sha256),
            size: Some(size),
        }
    }

    pub fn sha256(sha256: Sha256) -> Expected {
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

    pub(crate) fn digest(&self) -> Sha256 {
        Sha256(self.inner.clone().finalize().into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digest_round_trips_through_hex() {
        let d = Sha256::of(b"abc");
        assert_eq!(
            d.to_string(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(d.to_string().parse::<Sha256>(), Ok(d));
        assert_eq!(
            "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD".parse::<Sha256>(),
            Ok(d)
        );
        let mut h = Hasher::default();
        h.update(b"a");
        h.update(b"bc");
        assert_eq!((h.digest(), h.size()), (d, 3));
    }

    #[test]
    fn malformed_hex_is_refused() {
        for bad in ["", "abc", &"g".repeat(64), &"a".repeat(66)] {
            assert!(bad.parse::<Sha256>().is_err(), "{bad}");
        }
    }
}
