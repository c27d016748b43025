//! The team-scale commands: `kiln push`, `kiln pull`, `kiln plan`, `kiln gc`.

use std::path::PathBuf;

use clap::Args;

use crate::output;

/// How to reach a registry.
#[derive(Debug, Args)]
pub struct RegistryArgs {
    /// PEM certificates to trust beside the system's roots (a registry with its own CA)
    #[arg(long, value_name = "FILE")]
    ca_file: Option<PathBuf>,
    /// Allow plain HTTP to a registry that is not on this machine (loopback
    /// registries may always use it)
    #[arg(long)]
    insecure: bool,
}

impl RegistryArgs {
    fn options(self) -> kiln_build::RegistryOptions {
        let RegistryArgs { ca_file, insecure } = self;
        kiln_build::RegistryOptions { ca_file, insecure }
    }
}

/// `kiln build --cache`: the remote cache.
#[derive(Debug, Args)]
pub struct CacheArgs {
    /// A registry repository shared as a build cache (REGISTRY/REPO, no
    /// tag). Before building an image's root filesystem kiln looks its cache
    /// key up there (tag rootfs-KEY) and, when present, unpacks the image's
    /// layer instead of fetching packages and running dpkg; after building,
    /// it pushes what it built (see --cache-mode). A miss or an unreachable
    /// registry is a note: the build goes on locally. An entry whose digests
    /// do not match is refused and the image built locally
    #[arg(
        long = "cache",
        env = "KILN_REMOTE_CACHE",
        value_name = "REGISTRY/REPO"
    )]
    cache: Option<String>,
    /// `readwrite` (the default): use the cache and push what this build
    /// made; `read`: use it, push nothing (for builds of untrusted changes)
    #[arg(long, value_name = "MODE", default_value = "readwrite", value_parser = parse_cache_mode)]
    cache_mode: kiln_build::CacheMode,
    #[command(flatten)]
    registry: RegistryArgs,
}

impl CacheArgs {
    pub fn options(self) -> Option<kiln_build::RemoteCache> {
        let CacheArgs {
            cache,
            cache_mode,
            registry,
        } = self;
        cache
            .filter(|c| !c.is_empty())
            .map(|reference| kiln_build::RemoteCache {
                reference,
                mode: cache_mode,
                registry: registry.options(),
            })
    }
}

fn parse_cache_mode(s: &str) -> Result<kiln_build::CacheMode, String> {
    match s {
        "read" => Ok(kiln_build::CacheMode::Read),
        "readwrite" => Ok(kiln_build::CacheMode::Readwrite),
        _ => Err(format!("`{s}`: the cache mode is read or readwrite")),
    }
}

#[derive(Debug, Args)]
pub struct PushArgs {
    /// Directory holding kiln.toml (its last build is pushed)
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// Where: REGISTRY/REPO, or REGISTRY/REPO:TAG (default tag: the image's
    /// version). The build id is always tagged too, as build-HEX.
    /// Credentials come from REGISTRY_AUTH_FILE,
    /// $XDG_RUNTIME_DIR/containers/auth.json or ~/.docker/config.json.
    #[arg(long, value_name = "REGISTRY/REPO[:TAG]")]
    to: String,
    /// Where the build wrote its outputs (default: DIR/out)
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    #[command(flatten)]
    registry: RegistryArgs,
    #[command(flatten)]
    catalog: crate::cli::CatalogArg,
    /// Print a JSON report on stdout instead of text
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct PullArgs {
    /// REGISTRY/REPO:TAG or REGISTRY/REPO@sha256:DIGEST
    reference: String,
    /// Directory to write NAME-VERSION.oci/ and the disk images into
    #[arg(long, value_name = "DIR", default_value = ".")]
    out: PathBuf,
    /// Only these disk formats (raw, qcow2, vmdk, vhd); default: every one attached
    #[arg(long = "format", value_name = "FORMAT", value_parser = crate::cli::parse_format)]
    formats: Vec<kiln_build::Format>,
    /// From a multi-platform index, the image for this architecture
    /// (Debian's name: amd64, arm64)
    #[arg(long, value_name = "ARCH", default_value = "amd64", value_parser = parse_architecture)]
    architecture: kiln_build::Architecture,
    #[command(flatten)]
    registry: RegistryArgs,
    /// Print a JSON report on stdout instead of text
    #[arg(long)]
    json: bool,
}

fn parse_architecture(s: &str) -> Result<kiln_build::Architecture, String> {
    kiln_build::Architecture::from_debian(s).ok_or_else(|| {
        let all: Vec<&str> = kiln_build::Architecture::ALL
            .iter()
            .map(|a| a.debian())
            .collect();
        format!("unknown architecture `{s}`; one of: {}", all.join(", "))
    })
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Directory to search for kiln.toml files (each is one image; `from`
    /// makes a job need its parent's)
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// github (a workflow), gitlab (a pipeline), kubernetes (one Job per
    /// image, annotated with its wave), or json
    #[arg(long = "for", value_name = "TARGET", value_parser = parse_target)]
    target: kiln_build::PlanTarget,
}

#[derive(Debug, Args)]
pub struct GcArgs {
    /// Directories whose kiln.lock files' packages stay in the store
    /// (searched recursively)
    #[arg(default_value = ".")]
    dirs: Vec<PathBuf>,
    /// Keep what any build recorded in the catalog within this long used
    /// (its stage results, its parents', its layers), and anything newer
    #[arg(long, default_value = "30d", value_name = "DURATION", value_parser = kiln_build::parse_keep)]
    keep: std::time::Duration,
    /// Say what would go and how much, and remove nothing
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    catalog: crate::cli::CatalogArg,
    /// Print a JSON report on stdout instead of text
    #[arg(long)]
    json: bool,
}

pub fn gc(args: GcArgs) -> Result<u8, kiln_build::Error> {
    let GcArgs {
        dirs,
        keep,
        dry_run,
        catalog,
        json,
    } = args;
    let progress = output::Progress::new(json);
    let report = kiln_build::gc(&kiln_build::GcOptions {
        dirs,
        keep,
        dry_run,
        catalog: catalog.catalog,
        progress: &progress,
    })?;
    if json {
        output::json(&report);
    } else {
        for r in &report.removed {
            println!(
                "{:>10.1} MiB  {}",
                r.bytes as f64 / (1 << 20) as f64,
                r.path.display()
            );
        }
        let verb = if dry_run { "would free" } else { "freed" };
        println!(
            "{verb} {:.1} MiB in {} entries; kept {}",
            report.bytes as f64 / (1 << 20) as f64,
            report.removed.len(),
            report.kept
        );
    }
    Ok(0)
}

fn parse_target(s: &str) -> Result<kiln_build::PlanTarget, String> {
    let all = kiln_build::PlanTarget::ALL;
    all.iter()
        .find(|(name, _)| *name == s)
        .map(|(_, t)| *t)
        .ok_or_else(|| {
            let names: Vec<&str> = all.iter().map(|(n, _)| *n).collect();
            format!("unknown target `{s}`; one of: {}", names.join(", "))
        })
}

/// SIGINT and SIGTERM (Ctrl-C, a CI job cancelled) end a push at the next
/// blob or chunk boundary (a second one at once), its upload session kept, so the next push resumes it
/// instead of sending a disk image again.
fn stop_uploads_on_signals() {
    extern "C" fn on_signal(_: libc::c_int) {
        // A second signal ends the process at once.
        if kiln_build::interrupt_uploads() {
            // SAFETY: _exit is async-signal-safe.
            unsafe { libc::_exit(130) };
        }
    }
    // SAFETY: the handler only swaps an atomic and calls _exit, both
    // async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
}

pub fn push(args: PushArgs) -> Result<u8, kiln_build::Error> {
    let PushArgs {
        dir,
        to,
        out,
        registry,
        catalog,
        json,
    } = args;
    stop_uploads_on_signals();
    let progress = output::Progress::logged(json);
    let report = kiln_build::push(
        &dir,
        out.as_deref(),
        &to,
        &registry.options(),
        catalog.catalog.as_deref(),
        &progress,
    )?;
    if json {
        output::json(&report);
    } else {
        println!(
            "pushed {} {} as {}",
            report.image, report.version, report.reference
        );
        println!("  tags: {}", report.tags.join(", "));
        for a in &report.artifacts {
            let file = a
                .file
                .as_deref()
                .map(|f| format!(" ({f})"))
                .unwrap_or_default();
            println!("  {} {}{file}", a.artifact_type, a.digest);
        }
        println!(
            "  blobs: {} uploaded ({:.1} MiB), {} already there, {} mounted",
            report.uploaded,
            report.bytes_uploaded as f64 / (1 << 20) as f64,
            report.present,
            report.mounted
        );
        if let Some(c) = &report.catalog {
            println!("  recorded in {c}");
        }
    }
    Ok(0)
}

pub fn pull(args: PullArgs) -> Result<u8, kiln_build::Error> {
    let PullArgs {
        reference,
        out,
        formats,
        architecture,
        registry,
        json,
    } = args;
    let progress = output::Progress::logged(json);
    let report = kiln_build::pull(
        &reference,
        architecture,
        &out,
        &formats,
        &registry.options(),
        &progress,
    )?;
    if json {
        output::json(&report);
    } else {
        println!(
            "pulled {} {} ({})",
            report.image, report.version, report.reference
        );
        println!("  {}", report.layout.display());
        for path in report.disks.values() {
            println!("  {}", path.display());
        }
    }
    Ok(0)
}

/// The fleet's graph (the one `kiln graph` and `kiln rebuild` read) as CI jobs.
pub fn plan(args: PlanArgs) -> Result<u8, crate::failure::Failure> {
    let PlanArgs { dir, target } = args;
    let graph = kiln_fleet::Graph::discover(&dir)?;
    let nodes: Vec<kiln_build::PlanNode> = graph
        .images
        .iter()
        .map(|image| kiln_build::PlanNode {
            name: image.name.clone(),
            dir: image.dir.clone(),
            from: image.parent.clone(),
            wave: image.wave,
            bootable: image.definition.outputs.formats.iter().any(|f| f.is_disk()),
        })
        .collect();
    print!("{}", kiln_build::plan(&nodes, target)?);
    Ok(0)
}
