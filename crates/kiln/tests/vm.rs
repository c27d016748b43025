//! `kiln test` end to end: the built disk booted under QEMU with OVMF (TCG:
//! nested KVM hangs on the machines this runs on), its runtime configuration
//! delivered, its checks run inside it. `vm_` tests boot machines.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{Run, examples, kiln, repo, write};

/// Each test records into its own catalog, beside its examples.
fn catalog(dir: &Path) -> String {
    let root = dir.ancestors().nth(1).unwrap_or(dir);
    root.join("catalog.sqlite").to_string_lossy().into_owned()
}

fn build(dir: &Path, formats: &[&str]) -> PathBuf {
    let out = dir.join("out");
    let mut args = vec![
        "build",
        dir.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    for f in formats {
        args.extend(["--format", f]);
    }
    let r = kiln(&args, &[("KILN_CATALOG", &catalog(dir))]);
    assert_eq!(r.code, 0, "kiln build: {}", r.stderr);
    out
}

fn test(dir: &Path, extra: &[&str]) -> Run {
    let mut args = vec!["test", dir.to_str().unwrap(), "--json"];
    args.extend(extra);
    kiln(
        &args,
        &[("KILN_ACCEL", "tcg"), ("KILN_CATALOG", &catalog(dir))],
    )
}

/// `kiln show NAME@latest --json` from the test's catalog.
fn recorded(dir: &Path, name: &str) -> serde_json::Value {
    let r = kiln(
        &["show", &format!("{name}@latest"), "--json"],
        &[("KILN_CATALOG", &catalog(dir))],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    serde_json::from_str(&r.stdout).unwrap()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn vm_web_passes_its_checks_twice_across_a_reboot_and_bakes_no_runtime_value() {
    let ex = examples();
    let web = ex.path().join("web");
    let out = build(&web, &["raw", "qcow2", "tar"]);
    let token = format!("token-{}", std::process::id() as u64 * 7919 + 1234567);
    let config = ex.path().join("runtime.env");
    write(&config, &format!("SITE_NAME={token}\n"));

    let r = test(
        &web,
        &["--runtime-config", config.to_str().unwrap(), "--reboot"],
    );
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["passed"], true);
    assert_eq!(v["report"]["accel_used"], "tcg");
    assert_eq!(v["report"]["accel_reason"]["kind"], "env", "KILN_ACCEL=tcg");
    // By default, the newest release's firmware, from the archive.
    let firmware = v["report"]["firmware"].as_str().unwrap();
    let (_, from) = firmware.split_once(" from ").unwrap();
    assert!(
        firmware.starts_with("ovmf ") && from.starts_with("trixie"),
        "{firmware}"
    );
    let runs = v["report"]["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2, "checked before and after the reboot");
    for run in runs {
        // systemd-analyze in the guest said where each boot's time went.
        for phase in ["kernel", "userspace"] {
            assert!(
                run["phases"][phase].as_f64().unwrap() > 0.0,
                "{phase}: {run}"
            );
        }
        let p = &run["phases"];
        let before_kernel = p["firmware"].as_f64().unwrap_or(0.0)
            + p["loader"].as_f64().unwrap_or(0.0)
            + p["pre_kernel_host"].as_f64().unwrap_or(0.0);
        assert!(before_kernel > 0.0, "{run}");
        let slowest = run["slowest_units"].as_array().unwrap();
        assert!((1..=5).contains(&slowest.len()), "{run}");
        let names: Vec<&str> = run["checks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "nginx answers",
                "nginx.service is active",
                "port 80 accepts connections",
                "runtime configuration arrived"
            ]
        );
        assert!(
            run["checks"]
                .as_array()
                .unwrap()
                .iter()
                .all(|c| c["ok"] == true)
        );
    }

    // The verdict is on the build's record.
    let shown = recorded(&web, "web");
    assert_eq!(shown["build"]["last_test"]["passed"], true);
    assert_eq!(shown["build"]["last_test"]["accel"], "tcg");
    assert_eq!(shown["tests"].as_array().unwrap().len(), 1);

    // The value reached the machine at boot only: no artefact carries it.
    for artefact in ["web-1.0.0.raw", "web-1.0.0.qcow2", "web-1.0.0.tar"] {
        let bytes = std::fs::read(out.join(artefact)).unwrap();
        assert!(
            !contains(&bytes, token.as_bytes()),
            "{artefact} contains the runtime value"
        );
    }
}

#[test]
fn vm_web_boots_with_this_machines_firmware_when_asked() {
    let ex = examples();
    let web = ex.path().join("web");
    build(&web, &["qcow2"]);
    let config = ex.path().join("runtime.env");
    write(&config, "SITE_NAME=firmware\n");
    let r = test(
        &web,
        &[
            "--runtime-config",
            config.to_str().unwrap(),
            "--firmware",
            "host",
        ],
    );
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["passed"], true);
    assert_eq!(v["report"]["firmware"], "host");
}

#[test]
fn a_firmware_the_store_lacks_offline_is_an_error_that_offers_the_hosts() {
    let (_ex, web, config) = never_booting_web();
    let empty = tempfile::tempdir().unwrap();
    let r = common::kiln_with_store(
        &[
            "test",
            web.to_str().unwrap(),
            "--runtime-config",
            config.to_str().unwrap(),
            "--offline",
        ],
        &[("KILN_ACCEL", "tcg")],
        empty.path(),
    );
    r.assert_exit(
        2,
        &[
            "error: getting the firmware (ovmf from Debian trixie)",
            "hint:",
            "--firmware host",
        ],
    );
}

#[test]
fn a_firmware_source_that_is_neither_host_nor_a_release_is_exit_1_before_anything() {
    let ex = examples();
    let web = ex.path().join("web");
    for (args, env) in [
        (vec!["--firmware", "sid"], vec![]),
        (vec![], vec![("KILN_FIRMWARE", "sid")]),
    ] {
        let mut all = vec!["test", web.to_str().unwrap()];
        all.extend(args);
        let r = kiln(&all, &env);
        r.assert_exit(
            1,
            &[
                "sid is not a firmware source",
                "host, bookworm, trixie",
                "hint:",
            ],
        );
    }
}

#[test]
fn vm_a_service_that_fails_to_start_is_a_failed_check_with_its_output() {
    let ex = examples();
    let broken = ex.path().join("broken");
    write(
        &broken.join("site.conf"),
        "server { this is not nginx syntax }\n",
    );
    write(
        &broken.join("kiln.toml"),
        r#"[image]
name = "broken"
version = "1"

[base]
from = "../web"

[[files]]
src = "site.conf"
dst = "/etc/nginx/sites-enabled/default"

[outputs]
formats = ["qcow2"]

[[check]]
unit = "nginx.service"

[[check]]
name = "nginx answers"
run = "curl -fsS http://127.0.0.1/"

[[check]]
name = "boots within a second"
path = "/etc/os-release"
ready_within = "1s"
"#,
    );
    let locked = kiln(&["lock", broken.to_str().unwrap()], &[]);
    assert_eq!(locked.code, 0, "{}", locked.stderr);
    build(&broken, &[]);
    let r = test(&broken, &[]);
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["passed"], false);
    let checks = v["report"]["runs"][0]["checks"].as_array().unwrap();
    let unit = checks
        .iter()
        .find(|c| c["name"] == "nginx.service is active")
        .unwrap();
    assert_eq!(unit["ok"], false);
    assert!(
        unit["output"].as_str().unwrap().contains("failed")
            || unit["output"].as_str().unwrap().contains("inactive"),
        "{unit}"
    );
    assert!(
        r.stderr.contains("nginx.service"),
        "the failure names the check: {}",
        r.stderr
    );
    // No machine boots in a second under TCG: the path is there, but the
    // boot was over its budget.
    let budget = checks
        .iter()
        .find(|c| c["name"] == "boots within a second")
        .unwrap();
    assert_eq!(budget["ok"], false, "{budget}");
    assert_eq!(budget["late"]["check_passed"], true, "{budget}");
    assert_eq!(budget["late"]["ready_within"], 1.0, "{budget}");
    assert!(budget["late"]["boot_to_ready"].as_f64().unwrap() > 1.0);
    assert!(
        r.stderr
            .contains("- boots within a second: the machine was ready after ")
            && r.stderr.contains("s, over its ready_within of 1.0s"),
        "{}",
        r.stderr
    );

    // A build whose last test failed is not promoted, unless forced.
    assert_eq!(
        recorded(&broken, "broken")["build"]["last_test"]["passed"],
        false
    );
    let env = [
        ("KILN_CATALOG", catalog(&broken)),
        ("KILN_USER", "tester".into()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let refused = kiln(&["promote", "broken@latest", "--to", "production"], &env);
    refused.assert_exit(1, &["--force"]);
    let forced = kiln(
        &[
            "promote",
            "broken@latest",
            "--to",
            "production",
            "--force",
            "--json",
        ],
        &env,
    );
    assert_eq!(forced.code, 0, "{}", forced.stderr);
    let p: serde_json::Value = serde_json::from_str(&forced.stdout).unwrap();
    assert_eq!(p["forced"], true);
    assert_eq!(p["who"], "tester");
}

#[test]
fn a_missing_required_key_fails_before_anything_boots() {
    let started = Instant::now();
    let r = kiln(
        &["test", repo().join("examples/web").to_str().unwrap()],
        &[("KILN_ACCEL", "tcg")],
    );
    r.assert_exit(1, &["SITE_NAME"]);
    assert!(started.elapsed() < Duration::from_secs(10));
}

/// examples/web whose build report names a blank qcow2: no firmware will
/// boot it, so QEMU runs until kiln stops it. Gives the examples and the
/// runtime configuration `kiln test` needs.
fn never_booting_web() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let ex = examples();
    let web = ex.path().join("web");
    let out = web.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let blank = out.join("blank.qcow2");
    let made = std::process::Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2"])
        .arg(&blank)
        .arg("64M")
        .status()
        .unwrap();
    assert!(made.success());
    let report = serde_json::json!({
        "image": "web", "version": "1.0.0", "lock": "sha256:00", "source_date_epoch": 0,
        "layers": [], "packages": [], "stages": [], "seconds": 0.0,
        "outputs": [{"format": "qcow2", "path": blank, "digest": "sha256:00", "size": 0}],
    });
    std::fs::create_dir_all(out.join(".kiln")).unwrap();
    write(&out.join(".kiln/web.build.json"), &report.to_string());
    let config = ex.path().join("runtime.env");
    write(&config, "SITE_NAME=x\n");
    (ex, web, config)
}

#[test]
fn vm_a_guest_that_never_boots_is_exit_2_within_the_timeout() {
    let (_ex, web, config) = never_booting_web();
    let started = Instant::now();
    let r = test(
        &web,
        &[
            "--runtime-config",
            config.to_str().unwrap(),
            "--timeout",
            "20",
        ],
    );
    assert_eq!(r.code, 2, "{}\n{}", r.stdout, r.stderr);
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "took {:?}",
        started.elapsed()
    );
    assert!(r.stderr.contains("error:"), "{}", r.stderr);
}

/// The pids of `pid`'s children, from each of its threads' lists.
fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|l| {
            l.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

#[test]
fn vm_a_kiln_test_killed_by_sigkill_leaves_no_qemu_running_and_the_next_removes_its_files() {
    // No destructor runs on SIGKILL (a CI job's timeout, the OOM killer):
    // only the kernel can stop the machine kiln started, and only the next
    // kiln can remove the files it left.
    let (_ex, web, config) = never_booting_web();
    let catalog = catalog(&web);
    let tmp = tempfile::tempdir().unwrap();
    let tmpdir = tmp.path().to_str().unwrap();
    // Not the file's `test`: this one is spawned, to be killed.
    let kiln_test = |timeout: &str| {
        common::kiln_command(
            &[
                "test",
                web.to_str().unwrap(),
                "--runtime-config",
                config.to_str().unwrap(),
                "--timeout",
                timeout,
            ],
            &[
                ("KILN_ACCEL", "tcg"),
                ("KILN_CATALOG", &catalog),
                ("TMPDIR", tmpdir),
            ],
            &common::store(),
        )
    };
    let left = || {
        let mut names: Vec<String> = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("kiln-test") || n.starts_with("kiln-firmware"))
            .collect();
        names.sort();
        names
    };
    let mut kiln = kiln_test("300")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let qemu = loop {
        let qemu = children(kiln.id()).into_iter().find(|c| {
            std::fs::read_to_string(format!("/proc/{c}/comm"))
                .is_ok_and(|comm| comm.starts_with("qemu-system"))
        });
        if let Some(q) = qemu {
            break q;
        }
        assert!(
            kiln.try_wait().unwrap().is_none(),
            "kiln test ended before starting QEMU"
        );
        assert!(started.elapsed() < Duration::from_secs(60), "no QEMU");
        std::thread::sleep(Duration::from_millis(50));
    };
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        kiln_deb::child::running(qemu),
        "QEMU {qemu} was running before the kill"
    );
    kiln.kill().unwrap();
    kiln.wait().unwrap();
    let killed = Instant::now();
    while kiln_deb::child::running(qemu) && killed.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let alive = kiln_deb::child::running(qemu);
    if alive {
        let _ = std::process::Command::new("kill")
            .args(["-9", &qemu.to_string()])
            .status();
    }
    assert!(!alive, "QEMU {qemu} outlived the kiln that started it");

    let killed_left = left();
    assert!(
        killed_left.iter().any(|n| n.starts_with("kiln-test")),
        "a killed kiln leaves its machine's directory: {killed_left:?}"
    );
    // The next kiln test removes it before making its own, then its own on
    // the way out (this one gives up after a second: nothing boots).
    let next = kiln_test("1").output().unwrap();
    assert_eq!(
        next.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&next.stderr)
    );
    assert_eq!(
        left(),
        Vec::<String>::new(),
        "left after the next kiln test"
    );
}
