//! A byte stream handed from one thread to another in bounded chunks, so
//! the stages of one stream (download, inflate and hash, unpack) run on
//! their own cores instead of taking turns on one. At most [`DEPTH`]
//! chunks wait between the two ends: memory stays flat for a stream of any
//! size, and the faster end waits for the slower.
//!
//! Only [`PipeWriter::finish`] ends the stream cleanly: a writer that
//! failed, or was dropped unfinished, ends it with an error, so the reader
//! never mistakes a broken download for a short one.

use std::io::{self, Read, Write};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

/// Bytes per chunk handed over.
const CHUNK: usize = 256 << 10;
/// Chunks that may wait between the ends.
const DEPTH: usize = 8;

type Chunk = io::Result<Vec<u8>>;

/// Two ends of a new pipe.
pub fn pipe() -> (PipeWriter, PipeReader) {
    let (tx, rx) = sync_channel(DEPTH);
    (
        PipeWriter {
            buf: Vec::with_capacity(CHUNK),
            tx,
            ended: false,
        },
        PipeReader {
            rx,
            chunk: Vec::new(),
            at: 0,
            done: false,
        },
    )
}

/// Runs `reader` on a thread of its own while `consume` reads what it
/// yields, and gives back both `consume`'s result and `reader` (to ask it
/// what it saw, a hash say). When `consume` returns before the end, the
/// reader's thread stops at its next chunk.
pub fn read_ahead<R, T>(reader: R, consume: impl FnOnce(&mut PipeReader) -> T) -> (T, R)
where
    R: Read + Send,
{
    let (mut tx, mut rx) = pipe();
    std::thread::scope(|scope| {
        let producer = scope.spawn(move || {
            let mut reader = reader;
            let copied = io::copy(&mut reader, &mut tx);
            match copied {
                Ok(_) => drop(tx.finish()),
                Err(e) => tx.fail(e),
            }
            reader
        });
        let out = consume(&mut rx);
        // Unblocks the producer: it stops at its next chunk.
        drop(rx);
        match producer.join() {
            Ok(reader) => (out, reader),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// The writing end: gathers writes into chunks.
pub struct PipeWriter {
    buf: Vec<u8>,
    tx: SyncSender<Chunk>,
    ended: bool,
}

impl PipeWriter {
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        self.tx
            .send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the reading end stopped"))
    }

    /// Ends the stream with what was written.
    pub fn finish(mut self) -> io::Result<()> {
        self.ended = true;
        self.send()
    }

    /// Ends the stream with `error`: the reader's next read returns it.
    pub fn fail(mut self, error: io::Error) {
        self.ended = true;
        let _ = self.tx.send(Err(error));
    }
}

impl Drop for PipeWriter {
    fn drop(&mut self) {
        if !self.ended {
            let _ = self.tx.send(Err(io::Error::other(
                "the stream's writer stopped before its end",
            )));
        }
    }
}

impl Write for PipeWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == CHUNK {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The reading end.
pub struct PipeReader {
    rx: Receiver<Chunk>,
    chunk: Vec<u8>,
    at: usize,
    done: bool,
}

impl PipeReader {
    /// What is left of the chunk at hand, or the next one, without copying
    /// it out (a stream's consumer that writes whole chunks on: gzip);
    /// `None` at the end.
    pub fn next_chunk(&mut self) -> io::Result<Option<&[u8]>> {
        if !self.fill()? {
            return Ok(None);
        }
        let start = std::mem::replace(&mut self.at, self.chunk.len());
        Ok(Some(&self.chunk[start..]))
    }

    /// Makes sure bytes are at hand: `false` at the end of the stream.
    fn fill(&mut self) -> io::Result<bool> {
        while self.at == self.chunk.len() {
            if self.done {
                return Ok(false);
            }
            match self.rx.recv() {
                Ok(Ok(chunk)) => (self.chunk, self.at) = (chunk, 0),
                Ok(Err(e)) => {
                    self.done = true;
                    return Err(e);
                }
                // The writer is gone after `finish`.
                Err(_) => {
                    self.done = true;
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }
}

impl Read for PipeReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if !self.fill()? {
            return Ok(0);
        }
        let n = out.len().min(self.chunk.len() - self.at);
        out[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
    }

    #[test]
    fn a_stream_larger_than_the_pipe_arrives_whole_and_in_order() {
        let data = pattern(CHUNK * (DEPTH + 3) + 12_345);
        let (mut w, mut r) = pipe();
        let got = std::thread::scope(|s| {
            let data = &data;
            s.spawn(move || {
                for piece in data.chunks(10_007) {
                    w.write_all(piece).unwrap();
                }
                w.finish().unwrap();
            });
            let mut got = Vec::new();
            r.read_to_end(&mut got).unwrap();
            got
        });
        assert_eq!(got.len(), data.len());
        assert!(got == data);
    }

    #[test]
    fn chunks_taken_whole_and_reads_mixed_give_the_stream_in_order() {
        let data = pattern(CHUNK * 3 + 777);
        let (mut w, mut r) = pipe();
        let got = std::thread::scope(|s| {
            let data = &data;
            s.spawn(move || {
                w.write_all(data).unwrap();
                w.finish().unwrap();
            });
            let mut got = vec![0u8; 1000];
            r.read_exact(&mut got).unwrap();
            while let Some(chunk) = r.next_chunk().unwrap() {
                assert!(!chunk.is_empty());
                got.extend_from_slice(chunk);
            }
            got
        });
        assert!(got == data);
    }

    #[test]
    fn a_failed_writer_is_an_error_for_the_reader_not_an_end() {
        let (mut w, mut r) = pipe();
        w.write_all(b"some bytes").unwrap();
        w.send().unwrap();
        w.fail(io::Error::other("the download broke"));
        let mut got = Vec::new();
        let err = r.read_to_end(&mut got).unwrap_err();
        assert_eq!(err.to_string(), "the download broke");
        assert_eq!(got, b"some bytes");
    }

    #[test]
    fn a_writer_dropped_unfinished_is_an_error_for_the_reader() {
        let (mut w, mut r) = pipe();
        w.write_all(b"half a blob").unwrap();
        drop(w);
        let mut got = Vec::new();
        assert!(r.read_to_end(&mut got).is_err());
    }

    #[test]
    fn a_writer_whose_reader_stopped_gets_broken_pipe() {
        let (mut w, r) = pipe();
        drop(r);
        let err = w.write_all(&pattern(CHUNK * 2)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
    }

    #[test]
    fn read_ahead_gives_back_the_result_and_the_reader_even_when_consume_stops_early() {
        let data = pattern(CHUNK * 3 + 5);
        // The reader counts what it yielded: all of it, although `consume`
        // read only 100 bytes.
        struct Counting<'a>(&'a [u8], usize);
        impl Read for Counting<'_> {
            fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
                let n = (&self.0[self.1..]).read(out)?;
                self.1 += n;
                Ok(n)
            }
        }
        let (first, reader) = read_ahead(Counting(&data, 0), |r| {
            let mut first = [0u8; 100];
            r.read_exact(&mut first).map(|_| first)
        });
        assert_eq!(first.unwrap()[..], data[..100]);
        assert!(reader.1 >= 100 && reader.1 <= data.len());
        let (all, reader) = read_ahead(Counting(&data, 0), |r| {
            let mut all = Vec::new();
            r.read_to_end(&mut all).map(|_| all)
        });
        assert!(all.unwrap() == data);
        assert_eq!(reader.1, data.len());
    }

    #[test]
    fn read_ahead_passes_the_readers_error_on() {
        struct Broken;
        impl Read for Broken {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::other("corrupt deflate stream"))
            }
        }
        let (got, _) = read_ahead(Broken, |r| {
            let mut v = Vec::new();
            r.read_to_end(&mut v)
        });
        assert_eq!(got.unwrap_err().to_string(), "corrupt deflate stream");
    }
}
