//! Questions about recorded builds: what one is made of and where it came
//! from (`show`), what changed between two (`diff`), and moving builds
//! between environments (`promote`, `rollback`). All answered from the
//! catalog alone: nothing is unpacked. Listing builds, deployments and
//! history are the catalog's own queries; the CLI calls them directly.

use kiln_catalog::{Build, Catalog, Deployment, NewPromotion, Promotion, TestRecord};
use kiln_manifest::{Diff, Manifest};
use serde::Serialize;

use crate::build::unix_now;
use crate::catalog::who;
use crate::error::Error;

/// Everything recorded about one build.
#[derive(Debug, Clone, Serialize)]
pub struct ShowReport {
    pub build: Build,
    /// The build, its parent, … up to the image built on the distribution.
    pub lineage: Vec<Build>,
    pub tests: Vec<TestRecord>,
    /// The environments running this build now.
    pub environments: Vec<Deployment>,
    /// Where the build was pushed (`kiln push`), oldest first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pushes: Vec<kiln_catalog::Push>,
    pub packages: usize,
    pub files: usize,
    pub installed_size: u64,
}

pub fn show(catalog: &Catalog, reference: &str) -> Result<ShowReport, Error> {
    let build = catalog.resolve(reference)?;
    let manifest = manifest(catalog, &build)?;
    let environments = catalog
        .deployments(Some(&build.name))?
        .into_iter()
        .filter(|d| d.build == build.id)
        .collect();
    Ok(ShowReport {
        lineage: catalog.lineage(&build.id)?,
        tests: catalog.tests(&build.id)?,
        pushes: catalog.pushes(&build.id)?,
        environments,
        packages: manifest.packages.len(),
        files: manifest.files.len(),
        installed_size: manifest.total_installed_size(),
        build,
    })
}

/// What changed from build `a` to build `b`.
#[derive(Debug, Clone, Serialize)]
pub struct DiffReport {
    pub from: Build,
    pub to: Build,
    pub diff: Diff,
}

pub fn diff(catalog: &Catalog, a: &str, b: &str) -> Result<DiffReport, Error> {
    let from = catalog.resolve(a)?;
    let to = catalog.resolve(b)?;
    let diff = kiln_manifest::diff::diff(&manifest(catalog, &from)?, &manifest(catalog, &to)?);
    Ok(DiffReport { from, to, diff })
}

pub(crate) fn manifest(catalog: &Catalog, build: &Build) -> Result<Manifest, Error> {
    let bytes = catalog
        .manifest(&build.id)?
        .filter(|b| !b.is_empty())
        .ok_or_else(|| Error::NoManifest {
            build: build.id.clone(),
        })?;
    Manifest::from_bytes(&bytes).map_err(|source| Error::Manifest {
        path: catalog.describe().into(),
        source,
    })
}

/// Runs `reference` in `env`; refused when its last test failed, unless
/// `force`.
pub fn promote(
    catalog: &Catalog,
    reference: &str,
    env: &str,
    force: bool,
    note: Option<String>,
) -> Result<Promotion, Error> {
    let build = catalog.resolve(reference)?;
    Ok(catalog.promote(&NewPromotion {
        build: build.id,
        env: env.to_string(),
        who: who(),
        at: unix_now(),
        force,
        note,
    })?)
}

/// Moves `env` back to the build of `name` that ran there before.
pub fn rollback(catalog: &Catalog, env: &str, name: &str) -> Result<Promotion, Error> {
    Ok(catalog.rollback(env, name, &who(), unix_now())?)
}
