//! `kiln gc` on a store that three builds filled: what only the oldest
//! used goes, what the newest needs stays (a warm rebuild does no work),
//! and a build running beside gc succeeds.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{examples, kiln_with_store, seeded_store};

/// Builds web's OCI image with `site` as its page; returns the report.
fn build(web: &Path, store: &Path, site: &str) -> serde_json::Value {
    std::fs::write(web.join("files/index.html"), site).unwrap();
    let r = kiln_with_store(
        &["build", web.to_str().unwrap(), "--format", "oci", "--json"],
        &[],
        store,
    );
    assert_eq!(r.code, 0, "kiln build: {}", r.stderr);
    serde_json::from_str(&r.stdout).unwrap()
}

fn key(report: &serde_json::Value) -> String {
    report["build"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_string()
}

fn web_layer(report: &serde_json::Value) -> String {
    let layers = report["layers"].as_array().unwrap();
    let d = layers.last().unwrap()["digest"].as_str().unwrap();
    d.trim_start_matches("sha256:").to_string()
}

fn gc(ex: &Path, store: &Path, keep: &str, dry_run: bool) -> serde_json::Value {
    let mut args = vec!["gc", ex.to_str().unwrap(), "--keep", keep, "--json"];
    if dry_run {
        args.push("--dry-run");
    }
    let r = kiln_with_store(&args, &[], store);
    assert_eq!(r.code, 0, "kiln gc: {}", r.stderr);
    serde_json::from_str(&r.stdout).unwrap()
}

fn removed(report: &serde_json::Value) -> Vec<String> {
    report["removed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["path"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn net_root_gc_frees_what_only_the_oldest_build_used_and_keeps_the_newest_warm() {
    let store = seeded_store();
    let s = store.path();
    let ex = examples();
    let web = ex.path().join("web");
    let first = build(&web, s, "<h1>one</h1>\n");
    // The catalog's times are whole seconds: set the oldest build apart.
    std::thread::sleep(Duration::from_secs(2));
    let since = Instant::now();
    let second = build(&web, s, "<h1>two</h1>\n");
    let third = build(&web, s, "<h1>three</h1>\n");
    // Keep exactly what was used since the second build began, counted when
    // gc runs: a window counted before a slow dry run would end after that
    // build began, and drop what it used.
    let keep = || format!("{}s", since.elapsed().as_secs() + 1);
    let (k1, k2, k3) = (key(&first), key(&second), key(&third));
    assert!(k1 != k2 && k2 != k3);
    let base_key = first["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|st| st["stage"] == "rootfs" && st["image"] == "base")
        .unwrap()["key"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_string();

    let base_layer = third["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_string();
    let only_first = [
        s.join("rootfs-v2").join(&k1),
        s.join("layers-v1").join(format!("{k1}.json")),
        s.join("blobs/sha256").join(web_layer(&first)),
    ];
    let newest = [
        s.join("rootfs-v2").join(&k3),
        s.join("rootfs-v2").join(&k2),
        s.join("rootfs-v2").join(&base_key),
        s.join("layers-v1").join(format!("{k3}.json")),
        s.join("blobs/sha256").join(web_layer(&third)),
        s.join("blobs/sha256").join(&base_layer),
    ];
    for p in only_first.iter().chain(&newest) {
        assert!(p.exists(), "{} missing before gc", p.display());
    }
    // Upload sessions of `kiln push`: one a killed push left long ago, one
    // from a push that may resume.
    let sessions = s.join("uploads-v1");
    std::fs::create_dir_all(&sessions).unwrap();
    let (stale, live) = (sessions.join("0".repeat(64)), sessions.join("1".repeat(64)));
    for p in [&stale, &live] {
        std::fs::write(p, "/v2/team/blobs/uploads/session").unwrap();
    }
    let long_ago = std::time::SystemTime::now() - Duration::from_secs(40 * 86_400);
    std::fs::File::options()
        .write(true)
        .open(&stale)
        .unwrap()
        .set_modified(long_ago)
        .unwrap();

    // --dry-run names what would go and removes nothing.
    let dry = gc(ex.path(), s, &keep(), true);
    let would = removed(&dry);
    for p in &only_first {
        assert!(
            would.contains(&p.display().to_string()),
            "{} not in {would:?}",
            p.display()
        );
        assert!(p.exists());
    }
    assert!(dry["bytes"].as_u64().unwrap() > 0);

    // gc while a fourth build runs: both succeed, whichever waits.
    std::fs::write(web.join("files/index.html"), "<h1>four</h1>\n").unwrap();
    let fourth = common::kiln_command(
        &["build", web.to_str().unwrap(), "--format", "oci", "--json"],
        &[],
        s,
    )
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    let done = gc(ex.path(), s, &keep(), false);
    let out = fourth.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the build beside gc failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let gone = removed(&done);
    assert!(!stale.exists() && gone.contains(&stale.display().to_string()));
    assert!(live.exists(), "a recent upload session stays");
    for p in &only_first {
        assert!(!p.exists(), "{} survived gc", p.display());
        assert!(gone.contains(&p.display().to_string()));
    }
    for p in &newest {
        assert!(
            p.exists(),
            "gc removed {}, which the newest builds need",
            p.display()
        );
    }

    // The newest definition again: every stage from the store.
    let again = build(&web, s, "<h1>three</h1>\n");
    assert_eq!(key(&again), k3);
    for st in again["stages"].as_array().unwrap() {
        if st["stage"] == "rootfs" || st["stage"] == "layer" {
            assert_eq!(st["cached"], true, "{st} after gc");
        }
    }
}
