//! `kiln lock`: definition + signed indices → kiln.lock.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Instant;

use kiln_lock::{LOCK_VERSION, Lock, LockedPackage, ParentPin};
use kiln_resolve::{Reason, Request, Resolution, Seed, Variant};
use kiln_spec::{Base, Definition};
use serde::Serialize;

use crate::chain::{Chain, LOCKFILE};
use crate::error::Error;
use crate::origins::Origins;
use crate::progress::Progress;

pub struct LockOptions<'a> {
    pub dir: PathBuf,
    /// `None`: keep every locked version the archive still has.
    /// `Some([])`: move everything to the newest. `Some(names)`: move those.
    pub update: Option<Vec<String>>,
    /// The Debian mirror; `None` reads `KILN_MIRROR`, then the host's apt sources.
    pub mirror: Option<String>,
    /// Use only indices already in the store.
    pub offline: bool,
    pub progress: &'a dyn Progress,
}

/// What `kiln lock` did, for the terminal and for `--json`.
#[derive(Debug, Serialize)]
pub struct LockReport {
    pub image: String,
    pub lockfile: PathBuf,
    /// Whether the file's bytes changed.
    pub written: bool,
    pub packages: usize,
    pub changes: Vec<PackageChange>,
    pub suites: Vec<SuiteReport>,
    pub seconds: f64,
}

#[derive(Debug, Serialize)]
pub struct SuiteReport {
    pub name: String,
    pub date: String,
}

/// A package added, removed, or moved to another version.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct PackageChange {
    pub name: String,
    pub from: Option<String>,
    pub to: Option<String>,
}

/// What `kiln lock --check` found.
#[derive(Debug, Serialize)]
pub struct CheckReport {
    pub lockfile: PathBuf,
    pub fresh: bool,
    /// One line per input that differs.
    pub changes: Vec<String>,
}

/// Resolves the definition in `opts.dir` and writes its kiln.lock.
pub fn lock(opts: &LockOptions<'_>) -> Result<LockReport, Error> {
    let started = Instant::now();
    let chain = Chain::load(&opts.dir)?;
    let def = &chain.def;
    let path = def.dir.join(LOCKFILE);
    let previous = match kiln_lock::read(&path) {
        Ok(l) => Some(l),
        Err(kiln_lock::LockError::Missing(_)) => None,
        Err(e) => return Err(e.into()),
    };
    let mut request = request(&chain, previous.as_ref(), opts.update.as_deref(), &path)?;
    let indices = crate::indices::load(
        &kiln_store::Store::open_default()?,
        chain.distro(),
        &crate::origins::repositories(&chain),
        &def.packages.local,
        opts.mirror.as_deref(),
        opts.offline,
        opts.progress,
    )?;
    if let Base::Debian(d) = &def.base {
        // The variant's set is read off the indices, so it comes first and
        // an explicit request (with its pin) then names the same package.
        let mut seeds = variant(d.variant).seeds(&indices.universe);
        // The variant is Debian's: a repository's `Priority: required`
        // package is not part of the base system.
        let universe = &indices.universe;
        seeds.retain(|s| {
            universe
                .versions(&s.name)
                .iter()
                .any(|&i| indices.origins.is_debian(&universe.entry(i).suite))
        });
        seeds.append(&mut request.seeds);
        request.seeds = seeds;
    }
    // A local file is asked for as itself: its exact version, which only
    // the file has (or wins, being first among equal versions).
    for (name, version) in &indices.local {
        match request.seeds.iter_mut().find(|s| &s.name == name) {
            Some(seed) => seed.pin = Some(version.clone()),
            None => request.seeds.push(Seed {
                name: name.clone(),
                pin: Some(version.clone()),
                reason: Reason::Requested,
            }),
        }
    }
    opts.progress.step(&format!(
        "resolving {} against {} package versions",
        def.image.name,
        indices.universe.len()
    ));
    let resolution = kiln_resolve::resolve(&indices.universe, &request)?;
    let lock = Lock {
        version: LOCK_VERSION,
        checksum: def.lock_inputs().checksum(),
        inputs: inputs_table(def)?,
        parent: chain.parent().map(|p| ParentPin {
            path: match &def.base {
                Base::From(r) => r.written.clone(),
                Base::Debian(_) => String::new(),
            },
            name: p.def.image.name.clone(),
            lock: p.digest.clone(),
        }),
        suites: indices.suites,
        repositories: indices.repositories,
        packages: locked_packages(resolution, &indices.origins),
    };
    crate::needs::check(&chain, &lock, &def.outputs.formats)?;
    let written = kiln_lock::write(&path, &lock)?;
    Ok(LockReport {
        image: def.image.name.clone(),
        lockfile: path,
        written,
        packages: lock.packages.len(),
        changes: diff(previous.as_ref(), &lock),
        suites: lock
            .suites
            .iter()
            .map(|s| SuiteReport {
                name: s.name.clone(),
                date: s.date.clone(),
            })
            .collect(),
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Compares the definition in `dir` with its kiln.lock, without the network.
pub fn check(dir: &std::path::Path) -> Result<CheckReport, Error> {
    Ok(check_chain(&Chain::load(dir)?)?.0)
}

/// [`check`] for a loaded chain; also gives the lock it read, so a build
/// reads it once.
pub(crate) fn check_chain(chain: &Chain) -> Result<(CheckReport, Lock), Error> {
    let path = chain.def.dir.join(LOCKFILE);
    let lock = kiln_lock::read(&path)?;
    let changes = staleness(&chain.def, &lock, chain.parent().map(|p| p.digest.as_str()))?;
    let report = CheckReport {
        lockfile: path,
        fresh: changes.is_empty(),
        changes: changes.iter().map(ToString::to_string).collect(),
    };
    Ok((report, lock))
}

/// What differs between `lock` and the definition it should match (and
/// the current digest of its parent's lock).
pub(crate) fn staleness(
    def: &Definition,
    lock: &Lock,
    parent_lock: Option<&str>,
) -> Result<Vec<kiln_lock::Change>, Error> {
    Ok(kiln_lock::changes(
        lock,
        &inputs_table(def)?,
        &def.lock_inputs().checksum(),
        parent_lock,
    ))
}

pub(crate) fn inputs_table(def: &Definition) -> Result<toml::Table, Error> {
    // Infallible for a plain struct of strings, lists and booleans; kept a
    // Result so a future field of another shape fails loudly, not silently.
    toml::Table::try_from(def.lock_inputs()).map_err(|e| {
        Error::Internal(format!(
            "the lock inputs of {} as TOML: {e}",
            def.path.display()
        ))
    })
}

fn request(
    chain: &Chain,
    previous: Option<&Lock>,
    update: Option<&[String]>,
    path: &std::path::Path,
) -> Result<Request, Error> {
    let def = &chain.def;
    let mut seeds: Vec<Seed> = Vec::new();
    for p in &def.packages.install {
        let pin = p.version.as_deref().map(str::parse).transpose();
        seeds.push(Seed {
            name: p.name.clone(),
            // kiln-spec validated the version's syntax already.
            pin: pin.map_err(|_| Error::Internal(format!("unparsed pin {p}")))?,
            reason: Reason::Requested,
        });
    }
    let mut installed = BTreeMap::new();
    for a in &chain.ancestors {
        for p in &a.lock.packages {
            if let Ok(v) = p.version.parse() {
                installed.insert(p.name.clone(), v);
            }
        }
    }
    // A kernel brings what a disk boots with, as pinned as what was asked.
    for (i, name) in def.disk.implied_packages().into_iter().enumerate() {
        if seeds.iter().any(|s| s.name == name) || installed.contains_key(name) {
            continue;
        }
        seeds.push(Seed {
            name: name.to_owned(),
            pin: None,
            reason: if i == 0 { Reason::Kernel } else { Reason::Disk },
        });
    }
    let mut prefer = BTreeMap::new();
    if let Some(prev) = previous {
        let moving: BTreeSet<&str> = match update {
            Some(names) => {
                for n in names {
                    if prev.package(n).is_none() {
                        return Err(Error::UpdateUnknown {
                            name: n.clone(),
                            lock: path.to_path_buf(),
                        });
                    }
                }
                names.iter().map(String::as_str).collect()
            }
            None => BTreeSet::new(),
        };
        let everything = update.is_some_and(<[String]>::is_empty);
        for p in &prev.packages {
            if everything || moving.contains(p.name.as_str()) {
                continue;
            }
            if let Ok(v) = p.version.parse() {
                prefer.insert(p.name.clone(), v);
            }
        }
    }
    Ok(Request {
        seeds,
        recommends: def.packages.recommends,
        installed,
        prefer,
    })
}

pub(crate) fn variant(v: kiln_spec::Variant) -> Variant {
    match v {
        kiln_spec::Variant::Essential => Variant::Essential,
        kiln_spec::Variant::Apt => Variant::Apt,
        kiln_spec::Variant::Minbase => Variant::Required,
        kiln_spec::Variant::Important => Variant::Important,
        kiln_spec::Variant::Standard => Variant::Standard,
    }
}

fn locked_packages(resolution: Resolution, origins: &Origins) -> Vec<LockedPackage> {
    resolution
        .packages
        .into_iter()
        .map(|p| {
            let (suite, origin) = origins.of(&p.suite);
            LockedPackage {
                reason: match p.reason {
                    Reason::Essential => "essential".into(),
                    Reason::Priority(pr) => format!("{pr:?}").to_lowercase(),
                    Reason::Variant => "variant".into(),
                    Reason::Requested => "requested".into(),
                    Reason::Kernel => "kernel".into(),
                    Reason::Disk => "disk".into(),
                    Reason::Dependency => "dependency".into(),
                },
                name: p.name,
                version: p.version.to_string(),
                architecture: p.architecture,
                suite,
                path: p.filename,
                size: p.size,
                sha256: p.sha256,
                needed_by: p.needed_by.into_iter().collect(),
                origin,
            }
        })
        .collect()
}

fn diff(previous: Option<&Lock>, now: &Lock) -> Vec<PackageChange> {
    let old: BTreeMap<&str, &str> = previous
        .map(|l| {
            l.packages
                .iter()
                .map(|p| (p.name.as_str(), p.version.as_str()))
                .collect()
        })
        .unwrap_or_default();
    let new: BTreeMap<&str, &str> = now
        .packages
        .iter()
        .map(|p| (p.name.as_str(), p.version.as_str()))
        .collect();
    let names: BTreeSet<&str> = old.keys().chain(new.keys()).copied().collect();
    names
        .into_iter()
        .filter(|n| old.get(n) != new.get(n))
        .map(|n| PackageChange {
            name: n.to_string(),
            from: old.get(n).map(|s| s.to_string()),
            to: new.get(n).map(|s| s.to_string()),
        })
        .collect()
}
