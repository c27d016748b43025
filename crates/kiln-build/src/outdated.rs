//! Freshness: the locked packages for which the signed indices now offer a
//! newer candidate. The indices are read and verified exactly as `kiln lock`
//! reads them, Debian's suites and the image's `[[repository]]` entries
//! alike; nothing is written.

use std::path::PathBuf;

use kiln_catalog::Catalog;
use kiln_resolve::Universe;
use kiln_spec::{DebianBase, Repository};
use serde::Serialize;

use crate::chain::LOCKFILE;
use crate::error::Error;
use crate::origins::Origins;
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
    /// The suite the candidate comes from, e.g. `bookworm-security`, or a
    /// repository's suite.
    pub suite: String,
    /// Where the candidate comes from: `debian`, or the name of the
    /// `[[repository]]` that now has a newer version.
    pub origin: String,
    /// The candidate comes from the release's security suite.
    pub security: bool,
}

impl Pending {
    /// The `[[repository]]` the candidate comes from; `None` for Debian's.
    pub fn repository(&self) -> Option<&str> {
        (self.origin != kiln_lock::DEBIAN_ORIGIN).then_some(self.origin.as_str())
    }
}

/// The freshness of the lock in each of `dirs`, in that order. The suites
/// of each distinct distribution base are fetched and verified once.
pub fn outdated(dirs: &[PathBuf], opts: &OutdatedOptions<'_>) -> Result<Vec<Freshness>, Error> {
    let mut universes = Universes::default();
    let mut out = Vec::with_capacity(dirs.len());
    for dir in dirs {
        let (chain, distro) = definition(dir)?;
        let repositories: Vec<Repository> = crate::origins::declared(chain.iter())
            .into_iter()
            .cloned()
            .collect();
        let def = chain
            .last()
            .ok_or_else(|| Error::Internal(format!("no definition in {}", dir.display())))?;
        let lockfile = def.dir.join(LOCKFILE);
        let lock = kiln_lock::read(&lockfile)?;
        let loaded = universes.get(&distro, repositories, opts)?;
        // A local `.deb` is the team's own: no index says what is newer.
        let packages = lock
            .packages
            .iter()
            .filter(|p| !p.is_local())
            .map(|p| (p.name.as_str(), p.version.as_str(), p.architecture.as_str()));
        let pending =
            pending(loaded, packages).map_err(|(name, version)| kiln_lock::LockError::Parse {
                path: lockfile.clone(),
                message: format!("package {name}: `{version}` is not a Debian version"),
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
        let loaded = universes.get(&distro, Vec::new(), opts)?;
        let build = catalog.resolve(&d.build)?;
        let manifest = crate::trace::manifest(catalog, &build)?;
        let packages = manifest
            .packages
            .iter()
            .map(|p| (p.name.as_str(), p.version.as_str(), p.architecture.as_str()));
        let pending = pending(loaded, packages).map_err(|(name, version)| {
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

/// The definitions of `dir`'s chain (root first, its own last) and the
/// distribution it stands on. Unlike a build, freshness does not need the
/// parents' locks to be current: a rebuild killed halfway leaves them so,
/// and must be able to look.
fn definition(dir: &std::path::Path) -> Result<(Vec<kiln_spec::Definition>, DebianBase), Error> {
    let chain = kiln_spec::load_chain(dir)?;
    let distro = match chain.first().map(|d| &d.base) {
        Some(kiln_spec::Base::Debian(d)) => d.clone(),
        _ => {
            return Err(Error::Internal(format!(
                "no distribution under {}",
                dir.display()
            )));
        }
    };
    Ok((chain, distro))
}

/// The verified indices of each distribution and set of repositories
/// asked for, read once each.
#[derive(Default)]
struct Universes {
    loaded: Vec<Loaded>,
}

struct Loaded {
    distro: DebianBase,
    repositories: Vec<Repository>,
    universe: Universe,
    origins: Origins,
    /// The release's security suite.
    security: String,
}

impl Universes {
    fn get(
        &mut self,
        distro: &DebianBase,
        repositories: Vec<Repository>,
        opts: &OutdatedOptions<'_>,
    ) -> Result<&Loaded, Error> {
        let i = match self
            .loaded
            .iter()
            .position(|l| l.distro == *distro && l.repositories == repositories)
        {
            Some(i) => i,
            None => {
                let indices = crate::indices::load(
                    &kiln_store::Store::open_default()?,
                    distro,
                    &repositories.iter().collect::<Vec<_>>(),
                    &[],
                    opts.mirror.as_deref(),
                    opts.offline,
                    opts.progress,
                )?;
                self.loaded.push(Loaded {
                    distro: distro.clone(),
                    repositories,
                    universe: indices.universe,
                    origins: indices.origins,
                    security: format!("{}-security", distro.suite.as_str()),
                });
                self.loaded.len() - 1
            }
        };
        Ok(&self.loaded[i])
    }
}

/// The packages (name, version, architecture) with a newer candidate; a
/// version that does not parse is returned as the error.
fn pending<'p>(
    loaded: &Loaded,
    packages: impl Iterator<Item = (&'p str, &'p str, &'p str)>,
) -> Result<Vec<Pending>, (String, String)> {
    let universe = &loaded.universe;
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
        // The candidate `kiln lock --update` would take, wherever it comes
        // from: a repository (within its pin) counts as Debian's suites do.
        if let Some(e) = newest.filter(|e| e.package.version > locked) {
            let (suite, origin) = loaded.origins.of(&e.suite);
            out.push(Pending {
                name: name.to_owned(),
                architecture: architecture.to_owned(),
                locked: version.to_owned(),
                available: e.package.version.to_string(),
                source: e.package.source.clone(),
                security: e.suite == loaded.security,
                suite,
                origin: origin.unwrap_or_else(|| kiln_lock::DEBIAN_ORIGIN.to_owned()),
            });
        }
    }
    Ok(out)
}
