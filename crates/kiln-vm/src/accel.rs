//! Choosing between KVM and TCG.
//!
//! `/dev/kvm` existing is not enough: under nested virtualisation it can be
//! present while every real guest hangs (OVMF dies with a KVM emulation
//! failure before printing anything). So `Auto` boots the firmware alone
//! under KVM and wants its first serial output within [`PROBE_BOUND`]; the
//! verdict is kept for the process and, when asked, in a file keyed by the
//! host's boot id.

use std::fmt;
use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::error::VmError;
use crate::qemu::{self, Tools};

/// The environment variable that overrides the requested accelerator.
pub const ACCEL_ENV: &str = "KILN_ACCEL";

/// How long the firmware may take to print its first line under KVM.
pub const PROBE_BOUND: Duration = Duration::from_secs(10);

/// What the caller asks for (`--accel`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Accel {
    /// KVM when it works here, TCG otherwise.
    #[default]
    Auto,
    Kvm,
    Tcg,
}

/// What a machine actually ran with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Accelerator {
    Kvm,
    Tcg,
}

impl Accelerator {
    pub fn as_str(self) -> &'static str {
        match self {
            Accelerator::Kvm => "kvm",
            Accelerator::Tcg => "tcg",
        }
    }

    /// The vCPUs to give a guest that asked for `wanted`, on a host with
    /// `host_cores`. Under TCG each vCPU is a host thread emulating a CPU;
    /// one that cannot get a core in time stalls the guest (RCU stalls,
    /// timer wake-ups that never come, seen on a 2-core host), so TCG gets
    /// at most the host's cores less one, and at least one.
    pub fn guest_cpus(self, wanted: u32, host_cores: u32) -> u32 {
        match self {
            Accelerator::Kvm => wanted.max(1),
            Accelerator::Tcg => wanted.min(host_cores.saturating_sub(1)).max(1),
        }
    }
}

/// This host's cores, as the scheduler lets this process use them.
pub(crate) fn host_cores() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as u32)
}

impl fmt::Display for Accelerator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a machine ran with the accelerator it did, as `kiln test` and
/// `kiln run` report it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AccelReason {
    /// `KILN_ACCEL` named it.
    Env,
    /// `--accel` named it.
    Requested,
    /// Auto: the KVM probe's firmware printed in time.
    KvmWorks,
    /// Auto: `/dev/kvm` is absent or cannot be opened.
    KvmAbsent { detail: String },
    /// Auto: `/dev/kvm` opens, but the firmware printed nothing within
    /// [`PROBE_BOUND`] (nested virtualisation that hangs).
    KvmHung,
}

impl fmt::Display for AccelReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AccelReason::Env => write!(f, "forced by {ACCEL_ENV}"),
            AccelReason::Requested => f.write_str("forced by --accel"),
            AccelReason::KvmWorks => f.write_str("KVM works here"),
            AccelReason::KvmAbsent { detail } => write!(f, "KVM not present: {detail}"),
            AccelReason::KvmHung => write!(
                f,
                "KVM present but hung: the firmware printed nothing within {}s",
                PROBE_BOUND.as_secs()
            ),
        }
    }
}

/// The accelerator a machine runs with, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccelChoice {
    pub used: Accelerator,
    pub reason: AccelReason,
}

impl fmt::Display for AccelChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.used, self.reason)
    }
}

impl Accel {
    pub fn parse(word: &str) -> Option<Accel> {
        match word {
            "auto" => Some(Accel::Auto),
            "kvm" => Some(Accel::Kvm),
            "tcg" => Some(Accel::Tcg),
            _ => None,
        }
    }

    /// The request after `KILN_ACCEL` (given here as `env`) has had its say:
    /// a set, non-empty variable wins over the caller.
    pub fn with_env(self, env: Option<&str>) -> Result<Accel, VmError> {
        match env.map(str::trim) {
            None | Some("") => Ok(self),
            Some(value) => Accel::parse(value).ok_or_else(|| VmError::BadAccelEnv {
                value: value.to_string(),
            }),
        }
    }

    /// The accelerator to run with, and why: `KILN_ACCEL`, then the
    /// request, probing KVM for `Auto`. `cache` is a file that keeps the
    /// probe's verdict.
    pub fn resolve(self, tools: &Tools, cache: Option<&Path>) -> Result<AccelChoice, VmError> {
        let env = std::env::var_os(ACCEL_ENV);
        self.resolve_with(env.as_ref().map(|v| v.to_string_lossy()).as_deref(), || {
            let v = match cached(cache) {
                Some(v) => v,
                None => {
                    let v = probe(tools)?;
                    store(cache, v);
                    v
                }
            };
            Ok(v)
        })
    }

    /// [`Accel::resolve`] with the environment given and the probe (only
    /// run when `/dev/kvm` opens) passed in.
    fn resolve_with(
        self,
        env: Option<&str>,
        probe: impl FnOnce() -> Result<Accelerator, VmError>,
    ) -> Result<AccelChoice, VmError> {
        let wanted = self.with_env(env)?;
        let forced = if env.is_some_and(|e| !e.trim().is_empty()) {
            AccelReason::Env
        } else {
            AccelReason::Requested
        };
        match wanted {
            Accel::Tcg => Ok(AccelChoice {
                used: Accelerator::Tcg,
                reason: forced,
            }),
            Accel::Kvm => match kvm_device() {
                Ok(()) => Ok(AccelChoice {
                    used: Accelerator::Kvm,
                    reason: forced,
                }),
                Err(reason) => Err(VmError::KvmUnavailable { reason }),
            },
            Accel::Auto => {
                if let Err(detail) = kvm_device() {
                    return Ok(AccelChoice {
                        used: Accelerator::Tcg,
                        reason: AccelReason::KvmAbsent { detail },
                    });
                }
                static VERDICT: OnceLock<Accelerator> = OnceLock::new();
                let used = match VERDICT.get() {
                    Some(v) => *v,
                    None => {
                        let v = probe()?;
                        *VERDICT.get_or_init(|| v)
                    }
                };
                Ok(AccelChoice {
                    used,
                    reason: match used {
                        Accelerator::Kvm => AccelReason::KvmWorks,
                        Accelerator::Tcg => AccelReason::KvmHung,
                    },
                })
            }
        }
    }
}

fn kvm_device() -> Result<(), String> {
    match fs_err::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
    {
        Ok(_) => Ok(()),
        Err(e) => Err(format!("/dev/kvm cannot be used: {e}")),
    }
}

/// Boots OVMF with no disk under KVM and waits for its first serial output.
fn probe(tools: &Tools) -> Result<Accelerator, VmError> {
    if kvm_device().is_err() {
        return Ok(Accelerator::Tcg);
    }
    let dir = crate::session::work_dir("kiln-kvm-probe")?;
    let vars = tools.vars_copy(dir.path())?;
    let log = dir.path().join("serial.log");
    let machine = qemu::Machine {
        accel: Accelerator::Kvm,
        memory_mib: 256,
        cpus: 1,
        vars: &vars,
        disk: None,
        network: false,
        seed: None,
        check_socket: None,
        serial: qemu::Serial::File(&log),
        direct: None,
    };
    let args = qemu::args(tools, &machine);
    let mut vm = qemu::Running::spawn(tools, &args, &dir.path().join("stderr"))?;
    let start = Instant::now();
    let verdict = loop {
        if fs_err::metadata(&log).map(|m| m.len() > 0).unwrap_or(false) {
            break Accelerator::Kvm;
        }
        if vm.exited().is_some() || start.elapsed() > PROBE_BOUND {
            break Accelerator::Tcg;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    vm.stop();
    Ok(verdict)
}

/// The host's boot id: a probe verdict holds until the host reboots.
fn boot_id() -> Option<String> {
    fs_err::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|s| s.trim().to_string())
}

fn cached(cache: Option<&Path>) -> Option<Accelerator> {
    let text = fs_err::read_to_string(cache?).ok()?;
    let (accel, id) = text.trim().split_once(' ')?;
    if Some(id) != boot_id().as_deref() {
        return None;
    }
    match accel {
        "kvm" => Some(Accelerator::Kvm),
        "tcg" => Some(Accelerator::Tcg),
        _ => None,
    }
}

/// Best effort: a cache that cannot be written only costs another probe.
fn store(cache: Option<&Path>, verdict: Accelerator) {
    let (Some(cache), Some(id)) = (cache, boot_id()) else {
        return;
    };
    if let Some(dir) = cache.parent() {
        let _ = fs_err::create_dir_all(dir);
    }
    let tmp = cache.with_extension("tmp");
    if fs_err::write(&tmp, format!("{verdict} {id}\n")).is_ok() {
        let _ = fs_err::rename(&tmp, cache);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcg_leaves_the_host_a_core_and_kvm_gets_what_was_asked() {
        assert_eq!(Accelerator::Tcg.guest_cpus(2, 2), 1);
        assert_eq!(Accelerator::Tcg.guest_cpus(2, 1), 1);
        assert_eq!(Accelerator::Tcg.guest_cpus(2, 8), 2);
        assert_eq!(Accelerator::Tcg.guest_cpus(4, 3), 2);
        assert_eq!(Accelerator::Kvm.guest_cpus(2, 2), 2);
        assert_eq!(Accelerator::Kvm.guest_cpus(0, 2), 1);
    }

    #[test]
    fn the_environment_overrides_the_request() {
        assert_eq!(Accel::Auto.with_env(Some("tcg")).unwrap(), Accel::Tcg);
        assert_eq!(Accel::Tcg.with_env(Some("kvm")).unwrap(), Accel::Kvm);
        assert_eq!(Accel::Kvm.with_env(Some(" auto ")).unwrap(), Accel::Auto);
    }

    #[test]
    fn an_unset_or_empty_environment_keeps_the_request() {
        assert_eq!(Accel::Kvm.with_env(None).unwrap(), Accel::Kvm);
        assert_eq!(Accel::Tcg.with_env(Some("")).unwrap(), Accel::Tcg);
    }

    #[test]
    fn a_bad_environment_value_is_an_error_that_says_what_is_allowed() {
        let err = Accel::Auto.with_env(Some("hvf")).unwrap_err().to_string();
        assert!(err.contains("KILN_ACCEL=\"hvf\""), "{err}");
        assert!(err.contains("auto, kvm or tcg"), "{err}");
    }

    #[test]
    fn the_reason_says_who_forced_the_choice() {
        let no_probe = || -> Result<Accelerator, VmError> { panic!("no probe when forced") };
        let c = Accel::Auto.resolve_with(Some("tcg"), no_probe).unwrap();
        assert_eq!(c.used, Accelerator::Tcg);
        assert_eq!(c.reason, AccelReason::Env);
        assert_eq!(c.to_string(), "tcg (forced by KILN_ACCEL)");
        let c = Accel::Tcg.resolve_with(None, no_probe).unwrap();
        assert_eq!(c.reason, AccelReason::Requested);
        assert_eq!(c.to_string(), "tcg (forced by --accel)");
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(json["used"], "tcg");
        assert_eq!(json["reason"]["kind"], "requested");
    }

    #[test]
    fn auto_says_whether_kvm_is_absent_or_hung() {
        let c = Accel::Auto
            .resolve_with(Some(""), || Ok(Accelerator::Tcg))
            .unwrap();
        assert_eq!(c.used, Accelerator::Tcg);
        // Which of the two depends on this host's /dev/kvm; both name KVM.
        match &c.reason {
            AccelReason::KvmAbsent { detail } => {
                assert!(kvm_device().is_err());
                assert!(detail.contains("/dev/kvm"), "{detail}");
                assert!(c.to_string().starts_with("tcg (KVM not present: /dev/kvm"));
            }
            AccelReason::KvmHung => {
                assert!(kvm_device().is_ok());
                assert!(c.to_string().contains("KVM present but hung"), "{c}");
            }
            other => panic!("auto gave {other:?}"),
        }
    }

    #[test]
    fn a_cached_verdict_holds_only_for_this_host_boot() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("sub/accel");
        assert_eq!(cached(Some(&cache)), None);
        store(Some(&cache), Accelerator::Tcg);
        assert_eq!(cached(Some(&cache)), Some(Accelerator::Tcg));
        fs_err::write(&cache, "kvm 00000000-another-boot\n").unwrap();
        assert_eq!(cached(Some(&cache)), None);
    }
}
