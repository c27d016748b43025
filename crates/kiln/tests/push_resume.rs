//! A `kiln push` stopped in the middle of a large blob (SIGTERM, as a CI
//! runner cancelling a job sends) resumes in the next process: the upload
//! session is kept in the store, and the second push sends only what the
//! registry (Debian's docker-registry on 127.0.0.1) does not hold yet,
//! counted in the registry's log.

mod common;
#[allow(dead_code)]
#[path = "support/registry.rs"]
mod registry;
#[allow(dead_code)]
#[path = "../../kiln-manifest/tests/support/spdx_validator.rs"]
mod spdx_validator;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{build_report, examples, kiln_with_store, output, seeded_store};
use registry::Registry;

/// kiln-registry's chunk size.
const CHUNK: u64 = 16 << 20;

fn chunks(size: u64) -> usize {
    if size <= CHUNK {
        0
    } else {
        size.div_ceil(CHUNK) as usize
    }
}

#[test]
fn net_root_tool_a_stopped_push_resumes_from_the_offset_the_registry_holds() {
    let registry = Registry::plain();
    let ex = examples();
    let base = ex.path().join("base");
    let store = seeded_store();
    let report = build_report(
        &base,
        &["--format", "oci", "--format", "raw"],
        &[],
        store.path(),
    );
    let raw = output(&report, "raw").clone();
    let disk_chunks = chunks(raw["size"].as_u64().unwrap());
    assert!(disk_chunks >= 32, "the disk must span many chunks");
    // The image's blobs go first; the layer may be chunked too.
    let before_disk: usize = report["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| chunks(l["size"].as_u64().unwrap()))
        .sum();

    let to = format!("{}/team/resume", registry.addr);
    let patches = || registry.count("PATCH", "/blobs/uploads/");
    let mut first = common::kiln_command(
        &["push", base.to_str().unwrap(), "--to", &to],
        &[("REGISTRY_AUTH_FILE", "/nonexistent")],
        store.path(),
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let started = Instant::now();
    // Stopped once a few chunks of the disk are in.
    while patches() < before_disk + 4 {
        assert!(
            first.try_wait().unwrap().is_none(),
            "the push ended before it could be stopped"
        );
        assert!(started.elapsed() < Duration::from_secs(300));
        std::thread::sleep(Duration::from_millis(10));
    }
    // SAFETY: a plain kill(2) of our own child.
    assert_eq!(unsafe { libc::kill(first.id() as i32, libc::SIGTERM) }, 0);
    let status = first.wait().unwrap();
    assert!(
        !status.success(),
        "the stopped push must not report success"
    );
    let sent_first = patches() - before_disk;
    assert!(sent_first < disk_chunks, "stopped too late: {sent_first}");
    let session_queries = registry.count("GET", "/blobs/uploads/");

    let r = kiln_with_store(
        &["push", base.to_str().unwrap(), "--to", &to, "--json"],
        &[("REGISTRY_AUTH_FILE", "/nonexistent")],
        store.path(),
    );
    assert_eq!(r.code, 0, "the second push: {}", r.stderr);
    let sent_second = patches() - before_disk - sent_first;
    // Exactly the rest.
    assert_eq!(
        sent_first + sent_second,
        disk_chunks,
        "the second push sent {sent_second} chunks, the first {sent_first}, of {disk_chunks}"
    );
    assert!(
        registry.count("GET", "/blobs/uploads/") > session_queries,
        "the second push asked the registry how far the upload got"
    );
    // The registry checked the whole blob against its digest at the end.
    let digest = raw["digest"].as_str().unwrap();
    let status = Command::new("curl")
        .args(["--silent", "--head", "--fail"])
        .arg(format!(
            "http://{}/v2/team/resume/blobs/{digest}",
            registry.addr
        ))
        .status()
        .unwrap();
    assert!(status.success(), "the registry holds the disk {digest}");
}
