//! The fleet's commands: their arguments and the calls they make.

use std::path::PathBuf;

use clap::Args;

use crate::failure::Failure;
use crate::fleet_output::{self, GraphFormat};

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
