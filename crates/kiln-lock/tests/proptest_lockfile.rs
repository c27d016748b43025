//! `kiln.lock` is read from the user's repository, which anyone can edit: a
//! damaged lockfile is an error naming it, never a panic.

use kiln_lock::{LOCK_VERSION, Lock, LockedPackage, read, render};
use proptest::prelude::*;

fn text() -> String {
    render(&Lock {
        version: LOCK_VERSION,
        checksum: "sha256:00".into(),
        inputs: toml::Table::new(),
        parent: None,
        suites: vec![],
        repositories: vec![],
        packages: vec![LockedPackage {
            name: "curl".into(),
            version: "7.88.1-10".into(),
            architecture: "amd64".into(),
            suite: "bookworm".into(),
            path: "pool/main/c/curl/curl_7.88.1-10_amd64.deb".into(),
            size: 42,
            sha256: "ab".repeat(32),
            reason: "requested".into(),
            needed_by: vec![],
            origin: None,
        }],
    })
    .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn a_damaged_lockfile_is_an_error_not_a_panic(
        flips in prop::collection::vec((any::<usize>(), any::<u8>()), 1..12),
    ) {
        let mut bytes = text().into_bytes();
        for (at, b) in flips {
            let at = at % bytes.len();
            bytes[at] = b;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kiln.lock");
        std::fs::write(&path, &bytes).unwrap();
        if let Err(e) = read(&path) {
            prop_assert!(e.to_string().contains("kiln.lock"), "{e}");
        }
    }
}
