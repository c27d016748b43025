//! Verifying content as it is used: a reader that hashes the bytes its
//! caller reads anyway, in file order, and checks them against what the
//! content must be once the caller is done. A blob is verified on entry to
//! the store; this catches one damaged since (a disk error, an edit).

use std::io::{self, Read, Seek, SeekFrom};

use crate::{Digest, Expected, HashingReader, StoreError};

/// Hashes the bytes of `inner` from its start as they are read. Seeking
/// back re-reads bytes already hashed (they are not hashed twice); seeking
/// forward past what was read hashes the skipped bytes on the way, so
/// every byte is hashed exactly once whatever order the caller reads in.
pub struct VerifyingReader<R> {
    /// Hashes the bytes from the start; its size is how far it got.
    inner: HashingReader<R>,
    /// The caller's position in `inner`.
    pos: u64,
    expected: Expected,
    what: String,
}

impl<R: Read + Seek> VerifyingReader<R> {
    /// `inner` positioned at its start; `what` (a path) names the content
    /// in the error.
    pub fn new(inner: R, expected: Expected, what: impl Into<String>) -> VerifyingReader<R> {
        VerifyingReader {
            inner: HashingReader::new(inner),
            pos: 0,
            expected,
            what: what.into(),
        }
    }

    /// Reads what the caller left unread, then checks the whole content.
    pub fn finish(mut self) -> Result<Digest, StoreError> {
        let end = self.inner.get_mut().seek(SeekFrom::End(0))?;
        self.catch_up(end)?;
        self.inner.verify(&self.expected, &self.what)
    }

    /// Hashes from where hashing stopped up to `target`, leaving `inner`
    /// there.
    fn catch_up(&mut self, target: u64) -> io::Result<()> {
        let hashed = self.inner.size();
        if target <= hashed {
            return Ok(());
        }
        self.inner.get_mut().seek(SeekFrom::Start(hashed))?;
        io::copy(
            &mut (&mut self.inner).take(target - hashed),
            &mut io::sink(),
        )?;
        self.pos = self.inner.size();
        Ok(())
    }
}

impl<R: Read + Seek> Read for VerifyingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let hashed = self.inner.size();
        // A read never starts beyond what is hashed (seeks forward hash
        // their gap). Bytes hashed already are read past the hasher, and a
        // read of them stops where hashing stopped, so none is hashed twice.
        let n = if self.pos < hashed {
            let left = usize::try_from(hashed - self.pos).unwrap_or(usize::MAX);
            let want = buf.len().min(left);
            self.inner.get_mut().read(&mut buf[..want])?
        } else {
            self.inner.read(buf)?
        };
        self.pos += n as u64;
        Ok(n)
    }
}

impl<R: Read + Seek> Seek for VerifyingReader<R> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
            SeekFrom::End(d) => self
                .inner
                .get_mut()
                .seek(SeekFrom::End(0))?
                .checked_add_signed(d),
        }
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start"))?;
        if target > self.inner.size() {
            self.catch_up(target)?;
            if self.pos == target {
                return Ok(target);
            }
            // Past the end: position as asked, as a file would.
        }
        self.pos = self.inner.get_mut().seek(SeekFrom::Start(target))?;
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
