//! Hashing content as it streams by: a reader that hashes every byte its
//! caller reads, so content is verified (or named) in the same pass that
//! uses it, never read twice.

use std::io::{self, Read};

use crate::digest::Hasher;
use crate::{Digest, Expected, StoreError};

/// Hashes the bytes read through it, in order, from where `inner` stood.
pub struct HashingReader<R> {
    inner: R,
    hasher: Hasher,
}

impl<R: Read> HashingReader<R> {
    pub fn new(inner: R) -> HashingReader<R> {
        HashingReader {
            inner,
            hasher: Hasher::default(),
        }
    }

    /// The digest of what was read so far.
    pub fn digest(&self) -> Digest {
        self.hasher.digest()
    }

    /// How many bytes were read so far.
    pub fn size(&self) -> u64 {
        self.hasher.size()
    }

    /// Checks what was read against `expected`; `what` (a path or URL)
    /// names the content in the error.
    pub fn verify(&self, expected: &Expected, what: &str) -> Result<Digest, StoreError> {
        crate::staged::check(expected, self.size(), self.digest(), what)
    }

    /// The reader underneath: what is read from it directly is not hashed.
    pub(crate) fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_read_is_hashed_and_verified() {
        let mut r = HashingReader::new(&b"abc"[..]);
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!((r.digest(), r.size()), (Digest::of(b"abc"), 3));
        let good = Expected::new(Digest::of(b"abc"), 3);
        assert_eq!(r.verify(&good, "x").unwrap(), Digest::of(b"abc"));
        let err = r
            .verify(&Expected::sha256(Digest::of(b"abd")), "/a/b")
            .unwrap_err();
        assert!(matches!(err, StoreError::DigestMismatch { .. }), "{err}");
        assert!(err.to_string().contains("/a/b"), "{err}");
    }
}
