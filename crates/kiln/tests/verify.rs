//! Verified on use: what the store and `out/` hold is checked where it is
//! used, not trusted because it exists. A byte flipped in a stored `.deb`,
//! in a stored layer blob, in a cached Packages index or in an `out/` OCI
//! blob, and a root filesystem whose completion record is gone: the next
//! run catches each (or does not read it) and gives what a clean run gives.
//! Damage is only ever done to private stores: the shared one is read only.

mod common;

use std::path::{Path, PathBuf};

use common::{build_report, examples, kiln, kiln_with_store, output, write};

/// `sha256:<hex>` of a file, as reports write digests.
fn digest(path: &Path) -> String {
    kiln_disk::sha256_file(path).unwrap_or_else(|e| panic!("hashing {}: {e}", path.display()))
}

/// Flips one bit of the byte at the middle of `path`, in place.
fn flip_middle(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let at = bytes.len() / 2;
    bytes[at] ^= 0x01;
    std::fs::write(path, bytes).unwrap();
}

/// The content-addressed file `dir/<hex>` still holds what its name says.
fn intact(dir: &Path, hex: &str) -> bool {
    let path = dir.join(hex);
    path.is_file() && digest(&path) == format!("sha256:{hex}")
}

fn hex(digest: &serde_json::Value) -> String {
    digest
        .as_str()
        .unwrap_or_else(|| panic!("not a digest: {digest}"))
        .trim_start_matches("sha256:")
        .to_string()
}

/// A new store holding copies (never links: they get damaged) of the
/// shared store's blobs named in `hexes`.
fn store_with_copies(hexes: &[String]) -> tempfile::TempDir {
    let store = tempfile::tempdir().unwrap();
    let (from, to) = (
        common::store().join("blobs/sha256"),
        store.path().join("blobs/sha256"),
    );
    std::fs::create_dir_all(&to).unwrap();
    for h in hexes {
        std::fs::copy(from.join(h), to.join(h))
            .unwrap_or_else(|e| panic!("copying blob {h} from the shared store: {e}"));
    }
    store
}

fn build(dir: &Path, store: &Path, out: &Path) -> serde_json::Value {
    let out = out.to_str().unwrap();
    build_report(
        dir,
        &["--out", out, "--format", "oci", "--format", "raw"],
        &[],
        store,
    )
}

fn stage<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    common::item(report, "stages", "stage", name)
}

#[test]
fn net_root_damage_in_the_store_and_in_out_is_caught_and_the_build_is_the_same() {
    let ex = examples();
    let base = ex.path().join("base");
    // The shared store holds the packages; this test damages copies.
    let r = kiln(&["fetch", base.to_str().unwrap()], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lock = kiln_lock::read(&base.join("kiln.lock")).unwrap();
    let debs: Vec<String> = lock.packages.iter().map(|p| p.sha256.clone()).collect();
    let store = store_with_copies(&debs);
    let s = store.path();
    let out = ex.path().join("out");

    let clean = build(&base, s, &out);
    let key = hex(&stage(&clean, "rootfs")["key"]);
    let record = s.join("rootfs-v2").join(format!("{key}.json"));
    assert!(
        record.is_file(),
        "no completion record at {}",
        record.display()
    );
    let layer = hex(&clean["layers"][0]["digest"]);
    let oci = PathBuf::from(output(&clean, "oci")["path"].as_str().unwrap());
    let raw = PathBuf::from(output(&clean, "raw")["path"].as_str().unwrap());
    let out_blobs = oci.join("blobs/sha256");
    let store_blobs = s.join("blobs/sha256");
    assert!(intact(&out_blobs, &layer) && intact(&store_blobs, &layer));

    // The damage: a package's bytes, the tree's record, the stored layer,
    // the layer as shipped in out/; and the disk removed, so it is made
    // again from the rebuilt tree.
    let victim = lock
        .packages
        .iter()
        .find(|p| p.name == "procps")
        .expect("examples/base installs procps");
    flip_middle(&store_blobs.join(&victim.sha256));
    std::fs::remove_file(&record).unwrap();
    flip_middle(&store_blobs.join(&layer));
    flip_middle(&out_blobs.join(&layer));
    std::fs::remove_file(&raw).unwrap();
    assert!(!intact(&store_blobs, &victim.sha256));

    let again = build(&base, s, &out);
    assert_eq!(
        stage(&again, "rootfs")["cached"],
        false,
        "a tree without its record was trusted: {again}"
    );
    assert_eq!(stage(&again, "layer")["cached"], false, "{again}");
    assert_eq!(
        output(&again, "oci")["digest"],
        output(&clean, "oci")["digest"],
        "the OCI manifest differs from the clean build's"
    );
    assert_eq!(
        output(&again, "raw")["digest"],
        output(&clean, "raw")["digest"],
        "the disk differs from the clean build's"
    );
    assert_eq!(digest(&raw), output(&clean, "raw")["digest"]);
    // The damaged package was caught on unpack and fetched again.
    assert!(
        intact(&store_blobs, &victim.sha256),
        "{} is still damaged in the store",
        victim.name
    );
    assert!(intact(&store_blobs, &layer), "the stored layer is damaged");
    assert!(
        intact(&out_blobs, &layer),
        "out/ still ships the damaged layer"
    );
    assert!(
        record.is_file(),
        "the rebuilt tree has no completion record"
    );
}

/// A minimal definition, locked afresh in `store`; returns kiln.lock's text.
fn lock_in(dir: &Path, store: &Path, offline: bool) -> common::Run {
    write(
        &dir.join("kiln.toml"),
        "[image]\nname = \"idx\"\nversion = \"1\"\n\n[base]\ndistro = \"debian\"\nsuite = \"bookworm\"\nvariant = \"minbase\"\n",
    );
    let _ = std::fs::remove_file(dir.join("kiln.lock"));
    let mut args = vec!["lock", dir.to_str().unwrap()];
    if offline {
        args.push("--offline");
    }
    kiln_with_store(&args, &[], store)
}

#[test]
fn net_a_damaged_cached_index_is_fetched_again_and_the_lock_is_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let shared = common::store();
    let first = dir.path().join("first");
    let r = lock_in(&first, &shared, false);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lock = kiln_lock::read(&first.join("kiln.lock")).unwrap();
    let indices: Vec<String> = lock
        .suites
        .iter()
        .flat_map(|s| s.indices.iter())
        .map(|d| d.trim_start_matches("sha256:").to_string())
        .collect();
    let store = store_with_copies(&indices);
    let blobs = store.path().join("blobs/sha256");
    // The smallest index, so fetching it again is quick.
    let victim = indices
        .iter()
        .min_by_key(|h| std::fs::metadata(blobs.join(h)).unwrap().len())
        .unwrap()
        .clone();
    flip_middle(&blobs.join(&victim));

    let damaged = dir.path().join("damaged");
    let r = lock_in(&damaged, store.path(), false);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // The oracle: the same definition locked now with the shared store.
    let clean = dir.path().join("clean");
    let r = lock_in(&clean, &shared, false);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        std::fs::read_to_string(damaged.join("kiln.lock")).unwrap(),
        std::fs::read_to_string(clean.join("kiln.lock")).unwrap(),
        "a lock made over a damaged index differs from a clean one"
    );
    assert!(
        intact(&blobs, &victim),
        "the damaged index was not fetched again"
    );

    // Offline there is nothing to fetch it from: the damaged index is
    // refused (and evicted), never parsed.
    flip_middle(&blobs.join(&victim));
    let offline = dir.path().join("offline");
    let r = lock_in(&offline, store.path(), true);
    assert_ne!(r.code, 0, "an offline lock used a damaged index");
    assert!(r.stderr.contains(&victim), "{}", r.stderr);
    assert!(!blobs.join(&victim).exists(), "the damaged index was kept");
    assert!(!offline.join("kiln.lock").exists());
}
