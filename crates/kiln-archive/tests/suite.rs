//! Fetching a suite from a signed `file://` archive built here: what is
//! accepted lands in the store, and everything refused leaves the store as
//! it was.

use std::path::{Path, PathBuf};
use std::process::Command;

use kiln_archive::fixture::{SuiteFixture, TestKey, stanza};
use kiln_archive::{
    ArchiveError, Keyring, Progress, SuiteIndex, SuiteRequest, fetch_suite, load_suite,
};
use kiln_store::{Digest, Fetcher, Retry, Store};
use tempfile::TempDir;

/// `Sat, 10 May 2025 08:52:37 UTC`, the fixtures' Release date, plus an hour.
const NOW: i64 = 1_746_867_157 + 3_600;

struct World {
    archive: TempDir,
    store_dir: TempDir,
    store: Store,
    key: TestKey,
    keyring: Keyring,
    packages: String,
}

impl World {
    fn new() -> World {
        let key = TestKey::generate("kiln test archive <archive@kiln.invalid>");
        let keyring = Keyring::from_bytes(&key.keyring(), "test-keyring.gpg").unwrap();
        let store_dir = tempfile::tempdir().unwrap();
        let store = Store::open(store_dir.path()).unwrap();
        let packages = [
            stanza("base-files", "12.4", "amd64", b"deb one"),
            stanza("mawk", "1.3.4", "amd64", b"deb two"),
        ]
        .join("\n");
        World {
            archive: tempfile::tempdir().unwrap(),
            store_dir,
            store,
            key,
            keyring,
            packages,
        }
    }

    fn suite(&self) -> SuiteFixture {
        SuiteFixture::new("bookworm", &self.packages)
    }

    fn url(&self) -> String {
        format!("file://{}", self.archive.path().display())
    }

    fn request(&self) -> SuiteRequest {
        SuiteRequest::new(&self.url(), "bookworm", kiln_deb::Architecture::Amd64)
    }

    fn fetch(&self) -> Result<SuiteIndex, ArchiveError> {
        self.fetch_logged().0
    }

    fn fetch_logged(&self) -> (Result<SuiteIndex, ArchiveError>, Vec<Progress>) {
        let mut log = Vec::new();
        let fetcher = Fetcher::new(Retry {
            attempts: 1,
            ..Retry::default()
        });
        let result = fetch_suite(
            &self.store,
            &fetcher,
            &self.keyring,
            &self.request(),
            NOW,
            &mut |p| log.push(p),
        );
        (result, log)
    }

    fn store_files(&self) -> Vec<PathBuf> {
        files(self.store_dir.path())
    }

    fn dists(&self) -> PathBuf {
        self.archive.path().join("dists/bookworm")
    }

    /// Asserts the fetch is refused, that the store did not change, and
    /// returns the error for the caller to inspect.
    fn refused(&self) -> ArchiveError {
        let before = self.store_files();
        let err = self
            .fetch()
            .expect_err("the fetch should have been refused");
        assert_eq!(
            self.store_files(),
            before,
            "a refused fetch changed the store ({err})"
        );
        assert!(err.hint().is_some(), "no hint for: {err}");
        err
    }
}

fn files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else {
                out.push(p.strip_prefix(root).unwrap().to_path_buf());
            }
        }
    }
    out.sort();
    out
}

fn fetched_urls(log: &[Progress]) -> Vec<String> {
    log.iter()
        .filter_map(|p| match p {
            Progress::Fetching { url } => Some(url.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_good_archive_is_accepted_and_its_index_lands_in_the_store() {
    let w = World::new();
    let inrelease = w.suite().write(w.archive.path(), &w.key);
    let (result, log) = w.fetch_logged();
    let index = result.unwrap();
    assert_eq!(index.suite, "bookworm");
    assert_eq!(index.date, "Sat, 10 May 2025 08:52:37 UTC");
    assert_eq!(index.date_unix, 1_746_867_157);
    assert_eq!(index.valid_until, None);
    assert_eq!(index.signer, w.key.signing_fingerprint());
    assert_eq!(index.signer_primary, w.key.fingerprint());
    assert_eq!(index.inrelease_sha256, Digest::of(inrelease.as_bytes()));
    assert_eq!(
        std::fs::read(&index.inrelease_path).unwrap(),
        inrelease.as_bytes()
    );
    assert_eq!(index.components.len(), 1);
    let main = &index.components[0];
    assert_eq!(
        (main.component.as_str(), main.arch.as_str()),
        ("main", "amd64")
    );
    assert_eq!(main.sha256, Digest::of(w.packages.as_bytes()));
    assert_eq!(main.size, w.packages.len() as u64);
    assert!(main.path.starts_with(w.store_dir.path()));
    assert_eq!(std::fs::read_to_string(&main.path).unwrap(), w.packages);
    // The index parses as the resolver will read it.
    let pkgs = kiln_deb::packages::parse_packages(&w.packages, "main", "amd64").unwrap();
    assert_eq!(pkgs.len(), 2);
    assert_eq!(
        fetched_urls(&log),
        [
            format!("{}/dists/bookworm/InRelease", w.url()),
            format!("{}/dists/bookworm/main/binary-amd64/Packages.xz", w.url()),
        ]
    );
}

#[test]
fn a_warm_run_downloads_nothing_but_inrelease() {
    let w = World::new();
    w.suite().write(w.archive.path(), &w.key);
    let first = w.fetch().unwrap();
    // Were the index fetched again, its absence would now fail the run.
    std::fs::remove_file(w.dists().join("main/binary-amd64/Packages.xz")).unwrap();
    let before = w.store_files();
    let (second, log) = w.fetch_logged();
    assert_eq!(second.unwrap(), first);
    assert_eq!(
        fetched_urls(&log),
        [format!("{}/dists/bookworm/InRelease", w.url())]
    );
    assert!(
        log.iter()
            .any(|p| matches!(p, Progress::Cached { component, .. } if component == "main"))
    );
    assert_eq!(w.store_files(), before);
}

#[test]
fn a_tampered_inrelease_is_refused() {
    let w = World::new();
    let inrelease = w.suite().write(w.archive.path(), &w.key);
    // One byte of the signed text: the Release date.
    let tampered = inrelease.replacen("08:52:37", "08:52:38", 1);
    assert_ne!(tampered, inrelease);
    std::fs::write(w.dists().join("InRelease"), tampered).unwrap();
    let err = w.refused();
    assert!(matches!(err, ArchiveError::Signature { .. }), "{err}");
    assert!(
        err.to_string().contains("dists/bookworm/InRelease"),
        "{err}"
    );
}

#[test]
fn an_unsigned_release_is_refused() {
    let w = World::new();
    let suite = w.suite();
    suite.write(w.archive.path(), &w.key);
    std::fs::write(w.dists().join("InRelease"), suite.release_text()).unwrap();
    let err = w.refused();
    assert!(matches!(err, ArchiveError::Signature { .. }), "{err}");
}

#[test]
fn a_tampered_packages_xz_is_refused_naming_both_digests() {
    let w = World::new();
    w.suite().write(w.archive.path(), &w.key);
    let xz = w.dists().join("main/binary-amd64/Packages.xz");
    let good = std::fs::read(&xz).unwrap();
    let mut bad = good.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0x01;
    std::fs::write(&xz, &bad).unwrap();
    let err = w.refused();
    let msg = err.to_string();
    assert!(msg.contains("main/binary-amd64/Packages.xz"), "{msg}");
    assert!(
        msg.contains(&format!("expected {}", Digest::of(&good).hex())),
        "{msg}"
    );
    assert!(
        msg.contains(&format!("got {}", Digest::of(&bad).hex())),
        "{msg}"
    );
}

#[test]
fn a_decompressed_index_that_does_not_match_the_release_is_refused() {
    let w = World::new();
    let suite = w.suite();
    suite.write(w.archive.path(), &w.key);
    // The archive signs a Release whose uncompressed digest disagrees with
    // what its Packages.xz holds: the xz checks out, its content does not.
    let real = Digest::of(w.packages.as_bytes()).hex();
    let wrong = Digest::of(b"something else").hex();
    let release = suite.release_text().replace(&real, &wrong);
    std::fs::write(w.dists().join("InRelease"), w.key.clearsign(&release)).unwrap();
    let msg = w.refused().to_string();
    assert!(msg.contains("(decompressed)"), "{msg}");
    assert!(msg.contains(&format!("expected {wrong}")), "{msg}");
    assert!(msg.contains(&format!("got {real}")), "{msg}");
}

#[test]
fn an_expired_release_is_refused() {
    let w = World::new();
    let mut suite = w.suite();
    suite.valid_until = Some("Sat, 10 May 2025 08:59:59 UTC".to_string());
    suite.write(w.archive.path(), &w.key);
    let err = w.refused();
    assert!(matches!(err, ArchiveError::Expired { .. }), "{err}");
    assert!(
        err.to_string().contains("Sat, 10 May 2025 08:59:59 UTC"),
        "{err}"
    );
    // Still valid an hour later than that is fine.
    let mut suite = w.suite();
    suite.valid_until = Some("Sat, 10 May 2025 10:52:37 UTC".to_string());
    suite.write(w.archive.path(), &w.key);
    assert_eq!(w.fetch().unwrap().valid_until, Some(1_746_867_157 + 7_200));
}

#[test]
fn a_keyring_without_the_signing_key_is_refused() {
    let mut w = World::new();
    w.suite().write(w.archive.path(), &w.key);
    let stranger = TestKey::generate("someone else");
    w.keyring = Keyring::from_bytes(&stranger.keyring(), "other-keyring.gpg").unwrap();
    let msg = w.refused().to_string();
    assert!(msg.contains("other-keyring.gpg"), "{msg}");
    assert!(msg.contains(&w.key.signing_fingerprint()), "{msg}");
}

#[test]
fn a_release_for_another_suite_is_refused() {
    let w = World::new();
    let mut suite = w.suite();
    suite.suite = "oldstable".to_string();
    suite.codename = "bullseye".to_string();
    suite.write(w.archive.path(), &w.key);
    // Serve bullseye's signed Release where bookworm's belongs.
    std::fs::create_dir_all(w.dists()).unwrap();
    std::fs::rename(
        w.archive.path().join("dists/oldstable/InRelease"),
        w.dists().join("InRelease"),
    )
    .unwrap();
    let err = w.refused();
    assert!(matches!(err, ArchiveError::WrongSuite { .. }), "{err}");
    assert!(err.to_string().contains("bullseye"), "{err}");
}

#[test]
fn a_missing_component_is_refused() {
    let w = World::new();
    w.suite().write(w.archive.path(), &w.key);
    let mut req = w.request();
    req.components = vec!["main".into(), "contrib".into()];
    let err = fetch_suite(
        &w.store,
        &Fetcher::default(),
        &w.keyring,
        &req,
        NOW,
        &mut |_| {},
    )
    .unwrap_err();
    assert!(matches!(err, ArchiveError::NoComponent { .. }), "{err}");
}

#[test]
fn gzip_and_uncompressed_indices_are_fallbacks() {
    for serve in [vec![".gz"], vec![""]] {
        let w = World::new();
        let mut suite = w.suite();
        suite.serve = serve.clone();
        suite.write(w.archive.path(), &w.key);
        let (result, log) = w.fetch_logged();
        let index = result.unwrap_or_else(|e| panic!("{serve:?}: {e}"));
        assert_eq!(
            std::fs::read_to_string(&index.components[0].path).unwrap(),
            w.packages
        );
        let urls = fetched_urls(&log);
        // Listed forms that are not served are tried first, then skipped.
        assert!(urls[1].ends_with("Packages.xz"), "{urls:?}");
        assert!(
            urls.last()
                .unwrap()
                .ends_with(&format!("Packages{}", serve[0])),
            "{urls:?}"
        );
    }
}

#[test]
fn by_hash_indices_are_preferred_when_offered() {
    let w = World::new();
    let mut suite = w.suite();
    suite.by_hash = true;
    suite.write(w.archive.path(), &w.key);
    // Only the by-hash copy remains: a plain-path fetch would fail.
    std::fs::remove_file(w.dists().join("main/binary-amd64/Packages.xz")).unwrap();
    let (result, log) = w.fetch_logged();
    result.unwrap();
    assert!(
        fetched_urls(&log)[1].contains("/main/binary-amd64/by-hash/SHA256/"),
        "{log:?}"
    );
}

#[test]
fn no_index_at_all_names_what_was_tried() {
    let w = World::new();
    w.suite().write(w.archive.path(), &w.key);
    std::fs::remove_file(w.dists().join("main/binary-amd64/Packages.xz")).unwrap();
    let err = w.refused();
    assert!(matches!(err, ArchiveError::NoIndex { .. }), "{err}");
    assert!(err.to_string().contains("Packages.xz"), "{err}");
}

#[test]
fn offline_uses_the_newest_stored_release_and_names_what_is_missing() {
    let w = World::new();
    let req = w.request();
    let err = load_suite(&w.store, &w.keyring, &req, Some(NOW)).unwrap_err();
    assert!(matches!(err, ArchiveError::Offline { .. }), "{err}");
    assert!(
        err.to_string().contains("dists/bookworm/InRelease"),
        "{err}"
    );
    assert!(err.hint().unwrap().contains("without --offline"));

    w.suite().write(w.archive.path(), &w.key);
    let old = w.fetch().unwrap();
    let mut newer = w.suite();
    newer.date = "Sun, 11 May 2025 08:52:37 UTC".to_string();
    newer.packages[0].1 +=
        "\nPackage: extra\nVersion: 1\nArchitecture: all\nFilename: x\nSize: 1\nSHA256: 00\n";
    newer.write(w.archive.path(), &w.key);
    let new = w.fetch().unwrap();
    assert_ne!(old.inrelease_sha256, new.inrelease_sha256);
    // Fetch the old one again last: "newest" is by Release date, not by
    // when it was fetched.
    w.suite().write(w.archive.path(), &w.key);
    w.fetch().unwrap();

    std::fs::remove_dir_all(w.archive.path()).unwrap();
    let offline = load_suite(&w.store, &w.keyring, &req, Some(NOW)).unwrap();
    assert_eq!(offline, new);

    // Re-verified: a keyring that no longer holds the key refuses it.
    let stranger = Keyring::from_bytes(&TestKey::generate("x").keyring(), "x.gpg").unwrap();
    let err = load_suite(&w.store, &stranger, &req, Some(NOW)).unwrap_err();
    assert!(matches!(err, ArchiveError::Signature { .. }), "{err}");

    // A missing index is named with its digest.
    std::fs::remove_file(&new.components[0].path).unwrap();
    let err = load_suite(&w.store, &w.keyring, &req, Some(NOW)).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("main/binary-amd64/Packages"), "{msg}");
    assert!(msg.contains(&new.components[0].sha256.hex()), "{msg}");
}

#[test]
fn offline_checks_valid_until_only_when_asked() {
    let w = World::new();
    let mut suite = w.suite();
    suite.valid_until = Some("Sat, 17 May 2025 08:52:37 UTC".to_string());
    suite.write(w.archive.path(), &w.key);
    let fetched = w.fetch().unwrap();
    let later = NOW + 30 * 86_400;
    let err = load_suite(&w.store, &w.keyring, &w.request(), Some(later)).unwrap_err();
    assert!(matches!(err, ArchiveError::Expired { .. }), "{err}");
    // Without a time to check against, the same expired suite loads whole.
    let loaded = load_suite(&w.store, &w.keyring, &w.request(), None).unwrap();
    assert_eq!(loaded, fetched);
    assert!(!loaded.components.is_empty());
}

#[test]
fn two_fetches_into_one_store_at_once_both_succeed() {
    let w = World::new();
    w.suite().write(w.archive.path(), &w.key);
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    let store = Store::open(w.store_dir.path()).unwrap();
                    fetch_suite(
                        &store,
                        &Fetcher::default(),
                        &w.keyring,
                        &w.request(),
                        NOW,
                        &mut |_| {},
                    )
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for r in &results {
        assert!(r.is_ok(), "{r:?}");
    }
}

// Archives signed by GnuPG itself, with keys `gpg` makes here in a
// temporary GNUPGHOME, as apt's users sign: a SHA-1 signature, an expired
// key, a key the keyring lacks and a tampered InRelease are refused by the
// signature policy, naming the reason, and leave the store as it was.

impl World {
    /// Writes the archive's indices; returns the Release text to sign.
    fn publish_indices(&self) -> String {
        let suite = self.suite();
        suite.write(self.archive.path(), &self.key);
        suite.release_text()
    }

    fn publish(&self, inrelease: &[u8]) {
        std::fs::write(self.dists().join("InRelease"), inrelease).unwrap();
    }
}

/// An error with its sources, as `kiln` prints it.
fn chain(err: &ArchiveError) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text
}

/// A GnuPG home with one key, and the archive it signs.
struct Gpg {
    home: TempDir,
    uid: String,
}

impl Gpg {
    /// A new ed25519 signing key; `extra` goes before the command (e.g. a
    /// faked system time); `expire` as `gpg --quick-gen-key` takes it.
    fn new(uid: &str, extra: &[&str], expire: &str) -> Gpg {
        let home = tempfile::tempdir().unwrap();
        let g = Gpg {
            home,
            uid: uid.to_string(),
        };
        let mut args = extra.to_vec();
        args.extend(["--quick-gen-key", uid, "ed25519", "sign", expire]);
        g.run(&args);
        g
    }

    fn run(&self, args: &[&str]) -> Vec<u8> {
        let out = Command::new("gpg")
            .env("GNUPGHOME", self.home.path())
            .args(["--batch", "--pinentry-mode", "loopback", "--passphrase", ""])
            .args(args)
            .output()
            .expect("gpg (package gnupg) must be installed for these tests");
        assert!(
            out.status.success(),
            "gpg {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    fn keyring(&self, name: &str) -> Keyring {
        Keyring::from_bytes(&self.run(&["--export", &self.uid]), name).unwrap()
    }

    fn clearsign(&self, text: &str, extra: &[&str]) -> Vec<u8> {
        let input = self.home.path().join("Release");
        std::fs::write(&input, text).unwrap();
        let output = self.home.path().join("InRelease");
        let _ = std::fs::remove_file(&output);
        let mut args = extra.to_vec();
        let (i, o) = (input.to_str().unwrap(), output.to_str().unwrap());
        args.extend(["--local-user", &self.uid, "--output", o, "--clearsign", i]);
        self.run(&args);
        std::fs::read(output).unwrap()
    }
}

#[test]
fn tool_a_gpg_signature_is_accepted_and_a_tampered_one_refused() {
    let mut w = World::new();
    let g = Gpg::new("kiln gpg test <gpg@kiln.invalid>", &[], "1y");
    w.keyring = g.keyring("gpg-test.gpg");
    let signed = g.clearsign(&w.publish_indices(), &[]);
    let tampered = String::from_utf8(signed.clone())
        .unwrap()
        .replacen("08:52:37", "08:52:38", 1);
    assert_ne!(tampered.as_bytes(), signed.as_slice());
    w.publish(tampered.as_bytes());
    let msg = chain(&w.refused());
    assert!(msg.contains("gpg-test.gpg"), "{msg}");

    w.publish(&signed);
    w.fetch().unwrap();
    assert!(!w.store_files().is_empty());
}

#[test]
fn tool_a_sha1_signature_is_refused_naming_the_hash() {
    let mut w = World::new();
    let g = Gpg::new("kiln sha1 <sha1@kiln.invalid>", &[], "1y");
    w.keyring = g.keyring("sha1.gpg");
    let signed = g.clearsign(&w.publish_indices(), &["--digest-algo", "SHA1"]);
    assert!(String::from_utf8_lossy(&signed).contains("Hash: SHA1"));
    w.publish(&signed);
    let msg = chain(&w.refused());
    assert!(msg.contains("SHA1"), "{msg}");
}

#[test]
fn tool_an_expired_key_is_refused_naming_the_expiry() {
    let mut w = World::new();
    // Made and used on 1 January 2025, valid for a day: long expired now.
    let g = Gpg::new(
        "kiln expired <expired@kiln.invalid>",
        &["--faked-system-time", "20250101T000000!"],
        "1d",
    );
    w.keyring = g.keyring("expired.gpg");
    let signed = g.clearsign(
        &w.publish_indices(),
        &["--faked-system-time", "20250101T060000!"],
    );
    w.publish(&signed);
    let msg = chain(&w.refused());
    assert!(msg.contains("expired"), "{msg}");
}

#[test]
fn tool_a_key_missing_from_the_keyring_is_refused_naming_the_signer() {
    let mut w = World::new();
    let signer = Gpg::new("kiln signer <signer@kiln.invalid>", &[], "1y");
    let other = Gpg::new("kiln other <other@kiln.invalid>", &[], "1y");
    w.keyring = other.keyring("other.gpg");
    let signed = signer.clearsign(&w.publish_indices(), &[]);
    w.publish(&signed);
    let fpr = String::from_utf8(signer.run(&["--with-colons", "--list-keys"])).unwrap();
    let fpr = fpr
        .lines()
        .find_map(|l| l.strip_prefix("fpr:::::::::"))
        .and_then(|l| l.split(':').next())
        .unwrap()
        .to_string();
    let msg = chain(&w.refused());
    assert!(msg.contains("other.gpg"), "{msg}");
    assert!(msg.contains(&fpr), "{fpr} not in: {msg}");
}

/// A byte flipped in a cached index: the next fetch notices (the index is
/// re-hashed against the signed Release when used), downloads it again and
/// gives the same index as a clean fetch; an offline load reports it
/// missing rather than using it.
#[test]
fn a_damaged_cached_index_is_fetched_again_or_reported_offline() {
    let w = World::new();
    w.suite().write(w.archive.path(), &w.key);
    let clean = w.fetch().unwrap();
    let index = &clean.components[0];
    let mut bytes = std::fs::read(&index.path).unwrap();
    bytes[5] ^= 0x20;
    std::fs::write(&index.path, &bytes).unwrap();

    let offline = load_suite(&w.store, &w.keyring, &w.request(), None).unwrap_err();
    assert!(matches!(offline, ArchiveError::Offline { .. }), "{offline}");

    std::fs::write(&index.path, &bytes).unwrap_or(());
    let again = w.fetch().unwrap();
    assert_eq!(again.components[0].sha256, index.sha256);
    assert_eq!(again.components[0].path, index.path);
    assert_eq!(
        Digest::of(&std::fs::read(&index.path).unwrap()),
        index.sha256
    );
}
