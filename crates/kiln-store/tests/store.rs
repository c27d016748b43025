//! The store's promises: verified content only, atomic entries, a lock that
//! serialises without failing anyone.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier, Mutex};
use std::time::Duration;

use kiln_store::{Digest, Expected, Store, StoreError, default_root};

/// Every file under `root`, relative, sorted.
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

#[test]
fn blobs_land_under_their_digest() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let d = Digest::of(b"hello");
    assert_eq!(store.blob(&d), None);
    let e = store
        .put_blob(b"hello", &Expected::new(d, 5), "greeting")
        .unwrap();
    assert_eq!(e.sha256, d);
    assert_eq!(e.path, dir.path().join("blobs/sha256").join(d.hex()));
    assert_eq!(std::fs::read(&e.path).unwrap(), b"hello");
    assert_eq!(store.blob(&d), Some(e.path.clone()));
    // Writing the same content again is a no-op, not an error.
    let again = store
        .put_blob_from(&mut &b"hello"[..], &Expected::default(), "again")
        .unwrap();
    assert_eq!(again, e);
}

#[test]
fn mismatching_content_is_refused_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let before = files(dir.path());
    let want = Digest::of(b"expected");
    let err = store
        .put_blob(b"tampered", &Expected::sha256(want), "file:///x/Packages")
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("file:///x/Packages"), "{msg}");
    assert!(msg.contains(&want.hex()), "{msg}");
    assert!(msg.contains(&Digest::of(b"tampered").hex()), "{msg}");
    let err = store
        .put_blob_from(
            &mut &b"abc"[..],
            &Expected {
                sha256: None,
                size: Some(4),
            },
            "x",
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::SizeMismatch {
                expected: 4,
                got: 3,
                ..
            }
        ),
        "{err}"
    );
    // A staged write that is abandoned half-way is removed too.
    let mut staged = store.stage_blob().unwrap();
    staged.write_all(b"half").unwrap();
    assert_eq!(files(dir.path()).len(), before.len() + 1);
    drop(staged);
    assert_eq!(files(dir.path()), before);
}

#[test]
fn buckets_hold_keyed_entries_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let b = store.bucket("indices-v1").unwrap();
    assert_eq!(b.get("releases/m/bookworm").unwrap(), None);
    b.put("releases/m/bookworm", b"one").unwrap();
    b.put("releases/m/bookworm", b"two").unwrap();
    b.put("releases/m/trixie", b"three").unwrap();
    assert_eq!(b.get("releases/m/bookworm").unwrap().unwrap(), b"two");
    assert_eq!(b.list("releases/m").unwrap(), ["bookworm", "trixie"]);
    assert_eq!(b.list("nothing-here").unwrap(), Vec::<String>::new());
    assert!(dir.path().join("indices-v1/releases/m/trixie").is_file());
    for bad in ["", "../escape", "/abs", "a/../../b", ".tmp-x", "a/.tmp-y"] {
        assert!(
            matches!(b.put(bad, b"x"), Err(StoreError::BadKey { .. })),
            "{bad:?} was accepted"
        );
    }
    assert!(store.bucket("../x").is_err());
}

#[test]
fn the_root_follows_kiln_cache_then_xdg_then_home() {
    let p = |s: &str| Some(PathBuf::from(s));
    assert_eq!(default_root(p("/k"), p("/x"), p("/h")), p("/k"));
    assert_eq!(default_root(None, p("/x"), p("/h")), p("/x/kiln"));
    assert_eq!(default_root(p(""), p(""), p("/h")), p("/h/.cache/kiln"));
    assert_eq!(default_root(None, None, None), None);
}

#[test]
fn two_writers_under_the_lock_both_succeed_one_after_the_other() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let start = Arc::new(Barrier::new(2));
    let workers: Vec<_> = (0..2)
        .map(|i| {
            let (root, log, start) = (dir.path().to_path_buf(), log.clone(), start.clone());
            std::thread::spawn(move || {
                // Each worker opens the store on its own, as two processes
                // would: flock locks belong to the open file, not the process.
                let store = Store::open(&root).unwrap();
                start.wait();
                let _lock = store.lock().unwrap();
                log.lock().unwrap().push(format!("start {i}"));
                std::thread::sleep(Duration::from_millis(100));
                let content = format!("worker {i}");
                store
                    .put_blob(content.as_bytes(), &Expected::default(), "w")
                    .unwrap();
                log.lock().unwrap().push(format!("end {i}"));
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let log = log.lock().unwrap();
    // Critical sections never interleave.
    assert_eq!(log.len(), 4);
    assert_eq!(log[0].replace("start", "end"), log[1], "{log:?}");
    assert_eq!(log[2].replace("start", "end"), log[3], "{log:?}");
    let store = Store::open(dir.path()).unwrap();
    for i in 0..2 {
        assert!(
            store
                .blob(&Digest::of(format!("worker {i}").as_bytes()))
                .is_some()
        );
    }
}

#[test]
fn shared_locks_coexist_and_exclude_an_exclusive_one() {
    let dir = tempfile::tempdir().unwrap();
    let a = Store::open(dir.path()).unwrap();
    let b = Store::open(dir.path()).unwrap();
    let s1 = a.lock_shared().unwrap();
    let s2 = b.lock_shared().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let root = dir.path().to_path_buf();
    let t = std::thread::spawn(move || {
        let _x = Store::open(root).unwrap().lock().unwrap();
        tx.send(()).unwrap();
    });
    assert!(
        rx.recv_timeout(Duration::from_millis(200)).is_err(),
        "exclusive lock taken while shared held"
    );
    drop((s1, s2));
    rx.recv_timeout(Duration::from_secs(10)).unwrap();
    t.join().unwrap();
}

#[test]
fn sweeping_removes_only_stale_temporaries() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let kept = store.put_blob(b"entry", &Expected::default(), "e").unwrap();
    let leftover = dir.path().join("blobs/sha256/.tmp-killed");
    std::fs::write(&leftover, b"half").unwrap();
    let in_bucket = store.bucket("indices").unwrap().dir().join(".tmp-index");
    std::fs::write(&in_bucket, b"half").unwrap();
    // Inside an entry's tree, a file named like a temporary is content.
    let tree = store.bucket("rootfs-v2").unwrap().dir().join("key/etc");
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::write(tree.join(".tmp-content"), b"mine").unwrap();
    assert_eq!(
        store.sweep_temporaries(Duration::from_secs(3600)).unwrap(),
        0
    );
    assert_eq!(store.sweep_temporaries(Duration::ZERO).unwrap(), 2);
    assert!(!leftover.exists() && !in_bucket.exists());
    assert!(tree.join(".tmp-content").exists());
    assert!(kept.path.is_file());
}
