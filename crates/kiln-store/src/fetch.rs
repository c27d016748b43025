//! Downloading into the store: `http://`, `https://` and `file://` URLs,
//! streamed into a staged file while hashing, retried with exponential
//! backoff on network errors and server errors (never on 404 or a digest
//! mismatch), with a bounded number of attempts.

use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::time::Duration;

use crate::{Entry, Expected, FetchError, Staged, Store, StoreError};

/// How hard to try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// Total attempts, the first included; at least one is always made.
    pub attempts: u32,
    /// Wait before the second attempt; doubles each time after that.
    pub first_delay: Duration,
    pub max_delay: Duration,
}

impl Default for Retry {
    fn default() -> Retry {
        Retry {
            attempts: 4,
            first_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(16),
        }
    }
}

impl Retry {
    fn delay(&self, failed_attempts: u32) -> Duration {
        let factor = 2u32.saturating_pow(failed_attempts.saturating_sub(1));
        self.first_delay.saturating_mul(factor).min(self.max_delay)
    }
}

#[derive(Debug, Clone)]
pub struct Fetcher {
    agent: ureq::Agent,
    retry: Retry,
}

impl Default for Fetcher {
    fn default() -> Fetcher {
        Fetcher::new(Retry::default())
    }
}

/// Why one attempt failed, and whether another may help.
enum Failure {
    Transient(String),
    Final(FetchError),
}

impl Fetcher {
    pub fn new(retry: Retry) -> Fetcher {
        let config = ureq::Agent::config_builder()
            .user_agent(concat!("kiln/", env!("CARGO_PKG_VERSION")))
            // Archive files are compressed already; a transfer encoding on top
            // would only risk a server re-encoding a `.gz` we must hash as is.
            .accept_encoding("")
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_per_read(Some(Duration::from_secs(60)))
            // Keep a connection per download thread: every new one costs a DNS
            // lookup, and a lost resolver reply costs glibc five seconds.
            .max_idle_connections(16)
            .max_idle_connections_per_host(8)
            .build();
        Fetcher {
            agent: ureq::Agent::with_parts(
                config,
                ureq::unversioned::transport::DefaultConnector::default(),
                crate::dns::CachingResolver::default(),
            ),
            retry,
        }
    }

    /// Downloads `url` into a staged file made by `stage`, checked against
    /// `expected`. The caller commits it (or drops it, which deletes it).
    pub fn fetch(
        &self,
        url: &str,
        expected: &Expected,
        stage: &dyn Fn() -> Result<Staged, StoreError>,
    ) -> Result<Staged, FetchError> {
        self.with_retries(url, || self.attempt(url, expected, stage))
    }

    /// Downloads `url` as a blob of `store`, unless the store already holds
    /// the expected digest. A held blob is not read here (its user hashes
    /// it as it reads it, see [`crate::VerifyingReader`]), but one whose
    /// size is not the expected one is evicted and downloaded again.
    pub fn fetch_blob(
        &self,
        store: &Store,
        url: &str,
        expected: &Expected,
    ) -> Result<Entry, FetchError> {
        if let Some(sha256) = expected.sha256
            && let Some(path) = store.blob(&sha256)
        {
            let size = fs_err::metadata(&path).map_err(StoreError::from)?.len();
            if expected.size.is_none_or(|want| want == size) {
                return Ok(Entry { path, sha256, size });
            }
            store.evict(&sha256)?;
        }
        let staged = self.fetch(url, expected, &|| store.stage_blob())?;
        Ok(store.commit_blob(staged, expected, url)?)
    }

    /// Downloads a small document (at most `limit` bytes) into memory.
    pub fn fetch_bytes(&self, url: &str, limit: u64) -> Result<Vec<u8>, FetchError> {
        self.with_retries(url, || {
            let mut reader = self.open(url)?;
            let mut buf = Vec::new();
            (&mut reader)
                .take(limit + 1)
                .read_to_end(&mut buf)
                .map_err(|e| transient(url, e))?;
            if buf.len() as u64 > limit {
                return Err(Failure::Final(FetchError::TooLarge {
                    url: url.to_string(),
                    limit,
                }));
            }
            Ok(buf)
        })
    }

    /// Runs `attempt` until it succeeds, fails for good, or the attempts
    /// run out, waiting with backoff between tries.
    fn with_retries<T>(
        &self,
        url: &str,
        mut attempt: impl FnMut() -> Result<T, Failure>,
    ) -> Result<T, FetchError> {
        let attempts = self.retry.attempts.max(1);
        let mut last = String::new();
        for n in 1..=attempts {
            if n > 1 {
                std::thread::sleep(self.retry.delay(n - 1));
            }
            match attempt() {
                Ok(v) => return Ok(v),
                Err(Failure::Final(e)) => return Err(e),
                Err(Failure::Transient(message)) => last = message,
            }
        }
        Err(FetchError::Network {
            url: url.to_string(),
            attempts,
            message: last,
        })
    }

    fn attempt(
        &self,
        url: &str,
        expected: &Expected,
        stage: &dyn Fn() -> Result<Staged, StoreError>,
    ) -> Result<Staged, Failure> {
        let mut reader = self.open(url)?;
        let mut staged = stage().map_err(|e| Failure::Final(e.into()))?;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(transient(url, e)),
            };
            staged
                .write_all(&buf[..n])
                .map_err(|e| Failure::Final(StoreError::Io(e).into()))?;
            // Stop a server that sends more than it should before it fills the disk.
            if let Some(limit) = expected.size
                && staged.size() > limit
            {
                return Err(Failure::Final(FetchError::TooLarge {
                    url: url.to_string(),
                    limit,
                }));
            }
        }
        staged
            .verify(expected, url)
            .map_err(|e| Failure::Final(e.into()))?;
        Ok(staged)
    }

    fn open(&self, url: &str) -> Result<Box<dyn Read + Send>, Failure> {
        if let Some(path) = file_path(url) {
            return match fs_err::File::open(&path) {
                Ok(f) => Ok(Box::new(f)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    Err(Failure::Final(FetchError::NotFound {
                        url: url.to_string(),
                    }))
                }
                Err(e) => Err(Failure::Final(StoreError::Io(e).into())),
            };
        }
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(Failure::Final(FetchError::BadUrl {
                url: url.to_string(),
            }));
        }
        match self.agent.get(url).call() {
            Ok(response) => Ok(Box::new(response.into_body().into_reader())),
            Err(ureq::Error::StatusCode(status)) => Err(classify_status(url, status)),
            Err(ureq::Error::BadUri(_) | ureq::Error::Http(_)) => {
                Err(Failure::Final(FetchError::BadUrl {
                    url: url.to_string(),
                }))
            }
            Err(e) => Err(Failure::Transient(e.to_string())),
        }
    }
}

fn classify_status(url: &str, status: u16) -> Failure {
    match status {
        404 | 410 => Failure::Final(FetchError::NotFound {
            url: url.to_string(),
        }),
        408 | 429 | 500..=599 => Failure::Transient(format!("the server answered HTTP {status}")),
        _ => Failure::Final(FetchError::Status {
            url: url.to_string(),
            status,
        }),
    }
}

fn transient(url: &str, e: io::Error) -> Failure {
    Failure::Transient(format!("reading {url}: {e}"))
}

/// The local path of a `file:` URL (`file:///srv/x` or `file:/srv/x`).
fn file_path(url: &str) -> Option<PathBuf> {
    let rest = url.strip_prefix("file:")?;
    let path = match rest.strip_prefix("//") {
        Some(abs) if abs.starts_with('/') => abs,
        Some(_) => return None,
        None => rest,
    };
    path.starts_with('/').then(|| PathBuf::from(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_urls_map_to_absolute_paths_only() {
        assert_eq!(file_path("file:///srv/x"), Some(PathBuf::from("/srv/x")));
        assert_eq!(file_path("file:/srv/x"), Some(PathBuf::from("/srv/x")));
        assert_eq!(file_path("file://host/srv/x"), None);
        assert_eq!(file_path("file:relative"), None);
        assert_eq!(file_path("http://x/y"), None);
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let r = Retry {
            attempts: 10,
            first_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(500),
        };
        let delays: Vec<u128> = (1..=5).map(|n| r.delay(n).as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 500, 500]);
    }
}
