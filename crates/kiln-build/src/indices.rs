//! The lock stage's input: the signed indices of a release, its updates and
//! its security suite, verified and parsed into one universe.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use kiln_archive::{Keyring, Mirrors, SuiteIndex, SuiteRequest};
use kiln_deb::Package;
use kiln_lock::{RepositoryPin, SuitePin};
use kiln_resolve::Universe;
use kiln_spec::{DebianBase, Repository};
use kiln_store::{Fetcher, Retry, Store};

use crate::error::Error;
use crate::fsutil;
use crate::origins::Origins;
use crate::progress::Progress;

pub(crate) struct Indices {
    pub suites: Vec<SuitePin>,
    /// `[[repository]]` suites, by suite and key.
    pub repositories: Vec<RepositoryPin>,
    pub universe: Universe,
    /// Which universe suites are not Debian's, and what the lock calls them.
    pub origins: Origins,
    /// `[packages] local`: each file's package name and version.
    pub local: Vec<(String, kiln_deb::Version)>,
}

/// Fetches (or, offline, loads from `store`) and parses the suites of
/// `distro`. Suites are fetched in parallel: each is a round trip for its
/// InRelease even when the indices themselves are cached.
pub(crate) fn load(
    store: &Store,
    distro: &DebianBase,
    repositories: &[&Repository],
    local_debs: &[kiln_spec::LocalDeb],
    mirror: Option<&str>,
    offline: bool,
    progress: &dyn Progress,
) -> Result<Indices, Error> {
    let release = distro.suite.as_str();
    let keyring =
        Keyring::load(&distro.keyring.path).map_err(kiln_archive::ArchiveError::Keyring)?;
    let mirrors = Mirrors::discover(mirror, release, Path::new("/"))
        .map_err(kiln_archive::ArchiveError::from)?;
    let fetcher = Fetcher::new(Retry::default());
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let components: Vec<String> = distro
        .components
        .iter()
        .map(|c| c.as_str().to_string())
        .collect();
    let requests: Vec<SuiteRequest> = [
        (&mirrors.debian, release.to_string()),
        (&mirrors.debian, format!("{release}-updates")),
        (&mirrors.security, format!("{release}-security")),
    ]
    .into_iter()
    .map(|(m, s)| SuiteRequest {
        components: components.clone(),
        ..SuiteRequest::new(m, &s, distro.architecture)
    })
    .collect();

    let access = Access {
        store,
        fetcher: &fetcher,
        offline,
        now,
        progress,
    };
    // Each suite waits on the network: all at once, on threads of their own.
    let fetched = kiln_deb::par::bounded(&requests, requests.len(), |req| {
        read_suite(&access, &keyring, req)
    });

    let extra = crate::origins::load(&access, repositories, local_debs, distro.architecture)?;
    let mut suites = Vec::new();
    // Suites in preference order for equal versions: local files, Debian's
    // archive, then third-party repositories.
    let mut universe: Vec<(String, Vec<Package>)> = extra.local.into_iter().collect();
    for r in fetched {
        let (index, packages) = r?;
        suites.push(suite_pin(&index));
        universe.push((index.suite, packages));
    }
    universe.extend(extra.suites);
    Ok(Indices {
        suites,
        repositories: extra.repositories,
        universe: Universe::new(universe),
        origins: extra.origins,
        local: extra.local_seeds,
    })
}

/// How indices are read.
#[derive(Clone, Copy)]
pub(crate) struct Access<'a> {
    pub store: &'a Store,
    pub fetcher: &'a Fetcher,
    /// From the store alone.
    pub offline: bool,
    /// Unix seconds, for `Valid-Until`.
    pub now: i64,
    pub progress: &'a dyn Progress,
}

/// Fetches (or, offline, loads from the store) one suite verified against
/// `keyring`, and parses its Packages indices.
pub(crate) fn read_suite(
    access: &Access<'_>,
    keyring: &Keyring,
    req: &SuiteRequest,
) -> Result<(SuiteIndex, Vec<Package>), Error> {
    let Access {
        store,
        fetcher,
        offline,
        now,
        progress,
    } = *access;
    let index = if offline {
        kiln_archive::load_suite(store, keyring, req, None)?
    } else {
        progress.step(&format!("checking {} {}", req.mirror, req.suite));
        kiln_archive::fetch_suite(store, fetcher, keyring, req, now, &mut |p| {
            if let kiln_archive::Progress::Fetched { url, bytes } = p {
                progress.step(&format!("fetched {url} ({} KiB)", bytes / 1024));
            }
        })?
    };
    let mut packages = Vec::new();
    for c in &index.components {
        let text = fs_err::read_to_string(&c.path).map_err(fsutil::io(&c.path))?;
        let name = format!("{}/{}/binary-{}/Packages", index.suite, c.component, c.arch);
        packages.extend(
            kiln_deb::packages::parse_packages(&text, &name, &c.arch).map_err(|source| {
                Error::Index {
                    index: name,
                    source,
                }
            })?,
        );
    }
    Ok((index, packages))
}

/// What the lock records of a verified suite: mirror-independent facts.
pub(crate) fn suite_pin(index: &SuiteIndex) -> SuitePin {
    SuitePin {
        name: index.suite.clone(),
        date: index.date.clone(),
        inrelease: index.inrelease_sha256.to_string(),
        indices: index
            .components
            .iter()
            .map(|c| c.sha256.to_string())
            .collect(),
    }
}
