//! `kiln outdated`: per image of the graph, the locked packages the archive
//! now has newer, its own and those it inherits from its parents.

use kiln_build::{OutdatedOptions, Pending};
use serde::Serialize;

use crate::error::Error;
use crate::graph::Graph;

#[derive(Debug, Serialize)]
pub struct OutdatedReport {
    /// In graph order: parents before their children.
    pub images: Vec<ImageFreshness>,
}

#[derive(Debug, Serialize)]
pub struct ImageFreshness {
    pub name: String,
    pub version: String,
    /// Packages of the image's own lock.
    pub pending: Vec<Pending>,
    /// Packages of its ancestors' locks: the image is built on them, so it
    /// carries them until the parent is rebuilt and it is rebuilt on that.
    pub inherited: Vec<Inherited>,
}

#[derive(Debug, Serialize)]
pub struct Inherited {
    /// The ancestor whose lock pins the package.
    pub from: String,
    #[serde(flatten)]
    pub pending: Pending,
}

impl ImageFreshness {
    pub fn is_outdated(&self) -> bool {
        !self.pending.is_empty() || !self.inherited.is_empty()
    }

    /// The packages to `kiln lock --update` for this image itself.
    pub fn own_names(&self) -> Vec<String> {
        self.pending.iter().map(|p| p.name.clone()).collect()
    }
}

impl OutdatedReport {
    pub fn is_outdated(&self) -> bool {
        self.images.iter().any(ImageFreshness::is_outdated)
    }

    /// Keeps only security updates.
    pub fn security_only(mut self) -> Self {
        for image in &mut self.images {
            image.pending.retain(|p| p.security);
            image.inherited.retain(|i| i.pending.security);
        }
        self
    }
}

/// Reads the current signed indices once per distribution and compares
/// every image's lock with them.
pub fn outdated(graph: &Graph, opts: &OutdatedOptions<'_>) -> Result<OutdatedReport, Error> {
    let dirs: Vec<_> = graph
        .images
        .iter()
        .map(|i| i.definition.dir.clone())
        .collect();
    let found = kiln_build::outdated(&dirs, opts)?;
    let mut images = Vec::with_capacity(found.len());
    for (node, freshness) in graph.images.iter().zip(found) {
        let mut inherited = Vec::new();
        for ancestor in graph.ancestors(&node.name) {
            let own: Option<&ImageFreshness> = images
                .iter()
                .find(|i: &&ImageFreshness| i.name == ancestor.name);
            // Graph order puts every ancestor first.
            for p in own.map(|i| i.pending.as_slice()).unwrap_or_default() {
                inherited.push(Inherited {
                    from: ancestor.name.clone(),
                    pending: p.clone(),
                });
            }
        }
        images.push(ImageFreshness {
            name: node.name.clone(),
            version: node.version.clone(),
            pending: freshness.pending,
            inherited,
        });
    }
    Ok(OutdatedReport { images })
}

/// `kiln outdated --built`: what each environment of the catalog runs, for
/// the images of `graph`, against the current indices.
pub fn outdated_built(
    graph: &Graph,
    catalog: &kiln_build::Catalog,
    opts: &OutdatedOptions<'_>,
) -> Result<Vec<kiln_build::Running>, Error> {
    let images: Vec<_> = graph
        .images
        .iter()
        .map(|i| (i.name.clone(), i.definition.dir.clone()))
        .collect();
    Ok(kiln_build::outdated_running(catalog, &images, opts)?)
}
