//! What a rebuild must touch, wave by wave, and why.

use std::path::{Path, PathBuf};
use std::process::Command;

use kiln_build::OutdatedOptions;
use serde::Serialize;

use crate::error::Error;
use crate::graph::{Graph, ImageNode};

/// Which images start a rebuild; their descendants always follow.
#[derive(Debug, Clone)]
pub enum Selection {
    /// Images with a locked package the archive now has newer.
    Outdated,
    /// Images whose definition, fragments or files changed since a git revision.
    ChangedSince(String),
    /// Images by name.
    Images(Vec<String>),
}

impl Selection {
    /// How the catalog's rollout records it, as the command line said it.
    pub fn trigger(&self) -> String {
        match self {
            Selection::Outdated => "--outdated".into(),
            Selection::ChangedSince(rev) => format!("--changed-since {rev}"),
            // Sorted: `web api` and `api web` ask for the same rollout.
            Selection::Images(names) => {
                let mut names = names.clone();
                names.sort();
                names.dedup();
                format!("images {}", names.join(" "))
            }
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Plan {
    /// Lowest wave first; an image starts only once its parent passed.
    pub waves: Vec<Vec<Planned>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Planned {
    pub name: String,
    #[serde(skip)]
    pub dir: PathBuf,
    /// Why it is rebuilt: named, outdated packages, a changed file, or its parent.
    pub reason: String,
    /// Packages to move to the newest candidate (`kiln lock --update`);
    /// empty: relock keeping every version (only the parent's pin moves).
    pub update: Vec<String>,
    /// Whether `kiln test` boots it: it has a disk format and checks.
    pub boots: bool,
    /// The names of its checks, as `kiln test` reports them.
    #[serde(skip)]
    pub checks: Vec<String>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.waves.is_empty()
    }
}

/// The plan for `selection` over `graph`.
pub fn plan(
    graph: &Graph,
    selection: &Selection,
    opts: &OutdatedOptions<'_>,
) -> Result<Plan, Error> {
    let mut chosen: Vec<(String, String, Vec<String>)> = Vec::new();
    match selection {
        Selection::Images(names) => {
            for name in names {
                if graph.image(name).is_none() {
                    return Err(Error::UnknownImage {
                        name: name.clone(),
                        dir: graph.root.clone(),
                    });
                }
                chosen.push((name.clone(), "named".into(), Vec::new()));
            }
        }
        Selection::Outdated => {
            for image in crate::outdated(graph, opts)?.images {
                if !image.pending.is_empty() {
                    let names = image.own_names();
                    let reason = format!("outdated: {}", names.join(", "));
                    chosen.push((image.name, reason, names));
                }
            }
            // A run killed after relocking a parent leaves its children's
            // locks pinning the old parent: the rerun must finish them.
            for image in &graph.images {
                let fresh = kiln_build::check(&image.definition.dir).is_ok_and(|c| c.fresh);
                if !fresh && !chosen.iter().any(|(n, _, _)| *n == image.name) {
                    chosen.push((image.name.clone(), "lock stale".into(), Vec::new()));
                }
            }
        }
        Selection::ChangedSince(rev) => {
            for (image, file) in changed_since(graph, rev)? {
                chosen.push((image, format!("changed: {}", file.display()), Vec::new()));
            }
        }
    }
    let mut planned: Vec<(usize, Planned)> = Vec::new();
    for image in &graph.images {
        let own = chosen.iter().find(|(n, _, _)| *n == image.name);
        let parent = graph
            .ancestors(&image.name)
            .into_iter()
            .find(|a| chosen.iter().any(|(n, _, _)| *n == a.name));
        let (reason, update) = match (own, parent) {
            (Some((_, reason, update)), _) => (reason.clone(), update.clone()),
            (None, Some(a)) => (format!("built on {}", a.name), Vec::new()),
            (None, None) => continue,
        };
        planned.push((image.wave, planned_image(image, reason, update)));
    }
    let mut waves: Vec<Vec<Planned>> = Vec::new();
    // Renumbered from 0 so a plan that starts below the root has no empty wave.
    let mut levels: Vec<usize> = planned.iter().map(|(w, _)| *w).collect();
    levels.dedup();
    for level in levels {
        waves.push(
            planned
                .iter()
                .filter(|(w, _)| *w == level)
                .map(|(_, p)| p.clone())
                .collect(),
        );
    }
    Ok(Plan { waves })
}

fn planned_image(image: &ImageNode, reason: String, update: Vec<String>) -> Planned {
    let def = &image.definition;
    Planned {
        name: image.name.clone(),
        dir: def.dir.clone(),
        reason,
        update,
        boots: def.outputs.formats.iter().any(|f| f.is_disk()) && !def.checks.is_empty(),
        checks: def.checks.iter().map(|c| c.name.clone()).collect(),
    }
}

/// Images with an input changed since `rev` (committed, staged, unstaged or
/// untracked), each with the first such file.
fn changed_since(graph: &Graph, rev: &str) -> Result<Vec<(String, PathBuf)>, Error> {
    let root = &graph.root;
    let top = git(root, &["rev-parse", "--show-toplevel"])?;
    let top = PathBuf::from(top.trim());
    let mut files: Vec<PathBuf> = Vec::new();
    for args in [
        vec!["diff", "--name-only", rev, "--", "."],
        vec![
            "ls-files",
            "--others",
            "--exclude-standard",
            "--full-name",
            "--",
            ".",
        ],
    ] {
        let text = git(root, &args)?;
        files.extend(text.lines().filter(|l| !l.is_empty()).map(|l| top.join(l)));
    }
    let dirs = graph
        .images
        .iter()
        .map(|i| fs_err::canonicalize(&i.definition.dir))
        .collect::<Result<Vec<_>, _>>()?;
    // A file belongs to the deepest image directory holding it (not its out/).
    let owner = |file: &Path| {
        dirs.iter()
            .enumerate()
            .filter(|(_, d)| file.starts_with(d) && !file.starts_with(d.join("out")))
            .max_by_key(|(_, d)| d.components().count())
            .map(|(i, _)| i)
    };
    let mut out = Vec::new();
    for (i, image) in graph.images.iter().enumerate() {
        let inputs = inputs(&image.definition);
        if let Some(file) = files
            .iter()
            .find(|f| owner(f) == Some(i) || inputs.iter().any(|input| input == *f))
        {
            let shown = file.strip_prefix(&top).unwrap_or(file).to_path_buf();
            out.push((image.name.clone(), shown));
        }
    }
    Ok(out)
}

/// Files outside the image's directory that it reads: fragments and the
/// files and scripts they bring.
fn inputs(def: &kiln_spec::Definition) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = def.includes.iter().map(|f| f.path.path.clone()).collect();
    paths.extend(def.files.iter().map(|f| f.src.path.clone()));
    paths.extend(def.run.iter().filter_map(|r| match &r.step {
        kiln_spec::RunStep::Script(p) => Some(p.path.clone()),
        kiln_spec::RunStep::Command(_) => None,
    }));
    paths
        .into_iter()
        .filter_map(|p| fs_err::canonicalize(p).ok())
        .collect()
}

fn git(dir: &Path, args: &[&str]) -> Result<String, Error> {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .map_err(|e| {
            std::io::Error::new(e.kind(), format!("running git in {}: {e}", dir.display()))
        })?;
    if !output.status.success() {
        return Err(Error::Git {
            dir: dir.to_path_buf(),
            args: args.join(" "),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}
