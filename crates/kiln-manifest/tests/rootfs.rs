//! Manifests of a real (small) tree on disk.

mod common;

use std::os::unix::fs::PermissionsExt;

use kiln_manifest::{Error, FileEntry, FileKind, Manifest, diff};

fn entry<'a>(m: &'a Manifest, path: &str) -> &'a FileEntry {
    m.files
        .iter()
        .find(|f| f.path == path)
        .unwrap_or_else(|| panic!("{path} is not in the manifest"))
}

#[test]
fn every_kind_of_file_is_recorded_by_lstat() {
    let dir = tempfile::tempdir().unwrap();
    let root = common::tree(dir.path());
    let m = Manifest::from_rootfs(&root).unwrap();

    let paths: Vec<&str> = m.files.iter().map(|f| f.path.as_str()).collect();
    let mut sorted = paths.clone();
    sorted.sort();
    assert_eq!(paths, sorted, "files are sorted by path");
    assert_eq!(paths[0], "/");
    assert_eq!(entry(&m, "/").kind, FileKind::Dir);
    assert_eq!(entry(&m, "/").mode, 0o755);

    let hostname = entry(&m, "/etc/hostname");
    assert_eq!(hostname.kind, FileKind::File);
    assert_eq!(hostname.mode, 0o644);
    assert_eq!(hostname.size, 5);
    assert_eq!(
        hostname.sha256.as_deref(),
        Some(common::sha256(b"kiln\n").as_str())
    );
    assert_eq!(hostname.target, None);

    assert_eq!(entry(&m, "/usr/bin/su").mode, 0o4755, "setuid is kept");
    assert_eq!(entry(&m, "/tmp").mode, 0o1777, "sticky is kept");
    assert_eq!(
        entry(&m, "/tmp").size,
        0,
        "directory sizes depend on the filesystem"
    );

    // Hard links: each path is a file with the content's digest.
    let (a, b) = (entry(&m, "/usr/bin/hard-a"), entry(&m, "/usr/bin/hard-b"));
    assert_eq!((a.kind, b.kind), (FileKind::File, FileKind::File));
    assert_eq!(
        a.sha256.as_deref(),
        Some(common::sha256(b"linked\n").as_str())
    );
    assert_eq!(a.sha256, b.sha256);

    let bin = entry(&m, "/bin");
    assert_eq!(bin.kind, FileKind::Symlink);
    assert_eq!(bin.target.as_deref(), Some("usr/bin"));
    assert_eq!(bin.size, "usr/bin".len() as u64);
    assert_eq!(bin.sha256, None);
    assert!(
        !paths.iter().any(|p| p.starts_with("/bin/")),
        "a symlink to a directory is not entered"
    );

    let abs = entry(&m, "/etc/absolute-escape");
    assert_eq!(abs.kind, FileKind::Symlink);
    assert_eq!(abs.target.as_deref(), Some("/etc/passwd"));
    let rel = entry(&m, "/etc/relative-escape");
    assert_eq!(rel.kind, FileKind::Symlink);
    assert_eq!(rel.target.as_deref(), Some("../../outside"));
    assert!(
        !paths
            .iter()
            .any(|p| p.contains("secret") || p.contains("passwd")),
        "nothing outside the root is recorded: {paths:?}"
    );

    assert_eq!(entry(&m, "/run/initctl").kind, FileKind::Fifo);
    assert_eq!(entry(&m, "/run/initctl").mode, 0o600);
    assert_eq!(entry(&m, "/run/socket").kind, FileKind::Socket);
    if common::is_root() {
        assert_eq!(entry(&m, "/dev/null").kind, FileKind::Char);
        assert_eq!(entry(&m, "/dev/null").mode, 0o666);
        assert_eq!(entry(&m, "/dev/loop0").kind, FileKind::Block);
        let www = entry(&m, "/var/www");
        assert_eq!((www.uid, www.gid), (33, 33));
    }
    for f in &m.files {
        assert_eq!(f.sha256.is_some(), f.kind == FileKind::File, "{}", f.path);
        assert_eq!(
            f.target.is_some(),
            f.kind == FileKind::Symlink,
            "{}",
            f.path
        );
    }
    let regular: u64 = m
        .files
        .iter()
        .filter(|f| f.kind == FileKind::File)
        .map(|f| f.size)
        .sum();
    assert_eq!(m.total_file_bytes(), regular);
}

#[test]
fn installed_packages_with_their_licences() {
    let dir = tempfile::tempdir().unwrap();
    let root = common::tree(dir.path());
    let m = Manifest::from_rootfs(&root).unwrap();

    let keys: Vec<(&str, &str)> = m
        .packages
        .iter()
        .map(|p| (p.name.as_str(), p.architecture.as_str()))
        .collect();
    assert_eq!(
        keys,
        [
            ("hello", "amd64"),
            ("libfoo-dev", "amd64"),
            ("libfoo1", "amd64"),
            ("libfoo1", "i386"),
            ("nodoc", "all"),
        ],
        "sorted by name and architecture; `deinstall ok config-files` is not installed"
    );
    let hello = &m.packages[0];
    assert_eq!(hello.version, "2.10-3");
    assert_eq!(
        (hello.source.as_str(), hello.source_version.as_str()),
        ("hello", "2.10-3")
    );
    assert_eq!(hello.installed_size, 280 * 1024);
    assert_eq!(
        hello.homepage.as_deref(),
        Some("https://example.invalid/hello")
    );
    assert_eq!(hello.sha256, None);
    assert_eq!(
        hello.licenses,
        [
            "GFDL-1.3-no-invariants-or-later",
            "GPL-3.0-or-later",
            "LicenseRef-other",
            "MIT"
        ]
    );
    assert_eq!(
        m.extracted_licenses["LicenseRef-other"].text.as_deref(),
        Some("You may do anything with this file,\n\nas long as this notice stays.")
    );

    let foo = &m.packages[2];
    assert_eq!(
        (foo.source.as_str(), foo.source_version.as_str()),
        ("foo", "1:1.2~rc1-1")
    );
    assert_eq!(foo.version, "1:1.2~rc1-1+b1");
    assert_eq!(foo.licenses, ["LGPL-2.1-or-later"], "free-form copyright");
    // The doc directory is a symlink, resolved inside the root.
    assert_eq!(m.packages[1].licenses, foo.licenses);
    assert_eq!(m.packages[3].licenses, foo.licenses);
    assert!(m.packages[4].licenses.is_empty(), "no copyright file");
}

#[test]
fn bytes_roundtrip_and_are_reproducible() {
    let one = tempfile::tempdir().unwrap();
    let two = tempfile::tempdir().unwrap();
    let a = Manifest::from_rootfs(&common::tree(one.path())).unwrap();
    let b = Manifest::from_rootfs(&common::tree(two.path())).unwrap();
    let bytes = a.to_bytes();
    assert_eq!(bytes, a.to_bytes(), "same manifest, same bytes");
    assert_eq!(bytes, b.to_bytes(), "same tree built twice, same bytes");
    assert_eq!(&bytes[..4], [0x28, 0xb5, 0x2f, 0xfd], "zstd");
    assert_eq!(Manifest::from_bytes(&bytes).unwrap(), a);
    assert!(diff::diff(&a, &b).is_empty());
}

#[test]
fn bytes_that_are_not_a_manifest_are_refused() {
    let err = Manifest::from_bytes(b"{\"packages\": []}").unwrap_err();
    assert!(matches!(err, Error::Decode { .. }), "{err}");

    let other = zstd::bulk::compress(
        br#"{"format":"kiln-manifest-v0","packages":[],"files":[]}"#,
        3,
    )
    .unwrap();
    let err = Manifest::from_bytes(&other).unwrap_err();
    assert!(matches!(err, Error::Format { .. }), "{err}");
    assert!(err.to_string().contains("kiln-manifest-v0"), "{err}");

    let truncated = &Manifest::default().to_bytes()[..8];
    assert!(matches!(
        Manifest::from_bytes(truncated).unwrap_err(),
        Error::Decode { .. }
    ));
}

#[test]
fn errors_name_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-root");
    let err = Manifest::from_rootfs(&missing).unwrap_err();
    assert!(err.to_string().contains("no-such-root"), "{err}");

    let file = dir.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let err = Manifest::from_rootfs(&file).unwrap_err();
    assert!(matches!(err, Error::NotADirectory { .. }), "{err}");

    let root = dir.path().join("root");
    common::write(
        &root.join("var/lib/dpkg/status"),
        "Package: a\nStatus: install ok installed\nArchitecture: all\n",
    );
    let err = Manifest::from_rootfs(&root).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("var/lib/dpkg/status") && msg.contains("Version"),
        "{msg}"
    );

    if !common::is_root() {
        // Root reads any file, so only others can see an unreadable one.
        let secret = root.join("secret");
        common::write(&secret, "x");
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o000)).unwrap();
        let err = Manifest::from_rootfs(&root).unwrap_err();
        assert!(err.to_string().contains("secret"), "{err}");
    }
}

#[test]
fn diff_of_two_built_trees() {
    let one = tempfile::tempdir().unwrap();
    let two = tempfile::tempdir().unwrap();
    let root_a = common::tree(one.path());
    let root_b = common::tree(two.path());
    let status = common::STATUS.replace("Version: 2.10-3", "Version: 2.10-3+deb12u1");
    common::write(&root_b.join("var/lib/dpkg/status"), &status);
    common::chmod(&root_b.join("usr/bin/su"), 0o755);
    common::write(&root_b.join("etc/hostname"), "other\n");
    std::fs::remove_file(root_b.join("bin")).unwrap();
    common::write(&root_b.join("etc/new"), "");

    let a = Manifest::from_rootfs(&root_a).unwrap();
    let b = Manifest::from_rootfs(&root_b).unwrap();
    let d = diff::diff(&a, &b);
    insta::assert_json_snapshot!(d);
}
