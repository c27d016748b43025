use super::*;

fn pkg(name: &str, arch: &str, version: &str, size: u64) -> Package {
    Package {
        name: name.into(),
        version: version.into(),
        architecture: arch.into(),
        source: name.into(),
        source_version: version.into(),
        installed_size: size,
        licenses: vec![],
        homepage: None,
        sha256: None,
        origin: None,
    }
}

fn file(path: &str, kind: FileKind, mode: u32, size: u64, digest: Option<&str>) -> FileEntry {
    FileEntry {
        path: path.into(),
        kind,
        mode,
        uid: 0,
        gid: 0,
        size,
        sha256: digest.map(str::to_string),
        target: None,
    }
}

fn link(path: &str, target: &str) -> FileEntry {
    FileEntry {
        target: Some(target.into()),
        ..file(path, FileKind::Symlink, 0o777, target.len() as u64, None)
    }
}

fn manifest(packages: Vec<Package>, files: Vec<FileEntry>) -> Manifest {
    Manifest {
        packages,
        files,
        ..Manifest::default()
    }
}

#[test]
fn identical_manifests_have_an_empty_diff() {
    let m = manifest(
        vec![pkg("a", "all", "1", 1024)],
        vec![file("/a", FileKind::File, 0o644, 3, Some("aa"))],
    );
    let d = diff(&m, &m.clone());
    assert!(d.is_empty(), "{d:?}");
    assert_eq!(d.to_string(), "no changes\n");
}

#[test]
fn versions_order_by_debian_rules() {
    let a = manifest(
        vec![
            pkg("epoch", "amd64", "9.9-1", 0),
            pkg("tilde", "amd64", "1.0-1", 0),
            pkg("rc", "amd64", "1.0~rc1-1", 0),
            pkg("lexical", "amd64", "1.10-1", 0),
            pkg("down-epoch", "amd64", "1:1.0-1", 0),
            pkg("libc6", "amd64", "2.36-9", 0),
            pkg("libc6", "i386", "2.36-9", 0),
        ],
        vec![],
    );
    let b = manifest(
        vec![
            // An epoch outranks any upstream version.
            pkg("epoch", "amd64", "1:0.1-1", 0),
            // `~` sorts before everything, even the end of the string.
            pkg("tilde", "amd64", "1.0~beta-1", 0),
            pkg("rc", "amd64", "1.0-1", 0),
            // 10 > 9 numerically, though "1.9" > "1.10" as strings.
            pkg("lexical", "amd64", "1.9-1", 0),
            pkg("down-epoch", "amd64", "2.0-1", 0),
            pkg("libc6", "amd64", "2.36-9+deb12u4", 0),
            pkg("libc6", "i386", "2.36-9", 0),
        ],
        vec![],
    );
    let d = diff(&a, &b);
    let names = |v: &[PkgChange]| v.iter().map(|c| c.name.clone()).collect::<Vec<_>>();
    assert_eq!(names(&d.upgraded), ["epoch", "libc6", "rc"]);
    assert_eq!(names(&d.downgraded), ["down-epoch", "lexical", "tilde"]);
    assert_eq!(
        d.upgraded[1],
        PkgChange {
            name: "libc6".into(),
            architecture: "amd64".into(),
            from: "2.36-9".into(),
            to: "2.36-9+deb12u4".into(),
            origins: None,
        }
    );
    assert!(d.packages_added.is_empty() && d.packages_removed.is_empty());
}

#[test]
fn packages_added_and_removed_with_sizes() {
    let a = manifest(
        vec![
            pkg("gone", "amd64", "1", 4096),
            pkg("kept", "all", "1", 1024),
        ],
        vec![],
    );
    let b = manifest(
        vec![
            pkg("kept", "all", "1", 1024),
            pkg("new", "amd64", "2", 10240),
            // Another architecture of the same name is another package.
            pkg("gone", "i386", "1", 2048),
        ],
        vec![],
    );
    let d = diff(&a, &b);
    let r = |name: &str, version: &str, arch: &str| PkgRef {
        name: name.into(),
        version: version.into(),
        architecture: arch.into(),
        origin: None,
    };
    assert_eq!(
        d.packages_added,
        [r("gone", "1", "i386"), r("new", "2", "amd64")]
    );
    assert_eq!(d.packages_removed, [r("gone", "1", "amd64")]);
    assert_eq!(d.installed_size_change, 10240 + 2048 - 4096);
}

#[test]
fn every_kind_of_file_change() {
    let a = manifest(
        vec![],
        vec![
            file("/", FileKind::Dir, 0o755, 0, None),
            file("/content", FileKind::File, 0o644, 5, Some("11")),
            file("/grown", FileKind::File, 0o644, 5, Some("22")),
            file("/mode", FileKind::File, 0o755, 1, Some("33")),
            FileEntry {
                uid: 0,
                gid: 0,
                ..file("/owner", FileKind::Dir, 0o755, 0, None)
            },
            file("/type", FileKind::File, 0o644, 10, Some("44")),
            link("/target", "a"),
            file("/removed", FileKind::Fifo, 0o600, 0, None),
            file("/setuid", FileKind::File, 0o755, 7, Some("55")),
        ],
    );
    let b = manifest(
        vec![],
        vec![
            file("/", FileKind::Dir, 0o755, 0, None),
            file("/added", FileKind::File, 0o644, 100, Some("66")),
            file("/content", FileKind::File, 0o644, 5, Some("77")),
            file("/grown", FileKind::File, 0o644, 9, Some("88")),
            file("/mode", FileKind::File, 0o644, 1, Some("33")),
            FileEntry {
                uid: 33,
                gid: 33,
                ..file("/owner", FileKind::Dir, 0o755, 0, None)
            },
            link("/type", "elsewhere"),
            link("/target", "b"),
            file("/setuid", FileKind::File, 0o4755, 7, Some("55")),
        ],
    );
    let d = diff(&a, &b);
    assert_eq!(
        d.files_added,
        [FileRef {
            path: "/added".into(),
            kind: FileKind::File,
            size: 100
        }]
    );
    assert_eq!(
        d.files_removed,
        [FileRef {
            path: "/removed".into(),
            kind: FileKind::Fifo,
            size: 0
        }]
    );
    let changed: Vec<(&str, Vec<&str>)> = d
        .files_changed
        .iter()
        .map(|c| (c.path.as_str(), c.what.iter().map(String::as_str).collect()))
        .collect();
    assert_eq!(
        changed,
        [
            ("/content", vec!["content"]),
            ("/grown", vec!["content"]),
            ("/mode", vec!["mode 0755→0644"]),
            ("/owner", vec!["owner 0:0→33:33"]),
            ("/setuid", vec!["mode 0755→4755"]),
            ("/target", vec!["target a→b"]),
            ("/type", vec!["type file→symlink", "mode 0644→0777"]),
        ]
    );
    // Regular files only: 100 added, 4 grown, 10 gone to a symlink.
    assert_eq!(d.file_bytes_change, 100 + 4 - 10);
    assert!(!d.is_empty());
    insta::assert_snapshot!(d.to_string());
}

#[test]
fn origins_are_shown_for_packages_not_from_debian() {
    let with = |mut p: Package, origin: &str| {
        p.origin = Some(origin.into());
        p
    };
    let a = manifest(
        vec![
            pkg("curl", "amd64", "7.88.1-10", 0),
            with(pkg("agent", "amd64", "3.1", 0), "vendor"),
        ],
        vec![],
    );
    let b = manifest(
        vec![
            with(pkg("curl", "amd64", "7.88.1-10", 0), "vendor"),
            with(pkg("agent", "amd64", "3.2", 0), "vendor"),
            with(pkg("app", "amd64", "1.4.2", 0), "local"),
        ],
        vec![],
    );
    let d = diff(&a, &b);
    assert_eq!(d.moved.len(), 1, "{d:?}");
    assert_eq!(d.moved[0].origins, Some(("debian".into(), "vendor".into())));
    assert_eq!(d.upgraded[0].origins, None, "same origin: nothing to say");
    assert_eq!(d.packages_added[0].origin.as_deref(), Some("local"));
    let text = d.to_string();
    assert!(text.contains("+ app:amd64 1.4.2 [local]\n"), "{text}");
    assert!(
        text.contains(
            "~ curl:amd64 7.88.1-10 → 7.88.1-10 (from another origin) [debian → vendor]\n"
        ),
        "{text}"
    );
    assert!(
        text.contains("~ agent:amd64 3.1 → 3.2 (upgraded)\n"),
        "{text}"
    );
    assert!(!diff(&a, &a).to_string().contains('['));
}
