//! Blobs: HEAD before upload, cross-repository mounts, uploads in bounded
//! chunks (memory stays flat for a disk of any size, and a chunk that fails
//! is resumed from the offset the registry reports), and downloads hashed
//! as they stream and refused unless they match.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use kiln_store::Digest;

use crate::client::{header, unexpected};
use crate::{Client, RegistryError};

/// Blobs up to this size go in one request; larger ones in chunks of it.
const CHUNK: u64 = 16 << 20;
/// Attempts at one chunk before the upload gives up.
const CHUNK_ATTEMPTS: u32 = 4;

/// Where the bytes of a blob to push are.
#[derive(Debug, Clone, Copy)]
pub enum BlobSource<'a> {
    File(&'a Path),
    Bytes(&'a [u8]),
}

/// What pushing one blob took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upload {
    /// The registry had it already (HEAD).
    Present,
    /// Mounted from another repository of the same registry.
    Mounted,
    /// Uploaded, in this many requests carrying bytes.
    Uploaded { requests: u32 },
}

/// Set (from a signal handler: it only stores) when the process is asked
/// to stop: a chunked upload then ends after the chunk in flight, its
/// session saved, so the next push resumes it. A process killed outright
/// mid-chunk may not resume: distribution cancels an upload whose size no
/// longer matches the offset in the session's `_state`.
static INTERRUPTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Asks uploads to stop at the next blob or chunk boundary; `true` when
/// they had been asked already.
pub fn interrupt() -> bool {
    INTERRUPTED.swap(true, std::sync::atomic::Ordering::SeqCst)
}

fn interrupted(digest: &Digest) -> Result<(), RegistryError> {
    if INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst) {
        return Err(RegistryError::Interrupted { digest: *digest });
    }
    Ok(())
}

/// Where a push keeps its upload sessions, so a push killed mid-upload
/// resumes in the next process from the offset the registry reports
/// (kiln keeps them in its store). A session is the upload's latest
/// `Location`, saved after every chunk the registry accepted.
pub trait UploadSessions {
    fn load(&self, digest: &Digest) -> Option<String>;
    fn save(&self, digest: &Digest, location: &str);
    fn forget(&self, digest: &Digest);
}

/// Keeps no session: an interrupted upload starts again.
pub struct NoSessions;

impl UploadSessions for NoSessions {
    fn load(&self, _: &Digest) -> Option<String> {
        None
    }
    fn save(&self, _: &Digest, _: &str) {}
    fn forget(&self, _: &Digest) {}
}

impl Client {
    /// Whether the repository holds the blob.
    pub fn has_blob(&self, digest: &Digest) -> Result<bool, RegistryError> {
        let url = self.url(&format!("blobs/{digest}"));
        let resp = self.send("HEAD", &url, &[], b"")?;
        match resp.status().as_u16() {
            200 => Ok(true),
            404 => Ok(false),
            _ => Err(unexpected(resp, &url)),
        }
    }

    /// Pushes a blob unless the repository has it, mounting it from
    /// `mount_from` (another repository of this registry) when that works.
    pub fn push_blob(
        &self,
        digest: &Digest,
        size: u64,
        source: BlobSource<'_>,
        mount_from: Option<&str>,
    ) -> Result<Upload, RegistryError> {
        self.push_blob_resuming(digest, size, source, mount_from, &NoSessions)
    }

    /// [`Client::push_blob`], resuming a chunked upload an earlier process
    /// left in `sessions` when the registry still holds it.
    pub fn push_blob_resuming(
        &self,
        digest: &Digest,
        size: u64,
        source: BlobSource<'_>,
        mount_from: Option<&str>,
        sessions: &dyn UploadSessions,
    ) -> Result<Upload, RegistryError> {
        interrupted(digest)?;
        if self.has_blob(digest)? {
            sessions.forget(digest);
            return Ok(Upload::Present);
        }
        if let BlobSource::File(path) = source
            && size > CHUNK
            && let Some(mut location) = sessions.load(digest)
        {
            // A session the registry no longer knows (expired, purged) is
            // simply started again.
            if let Ok(offset) = self.upload_offset(&mut location)
                && offset <= size
            {
                let mut file = fs_err::File::open(path)?;
                let done = self.upload_chunks(location, digest, size, &mut file, offset, sessions);
                if done.is_ok() {
                    sessions.forget(digest);
                }
                return done;
            }
            sessions.forget(digest);
        }
        let start = match mount_from.filter(|from| *from != self.repository()) {
            Some(from) => {
                let url = self.url(&format!(
                    "blobs/uploads/?mount={digest}&from={}",
                    crate::client::percent_encode(from)
                ));
                // A mount the registry cannot do (no such blob there, no
                // access) is an ordinary upload session instead.
                match self.send("POST", &url, &[("content-length", "0")], b"") {
                    Ok(r) if r.status() == 201 => return Ok(Upload::Mounted),
                    Ok(r) if r.status() == 202 => Some(self.location(&r, &url)?),
                    _ => None,
                }
            }
            None => None,
        };
        let location = match start {
            Some(l) => l,
            None => self.start_upload()?,
        };
        match source {
            BlobSource::Bytes(bytes) => {
                self.finish_upload(&location, digest, bytes)?;
                Ok(Upload::Uploaded { requests: 1 })
            }
            BlobSource::File(path) => {
                let mut file = fs_err::File::open(path)?;
                if size <= CHUNK {
                    let mut bytes = Vec::with_capacity(size as usize);
                    file.read_to_end(&mut bytes)?;
                    self.finish_upload(&location, digest, &bytes)?;
                    return Ok(Upload::Uploaded { requests: 1 });
                }
                let done = self.upload_chunks(location, digest, size, &mut file, 0, sessions);
                if done.is_ok() {
                    sessions.forget(digest);
                }
                done
            }
        }
    }

    fn start_upload(&self) -> Result<String, RegistryError> {
        let url = self.url("blobs/uploads/");
        let resp = self.send("POST", &url, &[("content-length", "0")], b"")?;
        if resp.status() != 202 {
            return Err(unexpected(resp, &url));
        }
        self.location(&resp, &url)
    }

    fn location(
        &self,
        resp: &ureq::http::Response<ureq::Body>,
        url: &str,
    ) -> Result<String, RegistryError> {
        header(resp, "location")
            .map(|l| self.absolute(&l))
            .ok_or_else(|| RegistryError::BadResponse {
                url: url.to_string(),
                why: "an upload answer without a Location".to_string(),
            })
    }

    /// `PUT LOCATION?digest=…` with the last bytes (or none).
    fn finish_upload(
        &self,
        location: &str,
        digest: &Digest,
        bytes: &[u8],
    ) -> Result<(), RegistryError> {
        let sep = if location.contains('?') { '&' } else { '?' };
        let url = format!("{location}{sep}digest={digest}");
        let len = bytes.len().to_string();
        let resp = self.send(
            "PUT",
            &url,
            &[
                ("content-type", "application/octet-stream"),
                ("content-length", &len),
            ],
            bytes,
        )?;
        if resp.status() != 201 {
            return Err(unexpected(resp, &url));
        }
        Ok(())
    }

    /// PATCHes `file` from `offset` in chunks of [`CHUNK`], saving the
    /// session after each; after a failed chunk, asks the session how far
    /// it got and goes on from there.
    fn upload_chunks(
        &self,
        mut location: String,
        digest: &Digest,
        size: u64,
        file: &mut fs_err::File,
        mut offset: u64,
        sessions: &dyn UploadSessions,
    ) -> Result<Upload, RegistryError> {
        sessions.save(digest, &location);
        let mut requests = 0u32;
        let mut failures = 0u32;
        let mut buf = Vec::with_capacity(CHUNK as usize);
        while offset < size {
            interrupted(digest)?;
            buf.clear();
            file.seek(SeekFrom::Start(offset))?;
            Read::by_ref(file).take(CHUNK).read_to_end(&mut buf)?;
            let end = offset + buf.len() as u64 - 1;
            let range = format!("{offset}-{end}");
            let len = buf.len().to_string();
            requests += 1;
            let sent = self.send(
                "PATCH",
                &location,
                &[
                    ("content-type", "application/octet-stream"),
                    ("content-range", &range),
                    ("content-length", &len),
                ],
                &buf,
            );
            match sent {
                Ok(resp) if resp.status() == 202 => {
                    location = self.location(&resp, &location)?;
                    offset = end + 1;
                    sessions.save(digest, &location);
                }
                Ok(resp) if resp.status().is_client_error() => {
                    return Err(unexpected(resp, &location));
                }
                failed => {
                    failures += 1;
                    if failures >= CHUNK_ATTEMPTS {
                        return Err(match failed {
                            Ok(resp) => unexpected(resp, &location),
                            Err(e) => e,
                        });
                    }
                    std::thread::sleep(std::time::Duration::from_millis(500 << failures));
                    offset = self.upload_offset(&mut location)?;
                }
            }
        }
        self.finish_upload(&location, digest, b"")?;
        Ok(Upload::Uploaded { requests })
    }

    /// How many bytes an upload session holds (`Range: 0-N`).
    fn upload_offset(&self, location: &mut String) -> Result<u64, RegistryError> {
        let resp = self.send("GET", location, &[], b"")?;
        if resp.status() != 204 {
            return Err(unexpected(resp, location));
        }
        if let Some(l) = header(&resp, "location") {
            *location = self.absolute(&l);
        }
        Ok(header(&resp, "range")
            .and_then(|r| {
                r.split_once('-')
                    .and_then(|(_, end)| end.parse::<u64>().ok())
            })
            .map_or(0, |end| end + 1))
    }

    /// Streams blob `digest` into `out`, hashing it; an error when it is
    /// not `size` bytes (when given) or not `digest`. The caller must
    /// discard what it wrote on error.
    pub fn pull_blob(
        &self,
        digest: &Digest,
        size: Option<u64>,
        out: &mut dyn Write,
    ) -> Result<u64, RegistryError> {
        let url = self.url(&format!("blobs/{digest}"));
        let resp = self.send("GET", &url, &[], b"")?;
        if resp.status() != 200 {
            return Err(unexpected(resp, &url));
        }
        let mut reader = resp.into_body().into_reader();
        let limit = size.map_or(u64::MAX, |s| s + 1);
        let mut reader = kiln_store::HashingReader::new((&mut reader).take(limit));
        let mut buf = vec![0u8; 1 << 20];
        let mut total = 0u64;
        loop {
            let n = reader
                .read(&mut buf)
                .map_err(|e| RegistryError::Transport {
                    url: url.clone(),
                    why: e.to_string(),
                })?;
            if n == 0 {
                break;
            }
            out.write_all(&buf[..n])?;
            total += n as u64;
        }
        if let Some(expected) = size
            && total != expected
        {
            return Err(RegistryError::SizeMismatch {
                url,
                what: "a blob",
                expected,
                got: total,
            });
        }
        let got = reader.digest();
        if got != *digest {
            return Err(RegistryError::DigestMismatch {
                url,
                what: "a blob",
                expected: *digest,
                got,
            });
        }
        Ok(total)
    }

    /// Pulls a blob to `path`: written to a temporary file beside it and
    /// renamed into place only once its digest matched.
    pub fn pull_blob_to(
        &self,
        digest: &Digest,
        size: Option<u64>,
        path: &Path,
    ) -> Result<u64, RegistryError> {
        let dir = path.parent().unwrap_or(Path::new("."));
        let mut temp = tempfile::Builder::new()
            .prefix(".tmp-blob-")
            .tempfile_in(dir)
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", dir.display())))?;
        let n = {
            let mut w = std::io::BufWriter::new(temp.as_file_mut());
            let n = self.pull_blob(digest, size, &mut w)?;
            w.flush()?;
            n
        };
        temp.as_file().sync_all()?;
        // As `kiln build` leaves its outputs, not the temporary file's 0600.
        temp.as_file()
            .set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))?;
        temp.persist(path).map_err(|e| {
            std::io::Error::new(e.error.kind(), format!("{}: {}", path.display(), e.error))
        })?;
        Ok(n)
    }
}
