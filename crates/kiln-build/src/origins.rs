//! Packages from outside Debian's archive, read into the lock's universe
//! beside Debian's suites: third-party repositories (`[[repository]]`),
//! verified exactly as the archive is but with their own `signed-by` key,
//! and the team's own `.deb` files (`[packages] local`).

use std::collections::HashMap;

use kiln_archive::{Keyring, SuiteIndex, SuiteRequest};
use kiln_deb::Architecture;
use kiln_deb::Package;
use kiln_lock::{LOCAL_ORIGIN, RepositoryPin};
use kiln_spec::{LocalDeb, Repository};

use crate::chain::Chain;
use crate::error::Error;
use crate::indices::Access;

/// Where a universe suite's packages come from: the suite the lock records
/// for them and their origin (`None` for Debian's archive).
#[derive(Debug, Clone, Default)]
pub(crate) struct Origins {
    by_label: HashMap<String, (String, Option<String>)>,
}

impl Origins {
    /// The lock's `(suite, origin)` for a package of universe suite `label`.
    pub fn of(&self, label: &str) -> (String, Option<String>) {
        self.by_label
            .get(label)
            .cloned()
            .unwrap_or_else(|| (label.to_owned(), None))
    }

    /// Whether `label` is one of Debian's suites.
    pub fn is_debian(&self, label: &str) -> bool {
        !self.by_label.contains_key(label)
    }

    fn add(&mut self, label: String, suite: &str, origin: &str) {
        self.by_label
            .insert(label, (suite.to_owned(), Some(origin.to_owned())));
    }
}

/// The universe label of a repository's packages: never one of Debian's
/// suite names, which have no spaces.
fn label(repository: &str) -> String {
    format!("{repository} (repository)")
}

/// Every repository the image may install from: its own and its
/// ancestors' (children inherit them), root first, each name once.
pub(crate) fn repositories(chain: &Chain) -> Vec<&Repository> {
    declared(
        chain
            .ancestors
            .iter()
            .rev()
            .map(|a| &a.def)
            .chain(std::iter::once(&chain.def)),
    )
}

/// The repositories `defs` (root first) declare, each name once: the
/// first declaration of a name holds.
pub(crate) fn declared<'d>(
    defs: impl Iterator<Item = &'d kiln_spec::Definition>,
) -> Vec<&'d Repository> {
    let mut out: Vec<&Repository> = Vec::new();
    for def in defs {
        for r in &def.repositories {
            if !out.iter().any(|o| o.name == r.name) {
                out.push(r);
            }
        }
    }
    out
}

/// The packages of `[[repository]]` entries and `[packages] local` files,
/// as suites of the universe, with the lock's record of each repository.
pub(crate) struct Extra {
    pub repositories: Vec<RepositoryPin>,
    /// Universe suites: local files first, so a local `.deb` wins over an
    /// archive package of the same version.
    pub local: Option<(String, Vec<Package>)>,
    /// Each local `.deb`'s name and version: the lock asks for exactly it.
    pub local_seeds: Vec<(String, kiln_deb::Version)>,
    pub suites: Vec<(String, Vec<Package>)>,
    pub origins: Origins,
}

/// Fetches (or, offline, loads) and verifies each repository's indices with
/// its own key, and reads each local `.deb`'s control file.
pub(crate) fn load(
    access: &Access<'_>,
    repositories: &[&Repository],
    local_debs: &[LocalDeb],
    arch: Architecture,
) -> Result<Extra, Error> {
    let mut extra = Extra {
        repositories: Vec::new(),
        local: None,
        local_seeds: Vec::new(),
        suites: Vec::new(),
        origins: Origins::default(),
    };
    for repo in repositories {
        let (index, packages) = repository(access, repo, arch)?;
        let label = label(&repo.name);
        extra.origins.add(label.clone(), &repo.suite, &repo.name);
        let pin = crate::indices::suite_pin(&index);
        extra.repositories.push(RepositoryPin {
            name: repo.name.clone(),
            suite: pin.name,
            key: index.signer_primary.clone(),
            date: pin.date,
            inrelease: pin.inrelease,
            indices: pin.indices,
        });
        extra.suites.push((label, packages));
    }
    if !local_debs.is_empty() {
        let packages = local_debs
            .iter()
            .map(|l| local(l, arch))
            .collect::<Result<Vec<_>, _>>()?;
        // Two files of one package would leave the choice to list order.
        for (i, p) in packages.iter().enumerate() {
            if let Some(first) = packages[..i].iter().find(|q| q.name == p.name) {
                return Err(Error::LocalDeb {
                    path: local_debs[i].file.path.clone(),
                    why: format!(
                        "it is package {} again, as {} is; list one of them",
                        p.name, first.filename
                    ),
                });
            }
        }
        extra.local_seeds = packages
            .iter()
            .map(|p| (p.name.clone(), p.version.clone()))
            .collect();
        extra
            .origins
            .add(LOCAL_ORIGIN.to_owned(), LOCAL_ORIGIN, LOCAL_ORIGIN);
        extra.local = Some((LOCAL_ORIGIN.to_owned(), packages));
    }
    Ok(extra)
}

fn repository(
    access: &Access<'_>,
    repo: &Repository,
    arch: Architecture,
) -> Result<(SuiteIndex, Vec<Package>), Error> {
    let in_repo = |source: Error| match source {
        Error::Archive(source) => Error::Repository {
            name: repo.name.clone(),
            source: Box::new(source),
        },
        other => other,
    };
    let keyring = Keyring::load(&repo.signed_by.path).map_err(|source| Error::RepositoryKey {
        name: repo.name.clone(),
        path: repo.signed_by.path.clone(),
        source: Box::new(source),
    })?;
    let req = SuiteRequest {
        components: repo.components.clone(),
        ..SuiteRequest::new(&repo.uri, &repo.suite, arch)
    };
    let (index, packages) = crate::indices::read_suite(access, &keyring, &req).map_err(in_repo)?;
    let packages = packages
        .into_iter()
        .filter(|p| repo.pin.as_ref().is_none_or(|pin| pin.contains(&p.name)))
        .collect();
    Ok((index, packages))
}

/// A local `.deb` as an index stanza: its control file, plus where it is
/// (the path as the definition writes it) and its digest and size.
fn local(deb: &LocalDeb, arch: Architecture) -> Result<Package, Error> {
    let bad = |why: String| Error::LocalDeb {
        path: deb.file.path.clone(),
        why,
    };
    let control = kiln_rootfs::control_text(&deb.file.path).map_err(|e| bad(e.to_string()))?;
    let first = control.split("\n\n").next().unwrap_or_default().trim_end();
    if first.lines().any(|l| {
        ["filename:", "size:", "sha256:"]
            .iter()
            .any(|f| l.to_ascii_lowercase().starts_with(f))
    }) {
        return Err(bad(
            "its control file names a Filename, Size or SHA256 of its own".into(),
        ));
    }
    let hex = deb.sha256.trim_start_matches("sha256:");
    let stanza = format!(
        "{first}\nFilename: {}\nSize: {}\nSHA256: {hex}\n",
        deb.file.written, deb.size
    );
    let mut parsed = kiln_deb::packages::parse_packages(&stanza, &deb.file.written, arch.debian())
        .map_err(|e| bad(format!("its control file: {e}")))?;
    match parsed.pop() {
        Some(p) if parsed.is_empty() => Ok(p),
        _ => Err(bad(format!(
            "it is not built for {arch} or all (its control file says Architecture: {})",
            first
                .lines()
                .find_map(|l| l.strip_prefix("Architecture:"))
                .map_or("nothing", str::trim)
        ))),
    }
}
