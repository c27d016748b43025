//! `write_diff_tar`: exactly the changes, correct whiteouts, and parent +
//! diff applied in order gives back the child tree.

mod common;

use std::os::unix::fs::symlink;
use std::path::Path;

use common::*;
use kiln_image::{TarOptions, write_diff_tar};
use tar::EntryType;

fn diff_of(parent: &Path, child: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    write_diff_tar(parent, child, &mut out, &TarOptions::new(SDE)).unwrap();
    out
}

/// The child: the base tree with one change of every kind.
fn child_tree(root: &Path) {
    base_tree(root);
    // Same size, other bytes: only a content comparison sees it.
    file(root, "etc/hostname", b"kilm\n", 0o644);
    // Metadata only.
    owner(root, "bin/dash", 0, 0, 0o700);
    owner(root, "etc/a-b", 42, 42, 0o644);
    xattr::remove(root.join("bin/ping"), "security.capability").unwrap();
    std::fs::remove_file(root.join("bin/sh")).unwrap();
    symlink("bash", root.join("bin/sh")).unwrap();
    // Added, in an existing and in a new directory.
    file(root, "etc/motd", b"hello\n", 0o644);
    dir(root, "srv/www", 0o755);
    file(root, "srv/www/index.html", b"<p>hi</p>\n", 0o644);
    // Removed: a file, and a directory with contents (one whiteout only).
    std::fs::remove_file(root.join("var/lib/keep")).unwrap();
    std::fs::remove_dir_all(root.join("var/lib/gone")).unwrap();
    // Every entry of a directory replaced: an opaque whiteout. `-early`
    // sorts before `.wh..wh..opq` and must still come after it.
    std::fs::remove_file(root.join("var/cache/x/one")).unwrap();
    std::fs::remove_file(root.join("var/cache/x/two")).unwrap();
    file(root, "var/cache/x/-early", b"e\n", 0o644);
    file(root, "var/cache/x/three", b"3\n", 0o644);
    // Type changes: a directory becomes a symlink (usrmerge), a file a dir.
    std::fs::remove_dir_all(root.join("etc/a")).unwrap();
    symlink("a.b", root.join("etc/a")).unwrap();
    std::fs::remove_file(root.join("etc/old")).unwrap();
    dir(root, "etc/old", 0o755);
    file(root, "etc/old/new", b"n\n", 0o644);
    // Hard links: a new link to an unchanged file brings its group along
    // (and `chfn`, first in sort order, becomes the file); a link broken
    // into a copy of equal content is a change, and the rest of its old
    // group (`perl`, `perl5.36`, still linked) is not.
    std::fs::hard_link(root.join("bin/dash"), root.join("bin/dash-link")).unwrap();
    std::fs::hard_link(root.join("usr/bin/passwd"), root.join("usr/bin/chfn")).unwrap();
    std::fs::remove_file(root.join("usr/lib/perl-link")).unwrap();
    file(root, "usr/lib/perl-link", b"perl\n", 0o755);
    // Every mtime differs from the parent's (SDE + 1000): an mtime-only
    // change is not a change, so unchanged entries stay out of the diff.
    touch_all(root, SDE + 5000);
}

fn trees(tmp: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let parent = tmp.join("parent");
    let child = tmp.join("child");
    std::fs::create_dir(&parent).unwrap();
    std::fs::create_dir(&child).unwrap();
    base_tree(&parent);
    child_tree(&child);
    (parent, child)
}

#[test]
fn diff_holds_exactly_the_changes_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    let (parent, child) = trees(tmp.path());
    let listed = list(&diff_of(&parent, &child));
    let got: Vec<(&str, EntryType)> = listed.iter().map(|l| (l.path.as_str(), l.kind)).collect();
    let want = vec![
        ("bin/dash", EntryType::Regular),
        ("bin/dash-link", EntryType::Link),
        ("bin/ping", EntryType::Regular),
        ("bin/sh", EntryType::Symlink),
        ("etc/a", EntryType::Symlink),
        ("etc/a-b", EntryType::Regular),
        ("etc/hostname", EntryType::Regular),
        ("etc/motd", EntryType::Regular),
        ("etc/old/", EntryType::Directory),
        ("etc/old/new", EntryType::Regular),
        ("srv/", EntryType::Directory),
        ("srv/www/", EntryType::Directory),
        ("srv/www/index.html", EntryType::Regular),
        ("usr/bin/chfn", EntryType::Regular),
        ("usr/bin/passwd", EntryType::Link),
        ("usr/lib/perl-link", EntryType::Regular),
        ("var/cache/x/.wh..wh..opq", EntryType::Regular),
        ("var/cache/x/-early", EntryType::Regular),
        ("var/cache/x/three", EntryType::Regular),
        ("var/lib/.wh.gone", EntryType::Regular),
        ("var/lib/.wh.keep", EntryType::Regular),
    ];
    assert_eq!(got, want);
    let link = listed.iter().find(|l| l.path == "bin/dash-link").unwrap();
    assert_eq!(link.link.as_deref(), Some("bin/dash"));
    let link = listed.iter().find(|l| l.path == "usr/bin/passwd").unwrap();
    assert_eq!(link.link.as_deref(), Some("usr/bin/chfn"));
    let chfn = listed.iter().find(|l| l.path == "usr/bin/chfn").unwrap();
    assert_eq!(chfn.mode, 0o4755);
    let ping = listed.iter().find(|l| l.path == "bin/ping").unwrap();
    assert_eq!(
        ping.xattrs,
        vec![("user.kiln.note".to_string(), b"kept".to_vec())]
    );
    for l in &listed {
        assert_eq!(l.mtime, SDE, "{}", l.path);
    }
}

#[test]
fn parent_then_diff_gives_the_child() {
    let tmp = tempfile::tempdir().unwrap();
    let (parent, child) = trees(tmp.path());
    let merged = tmp.path().join("merged");
    std::fs::create_dir(&merged).unwrap();
    apply(&tar_of(&parent), &merged);
    apply(&diff_of(&parent, &child), &merged);
    // Every mtime in both is at or above SDE (or etc/old's, removed), so
    // equal tars mean equal trees: types, modes, owners, contents, links,
    // hard-link groups and xattrs.
    let (m, c) = (tar_of(&merged), tar_of(&child));
    if let Some(at) = m.iter().zip(&c).position(|(a, b)| a != b) {
        let block = at / 512 * 512;
        eprintln!(
            "first difference at {at}:\nmerged {:?}\nchild  {:?}",
            String::from_utf8_lossy(&m[block..block + 512]),
            String::from_utf8_lossy(&c[block..block + 512])
        );
    }
    assert!(
        m == c,
        "merged tree differs from the child:\n{:#?}",
        diff_listing(&list(&m), &list(&c))
    );
}

fn diff_listing(a: &[Listed], b: &[Listed]) -> Vec<String> {
    let mut out = Vec::new();
    for l in a {
        if !b.contains(l) {
            out.push(format!("merged: {l:?}"));
        }
    }
    for l in b {
        if !a.contains(l) {
            out.push(format!("child:  {l:?}"));
        }
    }
    out
}

#[test]
fn diff_is_reproducible_and_empty_for_equal_trees() {
    let tmp = tempfile::tempdir().unwrap();
    let (parent, child) = trees(tmp.path());
    let first = diff_of(&parent, &child);
    touch_all(&child, SDE + 99_999);
    assert!(
        first == diff_of(&parent, &child),
        "diff bytes changed with mtimes"
    );

    let same = tmp.path().join("same");
    std::fs::create_dir(&same).unwrap();
    base_tree(&same);
    assert_eq!(list(&diff_of(&parent, &same)), vec![]);
}

#[test]
fn removing_everything_at_the_top_is_an_opaque_root() {
    let tmp = tempfile::tempdir().unwrap();
    let parent = tmp.path().join("p");
    let child = tmp.path().join("c");
    std::fs::create_dir(&parent).unwrap();
    std::fs::create_dir(&child).unwrap();
    file(&parent, "a", b"a", 0o644);
    file(&parent, "b", b"b", 0o644);
    file(&child, "c", b"c", 0o644);
    let paths: Vec<String> = list(&diff_of(&parent, &child))
        .into_iter()
        .map(|l| l.path)
        .collect();
    assert_eq!(paths, [".wh..wh..opq", "c"]);
}
