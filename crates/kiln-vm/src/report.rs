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
    /// The firmware it booted with: `host`, or the package and release.
    pub firmware: String,
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
    /// Set when the check's `ready_within` was exceeded: the boot took
    /// longer than the budget, in seconds, and the check failed for it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub late: Option<Late>,
}

/// A boot slower than a check's `ready_within`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Late {
    pub ready_within: f64,
    pub boot_to_ready: f64,
    /// What the check itself found, apart from the time.
    pub check_passed: bool,
}

impl CheckResult {
    /// Fails the check when the boot took longer than `budget`.
    pub fn hold_to(&mut self, budget: Option<Duration>, boot_to_ready: Duration) {
        if let Some(budget) = budget.filter(|b| boot_to_ready > *b) {
            self.late = Some(Late {
                ready_within: budget.as_secs_f64(),
                boot_to_ready: boot_to_ready.as_secs_f64(),
                check_passed: self.ok,
            });
            self.ok = false;
        }
    }
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
            if let Some(late) = check.late {
                write!(
                    f,
                    "\n- {}{when}: the machine was ready after {:.1}s, over its \
                     ready_within of {:.1}s",
                    check.name, late.boot_to_ready, late.ready_within
                )?;
                if late.check_passed {
                    continue;
                }
            }
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

    /// What a user reads for `report`, with no console to show.
    fn failure_text(report: &Report) -> String {
        CheckFailure {
            report: report.clone(),
            console: ConsoleTail::default(),
        }
        .to_string()
    }

    fn check(name: &str, ok: bool) -> CheckResult {
        CheckResult {
            name: name.into(),
            ok,
            output: if ok { "".into() } else { "inactive\n".into() },
            seconds: 2.0,
            late: None,
        }
    }

    #[test]
    fn a_boot_over_ready_within_fails_the_check_and_says_so() {
        let mut on_time = check("web", true);
        on_time.hold_to(Some(Duration::from_secs(10)), Duration::from_millis(9_900));
        on_time.hold_to(None, Duration::from_secs(99));
        assert!(on_time.ok && on_time.late.is_none());
        let mut late = check("web", true);
        late.hold_to(Some(Duration::from_secs(10)), Duration::from_millis(24_340));
        assert!(!late.ok);
        let report = Report {
            accel_used: Accelerator::Tcg,
            accel_reason: AccelReason::Env,
            firmware: "host".into(),
            boot_to_ready: Duration::from_millis(24_340),
            runs: vec![Run {
                boot: 1,
                boot_to_ready: Duration::from_millis(24_340),
                checks: vec![late, check("db", true)],
                phases: None,
                slowest_units: Vec::new(),
            }],
            console_log: None,
        };
        let text = failure_text(&report);
        assert!(
            text.starts_with(
                "1 of 2 checks failed\n- web: the machine was ready after 24.3s, over its ready_within of 10.0s\n"
            ),
            "{text}"
        );
        assert!(!text.contains("gave up"), "{text}");
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["firmware"], "host");
        assert_eq!(json["runs"][0]["checks"][0]["late"]["ready_within"], 10.0);
        assert_eq!(json["runs"][0]["checks"][0]["late"]["check_passed"], true);
        assert!(json["runs"][0]["checks"][1].get("late").is_none());
    }

    #[test]
    fn a_failure_names_the_checks_and_their_output() {
        let report = Report {
            accel_used: Accelerator::Tcg,
            accel_reason: AccelReason::Env,
            firmware: "host".into(),
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
        let text = failure_text(&report);
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
