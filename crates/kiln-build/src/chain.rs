//! An image and the images it is built `from`, up to the distribution base.

use std::path::{Path, PathBuf};

use kiln_lock::Lock;
use kiln_spec::{Base, DebianBase, Definition};

use crate::error::Error;

pub(crate) const LOCKFILE: &str = "kiln.lock";

/// A locked ancestor: its definition, its lock and that lock's digest.
pub(crate) struct Ancestor {
    pub def: Definition,
    pub lock: Lock,
    pub digest: String,
}

pub(crate) struct Chain {
    pub def: Definition,
    /// Nearest parent first.
    pub ancestors: Vec<Ancestor>,
}

impl Chain {
    pub fn load(dir: &Path) -> Result<Chain, Error> {
        let def = kiln_spec::load(dir)?;
        let mut ancestors: Vec<Ancestor> = Vec::new();
        let mut seen: Vec<PathBuf> = vec![canonical(dir)];
        let mut next = def.parent().map(Path::to_path_buf);
        while let Some(parent_dir) = next {
            let key = canonical(&parent_dir);
            if seen.contains(&key) {
                seen.push(key);
                return Err(Error::Cycle { chain: seen });
            }
            seen.push(key);
            let parent = kiln_spec::load(&parent_dir)?;
            let lock_path = parent_dir.join(LOCKFILE);
            let lock = match kiln_lock::read(&lock_path) {
                Ok(l) => l,
                Err(kiln_lock::LockError::Missing(_)) => {
                    return Err(Error::ParentNotLocked { dir: parent_dir });
                }
                Err(e) => return Err(e.into()),
            };
            let digest = kiln_lock::digest(&lock_path)?;
            next = parent.parent().map(Path::to_path_buf);
            ancestors.push(Ancestor {
                def: parent,
                lock,
                digest,
            });
        }
        let chain = Chain { def, ancestors };
        chain.check_ancestors()?;
        Ok(chain)
    }

    /// Each ancestor's lock must match its definition and pin its own parent,
    /// or the child would be built on something nobody locked.
    fn check_ancestors(&self) -> Result<(), Error> {
        for (i, a) in self.ancestors.iter().enumerate() {
            let parent_digest = self.ancestors.get(i + 1).map(|p| p.digest.as_str());
            if !crate::lock::staleness(&a.def, &a.lock, parent_digest)?.is_empty() {
                return Err(Error::ParentStale {
                    dir: a.def.dir.clone(),
                });
            }
        }
        Ok(())
    }

    /// The distribution every image in the chain is built from.
    pub fn distro(&self) -> &DebianBase {
        let root = self.ancestors.last().map(|a| &a.def).unwrap_or(&self.def);
        match &root.base {
            Base::Debian(d) => d,
            // `Chain::load` follows `from` until a definition has none.
            Base::From(_) => unreachable!("a chain ends at a distribution base"),
        }
    }

    pub fn parent(&self) -> Option<&Ancestor> {
        self.ancestors.first()
    }
}

fn canonical(dir: &Path) -> PathBuf {
    dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf())
}
