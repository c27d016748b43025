//! SHA-256 digests as OCI writes them (`sha256:<hex>`), computed while bytes
//! stream by so no layer is ever read twice or held in memory.

use std::fmt;
use std::io::{self, Write};
use std::str::FromStr;

use sha2::Digest as _;

/// A SHA-256 digest. Displays as `sha256:<64 lowercase hex digits>`, the OCI
/// form; [`Digest::hex`] gives the bare hex used for blob file names.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest([u8; 32]);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("`{0}` is not a digest (sha256: and 64 hex digits)")]
pub struct BadDigest(pub String);

impl Digest {
    pub fn of(bytes: &[u8]) -> Digest {
        Digest(sha2::Sha256::digest(bytes).into())
    }

    /// A digest computed elsewhere (a hasher fed while bytes streamed).
    pub fn from_bytes(bytes: [u8; 32]) -> Digest {
        Digest(bytes)
    }

    pub fn from_hex(hex: &str) -> Result<Digest, BadDigest> {
        let mut out = [0u8; 32];
        // decode_to_slice accepts upper case too; OCI digests are lower case.
        if hex.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(BadDigest(hex.to_string()));
        }
        hex::decode_to_slice(hex, &mut out).map_err(|_| BadDigest(hex.to_string()))?;
        Ok(Digest(out))
    }

    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Digest {
    type Err = BadDigest;
    /// Parses the OCI form, `sha256:<hex>`.
    fn from_str(s: &str) -> Result<Digest, BadDigest> {
        let hex = s
            .strip_prefix("sha256:")
            .ok_or_else(|| BadDigest(s.to_string()))?;
        Digest::from_hex(hex).map_err(|_| BadDigest(s.to_string()))
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

/// A writer that hashes what it passes to `inner` on another thread, so a
/// large stream (a rootfs tar, a layer) is not held up by sha256.
pub(crate) struct HashingWriter<W> {
    inner: W,
    chunks: std::sync::mpsc::SyncSender<Vec<u8>>,
    done: std::thread::JoinHandle<(sha2::Sha256, u64)>,
}

impl<W: Write> HashingWriter<W> {
    pub(crate) fn new(inner: W) -> Self {
        let (chunks, received) = std::sync::mpsc::sync_channel::<Vec<u8>>(16);
        let done = std::thread::spawn(move || {
            let (mut hasher, mut size) = (sha2::Sha256::new(), 0u64);
            for chunk in received {
                hasher.update(&chunk);
                size += chunk.len() as u64;
            }
            (hasher, size)
        });
        HashingWriter {
            inner,
            chunks,
            done,
        }
    }

    /// The digest and size of what passed, and the inner writer.
    pub(crate) fn finish(self) -> io::Result<(Digest, u64, W)> {
        drop(self.chunks);
        let (hasher, size) = self
            .done
            .join()
            .map_err(|_| io::Error::other("the hashing thread panicked"))?;
        Ok((Digest(hasher.finalize().into()), size, self.inner))
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.chunks
            .send(buf[..n].to_vec())
            .map_err(|_| io::Error::other("the hashing thread stopped"))?;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_round_trips_through_the_oci_form() {
        let d = Digest::of(b"abc");
        let s = "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(d.to_string(), s);
        assert_eq!(s.parse::<Digest>(), Ok(d));
        let mut w = HashingWriter::new(Vec::new());
        w.write_all(b"a").unwrap();
        w.write_all(b"bc").unwrap();
        let (got, size, inner) = w.finish().unwrap();
        assert_eq!((got, size, inner.as_slice()), (d, 3, &b"abc"[..]));
    }

    #[test]
    fn malformed_digests_are_refused() {
        let hex = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        for bad in [
            String::new(),
            hex.to_string(),
            format!("sha512:{hex}"),
            format!("sha256:{}", hex.to_uppercase()),
            format!("sha256:{}", &hex[1..]),
        ] {
            assert!(bad.parse::<Digest>().is_err(), "{bad}");
        }
    }
}
