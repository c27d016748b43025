//! `write_tar`: the same tree gives the same bytes, and the bytes say what
//! the tree holds, as an independent reader (the `tar` crate) sees them.

mod common;

use common::*;
use kiln_image::{ImageError, TarOptions, write_tar};
use tar::EntryType;

fn entry<'a>(listed: &'a [Listed], path: &str) -> &'a Listed {
    listed
        .iter()
        .find(|l| l.path == path)
        .unwrap_or_else(|| panic!("{path} not in the tar"))
}

/// `base_tree` in `tmp/root`, beside which a test may write.
fn base_root(tmp: &std::path::Path) -> std::path::PathBuf {
    let root = tmp.join("root");
    std::fs::create_dir(&root).unwrap();
    base_tree(&root);
    root
}

#[test]
fn same_tree_gives_same_bytes_whatever_the_mtimes_above_the_clamp() {
    let tmp = tempfile::tempdir().unwrap();
    let root = base_root(tmp.path());
    let first = tar_of(&root);
    touch_all(&root, SDE + 86_400 * 365);
    let second = tar_of(&root);
    assert!(first == second, "tars differ after touching the tree");

    // Built again elsewhere (other inodes, other creation order of
    // directory entries on disk): still the same bytes.
    let again = tmp.path().join("again");
    std::fs::create_dir(&again).unwrap();
    base_tree(&again);
    assert!(
        first == tar_of(&again),
        "tars of two builds of one tree differ"
    );
}

#[test]
fn summary_is_the_digest_and_size_of_what_was_written() {
    let tmp = tempfile::tempdir().unwrap();
    base_tree(tmp.path());
    let mut out = Vec::new();
    let summary = write_tar(tmp.path(), &mut out, &TarOptions::new(SDE)).unwrap();
    assert_eq!(summary.size, out.len() as u64);
    assert_eq!(summary.digest, kiln_store::Digest::of(&out));
    assert_eq!(summary.entries, list(&out).len() as u64);
}

#[test]
fn entries_are_sorted_with_numeric_owners_and_clamped_mtimes() {
    let tmp = tempfile::tempdir().unwrap();
    base_tree(tmp.path());
    let listed = list(&tar_of(tmp.path()));

    let keys: Vec<&str> = listed
        .iter()
        .map(|l| l.path.strip_suffix('/').unwrap_or(&l.path))
        .collect();
    let mut sorted = keys.clone();
    sorted.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    sorted.dedup();
    assert_eq!(
        keys, sorted,
        "entries not in bytewise path order (or repeated)"
    );
    let pos = |p: &str| keys.iter().position(|k| *k == p).unwrap();
    assert!(pos("etc/a") < pos("etc/a.b") && pos("etc/a.b") < pos("etc/a/b"));
    assert!(
        !keys.contains(&"") && !keys.contains(&"."),
        "the root is not an entry"
    );

    for l in &listed {
        assert!(
            l.uname.is_empty() && l.gname.is_empty(),
            "{}: has owner names",
            l.path
        );
        let want = if l.path == "etc/old" { OLD } else { SDE };
        assert_eq!(l.mtime, want, "{}: mtime", l.path);
        assert!(
            !l.path.starts_with("./") && !l.path.starts_with('/'),
            "{}",
            l.path
        );
    }
}

#[test]
fn every_kind_of_entry_keeps_its_metadata() {
    let tmp = tempfile::tempdir().unwrap();
    base_tree(tmp.path());
    let listed = list(&tar_of(tmp.path()));

    let passwd = entry(&listed, "usr/bin/passwd");
    assert_eq!((passwd.kind, passwd.mode), (EntryType::Regular, 0o4755));
    let wall = entry(&listed, "usr/bin/wall");
    assert_eq!((wall.mode, wall.gid), (0o2755, 5));
    let tmpdir = entry(&listed, "tmp/");
    assert_eq!((tmpdir.kind, tmpdir.mode), (EntryType::Directory, 0o1777));
    assert_eq!(entry(&listed, "empty/").mode, 0o700);
    let home = entry(&listed, "home/user/");
    assert_eq!((home.uid, home.gid, home.mode), (1234, 1234, 0o750));
    let profile = entry(&listed, "home/user/.profile");
    assert_eq!((profile.uid, profile.gid), (1234, 1234));

    let sh = entry(&listed, "bin/sh");
    assert_eq!(
        (sh.kind, sh.link.as_deref()),
        (EntryType::Symlink, Some("dash"))
    );
    let long_link = entry(&listed, "usr/share/doc/long-link");
    assert_eq!(
        long_link.link.as_deref(),
        Some(format!("../../../{LONG_DIR}/changelog.Debian.gz").as_str())
    );
    let long_file = entry(&listed, &format!("{LONG_DIR}/changelog.Debian.gz"));
    assert!(long_file.path.len() > 100);
    assert_eq!(long_file.size, 4);

    let null = entry(&listed, "dev/null");
    assert_eq!(
        (null.kind, null.device, null.mode),
        (EntryType::Char, Some((1, 3)), 0o666)
    );
    let fifo = entry(&listed, "run/initctl");
    assert_eq!((fifo.kind, fifo.mode), (EntryType::Fifo, 0o600));

    // Hard links: the first path in sort order is the file.
    let perl = entry(&listed, "usr/bin/perl");
    assert_eq!((perl.kind, perl.size), (EntryType::Regular, 5));
    for link in ["usr/bin/perl5.36", "usr/lib/perl-link"] {
        let l = entry(&listed, link);
        assert_eq!(
            (l.kind, l.link.as_deref(), l.size),
            (EntryType::Link, Some("usr/bin/perl"), 0)
        );
    }

    let ping = entry(&listed, "bin/ping");
    assert_eq!(
        ping.xattrs,
        vec![
            ("security.capability".to_string(), CAP_NET_RAW.to_vec()),
            ("user.kiln.note".to_string(), b"kept".to_vec()),
        ],
        "security.capability and user.* kept, trusted.* dropped"
    );
    assert_eq!(entry(&listed, "usr/lib/big.bin").size, 3 << 20);
}

#[test]
fn extracting_the_tar_gives_back_the_tree() {
    let tmp = tempfile::tempdir().unwrap();
    let root = base_root(tmp.path());
    let out = tmp.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let bytes = tar_of(&root);
    apply(&bytes, &out);
    assert_eq!(
        std::fs::read(out.join("usr/lib/big.bin")).unwrap(),
        std::fs::read(root.join("usr/lib/big.bin")).unwrap()
    );
    assert!(
        tar_of(&out) == bytes,
        "re-tarring the extracted tree differs"
    );
}

#[test]
fn gnu_tar_reads_it_with_xattrs() {
    let tmp = tempfile::tempdir().unwrap();
    let root = base_root(tmp.path());
    let file = tmp.path().join("t.tar");
    std::fs::write(&file, tar_of(&root)).unwrap();
    let out = tmp.path().join("out");
    std::fs::create_dir(&out).unwrap();
    run(std::process::Command::new("tar")
        .args(["--xattrs", "--xattrs-include=*", "--numeric-owner", "-xpf"])
        .arg(&file)
        .arg("-C")
        .arg(&out));
    assert_eq!(
        xattr::get(out.join("bin/ping"), "security.capability").unwrap(),
        Some(CAP_NET_RAW.to_vec())
    );
    assert!(
        tar_of(&out) == tar_of(&root),
        "GNU tar's extraction differs"
    );
}

#[test]
fn whiteout_names_in_a_tree_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    file(tmp.path(), ".wh.sneaky", b"", 0o644);
    let err = write_tar(tmp.path(), &mut Vec::new(), &TarOptions::new(SDE)).unwrap_err();
    assert!(matches!(err, ImageError::WhiteoutName { .. }), "{err}");
}

#[test]
fn a_missing_root_names_its_path() {
    let err = write_tar(
        std::path::Path::new("/nonexistent/kiln-root"),
        &mut Vec::new(),
        &TarOptions::new(SDE),
    )
    .unwrap_err();
    assert!(err.to_string().contains("/nonexistent/kiln-root"), "{err}");
}
