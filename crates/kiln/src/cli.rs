use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::output;

/// Bake machine images as build artefacts: pinned, reproducible, tested.
///
/// An image is described once in kiln.toml; `kiln lock` pins every package in
/// kiln.lock, and later commands build, test and inspect exactly that.
///
/// Exit codes: 0 success, 1 a problem in your definition or request,
/// 2 kiln or its environment failed (network, archive, disk).
#[derive(Debug, Parser)]
#[command(name = "kiln", version, propagate_version = true, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write a starter kiln.toml
    Init(InitArgs),
    /// Resolve the definition against Debian's signed archive and write kiln.lock
    Lock(LockArgs),
}

#[derive(Debug, Args)]
struct InitArgs {
    /// Directory to write kiln.toml into (created if missing)
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// Image name; defaults to the directory's name
    #[arg(long)]
    name: Option<String>,
    /// Overwrite an existing kiln.toml
    #[arg(long)]
    force: bool,
}

#[derive(Debug, Args)]
struct LockArgs {
    /// Directory holding kiln.toml
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// Do not resolve: exit 1, naming what changed, if kiln.lock no longer
    /// matches kiln.toml (or its parent's lock). Needs no network.
    #[arg(long, conflicts_with_all = ["update", "mirror", "offline"])]
    check: bool,
    /// Move these packages (and what they need) to the newest versions; with
    /// no names, move everything. Without --update, locked versions are kept
    /// while the archive still has them.
    #[arg(long, num_args = 0.., value_name = "PKG")]
    update: Option<Vec<String>>,
    /// Debian mirror URL (default: KILN_MIRROR, then the host's apt sources)
    #[arg(long, value_name = "URL")]
    mirror: Option<String>,
    /// Use only the indices already in the store (KILN_CACHE)
    #[arg(long)]
    offline: bool,
    /// Print a JSON report on stdout instead of text
    #[arg(long)]
    json: bool,
}

pub fn run(cli: Cli) -> Result<u8, kiln_build::Error> {
    match cli.command {
        Command::Init(InitArgs { dir, name, force }) => {
            let path = kiln_build::init(&dir, name.as_deref(), force)?;
            println!("wrote {}", path.display());
            println!("next: edit it, then run `kiln lock {}`", dir.display());
            Ok(0)
        }
        Command::Lock(LockArgs {
            dir,
            check,
            update,
            mirror,
            offline,
            json,
        }) => {
            if check {
                let report = kiln_build::check(&dir)?;
                output::check(&report, json);
                return Ok(if report.fresh { 0 } else { 1 });
            }
            let progress = output::Progress::new(json);
            let report = kiln_build::lock(&kiln_build::LockOptions {
                dir,
                update,
                mirror,
                offline,
                progress: &progress,
            })?;
            output::lock(&report, json);
            Ok(0)
        }
    }
}
