//! Verifying content as it is used: a reader that hashes the bytes its
//! caller reads anyway, in file order, and checks them against what the
//! content must be once the caller is done. A blob is verified on entry to
//! the store; this catches one damaged since (a disk error, an edit).

use std::io::{self, Read, Seek, SeekFrom};

use crate::digest::Hasher;
use crate::{Digest, Expected, StoreError};

/// Hashes the bytes of `inner` from its start as they are read. Seeking
/// back re-reads bytes already hashed (they are not hashed twice); seeking
/// forward past what was read hashes the skipped bytes on the way, so
/// every byte is hashed exactly once whatever order the caller reads in.
pub struct VerifyingReader<R> {
    inner: R,
    /// The caller's position in `inner`.
    pos: u64,
    /// The bytes from the start hashed so far; its size is how far.
    hasher: Hasher,
    expected: Expected,
    what: String,
}

impl<R: Read + Seek> VerifyingReader<R> {
    /// `inner` positioned at its start; `what` (a path) names the content
    /// in the error.
    pub fn new(inner: R, expected: Expected, what: impl Into<String>) -> VerifyingReader<R> {
        VerifyingReader {
            inner,
            pos: 0,
            hasher: Hasher::default(),
            expected,
            what: what.into(),
        }
    }

    /// Reads what the caller left unread, then checks the whole content.
    pub fn finish(mut self) -> Result<Digest, StoreError> {
        let end = self.inner.seek(SeekFrom::End(0))?;
        self.catch_up(end)?;
        crate::staged::check(
            &self.expected,
            self.hasher.size(),
            self.hasher.digest(),
            &self.what,
        )
    }

    /// Hashes from where hashing stopped up to `target`, leaving `inner`
    /// there.
    fn catch_up(&mut self, target: u64) -> io::Result<()> {
        let hashed = self.hasher.size();
        if target <= hashed {
            return Ok(());
        }
        self.inner.seek(SeekFrom::Start(hashed))?;
        let mut buf = vec![0u8; 64 * 1024];
        let mut left = target - hashed;
        while left > 0 {
            let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            let n = match self.inner.read(&mut buf[..want]) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            self.hasher.update(&buf[..n]);
            left -= n as u64;
        }
        self.pos = self.hasher.size();
        Ok(())
    }
}

impl<R: Read + Seek> Read for VerifyingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let end = self.pos + n as u64;
        let hashed = self.hasher.size();
        // Only the part past what is hashed is new: a read never starts
        // beyond it, since seeks forward hash their gap.
        if end > hashed && self.pos <= hashed {
            let from = usize::try_from(hashed - self.pos).unwrap_or(n);
            self.hasher.update(&buf[from..n]);
        }
        self.pos = end;
        Ok(n)
    }
}

impl<R: Read + Seek> Seek for VerifyingReader<R> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
            SeekFrom::End(d) => self.inner.seek(SeekFrom::End(0))?.checked_add_signed(d),
        }
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start"))?;
        if target > self.hasher.size() {
            self.catch_up(target)?;
            if self.pos == target {
                return Ok(target);
            }
            // Past the end: position as asked, as a file would.
        }
        self.pos = self.inner.seek(SeekFrom::Start(target))?;
        Ok(self.pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufReader, Cursor};

    fn content() -> Vec<u8> {
        (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect()
    }

    #[test]
    fn every_byte_is_hashed_once_whatever_the_reads_and_seeks() {
        let data = content();
        let want = Expected::new(Digest::of(&data), data.len() as u64);
        // Skips forward, back over hashed bytes, reads through a buffer.
        let mut r = BufReader::with_capacity(
            4096,
            VerifyingReader::new(Cursor::new(data.clone()), want, "x"),
        );
        let mut b = [0u8; 100];
        r.read_exact(&mut b).unwrap();
        r.seek(SeekFrom::Start(200_000)).unwrap();
        r.read_exact(&mut b).unwrap();
        assert_eq!(b[..], data[200_000..200_100]);
        r.seek(SeekFrom::Start(10)).unwrap();
        r.read_exact(&mut b).unwrap();
        assert_eq!(b[..], data[10..110]);
        r.seek(SeekFrom::Current(5)).unwrap();
        r.read_exact(&mut b).unwrap();
        assert_eq!(b[..], data[115..215]);
        assert_eq!(r.into_inner().finish().unwrap(), Digest::of(&data));
    }

    #[test]
    fn a_changed_byte_is_a_mismatch_naming_the_content() {
        let data = content();
        let want = Expected::sha256(Digest::of(&data));
        let mut damaged = data.clone();
        damaged[123_456] ^= 1;
        let mut r = VerifyingReader::new(Cursor::new(damaged), want, "/store/blob");
        let mut sink = Vec::new();
        (&mut r).take(1000).read_to_end(&mut sink).unwrap();
        let err = r.finish().unwrap_err();
        assert!(matches!(err, StoreError::DigestMismatch { .. }), "{err}");
        assert!(err.to_string().contains("/store/blob"), "{err}");
    }
}
