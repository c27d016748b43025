//! One repository on one registry: the HTTP exchange, TLS trust and the
//! auth handshake (a 401 names the scheme; basic answers it directly,
//! bearer fetches a token from the realm the registry names).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use ureq::http::{Request, Response};

use crate::{Credentials, Reference, RegistryError};

/// The system's trusted roots, as Debian's ca-certificates writes them.
const SYSTEM_ROOTS: &str = "/etc/ssl/certs/ca-certificates.crt";

#[derive(Debug, Clone, Default)]
pub struct ClientOptions {
    /// PEM certificates trusted beside the system roots.
    pub ca_file: Option<PathBuf>,
    /// Allow plain HTTP to a registry that is not on a loopback address.
    pub insecure: bool,
    /// Credentials to use instead of the auth files'.
    pub credentials: Option<Credentials>,
}

pub struct Client {
    agent: ureq::Agent,
    /// `https://host:port` (or `http://` for a plain registry).
    base: String,
    repository: String,
    credentials: Option<Credentials>,
    /// The `Authorization` value that last worked.
    auth: Mutex<Option<String>>,
}

pub(crate) const MANIFEST_LIMIT: u64 = 4 << 20;

impl Client {
    /// Connects to the registry of `reference` and settles its scheme:
    /// HTTPS, or plain HTTP only for a loopback host or with `insecure`.
    pub fn connect(
        reference: &Reference,
        options: &ClientOptions,
    ) -> Result<Client, RegistryError> {
        let ClientOptions {
            ca_file,
            insecure,
            credentials,
        } = options;
        let credentials = match credentials {
            Some(c) => Some(c.clone()),
            None => Credentials::lookup(&reference.registry)?,
        };
        let config = ureq::Agent::config_builder()
            .user_agent(concat!("kiln/", env!("CARGO_PKG_VERSION")))
            .http_status_as_error(false)
            .accept_encoding("")
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_per_read(Some(Duration::from_secs(120)))
            .tls_config(tls_config(ca_file.as_deref())?)
            .build();
        let mut client = Client {
            agent: ureq::Agent::new_with_config(config),
            base: format!("https://{}", reference.registry),
            repository: reference.repository.clone(),
            credentials,
            auth: Mutex::new(None),
        };
        let tls_failure = match client.ping() {
            Ok(()) => return Ok(client),
            Err(e @ RegistryError::Transport { .. }) => e,
            Err(e) => return Err(e),
        };
        if !(*insecure || is_loopback(reference.host())) {
            return Err(tls_failure);
        }
        client.base = format!("http://{}", reference.registry);
        match client.ping() {
            Ok(()) => Ok(client),
            // The HTTPS failure says more (a certificate problem, say).
            Err(RegistryError::Transport { .. }) => Err(tls_failure),
            Err(e) => Err(e),
        }
    }

    /// `GET /v2/`: any HTTP answer (200, or 401 asking for auth) means a
    /// registry speaks this scheme.
    fn ping(&self) -> Result<(), RegistryError> {
        let url = format!("{}/v2/", self.base);
        let req = Request::get(&url).body(()).map_err(|e| bad_url(&url, e))?;
        let resp = self.agent.run(req).map_err(|e| transport(&url, e))?;
        // A TLS server answers plain HTTP with a 400: not a registry there.
        match resp.status().as_u16() {
            200 | 401 => Ok(()),
            status => Err(RegistryError::Transport {
                url,
                why: format!("answered {status}, not as a registry's /v2/ does"),
            }),
        }
    }

    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// `https://host/v2/REPO/` + `rest`.
    pub(crate) fn url(&self, rest: &str) -> String {
        format!("{}/v2/{}/{rest}", self.base, self.repository)
    }

    /// A `Location` header made absolute.
    pub(crate) fn absolute(&self, location: &str) -> String {
        if location.starts_with("http://") || location.starts_with("https://") {
            location.to_string()
        } else {
            format!("{}{location}", self.base)
        }
    }

    /// Sends one request, answering a 401 once with fresh credentials.
    pub(crate) fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Response<ureq::Body>, RegistryError> {
        let auth = self.auth.lock().map(|a| a.clone()).unwrap_or(None);
        let resp = self.send_once(method, url, headers, body, auth.as_deref())?;
        if resp.status() != 401 {
            return Ok(resp);
        }
        let challenge = header(&resp, "www-authenticate").unwrap_or_default();
        let fresh = self.authenticate(url, &challenge)?;
        let resp = self.send_once(method, url, headers, body, Some(&fresh))?;
        if matches!(resp.status().as_u16(), 401 | 403) {
            return Err(RegistryError::Unauthorized {
                url: url.to_string(),
                status: resp.status().as_u16(),
            });
        }
        if let Ok(mut slot) = self.auth.lock() {
            *slot = Some(fresh);
        }
        Ok(resp)
    }

    fn send_once(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        auth: Option<&str>,
    ) -> Result<Response<ureq::Body>, RegistryError> {
        let mut req = Request::builder().method(method).uri(url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(auth) = auth {
            req = req.header("authorization", auth);
        }
        let req = req.body(body).map_err(|e| bad_url(url, e))?;
        self.agent.run(req).map_err(|e| transport(url, e))
    }

    /// The `Authorization` value that answers `challenge`.
    fn authenticate(&self, url: &str, challenge: &str) -> Result<String, RegistryError> {
        let unauthorized = || RegistryError::Unauthorized {
            url: url.to_string(),
            status: 401,
        };
        let (scheme, params) = challenge.split_once(' ').unwrap_or((challenge, ""));
        if scheme.eq_ignore_ascii_case("basic") {
            return self
                .credentials
                .as_ref()
                .map(Credentials::basic)
                .ok_or_else(unauthorized);
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(unauthorized());
        }
        let params = challenge_params(params);
        let realm = params
            .iter()
            .find(|(k, _)| k == "realm")
            .map(|(_, v)| v.clone())
            .ok_or_else(|| RegistryError::BadResponse {
                url: url.to_string(),
                why: format!("a bearer challenge without a realm: {challenge}"),
            })?;
        let mut token_url = realm;
        let mut sep = if token_url.contains('?') { '&' } else { '?' };
        for (k, v) in params
            .iter()
            .filter(|(k, _)| k == "service" || k == "scope")
        {
            token_url.push_str(&format!("{sep}{k}={}", percent_encode(v)));
            sep = '&';
        }
        let basic = self.credentials.as_ref().map(Credentials::basic);
        let resp = self.send_once("GET", &token_url, &[], b"", basic.as_deref())?;
        if !resp.status().is_success() {
            return Err(RegistryError::Unauthorized {
                url: token_url,
                status: resp.status().as_u16(),
            });
        }
        #[derive(serde::Deserialize)]
        struct Token {
            token: Option<String>,
            access_token: Option<String>,
        }
        let bytes = read_limited(resp, &token_url, 1 << 20)?;
        let token: Token =
            serde_json::from_slice(&bytes).map_err(|e| RegistryError::BadResponse {
                url: token_url.clone(),
                why: format!("not a token: {e}"),
            })?;
        token
            .token
            .or(token.access_token)
            .map(|t| format!("Bearer {t}"))
            .ok_or_else(|| RegistryError::BadResponse {
                url: token_url,
                why: "the token response holds no token".to_string(),
            })
    }
}

/// Trust: the system roots plus `ca_file`'s certificates.
fn tls_config(ca_file: Option<&Path>) -> Result<ureq::tls::TlsConfig, RegistryError> {
    let mut certs = Vec::new();
    let mut files = vec![PathBuf::from(SYSTEM_ROOTS)];
    files.extend(ca_file.map(Path::to_path_buf));
    for path in &files {
        let pem = match fs_err::read(path) {
            Ok(p) => p,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && ca_file != Some(path) => {
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let before = certs.len();
        for item in ureq::tls::parse_pem(&pem) {
            if let Ok(ureq::tls::PemItem::Certificate(c)) = item {
                certs.push(c);
            }
        }
        if certs.len() == before && ca_file == Some(path) {
            return Err(RegistryError::NoCertificate { path: path.clone() });
        }
    }
    let builder = ureq::tls::TlsConfig::builder();
    Ok(if certs.is_empty() {
        builder.build()
    } else {
        builder
            .root_certs(ureq::tls::RootCerts::new_with_certs(&certs))
            .build()
    })
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// `key="value", key=value` pairs of a `WWW-Authenticate` header.
fn challenge_params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = s.trim();
    while let Some((key, after)) = rest.split_once('=') {
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let (value, next) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted.find('"').unwrap_or(quoted.len());
            (&quoted[..end], quoted.get(end + 1..).unwrap_or(""))
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        out.push((key, value.to_string()));
        rest = next.trim_start_matches([',', ' ']);
    }
    out
}

pub(crate) fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

pub(crate) fn header(resp: &Response<ureq::Body>, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// Reads a response body of at most `limit` bytes.
pub(crate) fn read_limited(
    resp: Response<ureq::Body>,
    url: &str,
    limit: u64,
) -> Result<Vec<u8>, RegistryError> {
    let mut buf = Vec::new();
    resp.into_body()
        .into_reader()
        .take(limit + 1)
        .read_to_end(&mut buf)
        .map_err(|e| RegistryError::Transport {
            url: url.to_string(),
            why: e.to_string(),
        })?;
    if buf.len() as u64 > limit {
        return Err(RegistryError::TooLarge {
            url: url.to_string(),
            limit,
        });
    }
    Ok(buf)
}

/// Turns an unexpected status into an error carrying the registry's words.
pub(crate) fn unexpected(resp: Response<ureq::Body>, url: &str) -> RegistryError {
    let status = resp.status().as_u16();
    if status == 404 {
        return RegistryError::NotFound {
            url: url.to_string(),
        };
    }
    if matches!(status, 401 | 403) {
        return RegistryError::Unauthorized {
            url: url.to_string(),
            status,
        };
    }
    let body = read_limited(resp, url, 4096)
        .ok()
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .filter(|b| !b.is_empty());
    RegistryError::Status {
        url: url.to_string(),
        status,
        body,
    }
}

fn transport(url: &str, e: ureq::Error) -> RegistryError {
    RegistryError::Transport {
        url: url.to_string(),
        why: e.to_string(),
    }
}

fn bad_url(url: &str, e: impl std::fmt::Display) -> RegistryError {
    RegistryError::Transport {
        url: url.to_string(),
        why: format!("cannot build the request: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_challenges_parse() {
        let got = challenge_params(
            r#"realm="https://auth.test/token",service="registry.test",scope="repository:a/b:pull,push""#,
        );
        assert_eq!(
            got,
            vec![
                ("realm".into(), "https://auth.test/token".into()),
                ("service".into(), "registry.test".into()),
                ("scope".into(), "repository:a/b:pull,push".into()),
            ]
        );
        assert_eq!(
            percent_encode("repository:a/b:pull,push"),
            "repository%3Aa%2Fb%3Apull%2Cpush"
        );
        assert!(is_loopback("127.0.0.1") && is_loopback("::1") && is_loopback("localhost"));
        assert!(!is_loopback("10.0.0.1"));
    }
}
