//! The graph of images: nodes from `kiln.toml`s, edges from `base.from` and
//! `include`, and the waves a rebuild goes through.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use kiln_spec::Definition;
use serde::Serialize;

use crate::error::Error;

/// Every image under a directory, root images first.
#[derive(Debug, Serialize)]
pub struct Graph {
    /// The directory searched, as the caller named it.
    pub root: PathBuf,
    /// Sorted by wave, then name.
    pub images: Vec<ImageNode>,
    /// Sorted by path.
    pub fragments: Vec<FragmentNode>,
    /// `from` edges (child to parent), then `include` edges (image to
    /// fragment), each in the order of `images`.
    pub edges: Vec<Edge>,
}

#[derive(Debug, Serialize)]
pub struct ImageNode {
    pub name: String,
    pub version: String,
    /// The definition's directory relative to the root (`.` for the root).
    pub dir: String,
    /// The parent image's name, for an image built `from` another.
    pub parent: Option<String>,
    /// Images built `from` this one, by name.
    pub children: Vec<String>,
    /// Fragments, as paths relative to the root, in the order included.
    pub includes: Vec<String>,
    /// 0 for an image on a distribution, one more than its parent's otherwise:
    /// an image can be rebuilt once every image of a lower wave it needs is.
    pub wave: usize,
    #[serde(skip)]
    pub definition: Definition,
}

#[derive(Debug, Serialize)]
pub struct FragmentNode {
    /// Relative to the root (absolute when outside it).
    pub path: String,
    pub digest: String,
    /// Names of the images that include it, sorted.
    pub included_by: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Edge {
    /// The image (by name) the edge starts from.
    pub from: String,
    /// The parent's name, or the fragment's path.
    pub to: String,
    pub kind: EdgeKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EdgeKind {
    From,
    Include,
}

impl Graph {
    /// Reads every definition under `root` (see [`kiln_build::IGNORE_FILE`])
    /// and links them. Fails on the first invalid definition, a `from`
    /// that leads outside the graph or round in a circle, or one image
    /// name used twice.
    pub fn discover(root: &Path) -> Result<Graph, Error> {
        let dirs = kiln_build::definition_dirs(root)?;
        if dirs.is_empty() {
            return Err(Error::Empty {
                dir: root.to_path_buf(),
            });
        }
        let base = fs_err::canonicalize(root)?;
        let mut definitions = Vec::with_capacity(dirs.len());
        let mut canonical: HashMap<PathBuf, usize> = HashMap::new();
        let mut by_name: HashMap<String, usize> = HashMap::new();
        for dir in &dirs {
            let def = kiln_spec::load(dir)?;
            let index = definitions.len();
            if let Some(&first) = by_name.get(&def.image.name) {
                let first: &Definition = &definitions[first];
                return Err(Error::DuplicateName {
                    name: def.image.name.clone(),
                    first: first.path.clone(),
                    second: def.path.clone(),
                });
            }
            by_name.insert(def.image.name.clone(), index);
            canonical.insert(fs_err::canonicalize(dir)?, index);
            definitions.push(def);
        }

        let parents = definitions
            .iter()
            .map(|def| parent_of(def, &canonical))
            .collect::<Result<Vec<_>, _>>()?;
        let waves = waves(&definitions, &parents)?;

        let mut fragments: BTreeMap<String, FragmentNode> = BTreeMap::new();
        let mut images: Vec<ImageNode> = Vec::with_capacity(definitions.len());
        for (i, def) in definitions.iter().enumerate() {
            let mut includes = Vec::new();
            for fragment in &def.includes {
                let path = relative(&base, &fs_err::canonicalize(&fragment.path.path)?);
                let node = fragments
                    .entry(path.clone())
                    .or_insert_with(|| FragmentNode {
                        path: path.clone(),
                        digest: fragment.digest.clone(),
                        included_by: Vec::new(),
                    });
                node.included_by.push(def.image.name.clone());
                includes.push(path);
            }
            images.push(ImageNode {
                name: def.image.name.clone(),
                version: def.image.version.clone(),
                dir: relative(&base, &fs_err::canonicalize(&def.dir)?),
                parent: parents[i].map(|p| definitions[p].image.name.clone()),
                children: definitions
                    .iter()
                    .enumerate()
                    .filter(|(c, _)| parents[*c] == Some(i))
                    .map(|(_, c)| c.image.name.clone())
                    .collect(),
                includes,
                wave: waves[i],
                definition: def.clone(),
            });
        }
        images.sort_by(|a, b| (a.wave, &a.name).cmp(&(b.wave, &b.name)));
        for image in &mut images {
            image.children.sort();
        }
        let mut fragments: Vec<FragmentNode> = fragments.into_values().collect();
        for f in &mut fragments {
            f.included_by.sort();
        }
        let mut edges: Vec<Edge> = images
            .iter()
            .filter_map(|image| {
                image.parent.as_ref().map(|parent| Edge {
                    from: image.name.clone(),
                    to: parent.clone(),
                    kind: EdgeKind::From,
                })
            })
            .collect();
        for image in &images {
            edges.extend(image.includes.iter().map(|path| Edge {
                from: image.name.clone(),
                to: path.clone(),
                kind: EdgeKind::Include,
            }));
        }
        Ok(Graph {
            root: root.to_path_buf(),
            images,
            fragments,
            edges,
        })
    }

    pub fn image(&self, name: &str) -> Option<&ImageNode> {
        self.images.iter().find(|i| i.name == name)
    }

    /// The images in waves, lowest first.
    pub fn waves(&self) -> Vec<Vec<&ImageNode>> {
        let mut waves: Vec<Vec<&ImageNode>> = Vec::new();
        for image in &self.images {
            if waves.len() <= image.wave {
                waves.resize_with(image.wave + 1, Vec::new);
            }
            waves[image.wave].push(image);
        }
        waves
    }

    /// Every image built on `name`, directly or not, in graph order.
    pub fn descendants(&self, name: &str) -> Vec<&ImageNode> {
        self.images
            .iter()
            .filter(|image| self.ancestors(&image.name).iter().any(|a| a.name == name))
            .collect()
    }

    /// `name`'s parent, its parent's parent, … up to a root image.
    pub fn ancestors(&self, name: &str) -> Vec<&ImageNode> {
        let mut out = Vec::new();
        let mut next = self.image(name).and_then(|i| i.parent.as_deref());
        while let Some(parent) = next {
            let Some(node) = self.image(parent) else {
                break;
            };
            out.push(node);
            next = node.parent.as_deref();
        }
        out
    }
}

fn parent_of(
    def: &Definition,
    canonical: &HashMap<PathBuf, usize>,
) -> Result<Option<usize>, Error> {
    let (Some(dir), kiln_spec::Base::From(from)) = (def.parent(), &def.base) else {
        return Ok(None);
    };
    let missing = |reason| Error::MissingParent {
        child: def.path.clone(),
        from: from.written.clone(),
        parent: dir.join(kiln_spec::FILE_NAME),
        reason,
    };
    if !dir.join(kiln_spec::FILE_NAME).is_file() {
        return Err(missing("does not exist"));
    }
    let key = fs_err::canonicalize(dir)?;
    canonical
        .get(&key)
        .copied()
        .map(Some)
        .ok_or_else(|| missing("is not under the directory searched (or is ignored)"))
}

/// Each image's wave; a `from` chain that comes back to itself is an error
/// naming every file in the circle.
fn waves(definitions: &[Definition], parents: &[Option<usize>]) -> Result<Vec<usize>, Error> {
    let mut waves: Vec<Option<usize>> = vec![None; definitions.len()];
    for start in 0..definitions.len() {
        let mut path = vec![start];
        let mut at = start;
        let depth_above = loop {
            if let Some(w) = waves[at] {
                break Some(w);
            }
            match parents[at] {
                None => break None,
                Some(p) => {
                    if let Some(pos) = path.iter().position(|&seen| seen == p) {
                        let mut chain: Vec<PathBuf> = path[pos..]
                            .iter()
                            .map(|&i| definitions[i].path.clone())
                            .collect();
                        chain.push(definitions[p].path.clone());
                        return Err(kiln_spec::SpecError::Cycle { chain }.into());
                    }
                    path.push(p);
                    at = p;
                }
            }
        };
        // `path` runs from `start` up to `at`; `at` is a root or already known.
        let mut wave = depth_above.unwrap_or(0);
        for &i in path.iter().rev() {
            if waves[i].is_none() {
                waves[i] = Some(wave);
            }
            wave = waves[i].unwrap_or(wave) + 1;
        }
    }
    Ok(waves.into_iter().map(Option::unwrap_or_default).collect())
}

/// `path` relative to `base` for display, `.` for `base` itself.
fn relative(base: &Path, path: &Path) -> String {
    match path.strip_prefix(base) {
        Ok(rel) if rel.as_os_str().is_empty() => ".".to_owned(),
        Ok(rel) => rel.display().to_string(),
        Err(_) => path.display().to_string(),
    }
}
