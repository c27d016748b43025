//! Helpers shared by the integration tests: real packages from the example
//! locks (downloaded once into a store under the target dir), crafted
//! packages, and a manifest of a tree for comparing two builds.

#![allow(dead_code, reason = "each test binary uses a part of it")]

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use kiln_rootfs::Deb;
use kiln_store::{Digest, Expected, Fetcher, Store};
use sha2::Digest as _;

/// The workspace root (two levels above this crate).
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The packages of `examples/<example>/kiln.lock` that `keep` selects, as
/// `.deb` files in the test store (fetched from the host's mirror the first
/// time), and the lock's SOURCE_DATE_EPOCH (its newest Release date).
pub fn lock_debs(
    example: &str,
    keep: impl Fn(&kiln_lock::LockedPackage) -> bool,
) -> (Vec<Deb>, i64) {
    let lock = kiln_lock::read(&workspace().join("examples").join(example).join("kiln.lock"))
        .expect("reading the example lock");
    let epoch = lock
        .suites
        .iter()
        .filter_map(|s| kiln_deb::release::parse_date(&s.date))
        .max()
        .expect("the lock has suite dates");
    let store = Store::open(Path::new(env!("CARGO_TARGET_TMPDIR")).join("kiln-test-store"))
        .expect("opening the test store");
    let mirrors = kiln_archive::Mirrors::discover(None, "bookworm", Path::new("/"))
        .expect("finding a mirror");
    let fetcher = Fetcher::default();
    let wanted: Vec<_> = lock.packages.iter().filter(|p| keep(p)).collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut paths: Vec<Option<PathBuf>> = vec![None; wanted.len()];
    let results = std::sync::Mutex::new(&mut paths);
    std::thread::scope(|s| {
        for _ in 0..6 {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(p) = wanted.get(i) else { break };
                    let base = if p.suite.ends_with("-security") {
                        &mirrors.security
                    } else {
                        &mirrors.debian
                    };
                    let sha = Digest::from_hex(&p.sha256).expect("lock digest");
                    let entry = fetcher
                        .fetch_blob(
                            &store,
                            &format!("{base}/{}", p.path),
                            &Expected::new(sha, p.size),
                        )
                        .unwrap_or_else(|e| panic!("fetching {}: {e}", p.name));
                    results.lock().unwrap()[i] = Some(entry.path);
                }
            });
        }
    });
    let debs = wanted
        .iter()
        .zip(paths)
        .map(|(p, path)| Deb {
            name: p.name.clone(),
            version: p.version.clone(),
            path: path.expect("fetched"),
            sha256: Digest::from_hex(&p.sha256).expect("lock digest"),
            essential: p.reason == "essential",
        })
        .collect();
    (debs, epoch)
}

/// One line per entry of the tree under `root`, sorted: path, type, mode,
/// owner, mtime, and content digest, link target or device number.
pub fn manifest(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(path) = stack.pop() {
        let meta = std::fs::symlink_metadata(&path).unwrap();
        let rel = path.strip_prefix(root).unwrap().display().to_string();
        let ft = meta.file_type();
        let what = if ft.is_dir() {
            for e in std::fs::read_dir(&path).unwrap() {
                stack.push(e.unwrap().path());
            }
            "dir".to_string()
        } else if ft.is_symlink() {
            format!("link -> {}", std::fs::read_link(&path).unwrap().display())
        } else if ft.is_file() {
            let bytes = std::fs::read(&path).unwrap();
            format!(
                "file {} {}",
                bytes.len(),
                hex::encode(sha2::Sha256::digest(&bytes))
            )
        } else {
            format!("special {:x}", meta.rdev())
        };
        out.push(format!(
            "/{rel} {:o} {}:{} {} {what}",
            meta.mode(),
            meta.uid(),
            meta.gid(),
            meta.mtime()
        ));
    }
    out.sort();
    out
}
