//! The depth-first marking of apt's `pkgDepCache::MarkInstall`, with one
//! improvement: a failed attempt is rolled back whole, so trying the next
//! alternative never leaves half of the previous one behind.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use kiln_deb::packages::Relations;
use kiln_deb::{Atom, Package, Relation, Version};

use crate::error::ResolveError;
use crate::explain::{Attempt, Failure, Outcome};
use crate::request::{Reason, Request, Resolution, Resolved, Seed};
use crate::universe::Universe;

/// Resolves `request` against `universe`.
///
/// Locked versions (`Request::prefer`) are kept only while they work: when
/// one blocks a dependency that a newer version satisfies, it is released
/// and the resolution runs again, so `--update b` also moves what b needs.
pub fn resolve(universe: &Universe, request: &Request) -> Result<Resolution, ResolveError> {
    let mut request = request.clone();
    loop {
        let mut s = Solver::new(universe, &request)?;
        match s.run() {
            Ok(roots) => return Ok(s.into_resolution(&roots)),
            Err(e) => {
                let released: Vec<String> = s
                    .soft
                    .iter()
                    .filter(|n| request.prefer.contains_key(n.as_str()))
                    .cloned()
                    .collect();
                if released.is_empty() {
                    return Err(e);
                }
                for name in released {
                    request.prefer.remove(&name);
                }
            }
        }
    }
}

/// A package that counts as installed: chosen now or fixed by a parent.
#[derive(Clone, Copy)]
enum Present {
    Chosen(usize),
    /// Fixed by a parent; the index is the universe's entry for its exact
    /// version, or the newest entry when the archive dropped that version
    /// (kept only for its Provides and relations).
    Fixed(Option<usize>),
}

struct Solver<'u> {
    u: &'u Universe,
    request: &'u Request,
    /// The candidate of each package name, decided once as apt's policy does.
    candidates: HashMap<&'u str, usize>,
    present: HashMap<&'u str, Present>,
    /// Names in the order they were chosen, for rolling back.
    journal: Vec<&'u str>,
    /// Bounds the work a pathological index can cause with rollbacks.
    budget: usize,
    /// Preferred (locked) versions that stood in a dependency's way.
    soft: BTreeSet<String>,
}

impl<'u> Solver<'u> {
    fn new(u: &'u Universe, request: &'u Request) -> Result<Solver<'u>, ResolveError> {
        let mut present = HashMap::new();
        for (name, version) in &request.installed {
            let idx = u
                .find(name, version)
                .or_else(|| u.versions(name).first().copied());
            present.insert(name.as_str(), Present::Fixed(idx));
        }
        let mut s = Solver {
            u,
            request,
            candidates: HashMap::new(),
            present,
            journal: Vec::new(),
            budget: 200_000,
            soft: BTreeSet::new(),
        };
        for seed in &request.seeds {
            if let Some(pin) = &seed.pin {
                let idx = u
                    .find(&seed.name, pin)
                    .ok_or_else(|| ResolveError::PinMissing {
                        name: seed.name.clone(),
                        wanted: pin.to_string(),
                        available: u
                            .versions(&seed.name)
                            .iter()
                            .map(|&i| format!("{} ({})", u.package(i).version, u.entry(i).suite))
                            .collect(),
                    })?;
                s.candidates.insert(u.package(idx).name.as_str(), idx);
            }
        }
        Ok(s)
    }

    /// Two stages, as mmdebstrap installs a system: the essential set alone
    /// first, then everything else on top of it. Within a stage apt marks
    /// every named package before following any dependency, so one root's
    /// alternatives see the others as chosen.
    fn run(&mut self) -> Result<Vec<(&'u Seed, usize)>, ResolveError> {
        let request = self.request;
        let (essential, rest): (Vec<&Seed>, Vec<&Seed>) = request
            .seeds
            .iter()
            .partition(|s| s.reason == Reason::Essential);
        let mut roots = Vec::new();
        for stage in [essential, rest] {
            let first = roots.len();
            for seed in stage {
                let idx = self.root_candidate(seed)?;
                if request.installed.contains_key(seed.name.as_str()) && seed.pin.is_none() {
                    continue;
                }
                self.select(idx)
                    .map_err(|f| crate::explain::unsatisfiable(&seed.name, f))?;
                roots.push((seed, idx));
            }
            for &(seed, idx) in &roots[first..] {
                self.install_dependencies(idx)
                    .map_err(|f| crate::explain::unsatisfiable(&seed.name, f))?;
            }
        }
        Ok(roots)
    }

    /// apt's candidate: a pin, else the locked version while the archive has
    /// it, else the newest.
    fn candidate(&mut self, name: &str) -> Option<usize> {
        if let Some(&idx) = self.candidates.get(name) {
            return Some(idx);
        }
        let versions = self.u.versions(name);
        let newest = *versions.first()?;
        let idx = self
            .request
            .prefer
            .get(name)
            .and_then(|v| self.u.find(name, v))
            .unwrap_or(newest);
        self.candidates
            .insert(self.u.package(idx).name.as_str(), idx);
        Some(idx)
    }

    fn root_candidate(&mut self, seed: &Seed) -> Result<usize, ResolveError> {
        if let Some(idx) = self.candidate(&seed.name) {
            return Ok(idx);
        }
        // `apt-get install awk` installs the only provider, and refuses to
        // guess among several.
        let mut providers: Vec<usize> = Vec::new();
        for &p in self.u.providers(&seed.name) {
            let name = &self.u.package(p).name;
            if let Some(c) = self.candidate(name)
                && self.u.package(c).provides(&seed.name).is_some()
                && !providers.contains(&c)
            {
                providers.push(c);
            }
        }
        match providers.as_slice() {
            [only] => Ok(*only),
            [] => Err(crate::explain::unknown(self.u, &seed.name)),
            many => Err(ResolveError::Virtual {
                name: seed.name.clone(),
                providers: many
                    .iter()
                    .map(|&i| self.u.package(i).name.clone())
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect(),
            }),
        }
    }

    fn package_of(&self, p: Present) -> Option<&'u Package> {
        match p {
            Present::Chosen(i) | Present::Fixed(Some(i)) => Some(self.u.package(i)),
            Present::Fixed(None) => None,
        }
    }

    /// The version a present package has: a parent's is its locked one.
    fn present_version(&self, name: &str, p: Present) -> Option<&'u Version> {
        match p {
            Present::Chosen(i) => Some(&self.u.package(i).version),
            Present::Fixed(_) => self.request.installed.get(name),
        }
    }

    /// Whether an installed or chosen package satisfies `atom`.
    fn satisfies(&self, atom: &Atom) -> bool {
        if let Some(&p) = self.present.get(atom.name.as_str())
            && atom.accepts(self.present_version(&atom.name, p))
        {
            return true;
        }
        self.u.providers(&atom.name).iter().any(|&i| {
            let pkg = self.u.package(i);
            match self.present.get(pkg.name.as_str()) {
                Some(&Present::Chosen(c)) if c == i => {
                    atom.accepts(pkg.provides(&atom.name).flatten())
                }
                Some(&Present::Fixed(Some(f))) if f == i => {
                    atom.accepts(pkg.provides(&atom.name).flatten())
                }
                _ => false,
            }
        })
    }

    fn satisfied(&self, relation: &Relation) -> bool {
        relation.alternatives.iter().any(|a| self.satisfies(a))
    }

    /// Whether `pkg` (at its own version and Provides) matches `atom`.
    fn matches(pkg: &Package, atom: &Atom) -> bool {
        (pkg.name == atom.name && atom.accepts(Some(&pkg.version)))
            || pkg
                .provides(&atom.name)
                .is_some_and(|v| atom.constraint.is_none() || atom.accepts(v))
    }

    /// A chosen or installed package that `pkg` conflicts with, or that
    /// conflicts with `pkg`: Conflicts and Breaks both keep two packages
    /// out of one image.
    fn conflict(&self, pkg: &Package) -> Result<Option<(String, String)>, Failure> {
        for (&name, &p) in &self.present {
            if name == pkg.name {
                continue;
            }
            let Some(other) = self.package_of(p) else {
                continue;
            };
            for (a, b) in [(pkg, other), (other, pkg)] {
                let rels = relations(a)?;
                for (kind, list) in [
                    ("conflicts with", &rels.conflicts),
                    ("breaks", &rels.breaks),
                ] {
                    for atom in list.iter().flat_map(|r| &r.alternatives) {
                        if Self::matches(b, atom) {
                            return Ok(Some((
                                other.name.clone(),
                                format!("{} {kind} {atom}", a.name),
                            )));
                        }
                    }
                }
            }
        }
        Ok(None)
    }

    /// Chooses `idx` without following its dependencies.
    fn select(&mut self, idx: usize) -> Result<(), Failure> {
        let pkg = self.u.package(idx);
        match self.present.get(pkg.name.as_str()) {
            Some(Present::Chosen(c)) if *c == idx => return Ok(()),
            Some(Present::Chosen(c)) => {
                self.soft.insert(pkg.name.clone());
                return Err(Failure::Clash {
                    name: pkg.name.clone(),
                    chosen: self.u.package(*c).version.to_string(),
                    wanted: pkg.version.to_string(),
                });
            }
            Some(Present::Fixed(_)) => {
                let fixed = self.request.installed.get(&pkg.name);
                if fixed == Some(&pkg.version) {
                    return Ok(());
                }
                return Err(Failure::Parent {
                    name: pkg.name.clone(),
                    fixed: fixed.map(ToString::to_string).unwrap_or_default(),
                    wanted: pkg.version.to_string(),
                });
            }
            None => {}
        }
        if let Some((other, why)) = self.conflict(pkg)? {
            return Err(Failure::Conflict {
                package: format!("{} {}", pkg.name, pkg.version),
                other,
                why,
            });
        }
        self.present.insert(pkg.name.as_str(), Present::Chosen(idx));
        self.journal.push(pkg.name.as_str());
        Ok(())
    }

    fn rollback(&mut self, mark: usize) {
        for name in self.journal.drain(mark..) {
            self.present.remove(name);
        }
    }

    /// apt's `MarkInstall` with auto-install: choose, then satisfy each
    /// dependency depth-first.
    fn mark(&mut self, idx: usize) -> Result<(), Failure> {
        let name = self.u.package(idx).name.as_str();
        let already = matches!(self.present.get(name), Some(Present::Chosen(c)) if *c == idx);
        self.select(idx)?;
        if already {
            return Ok(());
        }
        self.install_dependencies(idx)
    }

    fn install_dependencies(&mut self, idx: usize) -> Result<(), Failure> {
        let pkg: &'u Package = self.u.package(idx);
        let rels = relations(pkg)?;
        let recommends: &[Relation] = if self.request.recommends {
            &rels.recommends
        } else {
            &[]
        };
        let critical = rels
            .pre_depends
            .iter()
            .chain(&rels.depends)
            .map(|r| (r, true));
        for (relation, critical) in critical.chain(recommends.iter().map(|r| (r, false))) {
            if self.satisfied(relation) {
                continue;
            }
            self.budget = self.budget.checked_sub(1).ok_or_else(|| Failure::Budget {
                package: pkg.name.clone(),
            })?;
            let mut attempts = Vec::new();
            let mut done = false;
            for atom in &relation.alternatives {
                let solutions = self.solutions(atom);
                if solutions.is_empty() {
                    attempts.push(Attempt {
                        atom: atom.clone(),
                        outcome: self.why_no_solution(atom),
                    });
                    continue;
                }
                for cand in solutions {
                    let mark = self.journal.len();
                    match self.mark(cand) {
                        Ok(()) => {
                            done = true;
                            break;
                        }
                        Err(f) => {
                            self.rollback(mark);
                            attempts.push(Attempt {
                                atom: atom.clone(),
                                outcome: Outcome::Failed(Box::new(f)),
                            });
                        }
                    }
                }
                if done {
                    break;
                }
            }
            if !done && critical {
                return Err(Failure::Dependency {
                    package: format!("{} {}", pkg.name, pkg.version),
                    relation: relation.to_string(),
                    attempts,
                });
            }
        }
        Ok(())
    }

    /// Candidates that satisfy `atom`, ranked as apt's `CompareProviders`:
    /// installed first, then the package of that very name, then essential
    /// ones, then by priority; ties go by name so the answer is stable.
    fn solutions(&mut self, atom: &Atom) -> Vec<usize> {
        let mut found: Vec<usize> = Vec::new();
        if let Some(c) = self.candidate(&atom.name)
            && atom.accepts(Some(&self.u.package(c).version))
        {
            found.push(c);
        }
        let providers: Vec<usize> = self.u.providers(&atom.name).to_vec();
        for p in providers {
            let name = self.u.package(p).name.clone();
            let Some(c) = self.candidate(&name) else {
                continue;
            };
            if c != p || found.contains(&c) {
                continue;
            }
            if atom.accepts(self.u.package(c).provides(&atom.name).flatten()) {
                found.push(c);
            }
        }
        let target = atom.name.as_str();
        found.sort_by_key(|&i| {
            let p = self.u.package(i);
            (
                !self.present.contains_key(p.name.as_str()),
                p.name != target,
                !p.essential,
                p.priority,
                p.name.clone(),
            )
        });
        found
    }

    fn why_no_solution(&mut self, atom: &Atom) -> Outcome {
        let newest = self.u.versions(&atom.name).first().copied();
        if let Some(n) = newest
            && atom.accepts(Some(&self.u.package(n).version))
        {
            self.soft.insert(atom.name.clone());
        }
        match self.candidate(&atom.name) {
            Some(c) => {
                let e = self.u.entry(c);
                Outcome::Version {
                    have: e.package.version.to_string(),
                    suite: e.suite.clone(),
                }
            }
            None if self.u.providers(&atom.name).is_empty() => Outcome::Missing,
            None => Outcome::NoProvider,
        }
    }

    fn into_resolution(self, roots: &[(&Seed, usize)]) -> Resolution {
        let reasons: BTreeMap<&str, Reason> = roots
            .iter()
            .map(|(seed, idx)| (self.u.package(*idx).name.as_str(), seed.reason.clone()))
            .collect();
        let mut needed_by: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
        for (&name, &p) in &self.present {
            let Present::Chosen(idx) = p else { continue };
            // Every chosen package had its relations parsed when chosen.
            let Ok(rels) = self.u.package(idx).relations() else {
                continue;
            };
            let recommends: &[Relation] = if self.request.recommends {
                &rels.recommends
            } else {
                &[]
            };
            for rel in rels
                .pre_depends
                .iter()
                .chain(&rels.depends)
                .chain(recommends)
            {
                if let Some(by) = self.first_satisfier(rel)
                    && by != name
                {
                    needed_by.entry(by).or_default().insert(name.to_string());
                }
            }
        }
        let mut packages: Vec<Resolved> = self
            .present
            .iter()
            .filter_map(|(&name, &p)| match p {
                Present::Chosen(idx) => Some((name, idx)),
                Present::Fixed(_) => None,
            })
            .map(|(name, idx)| {
                let e = self.u.entry(idx);
                Resolved {
                    name: name.to_string(),
                    version: e.package.version.clone(),
                    architecture: e.package.architecture.clone(),
                    suite: e.suite.clone(),
                    filename: e.package.filename.clone(),
                    size: e.package.size,
                    sha256: e.package.sha256.clone(),
                    reason: reasons.get(name).cloned().unwrap_or(Reason::Dependency),
                    needed_by: needed_by.remove(name).unwrap_or_default(),
                }
            })
            .collect();
        packages.sort_by(|a, b| a.name.cmp(&b.name));
        Resolution { packages }
    }

    /// The chosen package that satisfies `rel`, taking alternatives in order.
    fn first_satisfier(&self, rel: &Relation) -> Option<&'u str> {
        for atom in &rel.alternatives {
            if let Some(&p) = self.present.get(atom.name.as_str())
                && atom.accepts(self.present_version(&atom.name, p))
            {
                return self.package_of(p).map(|pkg| pkg.name.as_str());
            }
            for &i in self.u.providers(&atom.name) {
                let pkg = self.u.package(i);
                if matches!(self.present.get(pkg.name.as_str()), Some(Present::Chosen(c)) if *c == i)
                    && atom.accepts(pkg.provides(&atom.name).flatten())
                {
                    return Some(pkg.name.as_str());
                }
            }
        }
        None
    }
}

fn relations(pkg: &Package) -> Result<&Relations, Failure> {
    pkg.relations().map_err(|e| Failure::Index {
        message: e.to_string(),
    })
}
