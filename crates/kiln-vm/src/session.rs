//! `kiln test` and `kiln run`: one machine, from overlay to verdict.

use std::io::Read;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

use kiln_spec::Check;

use crate::accel::{Accel, AccelChoice};
use crate::agent::{self, Message};
use crate::console::ConsoleTail;
use crate::error::{VmError, timed_out};
use crate::phases::{self, BootPhases};
use crate::qemu::{self, DirectKernel, Firmware, Running, Tools};
use crate::report::{CheckFailure, CheckResult, Report, Run};
use crate::runtime::RuntimeConfig;
use crate::seed::{self, SeedFile};

/// How `kiln test` runs the machine.
#[derive(Debug, Clone)]
pub struct TestOptions {
    /// Overridden by `KILN_ACCEL`.
    pub accel: Accel,
    /// The bound on each boot, from power-on (or reboot) to the agent's first
    /// report. The checks then have the sum of their own timeouts, plus slack.
    pub timeout: Duration,
    pub memory_mib: u32,
    pub cpus: u32,
    /// After the checks pass, reboot the same overlay and run them again.
    pub reboot: bool,
    /// Keep the serial console here (overwritten); otherwise it is thrown
    /// away with the overlay.
    pub console_log: Option<PathBuf>,
    /// A file that keeps the KVM probe's verdict until the host reboots.
    pub accel_cache: Option<PathBuf>,
    /// Boot this kernel with `-kernel` instead of the disk through its
    /// firmware and loader (the floor `bench/launch` measures).
    pub direct_kernel: Option<DirectKernel>,
    /// Boot with this firmware; this machine's OVMF when `None`.
    pub firmware: Option<Firmware>,
}

impl Default for TestOptions {
    fn default() -> Self {
        TestOptions {
            accel: Accel::Auto,
            timeout: Duration::from_secs(180),
            memory_mib: 1024,
            cpus: 2,
            reboot: false,
            console_log: None,
            accel_cache: None,
            direct_kernel: None,
            firmware: None,
        }
    }
}

/// How `kiln run` runs the machine.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Overridden by `KILN_ACCEL`.
    pub accel: Accel,
    pub memory_mib: u32,
    pub cpus: u32,
    /// Delivered on a seed disk, as in `kiln test`.
    pub runtime: RuntimeConfig,
    pub accel_cache: Option<PathBuf>,
    /// As in [`TestOptions::firmware`].
    pub firmware: Option<Firmware>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            accel: Accel::Auto,
            memory_mib: 1024,
            cpus: 2,
            runtime: RuntimeConfig::none(),
            accel_cache: None,
            firmware: None,
        }
    }
}

/// Boots `image` (raw or qcow2; never written), delivers `runtime`, runs
/// `checks` inside once it reaches multi-user, and again after a reboot when
/// asked. `Ok(Err(_))` is a failed check; `Err(_)` a machine kiln could not run.
pub fn test(
    image: &Path,
    checks: &[Check],
    runtime: &RuntimeConfig,
    opts: &TestOptions,
) -> Result<Result<Report, CheckFailure>, VmError> {
    let tools = Tools::find(opts.firmware.as_ref())?;
    let choice = opts.accel.resolve(&tools, opts.accel_cache.as_deref())?;
    let accel = choice.used;
    let work = work_dir("kiln-test")?;
    let dir = work.path();
    let overlay = qemu::create_overlay(&tools, image, dir)?;
    let vars = tools.vars_copy(dir)?;

    let runs: u32 = if opts.reboot { 2 } else { 1 };
    let mut files = vec![
        SeedFile::new("kiln/checks", agent::plan(checks)),
        SeedFile::new("kiln/runs", format!("{runs}\n")),
    ];
    files.extend(runtime_files(runtime));
    let seed_img = dir.join("seed.img");
    seed::write(&seed_img, &instance_id(), &files)?;

    let (console, kept) = match &opts.console_log {
        Some(path) => {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                fs_err::create_dir_all(parent)?;
            }
            (path.clone(), true)
        }
        None => (dir.join("console.log"), false),
    };
    let socket = dir.join("checks.sock");
    let args = qemu::args(
        &tools,
        &qemu::Machine {
            accel,
            memory_mib: opts.memory_mib,
            cpus: accel.guest_cpus(opts.cpus, crate::accel::host_cores()),
            vars: &vars,
            disk: Some(&overlay),
            network: true,
            seed: Some(&seed_img),
            check_socket: Some(&socket),
            serial: qemu::Serial::File(&console),
            direct: opts.direct_kernel.as_ref(),
        },
    );

    let started = Instant::now();
    let mut vm = Running::spawn(&tools, &args, &dir.join("qemu.stderr"))?;
    let tail = || ConsoleTail::read(&console, kept);
    let mut port = Port::connect(&socket, &mut vm, started + opts.timeout, &tail)?;

    let checks_bound = checks
        .iter()
        .map(|c| c.timeout() + Duration::from_secs(5))
        .sum::<Duration>()
        + Duration::from_secs(60);
    let mut report = Report {
        accel_used: accel,
        accel_reason: choice.reason.clone(),
        firmware: tools.firmware.source.clone(),
        boot_to_ready: Duration::ZERO,
        runs: Vec::new(),
        console_log: kept.then(|| console.clone()),
    };
    let mut boot_started = started;
    for boot in 1..=runs {
        let what = if boot == 1 {
            "the guest did not reach multi-user (no report from kiln-check.service)".to_string()
        } else {
            "the guest did not come back from its reboot (no second report from kiln-check.service)"
                .to_string()
        };
        match port.next(&mut vm, boot_started + opts.timeout, &tail)? {
            Some(Message::Ready { boot: b }) if b == boot => {}
            Some(other) => return Err(unexpected(&other, &format!("boot {boot} ready"), tail())),
            None => return Err(timed_out(&what, opts.timeout, tail())),
        }
        let boot_to_ready = boot_started.elapsed();
        if boot == 1 {
            report.boot_to_ready = boot_to_ready;
        }

        let deadline = Instant::now() + checks_bound;
        let mut results: Vec<Option<CheckResult>> = vec![None; checks.len()];
        let (mut phases, mut slowest_units) = (None, Vec::new());
        loop {
            let msg = port.next(&mut vm, deadline, &tail)?.ok_or_else(|| {
                timed_out(
                    "the guest agent did not finish its checks",
                    checks_bound,
                    tail(),
                )
            })?;
            match msg {
                Message::Check {
                    index,
                    ok,
                    millis,
                    output,
                } if index < checks.len() => {
                    results[index] = Some(CheckResult {
                        name: checks[index].name.clone(),
                        ok,
                        output,
                        seconds: millis as f64 / 1000.0,
                        late: None,
                    });
                }
                Message::Analysis {
                    boot: b,
                    time,
                    blame,
                } if b == boot => {
                    phases = BootPhases::parse(&time);
                    if let Some(p) = phases.as_mut() {
                        p.fill_pre_kernel(boot_to_ready);
                    }
                    slowest_units = phases::parse_blame(&blame);
                }
                Message::Done { boot: b } if b == boot => break,
                Message::Error { message } => {
                    return Err(VmError::Agent {
                        message,
                        console: tail(),
                    });
                }
                other => return Err(unexpected(&other, "a check result", tail())),
            }
        }
        let missing: Vec<&str> = results
            .iter()
            .zip(checks)
            .filter(|(r, _)| r.is_none())
            .map(|(_, c)| c.name.as_str())
            .collect();
        if !missing.is_empty() {
            return Err(VmError::Agent {
                message: format!("it reported no result for {}", missing.join(", ")),
                console: tail(),
            });
        }
        for (result, check) in results.iter_mut().zip(checks) {
            if let Some(r) = result {
                r.hold_to(check.ready_within(), boot_to_ready);
            }
        }
        report.runs.push(Run {
            boot,
            boot_to_ready,
            checks: results.into_iter().flatten().collect(),
            phases,
            slowest_units,
        });
        if !report.passed() {
            vm.stop();
            return Ok(Err(CheckFailure {
                report,
                console: tail(),
            }));
        }
        boot_started = Instant::now();
    }
    vm.stop();
    Ok(Ok(report))
}

/// Boots `image` (never written) with its serial console and the QEMU monitor
/// on this terminal (Ctrl-a x quits, Ctrl-a c switches to the monitor), and
/// returns QEMU's exit status once the machine powers off. `starting` hears
/// which accelerator it runs with, and why, and the firmware's source,
/// before QEMU starts.
pub fn run_interactive(
    image: &Path,
    opts: &RunOptions,
    starting: impl FnOnce(&AccelChoice, &str),
) -> Result<ExitStatus, VmError> {
    let tools = Tools::find(opts.firmware.as_ref())?;
    let choice = opts.accel.resolve(&tools, opts.accel_cache.as_deref())?;
    let accel = choice.used;
    let work = work_dir("kiln-run")?;
    let dir = work.path();
    let overlay = qemu::create_overlay(&tools, image, dir)?;
    let vars = tools.vars_copy(dir)?;
    let files = runtime_files(&opts.runtime);
    let seed_img = dir.join("seed.img");
    let seed = if files.is_empty() {
        None
    } else {
        seed::write(&seed_img, &instance_id(), &files)?;
        Some(seed_img.as_path())
    };
    let args = qemu::args(
        &tools,
        &qemu::Machine {
            accel,
            memory_mib: opts.memory_mib,
            cpus: accel.guest_cpus(opts.cpus, crate::accel::host_cores()),
            vars: &vars,
            disk: Some(&overlay),
            network: true,
            seed,
            check_socket: None,
            serial: qemu::Serial::Stdio,
            direct: None,
        },
    );
    starting(&choice, &tools.firmware.source);
    kiln_deb::child::die_with_parent(&mut Command::new(&tools.qemu))
        .args(&args)
        .status()
        .map_err(|source| VmError::Spawn {
            program: qemu::QEMU.into(),
            source,
        })
}

fn runtime_files(runtime: &RuntimeConfig) -> Vec<SeedFile> {
    match runtime.delivery() {
        Some((env_file, contents)) => vec![
            SeedFile::new("kiln/env", contents),
            SeedFile::new("kiln/env-path", env_file),
        ],
        None => Vec::new(),
    }
}

/// The machine's directory; one a killed kiln left is removed here.
pub(crate) fn work_dir(prefix: &str) -> Result<kiln_deb::scratch::Scratch, VmError> {
    kiln_deb::scratch::Scratch::new(prefix).map_err(|e| VmError::Path {
        what: "creating a temporary directory at",
        path: e.path,
        source: e.source,
    })
}

/// Unique per machine, so an image with cloud-init treats it as a new instance.
fn instance_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("kiln-{}-{nanos:x}", std::process::id())
}

fn unexpected(msg: &Message, wanted: &str, console: ConsoleTail) -> VmError {
    VmError::Protocol {
        line: format!("{msg:?}"),
        reason: format!("expected {wanted}"),
        console,
    }
}

/// The host end of the check port: whole lines, each wait bounded.
struct Port {
    stream: UnixStream,
    socket: PathBuf,
    buf: Vec<u8>,
}

impl Port {
    /// QEMU creates the socket when it starts listening; keep trying until then.
    fn connect(
        socket: &Path,
        vm: &mut Running,
        deadline: Instant,
        tail: &dyn Fn() -> ConsoleTail,
    ) -> Result<Port, VmError> {
        loop {
            match UnixStream::connect(socket) {
                Ok(stream) => {
                    stream
                        .set_read_timeout(Some(Duration::from_millis(200)))
                        .map_err(|source| VmError::Path {
                            what: "configuring the socket",
                            path: socket.to_path_buf(),
                            source,
                        })?;
                    return Ok(Port {
                        stream,
                        socket: socket.to_path_buf(),
                        buf: Vec::new(),
                    });
                }
                Err(_) if Instant::now() < deadline => {
                    if let Some(reason) = vm.exited() {
                        return Err(VmError::CouldNotRun {
                            reason,
                            console: tail(),
                        });
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(source) => {
                    return Err(VmError::Path {
                        what: "connecting to QEMU's check port at",
                        path: socket.to_path_buf(),
                        source,
                    });
                }
            }
        }
    }

    /// The next message, or `None` at the deadline.
    fn next(
        &mut self,
        vm: &mut Running,
        deadline: Instant,
        tail: &dyn Fn() -> ConsoleTail,
    ) -> Result<Option<Message>, VmError> {
        loop {
            if let Some(pos) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=pos).collect();
                let line = String::from_utf8_lossy(&line).trim().to_string();
                if line.is_empty() {
                    continue;
                }
                return agent::parse_message(&line)
                    .map(Some)
                    .map_err(|reason| VmError::Protocol {
                        line,
                        reason,
                        console: tail(),
                    });
            }
            if let Some(reason) = vm.exited() {
                return Err(VmError::CouldNotRun {
                    reason,
                    console: tail(),
                });
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) => std::thread::sleep(Duration::from_millis(200)),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock
                            | std::io::ErrorKind::TimedOut
                            | std::io::ErrorKind::Interrupted
                    ) => {}
                Err(source) => {
                    return Err(VmError::Path {
                        what: "reading QEMU's check port at",
                        path: self.socket.clone(),
                        source,
                    });
                }
            }
        }
    }
}
