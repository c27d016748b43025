//! Real machines under QEMU (TCG): `cargo test -p kiln-vm --test vm`.
//!
//! The bootable image is `examples/base` built through the pipeline (the
//! store is `KILN_CACHE`, else the one the CLI tests share), with the kiln
//! agent and two test units added to a copy of its rootfs, made into a disk
//! by kiln-disk. The tests take one lock: one VM at a time.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use kiln_spec::{Check, CheckKind, Runtime};
use kiln_vm::{Accelerator, RuntimeConfig, TestOptions, VmError};

const SECRET: &str = "hello-from-runtime-5f3a9c";
const ENV_FILE: &str = "/etc/default/kiln-test";

fn lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    let guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    static ENV: OnceLock<()> = OnceLock::new();
    ENV.get_or_init(|| {
        // SAFETY: every test in this binary takes LOCK before anything else,
        // so no other thread reads the environment while it is set.
        unsafe {
            std::env::set_var("KILN_ACCEL", "tcg");
            if std::env::var_os("KILN_CACHE").is_none() {
                let store = Path::new(env!("CARGO_TARGET_TMPDIR")).join("kiln-test-store");
                std::env::set_var("KILN_CACHE", store);
            }
        }
    });
    guard
}

fn opts(timeout: u64) -> TestOptions {
    TestOptions {
        timeout: Duration::from_secs(timeout),
        ..TestOptions::default()
    }
}

/// The raw disk of examples/base plus the agent and the test units, built once.
fn disk() -> &'static Path {
    static DISK: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &DISK.get_or_init(build_disk).1
}

fn build_disk() -> (tempfile::TempDir, PathBuf) {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = tempfile::tempdir().unwrap();
    let report = kiln_build::build(&kiln_build::BuildOptions {
        dir: repo.join("examples/base"),
        offline: false,
        refresh_network_steps: false,
        formats: Some(vec![kiln_build::Format::Tar]),
        out: Some(out.path().join("out")),
        mirror: None,
        catalog: Some(
            out.path()
                .join("catalog.sqlite")
                .to_string_lossy()
                .into_owned(),
        ),
        remote_cache: None,
        progress: &kiln_build::Quiet,
    })
    .expect("building examples/base");
    let key = &report
        .stages
        .iter()
        .find(|s| s.stage == "rootfs")
        .expect("a rootfs stage")
        .key;
    let cache = PathBuf::from(std::env::var_os("KILN_CACHE").unwrap());
    let rootfs = cache.join("rootfs-v2").join(key);

    // A copy, so the agent can be added without touching the store entry.
    let root = out.path().join("root");
    let status = Command::new("cp")
        .arg("-a")
        .arg(&rootfs)
        .arg(&root)
        .status()
        .unwrap();
    assert!(status.success(), "copying {}", rootfs.display());
    let put = |path: &str, mode: u32, contents: &[u8]| {
        let dst = root.join(path.trim_start_matches('/'));
        fs_err::create_dir_all(dst.parent().unwrap()).unwrap();
        fs_err::write(&dst, contents).unwrap();
        use std::os::unix::fs::PermissionsExt;
        fs_err::set_permissions(&dst, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    let link = |path: &str, target: &str| {
        let dst = root.join(path.trim_start_matches('/'));
        fs_err::create_dir_all(dst.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(target, &dst).unwrap();
    };
    for f in kiln_vm::agent_files() {
        put(&f.path, f.mode, &f.contents);
    }
    for l in kiln_vm::agent_links() {
        link(&l.path, &l.target);
    }
    // A service that needs the runtime configuration, and a socket on 8080.
    put(
        "/etc/systemd/system/kiln-test-env.service",
        0o644,
        format!(
            "[Service]\nType=oneshot\nRemainAfterExit=yes\nEnvironmentFile={ENV_FILE}\n\
             ExecStart=/bin/sh -c 'echo \"greeting=$GREETING\" > /run/kiln-test-greeting'\n\
             [Install]\nWantedBy=multi-user.target\n"
        )
        .as_bytes(),
    );
    link(
        "/etc/systemd/system/multi-user.target.wants/kiln-test-env.service",
        "/etc/systemd/system/kiln-test-env.service",
    );
    put(
        "/etc/systemd/system/kiln-test-echo.socket",
        0o644,
        b"[Socket]\nListenStream=8080\nAccept=yes\n[Install]\nWantedBy=sockets.target\n",
    );
    put(
        "/etc/systemd/system/kiln-test-echo@.service",
        0o644,
        b"[Service]\nExecStart=/bin/cat\nStandardInput=socket\n",
    );
    link(
        "/etc/systemd/system/sockets.target.wants/kiln-test-echo.socket",
        "/etc/systemd/system/kiln-test-echo.socket",
    );

    let spec = kiln_disk::DiskSpec {
        size: 1024 * 1024 * 1024,
        image_digest: report.lock.clone(),
        source_date_epoch: report.source_date_epoch,
        title: "kiln-vm test".into(),
        architecture: kiln_spec::Architecture::Amd64,
        extra_files: Vec::new(),
        extra_links: Vec::new(),
    };
    let raw = out.path().join("disk.raw");
    let boot = kiln_build::boot_files(&root, spec.architecture).expect("boot files");
    kiln_disk::write_raw(&root, &boot, &spec, &raw).expect("writing the disk");
    let _ = fs_err::remove_dir_all(&root);
    (out, raw)
}

fn checks() -> Vec<Check> {
    let check = |name: &str, kind: CheckKind| Check {
        name: name.into(),
        kind,
        timeout_secs: 30,
        ready_within_ms: None,
    };
    vec![
        check(
            "the runtime configuration reached the service",
            CheckKind::Path {
                path: "/run/kiln-test-greeting".into(),
                contains: Some(format!("greeting={SECRET}")),
            },
        ),
        check(
            "the env file is private",
            CheckKind::Run {
                command: format!("test \"$(stat -c %a {ENV_FILE})\" = 600"),
            },
        ),
        check(
            "unit",
            CheckKind::Unit {
                unit: "kiln-test-env.service".into(),
            },
        ),
        check("port", CheckKind::Port { port: 8080 }),
    ]
}

fn runtime_config(dir: &Path) -> RuntimeConfig {
    let file = dir.join("runtime.env");
    fs_err::write(&file, format!("GREETING={SECRET}\n")).unwrap();
    let runtime = Runtime {
        env_file: Some(ENV_FILE.into()),
        required: vec!["GREETING".into()],
    };
    RuntimeConfig::load(Some(&file), &runtime).unwrap()
}

fn contains(file: &Path, needle: &[u8]) -> bool {
    let bytes = fs_err::read(file).unwrap();
    bytes.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn vm_checks_pass_and_pass_again_after_a_reboot() {
    let _lock = lock();
    let disk = disk();
    let before = kiln_disk::sha256_file(disk).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let console = dir.path().join("console.log");
    let opts = TestOptions {
        reboot: true,
        console_log: Some(console.clone()),
        ..opts(180)
    };
    let started = Instant::now();
    let outcome = kiln_vm::test(disk, &checks(), &runtime_config(dir.path()), &opts);
    let report = match outcome {
        Ok(Ok(report)) => report,
        Ok(Err(failure)) => panic!("{failure}"),
        Err(e) => panic!("{e}"),
    };
    eprintln!(
        "boot to ready {:?}, whole test {:?}\n{}",
        report.boot_to_ready,
        started.elapsed(),
        serde_json::to_string_pretty(&report).unwrap()
    );
    assert_eq!(report.accel_used, Accelerator::Tcg);
    assert_eq!(report.runs.len(), 2);
    assert!(report.runs.iter().all(|r| r.checks.len() == 4));
    assert!(report.passed());
    assert_eq!(report.runs[1].boot, 2);
    // Both boots say where their time went: the kernel and userspace from
    // the guest; firmware and loader from systemd-boot when it timed them,
    // else the host's estimate of everything before the kernel.
    for run in &report.runs {
        let p = run
            .phases
            .as_ref()
            .unwrap_or_else(|| panic!("boot {}: no phases", run.boot));
        for (name, phase) in [("kernel", p.kernel), ("userspace", p.userspace)] {
            assert!(
                phase.is_some_and(|s| s > 0.0),
                "boot {}: {name} {p:?}",
                run.boot
            );
        }
        let before_kernel = match (p.firmware, p.loader) {
            (Some(f), Some(l)) => f + l,
            _ => p.pre_kernel_host.expect("the host's estimate"),
        };
        assert!(before_kernel > 0.0, "boot {}: {p:?}", run.boot);
        let total = p.total.expect("a total");
        assert!(
            total < run.boot_to_ready.as_secs_f64() + 5.0,
            "the guest's {total}s fits in the host's {:?}",
            run.boot_to_ready
        );
        let units = &run.slowest_units;
        assert!(
            !units.is_empty() && units.len() <= kiln_vm::SLOWEST,
            "{units:?}"
        );
        assert!(
            units.windows(2).all(|w| w[0].seconds >= w[1].seconds),
            "{units:?}"
        );
    }
    // The image is untouched and carries no runtime value; the console does
    // show the agent at work.
    assert_eq!(kiln_disk::sha256_file(disk).unwrap(), before);
    assert!(!contains(disk, SECRET.as_bytes()));
    assert!(contains(
        &console,
        b"kiln-runtime: wrote /etc/default/kiln-test"
    ));
}

#[test]
fn vm_a_failed_check_is_a_verdict_with_its_output() {
    let _lock = lock();
    let dir = tempfile::tempdir().unwrap();
    // The qcow2 form of the same image, to boot both formats.
    let spec = kiln_disk::DiskSpec {
        size: 1024 * 1024 * 1024,
        image_digest: "unused".into(),
        source_date_epoch: 0,
        title: "unused".into(),
        architecture: kiln_spec::Architecture::Amd64,
        extra_files: Vec::new(),
        extra_links: Vec::new(),
    };
    let qcow2 = dir.path().join("disk.qcow2");
    kiln_disk::convert(disk(), kiln_disk::DiskFormat::Qcow2, &spec, &qcow2).unwrap();
    let mut checks = checks();
    checks.push(Check {
        name: "a service that is not there".into(),
        kind: CheckKind::Unit {
            unit: "nginx.service".into(),
        },
        timeout_secs: 3,
        ready_within_ms: None,
    });
    let outcome = kiln_vm::test(&qcow2, &checks, &runtime_config(dir.path()), &opts(180));
    let failure = match outcome {
        Ok(Err(failure)) => failure,
        Ok(Ok(report)) => panic!("expected a failed check: {report:?}"),
        Err(e) => panic!("{e}"),
    };
    eprintln!("{failure}");
    let text = failure.to_string();
    assert!(
        text.starts_with("1 of 5 checks failed\n- a service that is not there"),
        "{text}"
    );
    assert!(text.contains("inactive"), "{text}");
    assert_eq!(failure.report.runs.len(), 1);
    let failed = &failure.report.runs[0].checks[4];
    assert!(!failed.ok);
    assert!(failed.seconds >= 3.0, "{failed:?}");
}

#[test]
fn vm_a_disk_that_never_boots_is_an_error_within_the_timeout() {
    let _lock = lock();
    let dir = tempfile::tempdir().unwrap();
    let zeros = dir.path().join("zeros.raw");
    fs_err::File::create(&zeros)
        .unwrap()
        .set_len(64 * 1024 * 1024)
        .unwrap();
    let started = Instant::now();
    let outcome = kiln_vm::test(&zeros, &checks(), &RuntimeConfig::none(), &opts(20));
    let elapsed = started.elapsed();
    let err = match outcome {
        Err(e) => e,
        Ok(r) => panic!("expected an error, got {r:?}"),
    };
    eprintln!("after {elapsed:?}: {err}");
    assert!(matches!(err, VmError::CouldNotRun { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.starts_with("could not run the image: the guest did not reach multi-user"),
        "{text}"
    );
    assert!(text.contains("within 20s"), "{text}");
    assert!(
        text.contains("BdsDxe"),
        "the console tail shows the firmware: {text}"
    );
    assert!(elapsed < Duration::from_secs(30), "{elapsed:?}");
}
