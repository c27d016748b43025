//! What a test found: per boot, per check.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Serialize, Serializer};

use crate::accel::{AccelReason, Accelerator};
use crate::console::ConsoleTail;
use crate::phases::{BootPhases, UnitTime};

/// The result of `kiln test`, whatever the verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub accel_used: Accelerator,
    /// Why: forced, KVM works, KVM absent, or KVM present but hung.
    pub accel_reason: AccelReason,
    /// From starting QEMU to the agent's first report (the machine reached
    /// multi-user) on the first boot.
    #[serde(serialize_with = "seconds")]
    pub boot_to_ready: Duration,
    /// One per boot: two when the test reboots.
    pub runs: Vec<Run>,
    /// The guest's serial console, when it was kept.
    pub console_log: Option<PathBuf>,
}

/// The checks of one boot.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Run {
    /// 1 for the first boot.
    pub boot: u32,
    /// From power-on (or the reboot request) to the agent's first report.
    #[serde(serialize_with = "seconds")]
    pub boot_to_ready: Duration,
    pub checks: Vec<CheckResult>,
    /// Firmware, loader, kernel, initrd and userspace, from
    /// `systemd-analyze time` in the guest; `None` when it could not say.
    pub phases: Option<BootPhases>,
    /// The slowest units of this boot, slowest first (`systemd-analyze blame`).
    pub slowest_units: Vec<UnitTime>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckResult {
    pub name: String,
    pub ok: bool,
    /// The last 4 KiB of its stdout and stderr, from the last attempt.
    pub output: String,
    /// Until it passed, or until it gave up.
    pub seconds: f64,
}

impl Report {
    pub fn passed(&self) -> bool {
        self.runs.iter().all(|r| r.checks.iter().all(|c| c.ok))
    }

    /// `(boot, check)` for every failed check.
    pub fn failures(&self) -> impl Iterator<Item = (u32, &CheckResult)> {
        self.runs
            .iter()
            .flat_map(|r| r.checks.iter().filter(|c| !c.ok).map(move |c| (r.boot, c)))
    }
}

fn seconds<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((d.as_secs_f64() * 1000.0).round() / 1000.0)
}

/// The verdict when a check fails: the image is at fault, not kiln (exit 1).
#[derive(Debug, Clone, PartialEq)]
pub struct CheckFailure {
    /// Everything that ran, failed checks included.
    pub report: Report,
    pub console: ConsoleTail,
}

impl fmt::Display for CheckFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let failures: Vec<_> = self.report.failures().collect();
        let total: usize = self.report.runs.iter().map(|r| r.checks.len()).sum();
        write!(f, "{} of {total} checks failed", failures.len())?;
        for (boot, check) in failures {
            let when = if boot > 1 { " after a reboot" } else { "" };
            write!(
                f,
                "\n- {}{when} (gave up after {:.1}s)",
                check.name, check.seconds
            )?;
            for line in check
                .output
                .lines()
                .rev()
                .take(10)
                .collect::<Vec<_>>()
                .iter()
                .rev()
            {
                write!(f, "\n    {line}")?;
            }
        }
        write!(f, "\n{}", self.console)
    }
}

impl std::error::Error for CheckFailure {}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(name: &str, ok: bool) -> CheckResult {
        CheckResult {
            name: name.into(),
            ok,
            output: if ok { "".into() } else { "inactive\n".into() },
            seconds: 2.0,
        }
    }

    #[test]
    fn a_failure_names_the_checks_and_their_output() {
        let report = Report {
            accel_used: Accelerator::Tcg,
            accel_reason: AccelReason::Env,
            boot_to_ready: Duration::from_millis(25_400),
            runs: vec![
                Run {
                    boot: 1,
                    boot_to_ready: Duration::from_secs(25),
                    checks: vec![check("web", true), check("db", true)],
                    phases: None,
                    slowest_units: Vec::new(),
                },
                Run {
                    boot: 2,
                    boot_to_ready: Duration::from_secs(20),
                    checks: vec![check("web", true), check("db", false)],
                    phases: None,
                    slowest_units: Vec::new(),
                },
            ],
            console_log: None,
        };
        assert!(!report.passed());
        let text = CheckFailure {
            report: report.clone(),
            console: ConsoleTail::default(),
        }
        .to_string();
        assert!(
            text.starts_with(
                "1 of 4 checks failed\n- db after a reboot (gave up after 2.0s)\n    inactive"
            ),
            "{text}"
        );
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["boot_to_ready"], 25.4);
        assert_eq!(json["accel_used"], "tcg");
    }
}
