//! Everything the binary prints: reports on stdout, progress and errors on
//! stderr.

use std::error::Error as _;
use std::io::IsTerminal;
use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressStyle};

use kiln_build::{BuildReport, CheckReport, FetchReport, LockReport};

/// Progress on stderr: on a terminal, lines and a bar for downloads; in a
/// log (for the long commands), plain lines; nothing with `--json`.
pub struct Progress {
    show: bool,
    terminal: bool,
    bar: Mutex<Option<ProgressBar>>,
}

impl Progress {
    /// Progress on a terminal only: for quick commands, whose logs need none.
    pub fn new(json: bool) -> Progress {
        Progress::shown(json, false)
    }

    /// Progress in logs too, as plain lines: for builds and downloads.
    pub fn logged(json: bool) -> Progress {
        Progress::shown(json, true)
    }

    fn shown(json: bool, in_logs: bool) -> Progress {
        let terminal = std::io::stderr().is_terminal();
        Progress {
            show: !json && (terminal || in_logs),
            terminal,
            bar: Mutex::new(None),
        }
    }
}

impl kiln_build::Progress for Progress {
    fn step(&self, message: &str) {
        if !self.show {
            return;
        }
        match self.bar.lock().ok().as_deref() {
            Some(Some(bar)) => bar.println(format!("  {message}")),
            _ => eprintln!("  {message}"),
        }
    }

    fn counter(&self, label: &str, done: u64, total: u64) {
        if !self.show {
            return;
        }
        if !self.terminal {
            // A log gets the end, not every megabyte.
            if done >= total && total > 0 {
                eprintln!("  {label}: {:.1} MiB done", total as f64 / (1 << 20) as f64);
            }
            return;
        }
        let Ok(mut slot) = self.bar.lock() else {
            return;
        };
        let bar = slot.get_or_insert_with(|| {
            let bar = ProgressBar::new(total);
            bar.set_style(
                ProgressStyle::with_template(
                    "  {msg} [{bar:30}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar
        });
        bar.set_message(label.to_string());
        bar.set_length(total);
        bar.set_position(done);
        if done >= total {
            bar.finish_and_clear();
            *slot = None;
        }
    }
}

pub fn error(e: &crate::failure::Failure) {
    eprintln!("error: {e}");
    let mut source = e.source();
    while let Some(s) = source {
        eprintln!("  caused by: {s}");
        source = s.source();
    }
    if let Some(hint) = e.hint() {
        eprintln!("hint: {hint}");
    }
}

pub fn json<T: serde::Serialize>(value: &T) {
    match serde_json::to_string_pretty(value) {
        Ok(s) => println!("{s}"),
        Err(e) => eprintln!("error: serialising the report: {e}"),
    }
}

pub fn lock(r: &LockReport, as_json: bool) {
    if as_json {
        return json(r);
    }
    let suites: Vec<String> = r
        .suites
        .iter()
        .map(|s| format!("{} ({})", s.name, s.date))
        .collect();
    println!(
        "locked {}: {} packages from {} in {:.1}s",
        r.image,
        r.packages,
        suites.join(", "),
        r.seconds
    );
    for c in &r.changes {
        match (&c.from, &c.to) {
            (None, Some(to)) => println!("  + {} {to}", c.name),
            (Some(from), None) => println!("  - {} {from}", c.name),
            (Some(from), Some(to)) => println!("  ~ {} {from} -> {to}", c.name),
            (None, None) => {}
        }
    }
    if r.written {
        println!("wrote {}", r.lockfile.display());
    } else {
        println!("{} is up to date", r.lockfile.display());
    }
}

pub fn check(r: &CheckReport, as_json: bool) {
    if as_json {
        return json(r);
    }
    if r.fresh {
        println!("{} is up to date", r.lockfile.display());
    } else {
        println!("{} is stale:", r.lockfile.display());
        for c in &r.changes {
            println!("  {c}");
        }
        println!("hint: run `kiln lock` and commit the result");
    }
}

fn list_or_none(images: &[String]) -> String {
    if images.is_empty() {
        "none".into()
    } else {
        images.join(", ")
    }
}

pub fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

pub fn build(r: &BuildReport, as_json: bool) {
    if as_json {
        return json(r);
    }
    for s in &r.stages {
        let how = match (s.remote, s.cached) {
            (true, _) => "remote",
            (false, true) => "cached",
            (false, false) => "built",
        };
        let note = s
            .note
            .as_ref()
            .map(|n| format!(" ({n})"))
            .unwrap_or_default();
        println!(
            "  {:<7} {:<12} {how:<6} {:.1}s{note}",
            s.stage, s.image, s.seconds
        );
    }
    if let Some(c) = &r.remote_cache {
        println!(
            "remote cache {}: {} from it, {} pushed",
            c.cache,
            list_or_none(&c.restored),
            list_or_none(&c.pushed)
        );
        for note in &c.notes {
            println!("  note: {note}");
        }
    }
    println!("built {} {} in {:.1}s", r.image, r.version, r.seconds);
    outputs(r);
    documents(r);
}

fn documents(r: &BuildReport) {
    if !r.build.is_empty() {
        println!("  recorded as {} in {}", r.build, r.catalog);
        println!("  sbom         {}", r.sbom.display());
        println!("  provenance   {}", r.provenance.display());
    }
}

fn outputs(r: &BuildReport) {
    for o in &r.outputs {
        println!(
            "  {:<12} {}  {}  {}",
            o.format,
            o.digest,
            mib(o.size),
            o.path.display()
        );
    }
}

pub fn inspect(r: &BuildReport, as_json: bool) {
    if as_json {
        return json(r);
    }
    println!("{} {} (lock {})", r.image, r.version, r.lock);
    println!("layers:");
    for l in &r.layers {
        println!(
            "  {:<12} {}  {}  ({} uncompressed)",
            l.image,
            l.digest,
            mib(l.size),
            mib(l.uncompressed_size)
        );
    }
    println!("outputs:");
    outputs(r);
    documents(r);
    let total: u64 = r.packages.iter().map(|p| p.size).sum();
    println!(
        "packages: {} ({} of .deb files)",
        r.packages.len(),
        mib(total)
    );
    for p in &r.packages {
        println!(
            "  {:<40} {:<32} {:>10}  {:<12} {}",
            p.name, p.version, p.size, p.image, p.origin
        );
    }
}

pub fn fetch(r: &FetchReport, as_json: bool) {
    if as_json {
        return json(r);
    }
    println!(
        "{} packages ({}) in the store, {:.1}s",
        r.packages,
        mib(r.bytes),
        r.seconds
    );
}

/// The verdict as a table (or JSON); returns the exit code.
pub fn test(
    verdict: &Result<kiln_build::TestReport, kiln_build::CheckFailure>,
    as_json: bool,
) -> u8 {
    let (report, failure) = match verdict {
        Ok(r) => (r, None),
        Err(f) => (&f.report, Some(f)),
    };
    if as_json {
        json(&serde_json::json!({ "passed": failure.is_none(), "report": report }));
    } else {
        for run in &report.runs {
            println!(
                "boot {}: ready in {:.1}s",
                run.boot,
                run.boot_to_ready.as_secs_f64()
            );
            match &run.phases {
                Some(p) => println!("  phases  {p}"),
                None => println!("  phases  unknown (systemd-analyze gave no startup time)"),
            }
            if !run.slowest_units.is_empty() {
                let units: Vec<String> = run
                    .slowest_units
                    .iter()
                    .map(|u| format!("{} {:.1}s", u.unit, u.seconds))
                    .collect();
                println!("  slowest {}", units.join(", "));
            }
            for c in &run.checks {
                let mark = if c.ok { "PASS" } else { "FAIL" };
                println!("  {mark}  {:<40} {:.2}s", c.name, c.seconds);
                if let Some(late) = c.late {
                    println!(
                        "        the machine was ready after {:.1}s, over its ready_within of {:.1}s",
                        late.boot_to_ready, late.ready_within
                    );
                }
                if !c.ok {
                    for line in c.output.lines().take(20) {
                        println!("        {line}");
                    }
                }
            }
        }
        println!(
            "accelerator {} ({}), firmware {}; {}",
            report.accel_used,
            report.accel_reason,
            report.firmware,
            if failure.is_none() {
                "all checks passed"
            } else {
                "checks failed"
            }
        );
    }
    if let Some(f) = failure {
        eprintln!("error: {f}");
        1
    } else {
        0
    }
}
