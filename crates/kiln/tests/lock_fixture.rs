//! `kiln lock` end to end against small signed archives built in the test:
//! fast, offline, deterministic, and through the real binary.

mod common;

use common::{Archive, kiln_at, stanza, write};

fn base_archive() -> Archive {
    let bookworm = [
        stanza("base-files", "12.4", "Essential: yes\nPriority: required\n"),
        stanza("libc6", "2.36-9", "Priority: optional\n"),
        stanza(
            "dpkg",
            "1.21.22",
            "Essential: yes\nPriority: required\nPre-Depends: libc6 (>= 2.34)\n",
        ),
        stanza("apt", "2.6.1", "Priority: required\nDepends: libc6\n"),
        stanza(
            "curl",
            "7.88.1-10",
            "Depends: libcurl4 (= 7.88.1-10), libc6\n",
        ),
        stanza("libcurl4", "7.88.1-10", "Depends: libc6 (>= 2.34)\n"),
        stanza(
            "nginx-light",
            "1.22.1-9",
            "Depends: nginx-common, libc6 (>= 2.38)\n",
        ),
        stanza("nginx-common", "1.22.1-9", ""),
        stanza("nginx-full", "1.22.1-9", "Depends: nginx-common\n"),
    ]
    .concat();
    let security = stanza("libc6", "2.36-9+deb12u4", "Priority: optional\n");
    Archive::new(&bookworm, "", &security)
}

fn filtered(text: &str, archive: &Archive, dir: &std::path::Path) -> String {
    text.replace(&dir.display().to_string(), "[DIR]")
        .replace(&archive.dir.path().display().to_string(), "[ARCHIVE]")
}

#[test]
fn lock_pins_every_package_and_rewrites_the_same_bytes() {
    let archive = base_archive();
    let dir = tempfile::tempdir().unwrap();
    let store = tempfile::tempdir().unwrap();
    write(
        &dir.path().join("kiln.toml"),
        &archive.definition("minbase", &["curl"]),
    );
    let d = dir.path().to_str().unwrap();

    let first = kiln_at(&archive, &["lock", d], store.path());
    assert_eq!(first.code, 0, "{}", first.stderr);
    let bytes = std::fs::read_to_string(dir.path().join("kiln.lock")).unwrap();
    let lock: toml::Table = toml::from_str(&bytes).unwrap();
    let pkgs = lock["package"].as_array().unwrap();
    let names: Vec<&str> = pkgs.iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["apt", "base-files", "curl", "dpkg", "libc6", "libcurl4"]
    );
    let libc = pkgs
        .iter()
        .find(|p| p["name"].as_str() == Some("libc6"))
        .unwrap();
    assert_eq!(
        libc["version"].as_str(),
        Some("2.36-9+deb12u4"),
        "the newest suite wins"
    );
    assert_eq!(libc["suite"].as_str(), Some("bookworm-security"));
    assert_eq!(libc["reason"].as_str(), Some("dependency"));
    let suites: Vec<&str> = lock["suite"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        suites,
        ["bookworm", "bookworm-updates", "bookworm-security"]
    );

    let again = kiln_at(&archive, &["lock", d], store.path());
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(again.stdout.contains("is up to date"), "{}", again.stdout);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("kiln.lock")).unwrap(),
        bytes
    );

    let json = kiln_at(&archive, &["lock", d, "--json"], store.path());
    let report: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(report["packages"], 6);
    assert_eq!(report["written"], false);
}

#[test]
fn check_names_what_changed_and_needs_no_network() {
    let archive = base_archive();
    let dir = tempfile::tempdir().unwrap();
    let store = tempfile::tempdir().unwrap();
    let def = dir.path().join("kiln.toml");
    write(&def, &archive.definition("minbase", &["curl"]));
    let d = dir.path().to_str().unwrap();
    assert_eq!(kiln_at(&archive, &["lock", d], store.path()).code, 0);

    // No archive is reachable: --check must not need one.
    let offline = [("KILN_MIRROR", "file:///nonexistent")];
    let fresh = common::kiln_with_store(&["lock", "--check", d], &offline, store.path());
    assert_eq!(fresh.code, 0, "{}{}", fresh.stdout, fresh.stderr);

    write(
        &def,
        &archive.definition("standard", &["curl", "nginx-common"]),
    );
    let stale = common::kiln_with_store(&["lock", "--check", d], &offline, store.path());
    assert_eq!(stale.code, 1);
    insta::assert_snapshot!(filtered(&stale.stdout, &archive, dir.path()), @r#"
    [DIR]/kiln.lock is stale:
      base.variant: locked "minbase", definition has "standard"
      install: locked ["curl"], definition has ["curl", "nginx-common"]
    hint: run `kiln lock` and commit the result
    "#);
}

#[test]
fn update_moves_only_what_it_names() {
    let bookworm = [
        stanza("base-files", "1", "Essential: yes\n"),
        stanza("aa", "1", ""),
        stanza("bb", "1", "Depends: aa\n"),
        stanza("cc", "1", ""),
    ]
    .concat();
    let archive = Archive::new(&bookworm, "", "");
    let dir = tempfile::tempdir().unwrap();
    let store = tempfile::tempdir().unwrap();
    write(
        &dir.path().join("kiln.toml"),
        &archive.definition("essential", &["bb", "cc"]),
    );
    let d = dir.path().to_str().unwrap();
    let versions = || -> Vec<String> {
        let lock: toml::Table =
            toml::from_str(&std::fs::read_to_string(dir.path().join("kiln.lock")).unwrap())
                .unwrap();
        lock["package"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                format!(
                    "{}={}",
                    p["name"].as_str().unwrap(),
                    p["version"].as_str().unwrap()
                )
            })
            .collect()
    };
    let r = kiln_at(&archive, &["lock", d], store.path());
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(versions(), ["aa=1", "base-files=1", "bb=1", "cc=1"]);

    // A point release: newer versions appear in -updates.
    let updates = [
        stanza("aa", "2", ""),
        stanza("bb", "2", "Depends: aa (>= 2)\n"),
        stanza("cc", "2", ""),
    ]
    .concat();
    archive.publish(&bookworm, &updates, "");
    let r = kiln_at(&archive, &["lock", d], store.path());
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        versions(),
        ["aa=1", "base-files=1", "bb=1", "cc=1"],
        "plain `lock` keeps what is locked"
    );

    let r = kiln_at(&archive, &["lock", d, "--update", "bb"], store.path());
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        versions(),
        ["aa=2", "base-files=1", "bb=2", "cc=1"],
        "bb and what it needs move; cc stays"
    );
    assert!(r.stdout.contains("~ bb 1 -> 2"), "{}", r.stdout);

    assert_eq!(
        kiln_at(&archive, &["lock", d, "--update"], store.path()).code,
        0
    );
    assert_eq!(versions(), ["aa=2", "base-files=1", "bb=2", "cc=2"]);

    let unknown = kiln_at(&archive, &["lock", d, "--update", "zzz"], store.path());
    assert_eq!(unknown.code, 1);
    assert!(
        unknown.stderr.contains("zzz is not in"),
        "{}",
        unknown.stderr
    );
}

/// Each user error: exit 1, the message and hint, and no lock written.
fn user_error(install: &[&str]) -> String {
    let archive = base_archive();
    let dir = tempfile::tempdir().unwrap();
    let store = tempfile::tempdir().unwrap();
    write(
        &dir.path().join("kiln.toml"),
        &archive.definition("minbase", install),
    );
    let r = kiln_at(
        &archive,
        &["lock", dir.path().to_str().unwrap()],
        store.path(),
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(!dir.path().join("kiln.lock").exists());
    filtered(&r.stderr, &archive, dir.path())
}

#[test]
fn unknown_package_suggests_the_closest_names() {
    insta::assert_snapshot!(user_error(&["nginx-lite"]), @r"
    error: unknown package `nginx-lite`: no suite offers it
    hint: did you mean `nginx-light`, `nginx-full`?
    ");
}

#[test]
fn unsatisfiable_request_names_the_chain() {
    insta::assert_snapshot!(user_error(&["nginx-light"]), @r"
    error: cannot install nginx-light: nginx-light 1.22.1-9 depends on libc6 (>= 2.38); bookworm-security has libc6 2.36-9+deb12u4
    hint: a pin or the suite may be too old for this package; try without pins or a newer suite
    ");
}

#[test]
fn pinned_version_the_archive_no_longer_has() {
    insta::assert_snapshot!(user_error(&["curl=7.88.1-9"]), @r"
    error: curl=7.88.1-9 is not in the archive (it has 7.88.1-10 (bookworm))
    hint: the archive keeps only current versions; drop the pin (`curl`) or pin one it has
    ");
}

#[test]
fn child_that_needs_a_newer_parent_package_says_rebuild_the_parent() {
    let archive = base_archive();
    let root = tempfile::tempdir().unwrap();
    let store = tempfile::tempdir().unwrap();
    let base = root.path().join("base");
    let web = root.path().join("web");
    write(&base.join("kiln.toml"), &archive.definition("minbase", &[]));
    assert_eq!(
        kiln_at(&archive, &["lock", base.to_str().unwrap()], store.path()).code,
        0
    );
    // The parent has libc6 at the security version; its child wants a newer one.
    archive.publish(
        &[
            stanza("base-files", "12.4", "Essential: yes\nPriority: required\n"),
            stanza("app", "1", "Depends: libc6 (>= 2.37)\n"),
        ]
        .concat(),
        &stanza("libc6", "2.37-1", ""),
        "",
    );
    write(
        &web.join("kiln.toml"),
        "[image]\nname = \"web\"\nversion = \"1\"\n[base]\nfrom = \"../base\"\n[packages]\ninstall = [\"app\"]\n",
    );
    let r = kiln_at(&archive, &["lock", web.to_str().unwrap()], store.path());
    assert_eq!(r.code, 1, "{}", r.stderr);
    insta::assert_snapshot!(r.stderr, @r"
    error: cannot install app: app 1 → libc6 2.37-1 is needed, but the parent image fixes libc6 at 2.36-9+deb12u4
    hint: rebuild the parent: run `kiln lock --update libc6` in the parent's directory, then lock this image again
    ");
}

#[test]
fn refused_archives_write_no_lock() {
    type Spoil = fn(&Archive);
    let cases: [(&str, Spoil); 3] = [
        ("tampered InRelease", |a| {
            let p = a.dir.path().join("debian/dists/bookworm/InRelease");
            let text = std::fs::read_to_string(&p)
                .unwrap()
                .replace("Suite: bookworm", "Suite: bookwerm");
            std::fs::write(p, text).unwrap();
        }),
        ("tampered Packages", |a| {
            let p = a
                .dir
                .path()
                .join("debian/dists/bookworm/main/binary-amd64/Packages.xz");
            let mut bytes = std::fs::read(&p).unwrap();
            let n = bytes.len() / 2;
            bytes[n] ^= 1;
            std::fs::write(p, bytes).unwrap();
        }),
        ("expired", |a| {
            let mut suite = kiln_archive::fixture::SuiteFixture::new("bookworm-updates", "");
            suite.valid_until = Some("Sun, 01 Jan 2023 00:00:00 UTC".into());
            suite.write(&a.dir.path().join("debian"), &a.key);
        }),
    ];
    for (what, spoil) in cases {
        let archive = base_archive();
        spoil(&archive);
        let dir = tempfile::tempdir().unwrap();
        let store = tempfile::tempdir().unwrap();
        write(
            &dir.path().join("kiln.toml"),
            &archive.definition("minbase", &["curl"]),
        );
        let r = kiln_at(
            &archive,
            &["lock", dir.path().to_str().unwrap()],
            store.path(),
        );
        assert_eq!(r.code, 2, "{what}: {}", r.stderr);
        assert!(
            !dir.path().join("kiln.lock").exists(),
            "{what}: a lock was written"
        );
        let expect = match what {
            "tampered InRelease" => "signature",
            "tampered Packages" => "expected",
            _ => "expired",
        };
        assert!(
            r.stderr.to_lowercase().contains(expect),
            "{what}: {}",
            r.stderr
        );
    }
}

#[test]
fn init_writes_a_definition_that_parses() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("My Image");
    let r = common::kiln(&["init", target.to_str().unwrap()], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let check = common::kiln(&["lock", "--check", target.to_str().unwrap()], &[]);
    assert_eq!(check.code, 1);
    assert!(
        check.stderr.contains("no lockfile") && check.stderr.contains("hint: run `kiln lock`"),
        "{}",
        check.stderr
    );
    let again = common::kiln(&["init", target.to_str().unwrap()], &[]);
    assert_eq!(again.code, 1);
    assert!(again.stderr.contains("--force"), "{}", again.stderr);
}
