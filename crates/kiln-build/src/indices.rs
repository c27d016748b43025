//! The lock stage's input: the signed indices of a release, its updates and
//! its security suite, verified and parsed into one universe.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use kiln_archive::{Keyring, Mirrors, SuiteIndex, SuiteRequest};
use kiln_deb::Package;
use kiln_lock::SuitePin;
use kiln_resolve::Universe;
use kiln_spec::DebianBase;
use kiln_store::{Fetcher, Retry, Store};

use crate::error::Error;
use crate::progress::Progress;

pub(crate) struct Indices {
    pub suites: Vec<SuitePin>,
    pub universe: Universe,
}

/// Fetches (or, offline, loads from the store) and parses the suites of
/// `distro`. Suites are fetched in parallel: each is a round trip for its
/// InRelease even when the indices themselves are cached.
pub(crate) fn load(
    distro: &DebianBase,
    mirror: Option<&str>,
    offline: bool,
    progress: &dyn Progress,
) -> Result<Indices, Error> {
    let release = distro.suite.as_str();
    let keyring =
        Keyring::load(&distro.keyring.path).map_err(kiln_archive::ArchiveError::Keyring)?;
    let mirrors = Mirrors::discover(mirror, release, Path::new("/"))
        .map_err(kiln_archive::ArchiveError::from)?;
    let store = Store::open_default()?;
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
        ..SuiteRequest::new(m, &s)
    })
    .collect();

    let fetched: Vec<Result<(SuiteIndex, Vec<Package>), Error>> = std::thread::scope(|scope| {
        let handles: Vec<_> = requests
            .iter()
            .map(|req| {
                let (store, fetcher, keyring) = (&store, &fetcher, &keyring);
                scope.spawn(move || -> Result<(SuiteIndex, Vec<Package>), Error> {
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
                        let text = fs_err::read_to_string(&c.path).map_err(|source| Error::Io {
                            path: c.path.clone(),
                            source,
                        })?;
                        let name =
                            format!("{}/{}/binary-{}/Packages", index.suite, c.component, c.arch);
                        packages.extend(
                            kiln_deb::packages::parse_packages(&text, &name, &c.arch).map_err(
                                |source| Error::Index {
                                    index: name.clone(),
                                    source,
                                },
                            )?,
                        );
                    }
                    Ok((index, packages))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(Error::Internal("an index worker panicked".into())))
            })
            .collect()
    });

    let mut suites = Vec::new();
    let mut universe = Vec::new();
    for r in fetched {
        let (index, packages) = r?;
        suites.push(SuitePin {
            name: index.suite.clone(),
            date: index.date.clone(),
            inrelease: format!("sha256:{}", index.inrelease_sha256),
            indices: index
                .components
                .iter()
                .map(|c| format!("sha256:{}", c.sha256))
                .collect(),
        });
        universe.push((index.suite, packages));
    }
    Ok(Indices {
        suites,
        universe: Universe::new(universe),
    })
}
