//! Hashing a stream as it is written, so no layer is ever read twice or
//! held in memory.

use std::io::{self, Write};

use kiln_store::Digest;
use sha2::Digest as _;

/// A writer that hashes what it passes to `inner` on another thread, so a
/// large stream (a rootfs tar, a layer) is not held up by sha256. What
/// passes goes to the hashing thread through one [`kiln_deb::pipe`], in
/// whole chunks, not one message per write (a tar writes 512-byte headers).
pub(crate) struct HashingWriter<W> {
    inner: W,
    pipe: kiln_deb::pipe::PipeWriter,
    done: std::thread::JoinHandle<(sha2::Sha256, u64)>,
}

impl<W: Write> HashingWriter<W> {
    pub(crate) fn new(inner: W) -> Self {
        let (pipe, mut passed) = kiln_deb::pipe::pipe();
        let done = std::thread::spawn(move || {
            let (mut hasher, mut size) = (sha2::Sha256::new(), 0u64);
            // An error is a writer dropped unfinished: nobody asks for this.
            while let Ok(Some(chunk)) = passed.next_chunk() {
                hasher.update(chunk);
                size += chunk.len() as u64;
            }
            (hasher, size)
        });
        HashingWriter { inner, pipe, done }
    }

    /// The digest and size of what passed, and the inner writer.
    pub(crate) fn finish(self) -> io::Result<(Digest, u64, W)> {
        let HashingWriter { inner, pipe, done } = self;
        pipe.finish()?;
        let (hasher, size) = done
            .join()
            .map_err(|_| io::Error::other("the hashing thread panicked"))?;
        Ok((Digest::from_bytes(hasher.finalize().into()), size, inner))
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.pipe
            .write_all(&buf[..n])
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
    fn what_passes_is_hashed() {
        let mut w = HashingWriter::new(Vec::new());
        w.write_all(b"a").unwrap();
        w.write_all(b"bc").unwrap();
        let (got, size, inner) = w.finish().unwrap();
        assert_eq!(
            (got, size, inner.as_slice()),
            (Digest::of(b"abc"), 3, &b"abc"[..])
        );
    }
}
