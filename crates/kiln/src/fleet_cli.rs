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
        mirror,
        offline,
        json,
    } = args;
    let graph = kiln_fleet::Graph::discover(&dir)?;
    let progress = output::Progress::new(json);
    let mut report = kiln_fleet::outdated(
        &graph,
        &kiln_build::OutdatedOptions {
            mirror,
            offline,
            progress: &progress,
        },
    )?;
    if security_only {
        report = report.security_only();
    }
    fleet_output::outdated(&report, json);
    Ok(if report.is_outdated() { 1 } else { 0 })
}
