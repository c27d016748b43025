//! `kiln rebuild`: a plan's waves run in order; in each, images are
//! relocked, built and boot-tested (at most `max_parallel` at once), and an
//! image whose parent failed is skipped, not built. Every stage goes through
//! kiln-build, so a rerun after a kill reuses what was done: locks already
//! moved stay put, built stages come from the cache, and a build the
//! catalog has a passing test for is not booted again. The run is one
//! rollout in the catalog; a rerun continues the rollout a kill interrupted.

use std::sync::Mutex;
use std::time::Duration;

use kiln_build::{Accel, PackageChange, Progress, Quiet};
use serde::Serialize;

use crate::error::Error;
use crate::graph::Graph;
use crate::plan::{Plan, Planned};
use crate::rollout::{Options, Recorder};

pub struct RebuildOptions<'a> {
    /// Builds at once within a wave; at least 1.
    pub max_parallel: usize,
    /// In each wave after the first, build and test this many images first
    /// and go on with the others only when they pass.
    pub canary: Option<usize>,
    /// Promote each image that passed to this environment.
    pub promote: Option<String>,
    pub mirror: Option<String>,
    pub catalog: Option<String>,
    pub accel: Accel,
    /// Bound on each boot.
    pub timeout: Duration,
    /// The firmware every boot of the rollout uses, fetched at the first.
    pub firmware: kiln_build::FirmwareChoice,
    pub progress: &'a dyn Progress,
    /// What chose the images, as the rollout records it:
    /// [`Selection::trigger`](crate::Selection::trigger).
    pub trigger: String,
    /// Each build reads (and, `readwrite`, fills) this registry cache, as
    /// `kiln build --cache` does.
    pub remote_cache: Option<kiln_build::RemoteCache>,
}

#[derive(Debug, Serialize)]
pub struct RebuildReport {
    /// The rollout in the catalog; `None` when the plan was empty and
    /// nothing was recorded.
    pub rollout: Option<i64>,
    /// 1 for a new rollout; more when this run continued one a kill
    /// interrupted.
    pub attempt: i64,
    /// Wave by wave, in plan order.
    pub images: Vec<Outcome>,
}

impl RebuildReport {
    pub fn passed(&self) -> bool {
        self.images.iter().all(|o| o.status == Status::Passed)
    }
}

#[derive(Debug, Serialize)]
pub struct Outcome {
    pub name: String,
    /// 1-based, as printed.
    pub wave: usize,
    pub reason: String,
    pub status: Status,
    /// Why it failed or was skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Packages the relock moved.
    pub relocked: Vec<PackageChange>,
    /// The build's id in the catalog.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build: Option<String>,
    /// Every stage came from the cache: nothing was rebuilt.
    pub cached: bool,
    /// `None`: no disk or no checks, so nothing to boot.
    pub tested: Option<Tested>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub promoted: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Passed,
    Failed,
    Skipped,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Tested {
    /// Booted now, and every check passed.
    Passed,
    /// The catalog already had a passing test of this very build.
    Reused,
    Failed,
}

/// Runs `plan` over `graph`, recorded as one rollout in the catalog. An
/// image's failure is its verdict in the report; an error is the catalog
/// failing to record the run.
pub fn rebuild(
    graph: &Graph,
    plan: &Plan,
    opts: &RebuildOptions<'_>,
) -> Result<RebuildReport, Error> {
    if plan.is_empty() {
        // A timer that finds nothing to do fills no history.
        return Ok(RebuildReport {
            rollout: None,
            attempt: 0,
            images: Vec::new(),
        });
    }
    let recorder = Recorder::start(
        kiln_build::open_catalog(opts.catalog.as_deref())?,
        &graph.root,
        &opts.trigger,
        &Options {
            max_parallel: opts.max_parallel,
            canary: opts.canary,
            promote: opts.promote.as_deref(),
        },
    )?;
    if recorder.attempts > 1 {
        opts.progress.step(&format!(
            "continuing rollout {} (run {}): what it built and tested is reused",
            recorder.id, recorder.attempts
        ));
    } else {
        opts.progress
            .step(&format!("rollout {} started", recorder.id));
    }
    // Builds of a wave share the machine well; guests under emulation take
    // every core they get and time out beside another, so one boots at a time.
    let boot = Mutex::new(());
    let mut images: Vec<Outcome> = Vec::new();
    let total = plan.waves.len();
    // A build mostly waits on dpkg and its scripts: at most --max-parallel
    // at once, on threads of their own (the CPU pool is for their insides).
    let run = |items: &[&Planned], w: usize| {
        kiln_deb::par::bounded(items, opts.max_parallel, |p| {
            one(p, w, opts, &recorder, &boot)
        })
        .into_iter()
        .collect::<Result<Vec<_>, _>>()
    };
    for (w, wave) in plan.waves.iter().enumerate() {
        let names: Vec<&str> = wave.iter().map(|p| p.name.as_str()).collect();
        opts.progress
            .step(&format!("wave {}/{total}: {}", w + 1, names.join(", ")));
        let mut ready: Vec<&Planned> = Vec::new();
        for planned in wave {
            let stopped = graph.ancestors(&planned.name).into_iter().find_map(|a| {
                images
                    .iter()
                    .find(|o| o.name == a.name && o.status != Status::Passed)
            });
            match stopped {
                Some(parent) => {
                    let why = format!(
                        "built on {}, which {}",
                        parent.name,
                        if parent.status == Status::Failed {
                            "failed"
                        } else {
                            "was skipped"
                        }
                    );
                    let outcome = skipped(planned, w, why);
                    recorder.ended(&outcome)?;
                    images.push(outcome);
                }
                None => ready.push(planned),
            }
        }
        let canaries = match opts.canary {
            Some(n) if w > 0 && n < ready.len() => n,
            _ => ready.len(),
        };
        let (first, rest) = ready.split_at(canaries);
        let outcomes = run(first, w)?;
        let canary_failed = outcomes
            .iter()
            .find(|o| o.status != Status::Passed)
            .map(|o| o.name.clone());
        images.extend(outcomes);
        match canary_failed {
            Some(canary) if !rest.is_empty() => {
                for p in rest {
                    let outcome = skipped(p, w, format!("the canary {canary} failed"));
                    recorder.ended(&outcome)?;
                    images.push(outcome);
                }
            }
            _ => images.extend(run(rest, w)?),
        }
    }
    let report = RebuildReport {
        rollout: Some(recorder.id),
        attempt: recorder.attempts,
        images,
    };
    recorder.finish(report.passed())?;
    Ok(report)
}

fn skipped(p: &Planned, wave: usize, detail: String) -> Outcome {
    Outcome {
        name: p.name.clone(),
        wave: wave + 1,
        reason: p.reason.clone(),
        status: Status::Skipped,
        detail: Some(detail),
        relocked: Vec::new(),
        build: None,
        cached: false,
        tested: None,
        promoted: None,
    }
}

/// Relock, build, test, promote one image. A failure at any step is the
/// image's verdict, not an error of the run: the other branches go on.
fn one(
    p: &Planned,
    wave: usize,
    opts: &RebuildOptions<'_>,
    recorder: &Recorder,
    boot: &Mutex<()>,
) -> Result<Outcome, Error> {
    recorder.started(p, wave)?;
    let mut outcome = skipped(p, wave, String::new());
    outcome.detail = None;
    match steps(p, opts, recorder, boot, &mut outcome) {
        Ok(passed) => {
            outcome.status = if passed {
                Status::Passed
            } else {
                Status::Failed
            };
        }
        Err(e) => {
            outcome.status = Status::Failed;
            outcome.detail = Some(match e.hint() {
                Some(hint) => format!("{e}\nhint: {hint}"),
                None => e.to_string(),
            });
        }
    }
    let verdict = match outcome.status {
        Status::Passed => "passed",
        Status::Failed => "FAILED",
        Status::Skipped => "skipped",
    };
    opts.progress.step(&format!("{}: {verdict}", p.name));
    recorder.ended(&outcome)?;
    Ok(outcome)
}

fn steps(
    p: &Planned,
    opts: &RebuildOptions<'_>,
    recorder: &Recorder,
    boot: &Mutex<()>,
    outcome: &mut Outcome,
) -> Result<bool, kiln_build::Error> {
    let progress = opts.progress;
    // A lock that matches its definition and its parent's lock, with nothing
    // to move, stays as it is: no need to ask the archive.
    let fresh = p.update.is_empty() && kiln_build::check(&p.dir).is_ok_and(|c| c.fresh);
    if !fresh {
        progress.step(&format!("{}: relocking ({})", p.name, p.reason));
        let lock = kiln_build::lock(&kiln_build::LockOptions {
            dir: p.dir.clone(),
            update: (!p.update.is_empty()).then(|| p.update.clone()),
            mirror: opts.mirror.clone(),
            offline: false,
            progress: &Quiet,
        })?;
        outcome.relocked = lock.changes;
    }
    progress.step(&format!("{}: building", p.name));
    let build = kiln_build::build(&kiln_build::BuildOptions {
        dir: p.dir.clone(),
        offline: false,
        formats: None,
        out: None,
        mirror: opts.mirror.clone(),
        catalog: opts.catalog.clone(),
        progress: &Quiet,
        refresh_network_steps: false,
        remote_cache: opts.remote_cache.clone(),
    })?;
    // The OCI layout is written on every build, from layers already in the
    // store: it rebuilds nothing, so it does not make a build "not cached".
    outcome.cached = build
        .stages
        .iter()
        .filter(|s| s.stage != "oci")
        .all(|s| s.cached);
    outcome.build = Some(build.build.clone());
    let catalog = recorder.catalog();
    if p.boots {
        if let Some(before) = recorder.failed_before(&p.name, &build.build) {
            outcome.tested = Some(Tested::Failed);
            outcome.detail = Some(format!(
                "{}\n(this build failed its checks earlier in rollout {}: not booted again)",
                before.detail.as_deref().unwrap_or("its checks failed"),
                recorder.id
            ));
            return Ok(false);
        }
        let last = catalog
            .tests(&build.build)?
            .into_iter()
            .max_by_key(|t| t.id);
        let checks: Vec<&str> = p.checks.iter().map(String::as_str).collect();
        if last.is_some_and(|t| t.passed && same_checks(&t.report, &checks)) {
            outcome.tested = Some(Tested::Reused);
        } else {
            let _one_at_a_time = boot.lock().unwrap_or_else(|e| e.into_inner());
            progress.step(&format!("{}: booting to run its checks", p.name));
            let verdict = kiln_build::test(
                &kiln_build::TestOptions {
                    dir: p.dir.clone(),
                    out: None,
                    runtime_config: None,
                    accel: opts.accel,
                    timeout: opts.timeout,
                    reboot: false,
                    console_log: None,
                    catalog: opts.catalog.clone(),
                    direct_kernel: None,
                    firmware: opts.firmware.clone(),
                },
                opts.progress,
            )?;
            if let Err(failure) = verdict {
                outcome.tested = Some(Tested::Failed);
                outcome.detail = Some(failure.to_string());
                return Ok(false);
            }
            outcome.tested = Some(Tested::Passed);
        }
    }
    if let Some(env) = &opts.promote {
        // A rerun finds what it promoted before the kill already running.
        let running = catalog
            .deployments(Some(&p.name))?
            .into_iter()
            .any(|d| d.env == *env && d.build == build.build);
        if !running {
            let note = Some(format!(
                "kiln rebuild, rollout {}: {}",
                recorder.id, p.reason
            ));
            kiln_build::promote(catalog, &build.build, env, false, note)?;
        }
        outcome.promoted = Some(env.clone());
    }
    Ok(true)
}

/// Whether a recorded test report ran exactly `checks`: two images may
/// share a build (their root filesystems are equal) and differ in checks,
/// and a verdict on other checks says nothing about these.
fn same_checks(report: &str, checks: &[&str]) -> bool {
    let Ok(report) = serde_json::from_str::<serde_json::Value>(report) else {
        return false;
    };
    let ran: Vec<&str> = report["runs"][0]["checks"]
        .as_array()
        .map(|c| c.iter().filter_map(|c| c["name"].as_str()).collect())
        .unwrap_or_default();
    ran == checks
}
