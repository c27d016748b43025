//! Freshness: the locked packages for which the signed indices now offer a
//! newer candidate. The indices are read and verified exactly as `kiln lock`
//! reads them; nothing is written.

use std::path::PathBuf;

use kiln_catalog::Catalog;
use kiln_resolve::Universe;
use kiln_spec::DebianBase;
use serde::Serialize;

use crate::chain::LOCKFILE;
use crate::error::Error;
use crate::progress::Progress;

pub struct OutdatedOptions<'a> {
    /// The Debian mirror; `None` reads `KILN_MIRROR`, then the host's apt sources.
    pub mirror: Option<String>,
    /// Use only indices already in the store (they may be old).
    pub offline: bool,
    pub progress: &'a dyn Progress,
}

/// One image's own lock against the archive.
#[derive(Debug, Clone, Serialize)]
pub struct Freshness {
    pub image: String,
    pub lockfile: PathBuf,
    /// Packages of this lock (not its parents') with a newer candidate, by name.
    pub pending: Vec<Pending>,
}

/// A locked package the archive now has a newer version of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pending {
    pub name: String,
    pub architecture: String,
    pub locked: String,
    /// The newest candidate.
    pub available: String,
    pub source: String,
    /// The suite the candidate comes from, e.g. `bookworm-security`.
    pub suite: String,
    /// The candidate comes from the release's security suite.
    pub security: bool,
}

/// The freshness of the lock in each of `dirs`, in that order. The suites
/// of each distinct distribution base are fetched and verified once.
pub fn outdated(dirs: &[PathBuf], opts: &OutdatedOptions<'_>) -> Result<Vec<Freshness>, Error> {
    let mut universes = Universes::default();
    let mut out = Vec::with_capacity(dirs.len());
    for dir in dirs {
        let (def, distro) = definition(dir)?;
        let lockfile = def.dir.join(LOCKFILE);
        let lock = kiln_lock::read(&lockfile)?;
        let (universe, security) = universes.get(&distro, opts)?;
        let packages = lock
            .packages
            .iter()
            .map(|p| (p.name.as_str(), p.version.as_str(), p.architecture.as_str()));
        let pending = pending(universe, security, packages).map_err(|(name, version)| {
            kiln_lock::LockError::Parse {
                path: lockfile.clone(),
                message: format!("package {name}: `{version}` is not a Debian version"),
            }
        })?;
        out.push(Freshness {
            image: def.image.name.clone(),
            lockfile,
            pending,
        });
    }
    Ok(out)
}

/// A build an environment runs, against the archive.
#[derive(Debug, Clone, Serialize)]
pub struct Running {
    pub env: String,
    pub image: String,
    pub version: String,
    pub build: String,
    /// Every package installed in the build (its parents' included) that the
    /// archive now has newer.
    pub pending: Vec<Pending>,
}

/// What each environment of `catalog` runs, for the images named in
/// `images` (name, definition directory: it says which distribution's
/// indices to read), compared with the current indices.
pub fn outdated_running(
    catalog: &Catalog,
    images: &[(String, PathBuf)],
    opts: &OutdatedOptions<'_>,
) -> Result<Vec<Running>, Error> {
    let mut universes = Universes::default();
    let mut out = Vec::new();
    for d in catalog.deployments(None)? {
        let Some((_, dir)) = images.iter().find(|(name, _)| *name == d.name) else {
            continue;
        };
        let (_, distro) = definition(dir)?;
        let (universe, security) = universes.get(&distro, opts)?;
        let build = catalog.resolve(&d.build)?;
        let manifest = crate::trace::manifest(catalog, &build)?;
        let packages = manifest
            .packages
            .iter()
            .map(|p| (p.name.as_str(), p.version.as_str(), p.architecture.as_str()));
        let pending = pending(universe, security, packages).map_err(|(name, version)| {
            Error::Internal(format!(
                "build {}: package {name} has version `{version}`, not a Debian version",
                d.build
            ))
        })?;
        out.push(Running {
            env: d.env,
            image: d.name,
            version: d.version,
            build: d.build,
            pending,
        });
    }
    Ok(out)
}

/// The definition in `dir` and the distribution its chain stands on. Unlike
/// a build, freshness does not need the parents' locks to be current: a
/// rebuild killed halfway leaves them so, and must be able to look.
fn definition(dir: &std::path::Path) -> Result<(kiln_spec::Definition, DebianBase), Error> {
    let mut chain = kiln_spec::load_chain(dir)?;
    let distro = match chain.first().map(|d| &d.base) {
        Some(kiln_spec::Base::Debian(d)) => d.clone(),
        _ => {
            return Err(Error::Internal(format!(
                "no distribution under {}",
                dir.display()
            )));
        }
    };
    let def = chain
        .pop()
        .ok_or_else(|| Error::Internal(format!("no definition in {}", dir.display())))?;
    Ok((def, distro))
}

/// The verified indices of each distribution asked for, read once each.
#[derive(Default)]
struct Universes {
    loaded: Vec<(DebianBase, Universe, String)>,
}

impl Universes {
    /// The universe of `distro` and the name of its security suite.
    fn get(
        &mut self,
        distro: &DebianBase,
        opts: &OutdatedOptions<'_>,
    ) -> Result<(&Universe, &str), Error> {
        let i = match self.loaded.iter().position(|(d, _, _)| d == distro) {
            Some(i) => i,
            None => {
                // Debian's suites only: a third-party repository's or a
                // local package's freshness is its publisher's to say.
                let indices = crate::indices::load(
                    distro,
                    &[],
                    &[],
                    opts.mirror.as_deref(),
                    opts.offline,
                    opts.progress,
                )?;
                let security = format!("{}-security", distro.suite.as_str());
                self.loaded
                    .push((distro.clone(), indices.universe, security));
                self.loaded.len() - 1
            }
        };
        let (_, universe, security) = &self.loaded[i];
        Ok((universe, security))
    }
}

/// The packages (name, version, architecture) with a newer candidate; a
/// version that does not parse is returned as the error.
fn pending<'p>(
    universe: &Universe,
    security: &str,
    packages: impl Iterator<Item = (&'p str, &'p str, &'p str)>,
) -> Result<Vec<Pending>, (String, String)> {
    let mut out = Vec::new();
    for (name, version, architecture) in packages {
        let locked: kiln_deb::Version = version
            .parse()
            .map_err(|_| (name.to_owned(), version.to_owned()))?;
        // Newest first: the first of the same architecture is the candidate.
        let newest = universe
            .versions(name)
            .iter()
            .map(|&i| universe.entry(i))
            .find(|e| e.package.architecture == architecture);
        if let Some(e) = newest.filter(|e| e.package.version > locked) {
            out.push(Pending {
                name: name.to_owned(),
                architecture: architecture.to_owned(),
                locked: version.to_owned(),
                available: e.package.version.to_string(),
                source: e.package.source.clone(),
                suite: e.suite.clone(),
                security: e.suite == security,
            });
        }
    }
    Ok(out)
}
