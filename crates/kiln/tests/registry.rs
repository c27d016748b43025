//! `kiln push` and `kiln pull` against a real registry (Debian's
//! `docker-registry` on 127.0.0.1), read back by independent clients:
//! skopeo, plain HTTP GETs, qemu-img.

mod common;
#[path = "support/registry.rs"]
mod registry;
#[allow(dead_code)]
#[path = "../../kiln-manifest/tests/support/spdx_validator.rs"]
mod spdx_validator;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{examples, output, store};
use registry::Registry;
use spdx_validator::run;

/// `sha256:` + hex of `bytes`, by the digest code the build itself uses.
fn sha256_of(bytes: &str) -> String {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), bytes).unwrap();
    kiln_disk::sha256_file(file.path()).unwrap()
}

/// Runs kiln with the shared store, no auth file unless `env` names one.
fn kiln(args: &[&str], env: &[(&str, &str)]) -> common::Run {
    let home = tempfile::tempdir().unwrap();
    let mut all: Vec<(&str, &str)> = vec![
        ("HOME", home.path().to_str().unwrap()),
        ("XDG_RUNTIME_DIR", ""),
        ("REGISTRY_AUTH_FILE", ""),
    ];
    all.extend_from_slice(env);
    common::kiln(args, &all)
}

fn build(dir: &Path, formats: &[&str]) -> serde_json::Value {
    let mut args = vec!["build", dir.to_str().unwrap(), "--json"];
    for f in formats {
        args.extend(["--format", f]);
    }
    let r = kiln(&args, &[]);
    assert_eq!(r.code, 0, "kiln build: {}", r.stderr);
    serde_json::from_str(&r.stdout).unwrap()
}

/// The digest `index.json` of an OCI layout names.
fn layout_digest(layout: &Path) -> String {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string()
}

fn curl(url: &str, accept: &str, out: &Path) {
    run(Command::new("curl")
        .args(["--fail", "--silent", "--show-error", "-H"])
        .arg(format!("Accept: {accept}"))
        .arg("-o")
        .arg(out)
        .arg(url));
}

#[test]
fn net_root_tool_web_pushed_is_read_by_skopeo_pulled_back_identical_and_pushed_again_uploads_nothing()
 {
    let registry = Registry::plain();
    let ex = examples();
    let web = ex.path().join("web");
    let report = build(&web, &["oci", "qcow2"]);
    let image = output(&report, "oci")["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let qcow2 = PathBuf::from(output(&report, "qcow2")["path"].as_str().unwrap());
    let qcow2_size = std::fs::metadata(&qcow2).unwrap().len();
    assert!(
        qcow2_size > 128 << 20,
        "the disk must dwarf the upload chunks"
    );

    // The parent first, to its own repository: the catalog records it, and
    // web's push mounts the blobs they share from there.
    let base = ex.path().join("base");
    build(&base, &["oci"]);
    let r = kiln(
        &[
            "push",
            base.to_str().unwrap(),
            "--to",
            &format!("{}/team/base", registry.addr),
        ],
        &[],
    );
    assert_eq!(r.code, 0, "kiln push base: {}", r.stderr);
    let puts_before = registry.count("PUT", "/blobs/uploads/");

    // The push, its memory measured by time(1): a disk streams in bounded
    // chunks, so the peak stays far below the disk's size.
    let to = format!("{}/team/web", registry.addr);
    let out = Command::new("/usr/bin/time")
        .args(["-f", "maxrss-kib=%M"])
        .arg(env!("CARGO_BIN_EXE_kiln"))
        .args(["push", web.to_str().unwrap(), "--to", &to, "--json"])
        .env("KILN_CACHE", store())
        .env("REGISTRY_AUTH_FILE", "/nonexistent")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "kiln push: {stderr}");
    let pushed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let maxrss: u64 = stderr
        .lines()
        .find_map(|l| l.strip_prefix("maxrss-kib="))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        maxrss * 1024 < 96 << 20,
        "kiln push peaked at {maxrss} KiB for a {qcow2_size}-byte disk"
    );
    assert_eq!(pushed["reference"], format!("{to}@{image}"));
    // The catalog knows where the build went.
    let build_id = report["build"].as_str().unwrap();
    let r = kiln(&["show", build_id, "--json"], &[]);
    assert_eq!(r.code, 0, "kiln show: {}", r.stderr);
    let shown: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert!(
        shown["pushes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["reference"] == pushed["reference"] && p["tags"][0] == "1.0.0"),
        "{shown}"
    );
    let uploaded = pushed["uploaded"].as_u64().unwrap();
    assert!(uploaded >= 5, "{pushed}");
    assert_eq!(
        registry.count("PUT", "/blobs/uploads/") - puts_before,
        uploaded as usize
    );
    assert!(pushed["mounted"].as_u64().unwrap() >= 1, "{pushed}");
    assert!(registry.count("POST", "mount=sha256:") >= 1);
    assert!(registry.count("PATCH", "/blobs/uploads/") as u64 >= qcow2_size / (16 << 20));

    // skopeo reads the image kiln pushed, by the version tag and the build id.
    let raw = run(Command::new("skopeo").args([
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{to}:1.0.0"),
    ]));
    assert_eq!(sha256_of(&raw), image);
    let build_tag = report["build"]
        .as_str()
        .unwrap()
        .replace("sha256:", "build-");
    let raw_by_build = run(Command::new("skopeo").args([
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{to}:{build_tag}"),
    ]));
    assert_eq!(raw, raw_by_build);
    let copied = tempfile::tempdir().unwrap();
    let layout = copied.path().join("web.oci");
    run(Command::new("skopeo").args([
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{to}:1.0.0"),
        &format!("oci:{}:web", layout.display()),
    ]));
    assert_eq!(layout_digest(&layout), image);

    // The disk artifact: its manifest names the image as subject and is
    // listed under the referrers tag (this registry has no referrers API);
    // its blob, fetched by a plain HTTP GET, is the built disk.
    let disk = common::item(
        &pushed,
        "artifacts",
        "artifact_type",
        "application/vnd.kiln.disk.qcow2",
    );
    let base = format!("http://{}/v2/team/web", registry.addr);
    let scratch = tempfile::tempdir().unwrap();
    let referrers_path = scratch.path().join("referrers.json");
    let tag = image.replace("sha256:", "sha256-");
    curl(
        &format!("{base}/manifests/{tag}"),
        "application/vnd.oci.image.index.v1+json",
        &referrers_path,
    );
    let referrers: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&referrers_path).unwrap()).unwrap();
    let mut types: Vec<&str> = referrers["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["artifactType"].as_str().unwrap())
        .collect();
    types.sort();
    assert_eq!(
        types,
        [
            "application/spdx+json",
            "application/vnd.in-toto+json",
            "application/vnd.kiln.disk.qcow2"
        ]
    );
    let manifest_path = scratch.path().join("disk.json");
    curl(
        &format!("{base}/manifests/{}", disk["digest"].as_str().unwrap()),
        "application/vnd.oci.image.manifest.v1+json",
        &manifest_path,
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();
    assert_eq!(manifest["subject"]["digest"], image.as_str());
    assert_eq!(manifest["artifactType"], "application/vnd.kiln.disk.qcow2");
    let blob_digest = manifest["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let got = scratch.path().join("by-curl.qcow2");
    curl(&format!("{base}/blobs/{blob_digest}"), "*/*", &got);
    assert_files_equal(&got, &qcow2);
    std::fs::remove_file(&got).unwrap();

    // kiln pull: the layout and the disk under the names kiln build gives.
    let reference = format!("{to}:1.0.0");
    let pull = |out: &Path, more: &[&str]| {
        let mut args = vec!["pull", &reference, "--out", out.to_str().unwrap()];
        args.extend_from_slice(more);
        kiln(&args, &[])
    };
    let pulled = tempfile::tempdir().unwrap();
    let r = pull(pulled.path(), &["--json"]);
    assert_eq!(r.code, 0, "kiln pull: {}", r.stderr);
    assert_eq!(layout_digest(&pulled.path().join("web-1.0.0.oci")), image);
    let pulled_disk = pulled.path().join("web-1.0.0.qcow2");
    assert_files_equal(&pulled_disk, &qcow2);
    run(Command::new("qemu-img").arg("check").arg(&pulled_disk));
    // skopeo reads kiln's pulled layout as the same image.
    let again = run(Command::new("skopeo").args([
        "inspect",
        "--raw",
        &format!("oci:{}", pulled.path().join("web-1.0.0.oci").display()),
    ]));
    assert_eq!(again, raw);
    drop(pulled);

    // A second push finds everything there: no PUT at all, no upload.
    let puts = registry.count("PUT", "/");
    let r = kiln(&["push", web.to_str().unwrap(), "--to", &to, "--json"], &[]);
    assert_eq!(r.code, 0, "second kiln push: {}", r.stderr);
    let second: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(second["uploaded"], 0);
    assert_eq!(registry.count("PUT", "/"), puts);

    // A blob the registry corrupts is refused, and nothing is written.
    let data = registry.blob_data(&blob_digest);
    let mut bytes = std::fs::read(&data).unwrap();
    bytes[1 << 20] ^= 0xff;
    std::fs::write(&data, &bytes).unwrap();
    drop(bytes);
    let refused = tempfile::tempdir().unwrap();
    let r = pull(refused.path(), &[]);
    r.assert_exit(2, &["has digest"]);
    let left: Vec<_> = std::fs::read_dir(refused.path()).unwrap().collect();
    assert!(left.is_empty(), "a refused pull left {left:?}");
}

#[test]
fn net_root_tool_push_and_pull_over_tls_with_basic_auth() {
    let registry = Registry::tls_with_basic_auth();
    let ca = registry.ca.clone().unwrap();
    let ex = examples();
    let web = ex.path().join("web");
    let report = build(&web, &["oci"]);
    let image = output(&report, "oci")["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let to = format!("{}/team/web:stable", registry.addr);
    let dir = web.to_str().unwrap();
    let ca_arg = ca.to_str().unwrap();

    // No credentials: the user's problem, with a hint.
    let r = kiln(&["push", dir, "--to", &to, "--ca-file", ca_arg], &[]);
    r.assert_exit(1, &["refused our credentials", "hint:"]);

    // Credentials but not the CA: the certificate is not trusted, and kiln
    // does not fall back to plain HTTP on a TLS port.
    let auth = registry.auth_file();
    let auth_env = [("REGISTRY_AUTH_FILE", auth.to_str().unwrap())];
    let r = kiln(&["push", dir, "--to", &to], &auth_env);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.to_lowercase().contains("certificate"),
        "{}",
        r.stderr
    );

    let r = kiln(
        &["push", dir, "--to", &to, "--ca-file", ca_arg, "--json"],
        &auth_env,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let pushed: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(pushed["tags"][0], "stable");

    // skopeo, trusting the same CA, with the same login.
    let certs = tempfile::tempdir().unwrap();
    std::fs::copy(&ca, certs.path().join("ca.crt")).unwrap();
    let (user, pass) = registry.login.clone().unwrap();
    let raw = run(Command::new("skopeo").args([
        "inspect",
        "--raw",
        "--cert-dir",
        certs.path().to_str().unwrap(),
        "--creds",
        &format!("{user}:{pass}"),
        &format!("docker://{to}"),
    ]));
    assert_eq!(sha256_of(&raw), image);

    let pulled = tempfile::tempdir().unwrap();
    let r = kiln(
        &[
            "pull",
            &to,
            "--out",
            pulled.path().to_str().unwrap(),
            "--ca-file",
            ca_arg,
        ],
        &auth_env,
    );
    assert_eq!(r.code, 0, "kiln pull: {}", r.stderr);
    assert_eq!(layout_digest(&pulled.path().join("web-1.0.0.oci")), image);
}

fn assert_files_equal(a: &Path, b: &Path) {
    let (da, db) = (
        kiln_disk::sha256_file(a).unwrap(),
        kiln_disk::sha256_file(b).unwrap(),
    );
    assert_eq!(da, db, "{} and {} differ", a.display(), b.display());
}
