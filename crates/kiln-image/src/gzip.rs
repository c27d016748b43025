//! A streaming gzip writer over miniz_oxide, with a header that depends on
//! nothing but the data: no file name, mtime 0, OS "unknown".
//!
//! Why not flate2: flate2 picks its deflate backend by Cargo feature, and
//! features unify across a build. pgp enables `zlib-rs`, so through flate2
//! the `kiln` binary would compress with zlib-rs while `cargo test -p
//! kiln-image` compressed with miniz_oxide: same code, different layer
//! digests. Driving miniz_oxide directly leaves nothing to unification.

use std::io::{self, Write};

use miniz_oxide::deflate::core::{
    CompressorOxide, TDEFLFlush, TDEFLStatus, compress, create_comp_flags_from_zip_params,
};

/// Gzip's "unknown" operating system, so the header says nothing of the host.
const OS_UNKNOWN: u8 = 255;

pub(crate) struct GzipWriter<W: Write> {
    out: W,
    deflate: Box<CompressorOxide>,
    crc: crc32fast::Hasher,
    /// Uncompressed size modulo 2^32, as the trailer wants it.
    size: u32,
    buf: Vec<u8>,
    header_written: bool,
}

impl<W: Write> GzipWriter<W> {
    pub(crate) fn new(out: W, level: u8) -> GzipWriter<W> {
        // Negative window bits: a raw deflate stream, framed here as gzip.
        let flags = create_comp_flags_from_zip_params(i32::from(level), -15, 0);
        GzipWriter {
            out,
            deflate: Box::new(CompressorOxide::new(flags)),
            crc: crc32fast::Hasher::new(),
            size: 0,
            buf: vec![0; 256 * 1024],
            header_written: false,
        }
    }

    fn header(&mut self) -> io::Result<()> {
        if !self.header_written {
            // Magic, deflate, no flags, mtime 0, no extra flags, OS.
            self.out
                .write_all(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, OS_UNKNOWN])?;
            self.header_written = true;
        }
        Ok(())
    }

    /// Runs the compressor over `input` with `flush`, writing all output.
    fn pump(&mut self, mut input: &[u8], flush: TDEFLFlush) -> io::Result<TDEFLStatus> {
        loop {
            let (status, read, written) = compress(&mut self.deflate, input, &mut self.buf, flush);
            self.out.write_all(&self.buf[..written])?;
            input = &input[read..];
            match status {
                TDEFLStatus::Okay if !input.is_empty() || written == self.buf.len() => continue,
                TDEFLStatus::Okay if flush == TDEFLFlush::Finish => continue,
                TDEFLStatus::Okay | TDEFLStatus::Done => return Ok(status),
                TDEFLStatus::BadParam | TDEFLStatus::PutBufFailed => {
                    return Err(io::Error::other(format!("deflate failed: {status:?}")));
                }
            }
        }
    }

    /// Ends the stream (final block, CRC-32 and size) and gives `out` back.
    pub(crate) fn finish(mut self) -> io::Result<W> {
        self.header()?;
        self.pump(&[], TDEFLFlush::Finish)?;
        let crc = self.crc.clone().finalize();
        self.out.write_all(&crc.to_le_bytes())?;
        self.out.write_all(&self.size.to_le_bytes())?;
        self.out.flush()?;
        Ok(self.out)
    }
}

impl<W: Write> Write for GzipWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.header()?;
        self.pump(data, TDEFLFlush::None)?;
        self.crc.update(data);
        // The gzip trailer holds the size modulo 2^32.
        self.size = self.size.wrapping_add(data.len() as u32);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        // A deflate sync flush would change the bytes; buffered data goes
        // out at `finish`.
        self.out.flush()
    }
}
