//! Installing packages into a root, as mmdebstrap does for an empty one:
//!
//! 1. lay out what dpkg expects (its database directories, an empty status
//!    file, `/var/lib/dpkg/arch`, an fstab) and, for a merged-/usr release,
//!    the `/bin → usr/bin` links, before anything is extracted;
//! 2. extract the data of the essential set (Essential: yes and its
//!    dependencies) from the host, so the image has a shell, libc and dpkg;
//! 3. record that set as unpacked, run its preinsts, and have the image's own
//!    dpkg configure it (`--configure -a`), which runs the postinsts;
//! 4. install everything else, dependencies first, in as few batches as
//!    Pre-Depends allow: kiln unpacks each batch (`unpack`), then dpkg
//!    configures it.
//!
//! A root that already holds an image (it has a dpkg status file) only gets
//! step 4. With [`Unpacker::Dpkg`] (or for a batch kiln cannot unpack), steps
//! 3 and 4 are `dpkg --install`, as mmdebstrap does them.

use std::collections::BTreeSet;
use std::ffi::{OsStr, OsString};
use std::path::Path;
use std::time::Instant;

use crate::deb::{Control, damaged_or, read_control};
use crate::error::RootfsError;
use crate::order::{Batch, batches, essential_closure, kernels_last};
use crate::sandbox::{NoDaemons, Sandbox};
use crate::stage::{DEBS_DIR, StagedDebs};
use crate::status::{self, Installed, STATUS};
use crate::unpack::{Extracted, Unpacked, pre_extract, unpack};
use crate::{BuildEnv, Deb, Event, Report, Unpacker};

/// The directories mmdebstrap creates before extracting (its `run_setup`);
/// made here too so the result has the same shape.
const SKELETON_DIRS: &[&str] = &[
    "etc/apt/apt.conf.d",
    "etc/apt/sources.list.d",
    "etc/apt/preferences.d",
    "etc/dpkg/dpkg.cfg.d",
    "var/cache/apt",
    "var/lib/apt/lists/partial",
    "var/lib/dpkg/alternatives",
    "var/lib/dpkg/info",
    "var/lib/dpkg/triggers",
    "var/lib/dpkg/updates",
    "var/log/apt",
    "tmp",
];

/// The top-level directories that are links into /usr on a merged-/usr
/// system (amd64), as debootstrap and usrmerge's conversion make them.
const MERGED_USR: &[&str] = &["bin", "sbin", "lib", "lib64"];

pub(crate) fn install(root: &Path, debs: &[Deb], env: &BuildEnv) -> Result<Report, RootfsError> {
    let started = Instant::now();
    let mut timings = Vec::new();
    let mut lap = |what: &str, since: &mut Instant| {
        timings.push((what.to_string(), since.elapsed()));
        *since = Instant::now();
    };
    let mut t = Instant::now();

    env.emit(Event::Step("reading package control files"));
    let controls = read_controls(debs)?;
    // dpkg's own architecture is the image's (the `all` ones say nothing).
    let arch = controls
        .iter()
        .find(|c| c.package == "dpkg")
        .or_else(|| controls.iter().find(|c| c.architecture != "all"))
        .map_or("amd64", |c| c.architecture.as_str())
        .to_string();
    lap("read control files", &mut t);

    fs_err::create_dir_all(root)?;
    let fresh = !root.join(STATUS).exists();
    let essential: BTreeSet<usize> = if fresh {
        let marked: Vec<bool> = debs.iter().map(|d| d.essential).collect();
        essential_closure(&controls, &marked)
    } else {
        BTreeSet::new()
    };
    if fresh {
        if fs_err::read_dir(root)?.next().is_some() {
            return Err(RootfsError::BadRoot {
                root: root.to_path_buf(),
                why: "neither empty nor an image (no var/lib/dpkg/status)".into(),
            });
        }
        if essential.is_empty() {
            return Err(RootfsError::BadRoot {
                root: root.to_path_buf(),
                why: "empty, and no Essential: yes package was given to bootstrap it".into(),
            });
        }
        let merged = controls
            .iter()
            .any(|c| c.package == "usrmerge" || c.package == "usr-is-merged");
        skeleton(root, &arch, merged)?;
    }
    let threads = kiln_deb::par::cores();
    let staged = StagedDebs::new(root, &controls, debs.iter().map(|d| d.sha256).collect())?;
    let rest: Vec<usize> = (0..controls.len())
        .filter(|i| !essential.contains(i))
        .collect();
    let no_daemons = NoDaemons::install(root)?;
    let sandbox = Sandbox {
        root,
        env,
        read_only: Some(DEBS_DIR),
    };
    let rest: BTreeSet<usize> = rest.into_iter().collect();
    let (early, late) = kernels_last(&controls, &rest);
    let early = batches(&controls, &early);
    // The first batch with a kernel: its postinst builds the initramfs.
    let kernel_batch = (!late.is_empty()).then_some(early.len());
    let plan: Vec<Batch> = early.into_iter().chain(batches(&controls, &late)).collect();
    // One queue decompresses everything: the essential set first, largest
    // first so no big package finishes alone; then the rest in install
    // order, so each batch waits for its own packages only.
    let mut first: Vec<usize> = essential.iter().copied().collect();
    first.sort_by_key(|&i| {
        std::cmp::Reverse(fs_err::metadata(&controls[i].path).map_or(0, |m| m.len()))
    });
    let queue = staged.queue(
        &controls,
        first
            .iter()
            .copied()
            .chain(plan.iter().flat_map(|b| b.members.iter().copied()))
            .collect(),
    );
    kiln_deb::par::scope(|scope| {
        // The other cores decompress while dpkg configures on one; the
        // thread that waits for packages decompresses too.
        for _ in 1..threads.max(2) {
            scope.spawn(|_| queue.work());
        }
        let result = (|| {
            if fresh {
                env.emit(Event::Step("decompressing the essential packages"));
                queue.wait_for(&first)?;
                lap("decompress essential", &mut t);
                // One batch, dependencies first, with --force-depends, as
                // mmdebstrap does: everything is unpacked before anything is
                // configured, and the Pre-Depends inside the essential set are
                // met by the files extracted first.
                let order: Vec<usize> = batches(&controls, &essential)
                    .into_iter()
                    .flat_map(|b| b.members)
                    .collect();
                env.emit(Event::Step("extracting the essential packages"));
                let extracted = pre_extract(root, &staged, &order)?;
                lap("extract essential", &mut t);
                env.emit(Event::Step("installing the essential packages"));
                install_batch(
                    &sandbox,
                    &staged,
                    &controls,
                    &order,
                    true,
                    Some(extracted),
                    plan.is_empty(),
                )?;
                lap("install essential", &mut t);
            }
            if !plan.is_empty() {
                env.emit(Event::Step("installing the remaining packages"));
            }
            for (n, batch) in plan.iter().enumerate() {
                if kernel_batch == Some(n) {
                    crate::initramfs::configure(root, env.initramfs)?;
                }
                queue.wait_for(&batch.members)?;
                install_batch(
                    &sandbox,
                    &staged,
                    &controls,
                    &batch.members,
                    batch.force,
                    None,
                    n + 1 == plan.len(),
                )?;
            }
            lap("install remaining", &mut t);
            Ok::<(), RootfsError>(())
        })();
        // On failure, stop the decompression not started yet.
        queue.stop();
        result
    })?;

    let packages = status::read(root)?;
    check_installed(&controls, &packages)?;
    let audit = sandbox.run("dpkg --audit", &[OsStr::new("dpkg"), OsStr::new("--audit")]);
    match audit {
        Ok(out) if out.text.trim().is_empty() => {}
        Ok(out) => return Err(RootfsError::Audit { output: out.text }),
        Err(RootfsError::Failed { tail, .. }) => return Err(RootfsError::Audit { output: tail }),
        Err(e) => return Err(e),
    }
    no_daemons.remove()?;
    staged.remove()?;
    lap("check", &mut t);
    timings.push(("total".to_string(), started.elapsed()));
    Ok(Report {
        packages,
        bootstrapped: fresh,
        timings,
    })
}

/// Reads every control file, several at once (each is a small decompression).
fn read_controls(debs: &[Deb]) -> Result<Vec<Control>, RootfsError> {
    kiln_deb::par::map(debs, read_checked)
}

/// Reads the control file of `deb` and checks it is the package the caller
/// (the lock) says it is. The file is hashed when it is repacked (see
/// `stage`); only a file that fails here is hashed now, so that damage is
/// reported as such.
fn read_checked(deb: &Deb) -> Result<Control, RootfsError> {
    // Binary packages never restrict relations to architectures (only source
    // packages do), so the architecture given to the parser does not matter.
    let checked = read_control(&deb.path, "").and_then(|c| {
        if c.package != deb.name || c.version != deb.version {
            return Err(RootfsError::BadDeb {
                path: deb.path.clone(),
                why: format!(
                    "holds {} {}, expected {} {}",
                    c.package, c.version, deb.name, deb.version
                ),
            });
        }
        Ok(c)
    });
    checked.map_err(|e| damaged_or(e, &deb.name, &deb.version, &deb.path, deb.sha256))
}

/// What dpkg needs before it can run in an empty root (mmdebstrap's
/// `run_setup`), and the merged-/usr links that must exist before the
/// first file lands in `/bin`.
fn skeleton(root: &Path, arch: &str, merged_usr: bool) -> Result<(), RootfsError> {
    use std::os::unix::fs::PermissionsExt;
    for dir in SKELETON_DIRS {
        fs_err::create_dir_all(root.join(dir))?;
    }
    fs_err::set_permissions(root.join("tmp"), std::fs::Permissions::from_mode(0o1777))?;
    fs_err::write(root.join(STATUS), "")?;
    fs_err::write(root.join("var/lib/dpkg/arch"), format!("{arch}\n"))?;
    fs_err::write(
        root.join("etc/fstab"),
        "# UNCONFIGURED FSTAB FOR BASE SYSTEM\n",
    )?;
    if merged_usr {
        for dir in MERGED_USR {
            fs_err::create_dir_all(root.join("usr").join(dir))?;
            fs_err::os::unix::fs::symlink(Path::new("usr").join(dir), root.join(dir))?;
        }
    }
    Ok(())
}

/// Installs one batch: kiln unpacks it and dpkg configures it, or dpkg does
/// both. `extracted`: the batch's files are already in place.
fn install_batch(
    sandbox: &Sandbox,
    staged: &StagedDebs,
    controls: &[Control],
    members: &[usize],
    force: bool,
    extracted: Option<Extracted>,
    last: bool,
) -> Result<(), RootfsError> {
    let last_run = || {
        if last {
            sandbox.env.emit(Event::LastDpkgRun {
                scratch: DEBS_DIR.trim_start_matches('/'),
            });
        }
    };
    if sandbox.env.unpacker == Unpacker::Kiln {
        let what = format!("unpacking {} packages", members.len());
        sandbox.env.emit(Event::Step(&what));
        match unpack(sandbox, staged, controls, members, extracted)? {
            Unpacked::ByKiln => {
                last_run();
                return dpkg_configure(sandbox, members.len(), force);
            }
            Unpacked::LeftToDpkg(why) => {
                sandbox.env.emit(Event::Step(&format!(
                    "dpkg unpacks this batch itself: {why}"
                )));
            }
        }
    }
    last_run();
    dpkg_install(sandbox, staged, members, force)
}

/// `dpkg --configure -a`: every package unpacked and not yet configured.
fn dpkg_configure(sandbox: &Sandbox, count: usize, force: bool) -> Result<(), RootfsError> {
    let mut argv = vec!["dpkg", "--force-unsafe-io", "--configure", "-a"];
    if force {
        argv.push("--force-depends");
    }
    let refs: Vec<&OsStr> = argv.iter().map(OsStr::new).collect();
    let what = format!("dpkg --configure ({count} packages)");
    sandbox.env.emit(Event::Step(&what));
    sandbox.run(&what, &refs)?;
    Ok(())
}

fn dpkg_install(
    sandbox: &Sandbox,
    staged: &StagedDebs,
    members: &[usize],
    force: bool,
) -> Result<(), RootfsError> {
    // --force-unsafe-io: no fsync per file; nothing is live, and a build cut
    // short is thrown away whole.
    let mut argv: Vec<OsString> = vec![
        "dpkg".into(),
        "--force-unsafe-io".into(),
        "--install".into(),
    ];
    if force {
        argv.push("--force-depends".into());
    }
    argv.extend(members.iter().map(|&i| OsString::from(&staged.inside[i])));
    let refs: Vec<&OsStr> = argv.iter().map(|a| a.as_os_str()).collect();
    let what = format!("dpkg --install ({} packages)", members.len());
    sandbox.env.emit(Event::Step(&what));
    sandbox.run(&what, &refs)?;
    Ok(())
}

/// Every package given must be recorded as fully installed, at its version.
fn check_installed(controls: &[Control], installed: &[Installed]) -> Result<(), RootfsError> {
    let bad: Vec<String> = controls
        .iter()
        .filter_map(|c| match installed.iter().find(|i| i.name == c.package) {
            Some(i) if i.is_ok() && i.version == c.version => None,
            Some(i) => Some(format!("{} {} ({})", c.package, i.version, i.status)),
            None => Some(format!("{} (absent)", c.package)),
        })
        .collect();
    if bad.is_empty() {
        Ok(())
    } else {
        Err(RootfsError::NotInstalled { packages: bad })
    }
}
