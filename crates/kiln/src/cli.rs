use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::failure::Failure;
use crate::{fleet_cli, output, team, trace};

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
    /// Download every package the lock pins (and its parents' locks) into the store
    Fetch(FetchArgs),
    /// Build the outputs from kiln.lock: rootfs tar, OCI image, disk images (raw, qcow2, vmdk, vhd)
    Build(BuildArgs),
    /// Boot the built disk image, deliver its runtime configuration, run its
    /// [[check]]s inside it and give a verdict (exit 0 all passed, 1 a check
    /// failed, a boot exceeded a check's ready_within, or a required key is
    /// missing; 2 the test could not run). Reports each boot's phases and
    /// slowest units, and which accelerator ran and why
    Test(TestArgs),
    /// Boot the built disk image with its console on this terminal
    Run(RunArgs),
    /// Show what the last build made: packages, layers, outputs and digests
    Inspect(InspectArgs),
    /// List recorded builds, newest first
    Images(ImagesArgs),
    /// Everything recorded about a build: outputs, tests, environments, lineage
    Show(ShowArgs),
    /// Compare two builds: packages and files added, removed and changed
    Diff(DiffArgs),
    /// Record that ENV now runs a build (refused if its last test failed)
    Promote(PromoteArgs),
    /// Move ENV back to the build of NAME that ran there before
    Rollback(RollbackArgs),
    /// Which build each environment runs, and since when
    Where(WhereArgs),
    /// Every promotion and rollback in an environment, in order (`kiln
    /// rollouts` lists the `kiln rebuild` runs that made them)
    History(HistoryArgs),
    /// Push the last build to an OCI registry: the image with its SBOM and
    /// provenance as referrers, and each disk image as an artifact attached to it
    Push(team::PushArgs),
    /// Fetch an image from a registry as an OCI layout, with its disk images,
    /// verifying every blob
    Pull(team::PullArgs),
    /// Write the images under DIR as CI jobs (GitHub, GitLab, Kubernetes, JSON),
    /// one per image, each needing its parent's
    Plan(team::PlanArgs),
    /// Remove from the store what no recent build, no lock under DIRS and no
    /// running build uses (waits for running builds; --dry-run to preview)
    Gc(team::GcArgs),
    /// Every image under a directory, linked by `from` and `include`, in
    /// rebuild waves (exit 1 on a cycle, a missing parent or a name used twice)
    Graph(fleet_cli::GraphArgs),
    /// Locked packages the signed indices now have newer (security) versions
    /// of, per image; children inherit their parents' (exit 0 fresh, 1
    /// outdated, 2 could not check)
    Outdated(fleet_cli::OutdatedArgs),
    /// Relock, build and boot-test images and those built on them, in waves:
    /// parents first, a failure stops its own branch only (exit 1 if any
    /// image failed or was skipped). Recorded as one rollout (`kiln
    /// rollouts`); the same command after a kill continues it
    Rebuild(fleet_cli::RebuildArgs),
    /// The `kiln rebuild` runs recorded in the catalog, newest first; with
    /// ID, that rollout's images: wave, build, test, promotion, why skipped
    Rollouts(fleet_cli::RolloutsArgs),
}

/// BUILD, wherever one is asked for: a digest prefix (of the build id or of
/// any of its outputs, at least 4 hex digits, `sha256:` optional),
/// `NAME@VERSION`, or `NAME@latest`.
const BUILD_REF: &str = "BUILD";

#[derive(Debug, Args)]
pub(crate) struct CatalogArg {
    /// The catalog: an SQLite file, `sqlite:PATH`, or a `postgres://` URL
    /// [default: the store's catalog.sqlite]
    #[arg(long, env = "KILN_CATALOG", value_name = "LOCATION", global = true)]
    pub(crate) catalog: Option<String>,
}

#[derive(Debug, Args)]
struct ImagesArgs {
    /// Only builds of this image
    #[arg(long)]
    name: Option<String>,
    /// Only builds an environment runs now
    #[arg(long, value_name = "ENV")]
    env: Option<String>,
    /// Only builds whose last test passed
    #[arg(long, conflicts_with = "failed")]
    passed: bool,
    /// Only builds whose last test failed
    #[arg(long)]
    failed: bool,
    /// At most this many builds
    #[arg(long, value_name = "N")]
    limit: Option<usize>,
    #[command(flatten)]
    catalog: CatalogArg,
    /// Print JSON instead of a table
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct ShowArgs {
    /// A digest prefix, NAME@VERSION or NAME@latest
    #[arg(value_name = BUILD_REF)]
    build: String,
    #[command(flatten)]
    catalog: CatalogArg,
    /// Print JSON instead of text
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct DiffArgs {
    /// The build to compare from: a digest prefix, NAME@VERSION or NAME@latest
    from: String,
    /// The build to compare to
    to: String,
    /// List every file change (the text output shows the first 20 of each kind)
    #[arg(long)]
    files: bool,
    #[command(flatten)]
    catalog: CatalogArg,
    /// Print JSON (always complete) instead of text
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct PromoteArgs {
    /// A digest prefix, NAME@VERSION or NAME@latest
    #[arg(value_name = BUILD_REF)]
    build: String,
    /// The environment, e.g. staging or production
    #[arg(long = "to", value_name = "ENV")]
    env: String,
    /// Promote even though the build's last test failed
    #[arg(long)]
    force: bool,
    /// Why, kept in the history
    #[arg(long)]
    note: Option<String>,
    #[command(flatten)]
    catalog: CatalogArg,
    /// Print JSON instead of text
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct RollbackArgs {
    /// The environment
    env: String,
    /// The image to roll back
    name: String,
    #[command(flatten)]
    catalog: CatalogArg,
    /// Print JSON instead of text
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct WhereArgs {
    /// Only this image
    name: Option<String>,
    #[command(flatten)]
    catalog: CatalogArg,
    /// Print JSON instead of a table
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct HistoryArgs {
    /// The environment
    env: String,
    #[command(flatten)]
    catalog: CatalogArg,
    /// Print JSON instead of a table
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct BuildArgs {
    /// Directory holding kiln.toml and kiln.lock
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// Build from the store alone, with no network; lists any missing package
    #[arg(long)]
    offline: bool,
    /// Rebuild images whose [[run]] steps say `network = true` (and the
    /// images and outputs built on them) instead of reusing their cached
    /// tree: what those steps download is not pinned by the lock
    #[arg(long)]
    refresh_network_steps: bool,
    /// Outputs to build, instead of [outputs].formats: oci, tar, raw, qcow2, vmdk, vhd
    #[arg(long = "format", value_name = "FORMAT", value_parser = parse_format)]
    formats: Vec<kiln_build::Format>,
    /// Where to write the outputs (default: DIR/out)
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Debian mirror URL (default: KILN_MIRROR, then the host's apt sources)
    #[arg(long, value_name = "URL")]
    mirror: Option<String>,
    #[command(flatten)]
    catalog: CatalogArg,
    #[command(flatten)]
    cache: team::CacheArgs,
    /// Print a JSON report on stdout instead of text
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct FetchArgs {
    /// Directory holding kiln.toml and kiln.lock
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// Debian mirror URL (default: KILN_MIRROR, then the host's apt sources)
    #[arg(long, value_name = "URL")]
    mirror: Option<String>,
    /// Print a JSON report on stdout instead of text
    #[arg(long)]
    json: bool,
}

/// What `kiln test` and `kiln run` both boot, and how.
#[derive(Debug, Args)]
struct BootArgs {
    /// Directory holding kiln.toml (built with a raw or qcow2 output)
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// KEY=VALUE lines delivered to [runtime].env_file at boot, as production would
    #[arg(long, value_name = "FILE")]
    runtime_config: Option<PathBuf>,
    /// kvm, tcg, or auto (KVM when it works, else TCG); KILN_ACCEL overrides
    #[arg(long, default_value = "auto", value_parser = parse_accel)]
    accel: kiln_build::Accel,
    /// Where the build wrote its outputs (default: DIR/out)
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    #[arg(long, value_name = "SOURCE", env = "KILN_FIRMWARE",
          help = kiln_build::FirmwareSource::help())]
    firmware: Option<String>,
    /// Debian mirror URL for --firmware RELEASE (default: KILN_MIRROR, then
    /// the host's apt sources)
    #[arg(long, value_name = "URL")]
    mirror: Option<String>,
    /// Take --firmware RELEASE from the store alone
    #[arg(long)]
    offline: bool,
}

impl BootArgs {
    fn firmware(&self) -> Result<kiln_build::FirmwareChoice, kiln_build::Error> {
        kiln_build::FirmwareChoice::parse(
            self.firmware.as_deref(),
            self.mirror.clone(),
            self.offline,
        )
    }
}

#[derive(Debug, Args)]
struct TestArgs {
    #[command(flatten)]
    boot: BootArgs,
    /// Seconds each boot may take to reach multi-user
    #[arg(long, default_value_t = 180)]
    timeout: u64,
    /// After the checks pass, reboot and run them again
    #[arg(long)]
    reboot: bool,
    /// Keep the guest's serial console in this file
    #[arg(long, value_name = "FILE")]
    console: Option<PathBuf>,
    #[command(flatten)]
    catalog: CatalogArg,
    /// Print a JSON report on stdout instead of a table
    #[arg(long)]
    json: bool,
    /// Boot this kernel with QEMU's -kernel instead of the disk through
    /// UEFI: the floor bench/launch measures the disk's boot against
    #[arg(long, value_name = "FILE", hide = true, requires = "direct_append")]
    direct_kernel: Option<PathBuf>,
    /// The initrd for --direct-kernel
    #[arg(long, value_name = "FILE", hide = true, requires = "direct_kernel")]
    direct_initrd: Option<PathBuf>,
    /// The kernel command line for --direct-kernel
    #[arg(long, value_name = "TEXT", hide = true, requires = "direct_kernel")]
    direct_append: Option<String>,
}

#[derive(Debug, Args)]
struct RunArgs {
    #[command(flatten)]
    boot: BootArgs,
}

pub(crate) fn parse_accel(s: &str) -> Result<kiln_build::Accel, String> {
    kiln_build::Accel::parse(s)
        .ok_or_else(|| format!("unknown accelerator `{s}`; one of: auto, kvm, tcg"))
}

#[derive(Debug, Args)]
struct InspectArgs {
    /// Directory holding kiln.toml
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// Where the build wrote its outputs (default: DIR/out)
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Print JSON instead of text
    #[arg(long)]
    json: bool,
}

pub(crate) fn parse_format(s: &str) -> Result<kiln_build::Format, String> {
    kiln_build::Format::ALL
        .iter()
        .copied()
        .find(|f| f.as_str() == s)
        .ok_or_else(|| {
            let all: Vec<&str> = kiln_build::Format::ALL.iter().map(|f| f.as_str()).collect();
            format!("unknown format `{s}`; one of: {}", all.join(", "))
        })
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

pub fn run(cli: Cli) -> Result<u8, Failure> {
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
        Command::Build(BuildArgs {
            dir,
            offline,
            refresh_network_steps,
            formats,
            out,
            mirror,
            catalog,
            cache,
            json,
        }) => {
            let progress = output::Progress::logged(json);
            let report = kiln_build::build(&kiln_build::BuildOptions {
                dir,
                offline,
                refresh_network_steps,
                formats: (!formats.is_empty()).then_some(formats),
                out,
                mirror,
                catalog: catalog.catalog,
                remote_cache: cache.options(),
                progress: &progress,
            })?;
            output::build(&report, json);
            Ok(0)
        }
        Command::Fetch(FetchArgs { dir, mirror, json }) => {
            let progress = output::Progress::logged(json);
            let report = kiln_build::fetch(&dir, mirror.as_deref(), &progress)?;
            output::fetch(&report, json);
            Ok(0)
        }
        Command::Test(TestArgs {
            boot,
            timeout,
            reboot,
            console,
            catalog,
            json,
            direct_kernel,
            direct_initrd,
            direct_append,
        }) => {
            let firmware = boot.firmware()?;
            // The last three are the firmware's, read above.
            let BootArgs {
                dir,
                runtime_config,
                accel,
                out,
                firmware: _,
                mirror: _,
                offline: _,
            } = boot;
            let progress = output::Progress::logged(json);
            let verdict = kiln_build::test(
                &kiln_build::TestOptions {
                    dir,
                    out,
                    runtime_config,
                    accel,
                    timeout: std::time::Duration::from_secs(timeout),
                    reboot,
                    console_log: console,
                    catalog: catalog.catalog,
                    direct_kernel: direct_kernel.map(|kernel| kiln_build::DirectKernel {
                        kernel,
                        initrd: direct_initrd,
                        append: direct_append.unwrap_or_default(),
                    }),
                    firmware,
                },
                &progress,
            )?;
            Ok(output::test(&verdict, json))
        }
        Command::Run(RunArgs { boot }) => {
            let progress = output::Progress::logged(false);
            let code = kiln_build::run_vm(
                &boot.dir,
                boot.out.as_deref(),
                boot.runtime_config.as_deref(),
                boot.accel,
                &boot.firmware()?,
                &progress,
                |choice, firmware| {
                    eprintln!("kiln: booting with {choice}, firmware {firmware}; Ctrl-a x quits")
                },
            )?;
            Ok(u8::try_from(code).unwrap_or(2))
        }
        Command::Inspect(InspectArgs { dir, out, json }) => {
            let report = kiln_build::inspect(&dir, out.as_deref())?;
            output::inspect(&report, json);
            Ok(0)
        }
        Command::Images(ImagesArgs {
            name,
            env,
            passed,
            failed,
            limit,
            catalog,
            json,
        }) => {
            let catalog = open(catalog)?;
            let filter = kiln_build::BuildFilter {
                name,
                env,
                limit,
                passed: (passed || failed).then_some(passed),
            };
            let builds = catalog.builds(&filter)?;
            let deployments = catalog.deployments(None)?;
            trace::images(&builds, &deployments, json);
            Ok(0)
        }
        Command::Show(ShowArgs {
            build,
            catalog,
            json,
        }) => {
            let report = kiln_build::show(&open(catalog)?, &build)?;
            trace::show(&report, json);
            Ok(0)
        }
        Command::Diff(DiffArgs {
            from,
            to,
            files,
            catalog,
            json,
        }) => {
            let report = kiln_build::diff(&open(catalog)?, &from, &to)?;
            trace::diff(&report, files, json);
            Ok(0)
        }
        Command::Promote(PromoteArgs {
            build,
            env,
            force,
            note,
            catalog,
            json,
        }) => {
            let p = kiln_build::promote(&open(catalog)?, &build, &env, force, note)?;
            trace::promotion(&p, json);
            Ok(0)
        }
        Command::Rollback(RollbackArgs {
            env,
            name,
            catalog,
            json,
        }) => {
            let p = kiln_build::rollback(&open(catalog)?, &env, &name)?;
            trace::promotion(&p, json);
            Ok(0)
        }
        Command::Where(WhereArgs {
            name,
            catalog,
            json,
        }) => {
            let list = open(catalog)?.deployments(name.as_deref())?;
            trace::deployments(&list, json);
            Ok(0)
        }
        Command::History(HistoryArgs { env, catalog, json }) => {
            let list = open(catalog)?.history(&env)?;
            trace::history(&env, &list, json);
            Ok(0)
        }
        Command::Push(args) => Ok(team::push(args)?),
        Command::Pull(args) => Ok(team::pull(args)?),
        Command::Plan(args) => Ok(team::plan(args)?),
        Command::Gc(args) => Ok(team::gc(args)?),
        Command::Graph(args) => fleet_cli::graph(args),
        Command::Outdated(args) => fleet_cli::outdated(args),
        Command::Rebuild(args) => fleet_cli::rebuild(args),
        Command::Rollouts(args) => fleet_cli::rollouts(args),
    }
}

fn open(arg: CatalogArg) -> Result<kiln_build::Catalog, kiln_build::Error> {
    let CatalogArg { catalog } = arg;
    kiln_build::open_catalog(catalog.as_deref())
}
