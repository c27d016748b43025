//! Freshness: the locked packages for which the signed indices now offer a
//! newer candidate. The indices are read and verified exactly as `kiln lock`
//! reads them; nothing is written.

use std::path::PathBuf;

use kiln_resolve::Universe;
use kiln_spec::DebianBase;
use serde::Serialize;

use crate::chain::{Chain, LOCKFILE};
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
    let mut loaded: Vec<(DebianBase, Universe)> = Vec::new();
    let mut out = Vec::with_capacity(dirs.len());
    for dir in dirs {
        let chain = Chain::load(dir)?;
        let lockfile = chain.def.dir.join(LOCKFILE);
        let lock = kiln_lock::read(&lockfile)?;
        let distro = chain.distro();
        let universe = match loaded.iter().position(|(d, _)| d == distro) {
            Some(i) => &loaded[i].1,
            None => {
                let indices = crate::indices::load(
                    distro,
                    opts.mirror.as_deref(),
                    opts.offline,
                    opts.progress,
                )?;
                loaded.push((distro.clone(), indices.universe));
                &loaded[loaded.len() - 1].1
            }
        };
        let security = format!("{}-security", distro.suite.as_str());
        let mut pending = Vec::new();
        for p in &lock.packages {
            let locked: kiln_deb::Version =
                p.version.parse().map_err(|_| kiln_lock::LockError::Parse {
                    path: lockfile.clone(),
                    message: format!(
                        "package {}: `{}` is not a Debian version",
                        p.name, p.version
                    ),
                })?;
            // Newest first: the first of the same architecture is the candidate.
            let newest = universe
                .versions(&p.name)
                .iter()
                .map(|&i| universe.entry(i))
                .find(|e| e.package.architecture == p.architecture);
            if let Some(e) = newest.filter(|e| e.package.version > locked) {
                pending.push(Pending {
                    name: p.name.clone(),
                    architecture: p.architecture.clone(),
                    locked: p.version.clone(),
                    available: e.package.version.to_string(),
                    source: e.package.source.clone(),
                    suite: e.suite.clone(),
                    security: e.suite == security,
                });
            }
        }
        out.push(Freshness {
            image: chain.def.image.name.clone(),
            lockfile,
            pending,
        });
    }
    Ok(out)
}
