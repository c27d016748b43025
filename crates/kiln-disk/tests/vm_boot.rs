//! The whole claim, on a real image: examples/base (with systemd-boot)
//! built through the pipeline, written as a raw disk, converted to qcow2,
//! and booted under UEFI firmware in QEMU (TCG) until the serial console
//! shows multi-user.target and a login prompt. The disk is booted through
//! a larger qcow2 overlay, so the artefact itself is what boots and stays
//! untouched, and the first boot must grow the root to the overlay's size.
//! The vmdk and the vhd made from the same raw image then boot once each
//! the same way, to a login prompt.
//!
//! `net_root_vm_`: needs Debian's archive (packages), root (the build
//! sandbox), and qemu-system-x86 with ovmf.

mod common;

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kiln_disk::{DiskFormat, DiskSpec};

const OVMF_CODE: &str = "/usr/share/OVMF/OVMF_CODE_4M.fd";
const OVMF_VARS: &str = "/usr/share/OVMF/OVMF_VARS_4M.fd";
const DISK: u64 = 2 << 30;
/// The overlay the VM boots: 1 GiB more than the image, for the root to grow into.
const GROWN: u64 = 3 << 30;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Shared with kiln's own tests: indices and packages are fetched once.
fn store() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("kiln-test-store")
}

/// How long the boot may take: generous for TCG on two busy cores.
fn boot_timeout() -> Duration {
    let secs = std::env::var("KILN_VM_TIMEOUT_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    Duration::from_secs(secs)
}

#[test]
fn net_root_vm_base_image_boots_to_login_under_uefi_and_grows_its_root() {
    for (path, package) in [
        ("/usr/bin/qemu-system-x86_64", "qemu-system-x86"),
        (OVMF_CODE, "ovmf"),
    ] {
        assert!(
            Path::new(path).exists(),
            "{path} missing: apt-get install {package}"
        );
    }
    let work = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let w = work.path();

    // A rootfs with a kernel, systemd and systemd-boot, from the pipeline.
    let def = base_with_systemd_boot(w);
    // SAFETY: this binary's only test; nothing else reads the environment now.
    unsafe { std::env::set_var("KILN_CACHE", store()) };
    let report = kiln_build::build(&kiln_build::BuildOptions {
        dir: def.clone(),
        offline: false,
        refresh_network_steps: false,
        formats: Some(vec![]),
        out: Some(w.join("out")),
        mirror: None,
        catalog: Some(w.join("catalog.sqlite").to_string_lossy().into_owned()),
        remote_cache: None,
        progress: &kiln_build::Quiet,
    })
    .expect("kiln build examples/base");
    let key = &report
        .stages
        .iter()
        .rfind(|s| s.stage == "rootfs")
        .expect("a rootfs stage")
        .key;
    let rootfs = store().join("rootfs-v2").join(key);

    let spec = DiskSpec {
        size: DISK,
        image_digest: format!("sha256:{key}"),
        source_date_epoch: report.source_date_epoch,
        title: format!("{} {}", report.image, report.version),
        architecture: kiln_deb::Architecture::Amd64,
        extra_files: Vec::new(),
        extra_links: Vec::new(),
    };
    let started = Instant::now();
    let boot = kiln_build::boot_files(&rootfs, spec.architecture).expect("boot files");
    let raw = kiln_disk::write_raw(&rootfs, &boot, &spec, &w.join("base.raw")).expect("write_raw");
    let raw_secs = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let qcow2 = kiln_disk::convert(&raw.path, DiskFormat::Qcow2, &spec, &w.join("base.qcow2"))
        .expect("convert");
    let qcow2_secs = started.elapsed().as_secs_f64();

    // A second store's copy of the same tree (other ctimes, other
    // directory order) gives the same bytes.
    let copy = w.join("rootfs-copy");
    common::run(
        "cp",
        &["-a", rootfs.to_str().unwrap(), copy.to_str().unwrap()],
    );
    let again = w.join("again");
    std::fs::create_dir(&again).unwrap();
    let raw2 = kiln_disk::write_raw(&copy, &boot, &spec, &again.join("base.raw")).unwrap();
    assert_eq!(raw2.digest, raw.digest, "raw is byte-reproducible");
    let qcow2_2 = kiln_disk::convert(
        &raw2.path,
        DiskFormat::Qcow2,
        &spec,
        &again.join("base.qcow2"),
    )
    .unwrap();
    assert_eq!(qcow2_2.digest, qcow2.digest, "qcow2 is byte-reproducible");
    std::fs::remove_dir_all(&again).unwrap();
    common::run("rm", &["-rf", copy.to_str().unwrap()]);

    let vm = Vm::start(w, &qcow2.path, "qcow2");
    let boot = vm.wait_for_login(boot_timeout());
    let console = vm.quit();
    let boot = boot.unwrap_or_else(|why| {
        panic!(
            "{why}\n--- last 40 console lines ---\n{}",
            tail(&console, 40)
        )
    });
    println!(
        "write_raw {raw_secs:.1}s, qcow2 {qcow2_secs:.1}s ({} bytes); under TCG: multi-user.target after {:.1}s, login prompt after {:.1}s",
        qcow2.size,
        boot.multi_user.as_secs_f64(),
        boot.login.as_secs_f64()
    );

    let failed: Vec<&str> = console.lines().filter(|l| l.contains("FAILED")).collect();
    assert!(failed.is_empty(), "units failed:\n{}", failed.join("\n"));
    assert!(
        console.contains("Mounted boot-efi.mount"),
        "the ESP mounts at /boot/efi"
    );
    // systemd-repart grew the partition, then systemd-growfs the file system.
    assert!(
        console.contains("Finished systemd-repart.service"),
        "systemd-repart ran"
    );
    assert!(
        console.contains("EXT4-fs (vda2): resized filesystem"),
        "systemd-growfs grew the root"
    );
    let grown = w.join("grown.raw");
    common::run(
        "qemu-img",
        &[
            "convert",
            "-O",
            "raw",
            w.join("overlay.qcow2").to_str().unwrap(),
            grown.to_str().unwrap(),
        ],
    );
    let (_, alternate, parts) = common::read_gpt(&grown, 1);
    assert_eq!(
        alternate,
        GROWN / 512 - 1,
        "the backup GPT moved to the new end"
    );
    let root_end = (parts[1].last_lba + 1) * 512;
    assert!(
        root_end > GROWN - (2 << 20),
        "root partition ends at {root_end}, disk is {GROWN}"
    );

    // Booting wrote only to the overlay.
    assert_eq!(kiln_disk::sha256_file(&qcow2.path).unwrap(), qcow2.digest);
    std::fs::remove_file(&grown).unwrap();
    std::fs::remove_file(&qcow2.path).unwrap();

    // The other shipped formats boot too, each once, from the same raw disk.
    for (format, qemu_name) in [(DiskFormat::Vmdk, "vmdk"), (DiskFormat::Vhd, "vpc")] {
        let dir = w.join(qemu_name);
        std::fs::create_dir(&dir).unwrap();
        let disk = kiln_disk::convert(
            &raw.path,
            format,
            &spec,
            &dir.join(format!("base.{}", format.extension())),
        )
        .expect("convert");
        let vm = Vm::start(&dir, &disk.path, qemu_name);
        let boot = vm.wait_for_login(boot_timeout());
        let console = vm.quit();
        let boot = boot.unwrap_or_else(|why| {
            panic!(
                "{qemu_name}: {why}\n--- last 40 console lines ---\n{}",
                tail(&console, 40)
            )
        });
        println!(
            "{}: {} bytes; under TCG: multi-user.target after {:.1}s, login prompt after {:.1}s",
            format.extension(),
            disk.size,
            boot.multi_user.as_secs_f64(),
            boot.login.as_secs_f64()
        );
        let failed: Vec<&str> = console.lines().filter(|l| l.contains("FAILED")).collect();
        assert!(
            failed.is_empty(),
            "{qemu_name}: units failed:\n{}",
            failed.join("\n")
        );
        assert!(
            console.contains("Finished systemd-repart.service"),
            "{qemu_name}: systemd-repart ran"
        );
        assert_eq!(
            kiln_disk::sha256_file(&disk.path).unwrap(),
            disk.digest,
            "{qemu_name}: booting wrote only to the overlay"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

/// examples/base in `dir`, with systemd-boot installed (locking again if the
/// example does not have it yet).
fn base_with_systemd_boot(dir: &Path) -> PathBuf {
    let def = dir.join("base");
    std::fs::create_dir_all(&def).unwrap();
    for f in ["kiln.toml", "kiln.lock"] {
        std::fs::copy(repo().join("examples/base").join(f), def.join(f)).unwrap();
    }
    let toml = std::fs::read_to_string(def.join("kiln.toml")).unwrap();
    if !toml.contains("\"systemd-boot\"") {
        std::fs::write(
            def.join("kiln.toml"),
            toml.replacen("install = [", "install = [\"systemd-boot\", ", 1),
        )
        .unwrap();
        unsafe { std::env::set_var("KILN_CACHE", store()) };
        kiln_build::lock(&kiln_build::LockOptions {
            dir: def.clone(),
            update: None,
            mirror: None,
            offline: false,
            progress: &kiln_build::Quiet,
        })
        .expect("kiln lock with systemd-boot");
    }
    def
}

struct Vm {
    child: Child,
    console: PathBuf,
    monitor: PathBuf,
    started: Instant,
}

struct Boot {
    multi_user: Duration,
    login: Duration,
}

impl Vm {
    /// QEMU on a qcow2 overlay of `disk`, whose format QEMU calls `format`
    /// (so the artefact is never written), with its own copy of the
    /// firmware variables.
    fn start(dir: &Path, disk: &Path, format: &str) -> Vm {
        let overlay = dir.join("overlay.qcow2");
        common::run(
            "qemu-img",
            &[
                "create",
                "-q",
                "-f",
                "qcow2",
                "-F",
                format,
                "-b",
                disk.to_str().unwrap(),
                overlay.to_str().unwrap(),
                &GROWN.to_string(),
            ],
        );
        let vars = dir.join("OVMF_VARS.fd");
        std::fs::copy(OVMF_VARS, &vars).unwrap();
        let console = dir.join("console.log");
        let monitor = dir.join("monitor.sock");
        let child = Command::new("qemu-system-x86_64")
            .args([
                "-machine", "q35", "-accel", "tcg", "-m", "1024", "-smp", "2",
            ])
            .args(["-display", "none", "-no-reboot", "-nic", "none"])
            .arg("-drive")
            .arg(format!("if=pflash,format=raw,readonly=on,file={OVMF_CODE}"))
            .arg("-drive")
            .arg(format!("if=pflash,format=raw,file={}", vars.display()))
            .arg("-drive")
            .arg(format!("file={},if=virtio,format=qcow2", overlay.display()))
            .arg("-serial")
            .arg(format!("file:{}", console.display()))
            .arg("-monitor")
            .arg(format!("unix:{},server=on,wait=off", monitor.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting qemu-system-x86_64");
        Vm {
            child,
            console,
            monitor,
            started: Instant::now(),
        }
    }

    fn text(&self) -> String {
        strip_ansi(&String::from_utf8_lossy(
            &std::fs::read(&self.console).unwrap_or_default(),
        ))
    }

    /// Polls the console until a login prompt follows multi-user.target, the
    /// machine dies, or `limit` passes.
    fn wait_for_login(&self, limit: Duration) -> Result<Boot, String> {
        let mut multi_user = None;
        loop {
            let text = self.text();
            let elapsed = self.started.elapsed();
            if multi_user.is_none()
                && text
                    .lines()
                    .any(|l| l.contains("Reached target") && l.contains("multi-user.target"))
            {
                multi_user = Some(elapsed);
            }
            if let Some(m) = multi_user {
                let after = text.rfind("multi-user.target").unwrap();
                if text[after..].contains("login:") {
                    return Ok(Boot {
                        multi_user: m,
                        login: elapsed,
                    });
                }
            }
            for fatal in [
                "Kernel panic",
                "You are in emergency mode",
                "Give root password for maintenance",
            ] {
                if text.contains(fatal) {
                    return Err(format!("the guest failed to boot: {fatal}"));
                }
            }
            if elapsed > limit {
                return Err(format!(
                    "no login prompt on the serial console within {limit:?}"
                ));
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// Stops QEMU (the monitor's `quit`, then a kill if it lingers) and
    /// returns the console.
    fn quit(mut self) -> String {
        if let Ok(mut s) = UnixStream::connect(&self.monitor) {
            let _ = s.write_all(b"quit\n");
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let mut text = self.text();
        let out = self.child.wait_with_output().unwrap();
        if !out.stderr.is_empty() {
            text.push_str("\n--- qemu stderr ---\n");
            text.push_str(&String::from_utf8_lossy(&out.stderr));
        }
        text
    }
}

/// The console without terminal escapes (colours, cursor moves), so
/// matching sees the words.
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            if chars.peek() == Some(&'[') {
                chars.next();
                // Parameters, then one final byte in @..~.
                for d in chars.by_ref() {
                    if ('@'..='~').contains(&d) {
                        break;
                    }
                }
            }
            continue;
        }
        if c != '\r' {
            out.push(c);
        }
    }
    out
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
