//! Where a boot's time went, as `systemd-analyze` inside the guest tells it:
//! `systemd-analyze time` for the phases and the first lines of
//! `systemd-analyze blame` for the slowest units.

use serde::Serialize;

/// The phases of one boot, in seconds. A phase the machine did not have
/// (no initrd) or did not report (firmware and loader times need a loader
/// that passes them, as systemd-boot does) is `None`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct BootPhases {
    pub firmware: Option<f64>,
    pub loader: Option<f64>,
    pub kernel: Option<f64>,
    pub initrd: Option<f64>,
    pub userspace: Option<f64>,
    pub total: Option<f64>,
    /// Firmware and loader together as the host saw them, when the guest
    /// could not time them (systemd-boot under TCG may leave its timestamps
    /// unset): from starting QEMU (or the reboot) to the agent's report,
    /// less the guest's own time from the kernel's start to the target it
    /// reached.
    pub pre_kernel_host: Option<f64>,
    /// `multi-user.target reached after N in userspace`, in seconds.
    #[serde(skip)]
    target_in_userspace: Option<f64>,
}

/// One unit and how long it took to start.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UnitTime {
    pub unit: String,
    pub seconds: f64,
}

/// How many of `systemd-analyze blame`'s lines a report keeps.
pub const SLOWEST: usize = 5;

impl BootPhases {
    /// Reads `Startup finished in 1.2s (firmware) + … = 18.0s`; `None` when
    /// the text has no such line (the boot had not finished, or
    /// systemd-analyze is missing). Lines `LoaderTimeInitUSec=N` and
    /// `LoaderTimeExecUSec=M` (systemd-boot's EFI variables: microseconds
    /// from power-on to the loader's start and to its handing over to the
    /// kernel) supply the firmware and loader phases when systemd-analyze
    /// had none.
    pub fn parse(text: &str) -> Option<BootPhases> {
        let mut phases = Self::parse_analyze(text)?;
        let usec = |key: &str| {
            text.lines()
                .find_map(|l| l.trim().strip_prefix(key)?.strip_prefix('='))
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(|us| us as f64 / 1e6)
        };
        if let (None, Some(init), Some(exec)) = (
            phases.firmware,
            usec("LoaderTimeInitUSec"),
            usec("LoaderTimeExecUSec"),
        ) && exec >= init
        {
            phases.firmware = Some(init);
            phases.loader = Some(exec - init);
            phases.total = phases.total.map(|t| t + exec);
        }
        Some(phases)
    }

    /// Sets [`BootPhases::pre_kernel_host`] when the guest had no firmware
    /// time, from the host's `boot_to_ready`.
    pub fn fill_pre_kernel(&mut self, boot_to_ready: std::time::Duration) {
        if self.firmware.is_some() {
            return;
        }
        let guest = [self.kernel, self.initrd, self.target_in_userspace]
            .iter()
            .flatten()
            .sum::<f64>();
        if let (Some(_), Some(_)) = (self.kernel, self.target_in_userspace) {
            let left = boot_to_ready.as_secs_f64() - guest;
            self.pre_kernel_host = Some((left.max(0.0) * 1000.0).round() / 1000.0);
        }
    }

    fn parse_analyze(text: &str) -> Option<BootPhases> {
        let target_in_userspace = text.lines().find_map(|l| {
            let (_, after) = l.split_once(" reached after ")?;
            timespan(after.trim().strip_suffix(" in userspace.")?)
        });
        let line = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("Startup finished in "))?;
        let (parts, total) = match line.split_once(" = ") {
            Some((p, t)) => (p, timespan(t)),
            None => (line, None),
        };
        let mut phases = BootPhases {
            total,
            target_in_userspace,
            ..BootPhases::default()
        };
        for part in parts.split(" + ") {
            let (span, label) = part.trim().rsplit_once(" (")?;
            let secs = timespan(span)?;
            let slot = match label.trim_end_matches(')') {
                "firmware" => &mut phases.firmware,
                "loader" => &mut phases.loader,
                "kernel" => &mut phases.kernel,
                "initrd" => &mut phases.initrd,
                "userspace" => &mut phases.userspace,
                _ => continue,
            };
            *slot = Some(secs);
        }
        Some(phases)
    }
}

impl std::fmt::Display for BootPhases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let named = [
            ("firmware", self.firmware),
            ("loader", self.loader),
            ("kernel", self.kernel),
            ("initrd", self.initrd),
            ("userspace", self.userspace),
        ];
        let parts: Vec<String> = named
            .iter()
            .filter_map(|(n, s)| s.map(|s| format!("{n} {s:.1}s")))
            .collect();
        f.write_str(&parts.join(" + "))?;
        if let Some(t) = self.total {
            write!(f, " = {t:.1}s")?;
        }
        if let Some(p) = self.pre_kernel_host {
            write!(f, " (before the kernel, as the host saw it: {p:.1}s)")?;
        }
        Ok(())
    }
}

/// The first [`SLOWEST`] lines of `systemd-analyze blame`
/// (`1min 2.345s foo.service`); lines that do not read so are skipped.
pub fn parse_blame(text: &str) -> Vec<UnitTime> {
    text.lines()
        .filter_map(|l| {
            let l = l.trim();
            let (span, unit) = l.rsplit_once(char::is_whitespace)?;
            Some(UnitTime {
                unit: unit.to_string(),
                seconds: timespan(span)?,
            })
        })
        .take(SLOWEST)
        .collect()
}

/// systemd's timespan (`1h 2min 3.456s`, `789ms`, `12us`) in seconds.
fn timespan(text: &str) -> Option<f64> {
    let mut total = 0.0;
    let mut any = false;
    for word in text.split_whitespace() {
        let split = word
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .filter(|&i| i > 0)?;
        let (num, unit) = word.split_at(split);
        let n: f64 = num.parse().ok()?;
        let scale = match unit {
            "d" => 86_400.0,
            "h" => 3_600.0,
            "min" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            _ => return None,
        };
        total += n * scale;
        any = true;
    }
    any.then_some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn startup_lines_parse_with_and_without_firmware_and_initrd() {
        let p = BootPhases::parse(
            "Startup finished in 3.285s (firmware) + 1.045s (loader) + 1.234s (kernel) \
             + 2.345s (initrd) + 1min 10.123s (userspace) = 1min 18.032s \n\
             multi-user.target reached after 1min 9.900s in userspace.\n",
        )
        .unwrap();
        assert_eq!(p.firmware, Some(3.285));
        assert_eq!(p.loader, Some(1.045));
        assert_eq!(p.kernel, Some(1.234));
        assert_eq!(p.initrd, Some(2.345));
        assert!((p.userspace.unwrap() - 70.123).abs() < 1e-9);
        assert!((p.total.unwrap() - 78.032).abs() < 1e-9);
        assert_eq!(
            p.to_string(),
            "firmware 3.3s + loader 1.0s + kernel 1.2s + initrd 2.3s + userspace 70.1s = 78.0s"
        );
        let p = BootPhases::parse("Startup finished in 812ms (kernel) + 4.5s (userspace) = 5.312s")
            .unwrap();
        assert_eq!(p.initrd, None);
        assert_eq!(p.firmware, None);
        assert_eq!(p.kernel, Some(0.812));
    }

    #[test]
    fn the_loaders_variables_fill_in_firmware_and_loader() {
        let text = "Startup finished in 9.864s (kernel) + 20.319s (userspace) = 30.184s\n\
                    multi-user.target reached after 20.1s in userspace.\n\
                    LoaderTimeInitUSec=4100000\nLoaderTimeExecUSec=5350000\n";
        let p = BootPhases::parse(text).unwrap();
        assert_eq!(p.firmware, Some(4.1));
        assert!((p.loader.unwrap() - 1.25).abs() < 1e-9);
        assert!((p.total.unwrap() - 35.534).abs() < 1e-9);
        // With the loader's figures, the host's estimate is not needed.
        let mut q = p.clone();
        q.fill_pre_kernel(std::time::Duration::from_secs(40));
        assert_eq!(q.pre_kernel_host, None);
        // systemd-analyze's own figures win when it has them.
        let p = BootPhases::parse(
            "Startup finished in 3s (firmware) + 1s (loader) + 2s (kernel) + 4s (userspace) = 10s\n\
             LoaderTimeInitUSec=9000000\nLoaderTimeExecUSec=9500000\n",
        )
        .unwrap();
        assert_eq!(
            (p.firmware, p.loader, p.total),
            (Some(3.0), Some(1.0), Some(10.0))
        );
    }

    #[test]
    fn without_the_loaders_figures_the_host_estimates_what_came_before_the_kernel() {
        let mut p = BootPhases::parse(
            "Startup finished in 9.864s (kernel) + 20.319s (userspace) = 30.184s\n\
             multi-user.target reached after 20.1s in userspace.\n",
        )
        .unwrap();
        assert_eq!(p.pre_kernel_host, None);
        p.fill_pre_kernel(std::time::Duration::from_millis(40_500));
        assert!((p.pre_kernel_host.unwrap() - 10.536).abs() < 1e-9, "{p:?}");
        assert_eq!(
            p.to_string(),
            "kernel 9.9s + userspace 20.3s = 30.2s (before the kernel, as the host saw it: 10.5s)"
        );
    }

    #[test]
    fn an_unfinished_boot_or_missing_tool_has_no_phases() {
        assert_eq!(
            BootPhases::parse("Bootup is not yet finished. Please try again later."),
            None
        );
        assert_eq!(BootPhases::parse("sh: systemd-analyze: not found"), None);
    }

    #[test]
    fn blame_keeps_the_five_slowest() {
        let text = "1min 2.5s apt-daily.service\n 5.101s nginx.service\n912ms a.service\n\
                    800ms b.service\n700ms c.service\n600ms d.service\n";
        let b = parse_blame(text);
        assert_eq!(b.len(), SLOWEST);
        assert_eq!(b[0].unit, "apt-daily.service");
        assert!((b[0].seconds - 62.5).abs() < 1e-9);
        assert_eq!(b[1].unit, "nginx.service");
        assert_eq!(b[4].unit, "c.service");
        assert!(parse_blame("Bootup is not yet finished.").is_empty());
    }
}
