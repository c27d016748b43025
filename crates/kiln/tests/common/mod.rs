//! Running the real binary, against a store under the target directory (so
//! CI downloads each index once) and, for fast tests, against signed
//! `file://` archives built here.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use kiln_archive::fixture::{SuiteFixture, TestKey};

/// The store shared by every test run: indices and packages stay cached.
pub fn store() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("kiln-test-store")
}

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// examples/base and examples/web copied, without their outputs, so a test
/// may edit them (and outside git, so a recorded commit is the same
/// wherever the test runs).
pub fn examples() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temporary directory");
    for ex in ["base", "web"] {
        copy_dir(&repo().join("examples").join(ex), &dir.path().join(ex));
        let _ = std::fs::remove_dir_all(dir.path().join(ex).join("out"));
    }
    dir
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Asserts that kiln exited with `code` and said each of `says` on
    /// stderr.
    #[track_caller]
    pub fn assert_exit(&self, code: i32, says: &[&str]) {
        assert_eq!(self.code, code, "{}", self.stderr);
        for s in says {
            assert!(self.stderr.contains(s), "no {s:?} in:\n{}", self.stderr);
        }
    }
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

/// Runs kiln with `args`, the shared store, and `env` on top.
pub fn kiln(args: &[&str], env: &[(&str, &str)]) -> Run {
    kiln_with_store(args, env, &store())
}

pub fn kiln_with_store(args: &[&str], env: &[(&str, &str)], store: &Path) -> Run {
    kiln_command(args, env, store)
        .output()
        .expect("running kiln")
        .into()
}

/// kiln with `args`, the store `store` and `env` on top, and nothing else of
/// the caller's kiln settings, for a test to run or to spawn and stop.
pub fn kiln_command(args: &[&str], env: &[(&str, &str)], store: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kiln"));
    // A test killed by its timeout takes its kiln (and kiln its QEMU) along.
    kiln_deb::child::die_with_parent(&mut cmd);
    cmd.args(args)
        .env("KILN_CACHE", store)
        .env_remove("KILN_MIRROR")
        .env_remove("KILN_SECURITY_MIRROR")
        .env_remove("KILN_CATALOG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

pub fn write(path: &Path, text: &str) {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).expect("creating a directory");
    }
    std::fs::write(path, text).expect("writing a file");
}

/// A Packages stanza; the body is never downloaded by `kiln lock`.
pub fn stanza(name: &str, version: &str, extra: &str) -> String {
    format!(
        "Package: {name}\nVersion: {version}\nArchitecture: amd64\n{extra}Filename: pool/main/{name}_{version}_amd64.deb\nSize: 1000\nSHA256: {}\n\n",
        "ab".repeat(32)
    )
}

/// A signed archive on disk: bookworm and bookworm-updates under
/// `debian/`, bookworm-security under `debian-security/`.
pub struct Archive {
    pub dir: tempfile::TempDir,
    pub key: TestKey,
    pub keyring: PathBuf,
}

impl Archive {
    pub fn new(bookworm: &str, updates: &str, security: &str) -> Archive {
        let dir = tempfile::tempdir().expect("temp dir");
        let key = TestKey::generate("kiln test archive <test@invalid>");
        let keyring = dir.path().join("keyring.gpg");
        std::fs::write(&keyring, key.keyring()).expect("writing the keyring");
        let a = Archive { dir, key, keyring };
        a.publish(bookworm, updates, security);
        a
    }

    /// Writes (or rewrites) the three suites.
    pub fn publish(&self, bookworm: &str, updates: &str, security: &str) {
        for (root, suite, text) in [
            ("debian", "bookworm", bookworm),
            ("debian", "bookworm-updates", updates),
            ("debian-security", "bookworm-security", security),
        ] {
            SuiteFixture::new(suite, text).write(&self.dir.path().join(root), &self.key);
        }
    }

    pub fn mirror(&self) -> String {
        format!("file://{}/debian", self.dir.path().display())
    }

    /// Environment that points kiln at this archive.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("KILN_MIRROR", self.mirror()),
            (
                "KILN_SECURITY_MIRROR",
                format!("file://{}/debian-security", self.dir.path().display()),
            ),
        ]
    }

    /// A definition that uses this archive's keyring.
    pub fn definition(&self, variant: &str, install: &[&str]) -> String {
        let list: Vec<String> = install.iter().map(|p| format!("\"{p}\"")).collect();
        format!(
            "[image]\nname = \"t\"\nversion = \"1\"\n\n[base]\ndistro = \"debian\"\nsuite = \"bookworm\"\nvariant = \"{variant}\"\nkeyring = \"{}\"\n\n[packages]\ninstall = [{}]\n",
            self.keyring.display(),
            list.join(", ")
        )
    }
}

/// Runs kiln against `archive` with a private store.
pub fn kiln_at(archive: &Archive, args: &[&str], store: &Path) -> Run {
    let env = archive.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    kiln_with_store(args, &env, store)
}

/// Copies a directory tree of regular files (an example definition).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("creating a directory");
    for e in std::fs::read_dir(from).expect("reading a directory") {
        let e = e.expect("reading a directory entry");
        let dst = to.join(e.file_name());
        if e.file_type().expect("a file type").is_dir() {
            copy_dir(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), dst).expect("copying a file");
        }
    }
}

/// A fresh store holding only the examples' `.deb` files: "cold" for every
/// build stage, without downloading the same packages once per test.
pub fn seeded_store() -> tempfile::TempDir {
    let r = kiln(
        &["fetch", repo().join("examples/web").to_str().unwrap()],
        &[],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let store = tempfile::tempdir().unwrap();
    let from = self::store().join("blobs/sha256");
    let to = store.path().join("blobs/sha256");
    std::fs::create_dir_all(&to).unwrap();
    // Only what the locks pin: the shared store also holds layers other
    // tests built, which a cold store must not have.
    for ex in ["base", "web"] {
        let lock =
            std::fs::read_to_string(repo().join("examples").join(ex).join("kiln.lock")).unwrap();
        let lock: toml::Table = toml::from_str(&lock).unwrap();
        let packages = lock["package"].as_array().unwrap();
        for p in packages {
            let name = p["sha256"].as_str().unwrap();
            let dst = to.join(name);
            if std::fs::hard_link(from.join(name), &dst).is_err() {
                std::fs::copy(from.join(name), &dst).unwrap();
            }
        }
    }
    store
}

/// `kiln build DIR --json` and `args` in `store`, with `env` on top: the
/// report, once the build succeeded.
pub fn build_report(
    dir: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    store: &Path,
) -> serde_json::Value {
    let mut all = vec!["build", dir.to_str().unwrap(), "--json"];
    all.extend_from_slice(args);
    let r = kiln_with_store(&all, env, store);
    assert_eq!(r.code, 0, "kiln build {}: {}", dir.display(), r.stderr);
    serde_json::from_str(&r.stdout).expect("--json report")
}

/// Unpacks the tar file `tar` into `into` (made if missing), keeping
/// permissions, with GNU tar.
pub fn untar(tar: &Path, into: &Path) {
    std::fs::create_dir_all(into).unwrap_or_else(|e| panic!("{}: {e}", into.display()));
    run_tool(Command::new("tar").arg("-xpf").arg(tar).arg("-C").arg(into));
}

/// Runs `cmd`, failing the test with its output when it fails.
pub fn run_tool(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e} (see scripts/install-deps)"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The output of `format` in a build report.
pub fn output<'a>(report: &'a serde_json::Value, format: &str) -> &'a serde_json::Value {
    item(report, "outputs", "format", format)
}

/// The entry of the JSON array `v[list]` whose `key` is `want`.
pub fn item<'a>(
    v: &'a serde_json::Value,
    list: &str,
    key: &str,
    want: &str,
) -> &'a serde_json::Value {
    v[list]
        .as_array()
        .unwrap_or_else(|| panic!("no array {list}: {v}"))
        .iter()
        .find(|e| e[key] == want)
        .unwrap_or_else(|| panic!("no {list} entry with {key} {want}: {v}"))
}
