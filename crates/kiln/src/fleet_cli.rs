//! The fleet's commands: their arguments and the calls they make.

use std::path::PathBuf;

use clap::Args;

use crate::failure::Failure;
use crate::fleet_output::{self, GraphFormat};
use crate::output;

#[derive(Debug, Args)]
pub struct GraphArgs {
    /// Directory to search for kiln.toml files (not under out/, target/,
    /// hidden directories or paths listed in DIR/.kilnignore)
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// Print the graph as JSON: images, fragments, edges and waves
    #[arg(long, conflicts_with = "dot")]
    json: bool,
    /// Print the graph for Graphviz: `kiln graph --dot | dot -Tsvg > fleet.svg`
    #[arg(long)]
    dot: bool,
}

pub fn graph(args: GraphArgs) -> Result<u8, Failure> {
    let GraphArgs { dir, json, dot } = args;
    let graph = kiln_fleet::Graph::discover(&dir)?;
    let format = match (json, dot) {
        (true, _) => GraphFormat::Json,
        (_, true) => GraphFormat::Dot,
        _ => GraphFormat::Text,
    };
    fleet_output::graph(&graph, format);
    Ok(0)
}

#[derive(Debug, Args)]
pub struct OutdatedArgs {
    /// Directory holding the images (as for `kiln graph`)
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// Only security updates (candidates from SUITE-security)
    #[arg(long)]
    security_only: bool,
    /// Check what each environment runs (`kiln where`) instead of the locks:
    /// every package installed in the build it runs
    #[arg(long)]
    built: bool,
    /// The catalog, for --built: an SQLite file, `sqlite:PATH`, or a
    /// `postgres://` URL [default: the store's catalog.sqlite]
    #[arg(long, env = "KILN_CATALOG", value_name = "LOCATION")]
    catalog: Option<String>,
    /// Debian mirror URL (default: KILN_MIRROR, then the host's apt sources)
    #[arg(long, value_name = "URL")]
    mirror: Option<String>,
    /// Compare with the indices already in the store, without the network
    #[arg(long)]
    offline: bool,
    /// Print a JSON report on stdout instead of text
    #[arg(long)]
    json: bool,
}

pub fn outdated(args: OutdatedArgs) -> Result<u8, Failure> {
    let OutdatedArgs {
        dir,
        security_only,
        built,
        catalog,
        mirror,
        offline,
        json,
    } = args;
    let graph = kiln_fleet::Graph::discover(&dir)?;
    let progress = output::Progress::new(json);
    let opts = kiln_build::OutdatedOptions {
        mirror,
        offline,
        progress: &progress,
    };
    if built {
        let catalog = kiln_build::open_catalog(catalog.as_deref())?;
        let mut running = kiln_fleet::outdated_built(&graph, &catalog, &opts)?;
        if security_only {
            for r in &mut running {
                r.pending.retain(|p| p.security);
            }
        }
        fleet_output::running(&running, json);
        return Ok(if running.iter().any(|r| !r.pending.is_empty()) {
            1
        } else {
            0
        });
    }
    let mut report = kiln_fleet::outdated(&graph, &opts)?;
    if security_only {
        report = report.security_only();
    }
    fleet_output::outdated(&report, json);
    Ok(if report.is_outdated() { 1 } else { 0 })
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["outdated", "changed_since", "images"])))]
pub struct RebuildArgs {
    /// Directory holding the images (as for `kiln graph`); give it before
    /// IMAGE names: `kiln rebuild . web`
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// Images with locked packages the archive has newer versions of; only
    /// those packages move (`kiln lock --update PKG…`), every other lock
    /// entry stays as it is
    #[arg(long)]
    outdated: bool,
    /// Images whose definition, fragments, files or scripts changed since
    /// this git revision (committed or not)
    #[arg(long, value_name = "REV")]
    changed_since: Option<String>,
    /// Images by name; the images built on them follow
    #[arg(value_name = "IMAGE")]
    images: Vec<String>,
    /// Print the waves and why each image is in them, and do nothing
    #[arg(long)]
    plan: bool,
    /// Builds at once within a wave
    #[arg(long, value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..))]
    max_parallel: u16,
    /// In each wave after the first, build and test N images first and go
    /// on with the rest of the wave only when they pass
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    canary: Option<u16>,
    /// Promote each image that passed to ENV (`kiln where` shows it; the
    /// run is recorded as a rollout: `kiln rollouts`)
    #[arg(long, value_name = "ENV")]
    promote: Option<String>,
    /// Debian mirror URL (default: KILN_MIRROR, then the host's apt sources)
    #[arg(long, value_name = "URL")]
    mirror: Option<String>,
    /// kvm, tcg, or auto (KVM when it works, else TCG); KILN_ACCEL overrides
    #[arg(long, default_value = "auto", value_parser = crate::cli::parse_accel)]
    accel: kiln_build::Accel,
    /// Seconds each boot may take to reach multi-user
    #[arg(long, default_value_t = 180)]
    timeout: u64,
    #[arg(long, value_name = "SOURCE", env = "KILN_FIRMWARE",
          help = kiln_build::FirmwareSource::help())]
    firmware: Option<String>,
    /// The catalog: an SQLite file, `sqlite:PATH`, or a `postgres://` URL
    /// [default: the store's catalog.sqlite]
    #[arg(long, env = "KILN_CATALOG", value_name = "LOCATION")]
    catalog: Option<String>,
    #[command(flatten)]
    cache: crate::team::CacheArgs,
    /// Print a JSON report (or plan) on stdout instead of text
    #[arg(long)]
    json: bool,
}

pub fn rebuild(args: RebuildArgs) -> Result<u8, Failure> {
    let RebuildArgs {
        dir,
        outdated,
        changed_since,
        images,
        plan,
        max_parallel,
        canary,
        promote,
        mirror,
        accel,
        timeout,
        firmware,
        catalog,
        cache,
        json,
    } = args;
    let firmware = kiln_build::FirmwareChoice::parse(firmware.as_deref(), mirror.clone(), false)?;
    let graph = kiln_fleet::Graph::discover(&dir)?;
    let selection = match (outdated, changed_since) {
        (true, _) => kiln_fleet::Selection::Outdated,
        (_, Some(rev)) => kiln_fleet::Selection::ChangedSince(rev),
        _ => kiln_fleet::Selection::Images(images),
    };
    let progress = output::Progress::logged(json);
    let waves = kiln_fleet::plan(
        &graph,
        &selection,
        &kiln_build::OutdatedOptions {
            mirror: mirror.clone(),
            offline: false,
            progress: &progress,
        },
    )?;
    if plan {
        fleet_output::plan(&waves, json);
        return Ok(0);
    }
    let report = kiln_fleet::rebuild(
        &graph,
        &waves,
        &kiln_fleet::RebuildOptions {
            max_parallel: usize::from(max_parallel),
            canary: canary.map(usize::from),
            promote,
            mirror,
            catalog,
            accel,
            timeout: std::time::Duration::from_secs(timeout),
            firmware,
            progress: &progress,
            trigger: selection.trigger(),
            remote_cache: cache.options(),
        },
    )?;
    fleet_output::rebuild(&report, json);
    Ok(if report.passed() { 0 } else { 1 })
}

#[derive(Debug, Args)]
pub struct RolloutsArgs {
    /// One rollout, with what it did to each image
    #[arg(value_name = "ID")]
    id: Option<i64>,
    /// At most N rollouts, newest first
    #[arg(long, value_name = "N", default_value_t = 20)]
    limit: usize,
    /// The catalog: an SQLite file, `sqlite:PATH`, or a `postgres://` URL
    /// [default: the store's catalog.sqlite]
    #[arg(long, env = "KILN_CATALOG", value_name = "LOCATION")]
    catalog: Option<String>,
    /// Print JSON (every rollout with its images) instead of text
    #[arg(long)]
    json: bool,
}

pub fn rollouts(args: RolloutsArgs) -> Result<u8, Failure> {
    let RolloutsArgs {
        id,
        limit,
        catalog,
        json,
    } = args;
    let catalog = kiln_build::open_catalog(catalog.as_deref())?;
    match id {
        Some(id) => {
            let rollout = catalog
                .rollout(id)?
                .ok_or(kiln_catalog::Error::UnknownRollout { id })?;
            fleet_output::rollout(&rollout, json);
        }
        None => {
            let list = catalog.rollouts(Some(limit))?;
            fleet_output::rollouts(&list, json);
        }
    }
    Ok(0)
}
