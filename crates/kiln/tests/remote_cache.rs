//! `kiln build --cache`: two machines (two stores) that share only a
//! registry (Debian's `docker-registry` on 127.0.0.1) and a PostgreSQL
//! catalog behave as one. The second never fetches a package the first
//! baked into a layer, and makes the same bytes.

mod common;
#[allow(dead_code)]
#[path = "../../kiln-catalog/tests/catalog/pg.rs"]
mod pg;
#[allow(dead_code)]
#[path = "support/registry.rs"]
mod registry;
#[allow(dead_code)]
#[path = "../../kiln-manifest/tests/support/spdx_validator.rs"]
mod spdx_validator;

use std::collections::BTreeSet;
use std::path::Path;

use common::{build_report, examples, kiln_with_store, seeded_store};
use registry::Registry;

/// A build of `dir` into `out` with the store `store`, as JSON.
fn build(dir: &Path, out: &Path, store: &Path, env: &[(&str, &str)]) -> serde_json::Value {
    let out = out.to_str().unwrap();
    build_report(
        dir,
        &["--format", "oci", "--format", "qcow2", "--out", out],
        env,
        store,
    )
}

/// The digests of the OCI image manifest and the qcow2 disk.
fn outputs(report: &serde_json::Value) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = report["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["format"] == "oci" || o["format"] == "qcow2")
        .map(|o| {
            (
                o["format"].as_str().unwrap().to_string(),
                o["digest"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    v.sort();
    assert_eq!(v.len(), 2, "an OCI image and a qcow2 disk: {report}");
    v
}

/// The sha256 of every package a lock pins.
fn locked_debs(lock: &Path) -> BTreeSet<String> {
    std::fs::read_to_string(lock)
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix("sha256 = \""))
        .map(|s| s.trim_end_matches('"').to_string())
        .collect()
}

/// Which of `debs` the store at `store` holds.
fn held(store: &Path, debs: &BTreeSet<String>) -> BTreeSet<String> {
    debs.iter()
        .filter(|d| store.join("blobs/sha256").join(d).is_file())
        .cloned()
        .collect()
}

fn strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().map(|s| s.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

/// Whether the report's rootfs stage of `image` came from the registry.
fn rootfs_from_remote(report: &serde_json::Value, image: &str) -> bool {
    report["stages"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["stage"] == "rootfs" && s["image"] == image && s["remote"] == true)
}

#[test]
fn pg_net_root_tool_two_stores_share_one_registry_cache_and_one_catalog() {
    let registry = Registry::plain();
    let pg = pg::PgServer::start();
    let catalog = pg.database("kiln");
    let cache = format!("{}/team/cache", registry.addr);
    let env = [
        ("KILN_CATALOG", catalog.as_str()),
        ("KILN_REMOTE_CACHE", cache.as_str()),
    ];
    let ex = examples();
    let (base, web) = (ex.path().join("base"), ex.path().join("web"));
    let base_debs = locked_debs(&base.join("kiln.lock"));
    let web_debs = locked_debs(&web.join("kiln.lock"));
    assert!(base_debs.len() > 100 && !web_debs.is_empty());
    let outs = tempfile::tempdir().unwrap();

    // Machine A: its packages already fetched, nothing built. It builds
    // base and pushes it to the cache.
    let a = seeded_store();
    let a_base = build(&base, &outs.path().join("a-base"), a.path(), &env);
    assert_eq!(
        strings(&a_base["remote_cache"]["pushed"]),
        ["base"],
        "{}",
        a_base["remote_cache"]
    );
    assert!(strings(&a_base["remote_cache"]["restored"]).is_empty());
    assert_eq!(registry.count("PUT", "/manifests/rootfs-"), 1);

    // The oracle: web built on one machine alone, without the cache.
    let single = build(
        &web,
        &outs.path().join("a-web"),
        a.path(),
        &[("KILN_CATALOG", catalog.as_str())],
    );
    assert!(single.get("remote_cache").is_none());

    // Machine B: an empty store. Base's tree comes from the registry.
    let b = tempfile::tempdir().unwrap();
    let blob_gets = registry.count("GET", "/blobs/sha256:");
    let b_web = build(&web, &outs.path().join("b-web"), b.path(), &env);
    let remote = &b_web["remote_cache"];
    assert_eq!(strings(&remote["restored"]), ["base"], "{remote}");
    assert_eq!(strings(&remote["pushed"]), ["web"], "{remote}");
    assert!(rootfs_from_remote(&b_web, "base"));
    assert!(!rootfs_from_remote(&b_web, "web"));
    let web_rootfs = b_web["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stage"] == "rootfs" && s["image"] == "web")
        .unwrap();
    assert_eq!(
        web_rootfs["note"], "began from a copy of base made while this image's packages downloaded",
        "{web_rootfs}"
    );
    // The layer and the entry's config, nothing else.
    assert_eq!(registry.count("GET", "/blobs/sha256:") - blob_gets, 2);
    assert_eq!(
        held(b.path(), &base_debs),
        BTreeSet::new(),
        "machine B fetched none of base's packages"
    );
    assert_eq!(
        held(b.path(), &web_debs),
        web_debs,
        "machine B fetched web's own packages into its store"
    );
    assert_eq!(
        outputs(&b_web),
        outputs(&single),
        "the same bytes as one machine"
    );

    // Machine C: empty too; both trees come from the registry (web's as the
    // diff against base's), no package at all is fetched.
    let c = tempfile::tempdir().unwrap();
    let c_web = build(&web, &outs.path().join("c-web"), c.path(), &env);
    let remote = &c_web["remote_cache"];
    assert_eq!(strings(&remote["restored"]), ["base", "web"], "{remote}");
    assert!(strings(&remote["pushed"]).is_empty(), "{remote}");
    assert!(held(c.path(), &base_debs).is_empty() && held(c.path(), &web_debs).is_empty());
    assert_eq!(outputs(&c_web), outputs(&single));

    // One catalog: the build B made is the build A made.
    assert_eq!(b_web["build"], single["build"]);
    assert_eq!(c_web["build"], single["build"]);

    // Machine D: `kiln rebuild` reads the same cache (base alone in its
    // fleet: it has no disk to boot). Its rollout builds base from the
    // registry's layer, with none of base's packages fetched.
    let fleet = tempfile::tempdir().unwrap();
    common::copy_dir(&base, &fleet.path().join("base"));
    let d = tempfile::tempdir().unwrap();
    let fleet_dir = fleet.path().to_str().unwrap();
    let run = kiln_with_store(&["rebuild", fleet_dir, "base", "--json"], &env, d.path());
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let image = &report["images"][0];
    assert_eq!(image["name"], "base", "{report}");
    assert_eq!(image["build"], a_base["build"], "{report}");
    assert!(
        held(d.path(), &base_debs).is_empty(),
        "machine D fetched none of base's packages"
    );
}

/// The cache is never a reason for a build to fail: a registry nobody
/// listens on is a note, a corrupt entry is refused and the tree built
/// locally, and `--cache-mode read` pushes nothing.
#[test]
fn net_root_tool_an_unreachable_or_corrupt_cache_is_a_note_and_the_build_goes_on() {
    let ex = examples();
    let base = ex.path().join("base");
    let outs = tempfile::tempdir().unwrap();
    let store = seeded_store();
    let dead = "127.0.0.1:9/team/cache";
    let r = build(
        &base,
        &outs.path().join("dead"),
        store.path(),
        &[("KILN_REMOTE_CACHE", dead)],
    );
    let notes = strings(&r["remote_cache"]["notes"]);
    assert!(!notes.is_empty(), "{}", r["remote_cache"]);
    let oracle = outputs(&r);

    // A registry whose entry for base holds a layer that is not base's.
    let registry = Registry::plain();
    let cache = format!("{}/team/cache", registry.addr);
    let r = build(
        &base,
        &outs.path().join("push"),
        store.path(),
        &[("KILN_REMOTE_CACHE", cache.as_str())],
    );
    assert_eq!(strings(&r["remote_cache"]["pushed"]), ["base"]);
    let layer = r["layers"][0]["digest"].as_str().unwrap().to_string();
    let data = registry.blob_data(&layer);
    let mut bytes = std::fs::read(&data).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&data, bytes).unwrap();

    // Another machine, its packages fetched, reads the corrupt entry.
    let other = seeded_store();
    let r = kiln_with_store(
        &[
            "build",
            base.to_str().unwrap(),
            "--format",
            "oci",
            "--format",
            "qcow2",
            "--out",
            outs.path().join("other").to_str().unwrap(),
            "--cache",
            &cache,
            "--cache-mode",
            "read",
            "--json",
        ],
        &[],
        other.path(),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let remote = &r["remote_cache"];
    assert!(strings(&remote["restored"]).is_empty(), "{remote}");
    assert!(strings(&remote["pushed"]).is_empty(), "read mode: {remote}");
    assert!(
        strings(&remote["notes"])
            .iter()
            .any(|n| n.contains("rootfs base") && n.contains("digest")),
        "{remote}"
    );
    assert!(!rootfs_from_remote(&r, "base"));
    assert_eq!(outputs(&r), oracle);
}
