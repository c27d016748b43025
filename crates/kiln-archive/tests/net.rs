//! Against the real archive, found through the host's apt sources. These
//! need the network: skip them with `cargo nextest run -E 'not test(/net_/)'`.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use kiln_archive::{DEBIAN_KEYRING, Keyring, Mirrors, SuiteRequest, fetch_suite, load_suite};
use kiln_deb::Architecture;
use kiln_deb::release::parse_release;
use kiln_deb::signature::{SignatureError, verify_clearsigned};
use kiln_store::{Fetcher, Store};

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn host_mirrors(suite: &str) -> Mirrors {
    Mirrors::discover(None, suite, Path::new("/")).expect("the host's apt sources name a mirror")
}

#[test]
fn net_bookworm_inrelease_verifies_and_a_flipped_byte_is_refused() {
    let mirrors = host_mirrors("bookworm");
    let keyring = Keyring::load(Path::new(DEBIAN_KEYRING)).unwrap();
    let url = format!("{}/dists/bookworm/InRelease", mirrors.debian);
    let bytes = Fetcher::default().fetch_bytes(&url, 32 << 20).unwrap();

    let verified = verify_clearsigned(&bytes, &keyring).unwrap();
    assert!(
        keyring.fingerprints().contains(&verified.primary),
        "{verified:?}"
    );
    let release = parse_release(&verified.text).unwrap();
    assert!(release.serves("bookworm"), "{:?}", release.codename);
    assert!(release.sha256.contains_key("main/binary-amd64/Packages"));

    // One byte of the signed text, in the middle of the digest list.
    let text = std::str::from_utf8(&bytes).unwrap();
    let at = text.find("main/binary-amd64/Packages.xz").unwrap() - 20;
    let mut flipped = bytes.clone();
    flipped[at] = if flipped[at] == b'0' { b'1' } else { b'0' };
    assert_ne!(flipped, bytes);
    let err = verify_clearsigned(&flipped, &keyring).unwrap_err();
    assert!(
        matches!(err, SignatureError::NoGoodSignature { .. }),
        "{err}"
    );
}

#[test]
fn net_trixie_is_found_through_a_host_that_lists_bookworm() {
    let mirrors = host_mirrors("trixie");
    assert_eq!(mirrors, host_mirrors("bookworm"));
    let keyring = Keyring::load(Path::new(DEBIAN_KEYRING)).unwrap();
    let url = format!("{}/dists/trixie/InRelease", mirrors.debian);
    let bytes = Fetcher::default().fetch_bytes(&url, 32 << 20).unwrap();
    let verified = verify_clearsigned(&bytes, &keyring).unwrap();
    assert!(parse_release(&verified.text).unwrap().serves("trixie"));
}

#[test]
fn net_bookworm_updates_and_security_fetch_into_the_store_and_load_offline() {
    let mirrors = host_mirrors("bookworm");
    let keyring = Keyring::load(Path::new(DEBIAN_KEYRING)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    for req in [
        SuiteRequest::new(&mirrors.debian, "bookworm-updates", Architecture::Amd64),
        SuiteRequest::new(&mirrors.security, "bookworm-security", Architecture::Amd64),
    ] {
        let index = fetch_suite(
            &store,
            &Fetcher::default(),
            &keyring,
            &req,
            now(),
            &mut |_| {},
        )
        .unwrap_or_else(|e| panic!("{}: {e}", req.suite));
        let text = std::fs::read_to_string(&index.components[0].path).unwrap();
        let pkgs = kiln_deb::packages::parse_packages(&text, &req.suite, "amd64").unwrap();
        assert!(!pkgs.is_empty(), "{}", req.suite);
        let offline = load_suite(&store, &keyring, &req, Some(now())).unwrap();
        assert_eq!(offline, index);
    }
}
