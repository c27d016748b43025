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
    unknown.assert_exit(1, &["zzz is not in"]);
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
    check.assert_exit(1, &["no lockfile", "hint: run `kiln lock`"]);
    let again = common::kiln(&["init", target.to_str().unwrap()], &[]);
    again.assert_exit(1, &["--force"]);
}

/// An archive with what a bootable disk takes: a kernel, systemd-boot
/// (through the alternative trixie's takes first) and systemd-sysv.
fn bootable_archive() -> Archive {
    let bookworm = [
        stanza("base-files", "12.4", "Essential: yes\nPriority: required\n"),
        stanza("libc6", "2.36-9", "Priority: optional\n"),
        stanza("apt", "2.6.1", "Priority: required\nDepends: libc6\n"),
        stanza(
            "linux-image-cloud-amd64",
            "6.1.0-1",
            "Depends: initramfs-tools\n",
        ),
        stanza("initramfs-tools", "0.142", ""),
        stanza(
            "systemd-boot",
            "252.30-1",
            "Depends: systemd-boot-efi-amd64-signed | systemd-boot-efi\n",
        ),
        stanza("systemd-boot-efi-amd64-signed", "252.30-1", ""),
        stanza("systemd-boot-efi", "252.30-1", ""),
        stanza("systemd-sysv", "252.30-1", "Depends: systemd\n"),
        stanza("systemd", "252.30-1", "Depends: libc6\n"),
    ]
    .concat();
    Archive::new(&bookworm, "", "")
}

fn reasons(dir: &std::path::Path) -> std::collections::BTreeMap<String, String> {
    let lock: toml::Table =
        toml::from_str(&std::fs::read_to_string(dir.join("kiln.lock")).unwrap()).unwrap();
    lock["package"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_owned(),
                p["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn a_disk_brings_its_boot_loader_and_init_into_the_lock() {
    let archive = bootable_archive();
    let dir = tempfile::tempdir().unwrap();
    let store = tempfile::tempdir().unwrap();
    let disk = "\n[disk]\nkernel = \"linux-image-cloud-amd64\"\n\n[outputs]\nformats = [\"raw\"]\n";
    write(
        &dir.path().join("kiln.toml"),
        &format!("{}{disk}", archive.definition("minbase", &[])),
    );
    let d = dir.path().to_str().unwrap();
    let r = kiln_at(&archive, &["lock", d], store.path());
    assert_eq!(r.code, 0, "{}", r.stderr);
    let why = reasons(dir.path());
    assert_eq!(why["linux-image-cloud-amd64"], "kernel");
    assert_eq!(why["systemd-boot"], "disk");
    assert_eq!(why["systemd-sysv"], "disk");
    assert_eq!(
        why["systemd-boot-efi-amd64-signed"], "dependency",
        "apt's first alternative"
    );
    assert!(!why.contains_key("systemd-boot-efi"));

    // Asked for by name, they stay "requested"; another loader may be named.
    let named = format!(
        "{}{}",
        archive.definition("minbase", &["systemd-sysv"]),
        disk.replace("kernel = ", "bootloader = \"systemd-boot-efi\"\nkernel = ")
    );
    write(&dir.path().join("kiln.toml"), &named);
    let r = kiln_at(&archive, &["lock", d], store.path());
    assert_eq!(r.code, 0, "{}", r.stderr);
    let why = reasons(dir.path());
    assert_eq!(why["systemd-sysv"], "requested");
    assert_eq!(why["systemd-boot-efi"], "disk");
    assert!(!why.contains_key("systemd-boot"));
}

#[test]
fn a_disk_that_cannot_boot_is_refused_by_lock_and_build_before_any_work() {
    let archive = bootable_archive();
    let root = tempfile::tempdir().unwrap();
    let store = tempfile::tempdir().unwrap();
    let (base, child) = (root.path().join("base"), root.path().join("child"));
    // A base without a kernel, and a child that asks for a disk.
    write(&base.join("kiln.toml"), &archive.definition("minbase", &[]));
    let r = kiln_at(&archive, &["lock", base.to_str().unwrap()], store.path());
    assert_eq!(r.code, 0, "{}", r.stderr);
    write(
        &child.join("kiln.toml"),
        "[image]\nname = \"child\"\nversion = \"1\"\n[base]\nfrom = \"../base\"\n[outputs]\nformats = [\"qcow2\"]\n",
    );
    let r = kiln_at(&archive, &["lock", child.to_str().unwrap()], store.path());
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(!child.join("kiln.lock").exists(), "nothing written");
    let stderr = filtered(&r.stderr, &archive, root.path());
    insta::assert_snapshot!(stderr, @r#"
    error: child: a `qcow2` disk needs a kernel, and no image of its chain names one
    hint: add `kernel = "linux-image-cloud-amd64"` to [disk] in [DIR]/child/../base/kiln.toml, then run `kiln lock`
    "#);

    // The same child built as a disk from a lock made for a tar: refused
    // before any package is fetched or any tree is made.
    write(
        &child.join("kiln.toml"),
        "[image]\nname = \"child\"\nversion = \"1\"\n[base]\nfrom = \"../base\"\n[outputs]\nformats = [\"tar\"]\n",
    );
    let r = kiln_at(&archive, &["lock", child.to_str().unwrap()], store.path());
    assert_eq!(r.code, 0, "{}", r.stderr);
    let entries = || walk(store.path());
    let before = entries();
    let r = kiln_at(
        &archive,
        &["build", child.to_str().unwrap(), "--format", "raw"],
        store.path(),
    );
    r.assert_exit(1, &["needs a kernel"]);
    assert_eq!(entries(), before, "nothing fetched or built");
}

/// Every path under `dir`, sorted.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p.clone());
            }
            out.push(p);
        }
    }
    out.sort();
    out
}

#[test]
fn sections_whose_tools_the_lock_lacks_are_refused_before_any_work() {
    let archive = base_archive();
    let dir = tempfile::tempdir().unwrap();
    let store = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    for (extra, says) in [
        (
            "\n[services]\nenable = [\"app.service\"]\n",
            "t: [services] needs systemd, which no image of its chain installs\nhint: add \"systemd-sysv\" to [packages].install, then run `kiln lock`",
        ),
        (
            "\n[[users]]\nname = \"app\"\n",
            "t: [[users]] needs passwd, which no image of its chain installs\nhint: add \"passwd\" to [packages].install, then run `kiln lock`",
        ),
    ] {
        write(
            &dir.path().join("kiln.toml"),
            &format!("{}{extra}", archive.definition("minbase", &[])),
        );
        let r = kiln_at(&archive, &["lock", d], store.path());
        assert_eq!(r.code, 1, "{}", r.stderr);
        assert_eq!(r.stderr.trim_end(), format!("error: {says}"));
        assert!(!dir.path().join("kiln.lock").exists(), "nothing written");
    }
}
