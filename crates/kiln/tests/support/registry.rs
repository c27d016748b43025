//! Debian's `docker-registry` (the CNCF distribution registry), started on
//! 127.0.0.1 by a test with a config written here: plain, or with htpasswd
//! basic auth behind TLS with a CA made in the test. Its log (one line per
//! request) lets a test count what a client sent.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::spdx_validator::run;
use std::time::{Duration, Instant};

pub struct Registry {
    child: Child,
    pub dir: tempfile::TempDir,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    log: PathBuf,
    /// With TLS: the CA's certificate (PEM), and the user and password.
    pub ca: Option<PathBuf>,
    pub login: Option<(String, String)>,
}

impl Registry {
    pub fn plain() -> Registry {
        Registry::start(false)
    }

    pub fn tls_with_basic_auth() -> Registry {
        Registry::start(true)
    }

    fn start(secure: bool) -> Registry {
        let bin = Path::new("/usr/bin/docker-registry");
        assert!(
            bin.is_file(),
            "this test needs Debian's docker-registry package (scripts/install-deps)"
        );
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let mut extra = String::new();
        let (mut ca, mut login) = (None, None);
        if secure {
            let d = dir.path();
            run(Command::new("openssl").current_dir(d).args([
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=kiln test CA",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ]));
            run(Command::new("openssl").current_dir(d).args([
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                "/CN=127.0.0.1",
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
            ]));
            std::fs::write(
                d.join("ext.cnf"),
                "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
            )
            .unwrap();
            run(Command::new("openssl").current_dir(d).args([
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                "ext.cnf",
                "-out",
                "server.pem",
            ]));
            let out = Command::new("htpasswd")
                .args(["-Bbn", "kiln", "s3cret-pass"])
                .output()
                .expect("htpasswd (apache2-utils) is needed for bcrypt passwords");
            assert!(out.status.success());
            std::fs::write(d.join("htpasswd"), &out.stdout).unwrap();
            extra = format!(
                "auth:\n  htpasswd:\n    realm: kiln-test\n    path: {d}/htpasswd\n",
                d = d.display()
            );
            ca = Some(d.join("ca.pem"));
            login = Some(("kiln".to_string(), "s3cret-pass".to_string()));
        }
        let tls = if secure {
            format!(
                "  tls:\n    certificate: {d}/server.pem\n    key: {d}/server.key\n",
                d = dir.path().display()
            )
        } else {
            String::new()
        };
        let config = format!(
            "version: 0.1\nlog:\n  level: info\n  formatter: text\n\
             storage:\n  filesystem:\n    rootdirectory: {root}\n\
             {extra}http:\n  addr: {addr}\n{tls}",
            root = dir.path().join("data").display()
        );
        std::fs::write(dir.path().join("config.yml"), config).unwrap();
        let log = dir.path().join("registry.log");
        // One open file for both streams: two would overwrite each other.
        let file = std::fs::File::create(&log).unwrap();
        let child = kiln_deb::child::die_with_parent(&mut Command::new(bin))
            .arg("serve")
            .arg(dir.path().join("config.yml"))
            .stdout(Stdio::from(file.try_clone().unwrap()))
            .stderr(Stdio::from(file))
            .spawn()
            .unwrap();
        let started = Instant::now();
        while TcpStream::connect(&addr).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "docker-registry did not listen on {addr}:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Registry {
            child,
            dir,
            addr,
            log,
            ca,
            login,
        }
    }

    /// How many requests of `method` whose path contains `path` the
    /// registry answered.
    pub fn count(&self, method: &str, path: &str) -> usize {
        std::fs::read_to_string(&self.log)
            .unwrap()
            .lines()
            .filter(|l| {
                l.contains("msg=\"response completed\"")
                    && l.contains(&format!("http.request.method={method} "))
                    && l.split("http.request.uri=")
                        .nth(1)
                        .map(|u| {
                            // Quoted only when it holds `?`, `=` or `&`.
                            match u.strip_prefix('"') {
                                Some(q) => q.split('"').next().unwrap_or_default(),
                                None => u.split(' ').next().unwrap_or_default(),
                            }
                        })
                        .is_some_and(|u| u.contains(path))
            })
            .count()
    }

    /// Where the registry keeps the bytes of blob `digest` (`sha256:…`):
    /// tests corrupt it there.
    pub fn blob_data(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.dir
            .path()
            .join("data/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    /// A containers auth file holding this registry's login.
    pub fn auth_file(&self) -> PathBuf {
        use base64::Engine as _;
        let (user, pass) = self.login.as_ref().expect("a registry with a login");
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
        let path = self.dir.path().join("auth.json");
        std::fs::write(
            &path,
            format!(r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#, self.addr),
        )
        .unwrap();
        path
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}
