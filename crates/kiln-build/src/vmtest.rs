//! `kiln test` and `kiln run`: boot the very disk image the last build
//! wrote, through a throw-away overlay, with the runtime configuration
//! production would hand it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use kiln_store::Store;
use kiln_vm::{Accel, AccelChoice, CheckFailure, Report, RuntimeConfig};

use crate::build::{BuildReport, inspect};
use crate::error::Error;
use crate::firmware::FirmwareChoice;
use crate::progress::Progress;

pub struct TestOptions {
    pub dir: PathBuf,
    pub out: Option<PathBuf>,
    pub runtime_config: Option<PathBuf>,
    pub accel: Accel,
    pub timeout: Duration,
    pub reboot: bool,
    /// Keep the serial console here.
    pub console_log: Option<PathBuf>,
    /// Where to record the verdict; default `KILN_CATALOG`, else the store's.
    pub catalog: Option<String>,
    /// Boot this kernel directly, bypassing firmware and loader (bench only).
    pub direct_kernel: Option<kiln_vm::DirectKernel>,
    pub firmware: FirmwareChoice,
}

/// `Ok(Ok(report))`: every check passed. `Ok(Err(failure))`: the verdict is
/// "no" (a check failed). `Err`: kiln could not run the test at all, or the
/// request was wrong (a required key missing, nothing built).
pub fn test(
    opts: &TestOptions,
    progress: &dyn Progress,
) -> Result<Result<Report, CheckFailure>, Error> {
    let def = kiln_spec::load(&opts.dir)?;
    // Refuse a missing required key before anything boots.
    let runtime = RuntimeConfig::load(opts.runtime_config.as_deref(), &def.runtime)?;
    let built = inspect(&opts.dir, opts.out.as_deref())?;
    let image = disk_image(&built)?;
    let catalog = crate::catalog::open(opts.catalog.as_deref())?;
    units_exist(&def.checks, &built, &catalog)?;
    let store = Store::open_default()?;
    let fetched = opts.firmware.resolve(&store, progress)?;
    let vm = kiln_vm::TestOptions {
        accel: opts.accel,
        timeout: opts.timeout,
        reboot: opts.reboot,
        console_log: opts.console_log.clone(),
        accel_cache: accel_cache(&store),
        direct_kernel: opts.direct_kernel.clone(),
        firmware: fetched.as_ref().map(|f| f.firmware.clone()),
        ..kiln_vm::TestOptions::default()
    };
    let verdict = kiln_vm::test(&image, &def.checks, &runtime, &vm)?;
    record(&built, &verdict, &catalog)?;
    Ok(verdict)
}

/// A `unit` check of a unit the image does not have can only fail, after a
/// whole boot: refuse it first, from the manifest the build recorded.
fn units_exist(
    checks: &[kiln_spec::Check],
    built: &BuildReport,
    catalog: &kiln_catalog::Catalog,
) -> Result<(), Error> {
    let units: Vec<&str> = checks
        .iter()
        .filter_map(|c| match &c.kind {
            kiln_spec::CheckKind::Unit { unit } => Some(unit.as_str()),
            _ => None,
        })
        .collect();
    if units.is_empty() {
        return Ok(());
    }
    // A build recorded before manifests were kept has none to read.
    let Some(bytes) = catalog.manifest(&built.build)?.filter(|b| !b.is_empty()) else {
        return Ok(());
    };
    let manifest =
        kiln_manifest::Manifest::from_bytes(&bytes).map_err(|source| Error::Manifest {
            path: catalog.describe().into(),
            source,
        })?;
    let paths: std::collections::BTreeSet<&str> =
        manifest.files.iter().map(|f| f.path.as_str()).collect();
    for unit in units {
        if kiln_rootfs::unit_paths(unit)
            .iter()
            .any(|p| paths.contains(p.as_str()))
        {
            continue;
        }
        let names: Vec<&str> = paths
            .iter()
            .filter_map(|p| kiln_rootfs::in_unit_dir(p))
            .collect();
        return Err(Error::CheckUnitMissing {
            unit: unit.to_owned(),
            image: built.image.clone(),
            closest: kiln_spec::closest(unit, &names).map(str::to_owned),
        });
    }
    Ok(())
}

/// Puts the verdict on the build's record, so `kiln promote` can refuse a
/// build whose last test failed.
fn record(
    built: &BuildReport,
    verdict: &Result<Report, CheckFailure>,
    catalog: &kiln_catalog::Catalog,
) -> Result<(), Error> {
    let report = match verdict {
        Ok(r) => r,
        Err(f) => &f.report,
    };
    let json = serde_json::to_string(report).map_err(|e| Error::Internal(e.to_string()))?;
    catalog.record_test(
        &built.build,
        &kiln_catalog::NewTest {
            at: crate::build::unix_now(),
            passed: verdict.is_ok(),
            accel: report.accel_used.to_string(),
            boot_seconds: Some(report.boot_to_ready.as_secs_f64()),
            report: json,
        },
    )?;
    Ok(())
}

/// Boots the built image with the console on this terminal; `starting`
/// hears the accelerator and why, and the firmware's source, before QEMU
/// starts.
pub fn run(
    dir: &Path,
    out: Option<&Path>,
    runtime_config: Option<&Path>,
    accel: Accel,
    firmware: &FirmwareChoice,
    progress: &dyn Progress,
    starting: impl FnOnce(&AccelChoice, &str),
) -> Result<i32, Error> {
    let def = kiln_spec::load(dir)?;
    let runtime = RuntimeConfig::load(runtime_config, &def.runtime)?;
    let image = disk_image(&inspect(dir, out)?)?;
    let store = Store::open_default()?;
    let fetched = firmware.resolve(&store, progress)?;
    let status = kiln_vm::run_interactive(
        &image,
        &kiln_vm::RunOptions {
            accel,
            runtime,
            accel_cache: accel_cache(&store),
            firmware: fetched.as_ref().map(|f| f.firmware.clone()),
            ..kiln_vm::RunOptions::default()
        },
        starting,
    )?;
    Ok(status.code().unwrap_or(2))
}

/// The disk the build wrote: qcow2 if there is one (smallest to overlay),
/// else raw. The same bytes ship.
fn disk_image(report: &BuildReport) -> Result<PathBuf, Error> {
    ["qcow2", "raw"]
        .iter()
        .find_map(|f| report.outputs.iter().find(|o| o.format == *f))
        .map(|o| o.path.clone())
        .ok_or_else(|| Error::NoDiskImage {
            image: report.image.clone(),
        })
}

/// The KVM probe's verdict, kept in the store until the host reboots.
fn accel_cache(store: &Store) -> Option<PathBuf> {
    store
        .bucket(ACCEL_BUCKET)
        .ok()
        .map(|b| b.dir().join("accel"))
}

/// The store's bucket for what `kiln test` keeps between machines.
const ACCEL_BUCKET: &str = "vm-v1";
