//! Which packages to bootstrap first and in what order dpkg gets them.
//!
//! The package set is already resolved (by the lock), so relations are only
//! mapped to the package in the set that satisfies them: the first
//! alternative present, by name or by Provides, as apt picks.

use std::collections::{BTreeMap, BTreeSet};

use kiln_deb::relation::Relation;

use crate::deb::Control;

/// Indexes of the packages in a set, by the names they answer to.
struct Names<'a> {
    real: BTreeMap<&'a str, usize>,
    provided: BTreeMap<&'a str, Vec<usize>>,
}

impl<'a> Names<'a> {
    fn new(pkgs: &'a [Control]) -> Names<'a> {
        let mut real = BTreeMap::new();
        let mut provided: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (i, p) in pkgs.iter().enumerate() {
            real.insert(p.package.as_str(), i);
            for name in &p.provides {
                provided.entry(name.as_str()).or_default().push(i);
            }
        }
        Names { real, provided }
    }

    /// The package in the set that satisfies `rel`, if any.
    fn satisfier(&self, rel: &Relation) -> Option<usize> {
        rel.alternatives.iter().find_map(|atom| {
            self.real.get(atom.name.as_str()).copied().or_else(|| {
                self.provided
                    .get(atom.name.as_str())
                    .and_then(|v| v.first().copied())
            })
        })
    }

    fn targets(&self, rels: &[Relation], me: usize) -> Vec<usize> {
        let mut out: Vec<usize> = rels
            .iter()
            .filter_map(|r| self.satisfier(r))
            .filter(|&t| t != me)
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }
}

/// The packages to extract and install first into an empty root, as
/// mmdebstrap's essential set: every `Essential: yes` package (or one the
/// caller marks essential) and everything they depend on, transitively.
pub(crate) fn essential_closure(pkgs: &[Control], marked: &[bool]) -> BTreeSet<usize> {
    let names = Names::new(pkgs);
    let mut set = BTreeSet::new();
    let mut todo: Vec<usize> = (0..pkgs.len())
        .filter(|&i| pkgs[i].essential || marked[i])
        .collect();
    while let Some(i) = todo.pop() {
        if set.insert(i) {
            let p = &pkgs[i];
            todo.extend(names.targets(&p.pre_depends, i));
            todo.extend(names.targets(&p.depends, i));
        }
    }
    set
}

/// Splits `subset` into the packages to install first and, last, the
/// kernels (`linux-image-*`) with whatever depends on them.
///
/// A kernel's postinst builds its initramfs, and packages with initramfs
/// hooks (udev, kmod, busybox, …) activate initramfs-tools' trigger, which
/// builds it again at the end of that dpkg run. Installed after every other
/// package's triggers have run, the kernel's initramfs is built once, from
/// the same complete tree: the slowest step of a bootable image, halved.
pub(crate) fn kernels_last(
    pkgs: &[Control],
    subset: &BTreeSet<usize>,
) -> (BTreeSet<usize>, BTreeSet<usize>) {
    let names = Names::new(pkgs);
    let mut late: BTreeSet<usize> = subset
        .iter()
        .copied()
        .filter(|&i| pkgs[i].package.starts_with("linux-image-"))
        .collect();
    // Whatever depends on a late package must wait for it.
    loop {
        let more: Vec<usize> = subset
            .iter()
            .copied()
            .filter(|i| !late.contains(i))
            .filter(|&i| {
                names
                    .targets(&pkgs[i].pre_depends, i)
                    .iter()
                    .chain(&names.targets(&pkgs[i].depends, i))
                    .any(|t| late.contains(t))
            })
            .collect();
        if more.is_empty() {
            break;
        }
        late.extend(more);
    }
    let early = subset.difference(&late).copied().collect();
    (early, late)
}

/// One `dpkg --install` call: packages given together, dependencies first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Batch {
    pub members: Vec<usize>,
    /// The batch holds a Pre-Depends loop, which dpkg only gets through when
    /// told to go on (`--force-depends`).
    pub force: bool,
}

/// Orders `subset` of `pkgs` for installation and cuts it into batches.
///
/// dpkg unpacks every package of one `--install` call before configuring
/// any, and refuses to unpack a package whose Pre-Depends is unpacked but not
/// configured yet. So a batch ends just before a package that pre-depends on
/// a member of it. Dependency cycles (strongly connected components) are
/// never cut: dpkg configures a cycle only when it holds all of it.
pub(crate) fn batches(pkgs: &[Control], subset: &BTreeSet<usize>) -> Vec<Batch> {
    let names = Names::new(pkgs);
    let edges = |i: usize| -> Vec<usize> {
        let mut all = names.targets(&pkgs[i].pre_depends, i);
        all.extend(names.targets(&pkgs[i].depends, i));
        all.retain(|t| subset.contains(t));
        all.sort_unstable();
        all.dedup();
        all
    };
    let mut out: Vec<Batch> = Vec::new();
    let mut current = Batch {
        members: Vec::new(),
        force: false,
    };
    for scc in sccs_dependencies_first(subset, edges) {
        let in_scc = |t: &usize| scc.contains(t);
        let pre: Vec<usize> = scc
            .iter()
            .flat_map(|&i| names.targets(&pkgs[i].pre_depends, i))
            .filter(|t| subset.contains(t))
            .collect();
        if pre
            .iter()
            .any(|t| !in_scc(t) && current.members.contains(t))
        {
            out.push(std::mem::replace(
                &mut current,
                Batch {
                    members: Vec::new(),
                    force: false,
                },
            ));
        }
        current.force |= pre.iter().any(in_scc);
        current.members.extend(scc);
    }
    if !current.members.is_empty() {
        out.push(current);
    }
    out
}

/// Tarjan's algorithm: strongly connected components, each one after every
/// component it depends on. Deterministic: nodes and edges are visited in
/// index order, and members of a component are sorted.
fn sccs_dependencies_first(
    nodes: &BTreeSet<usize>,
    edges: impl Fn(usize) -> Vec<usize>,
) -> Vec<Vec<usize>> {
    struct State {
        index: BTreeMap<usize, usize>,
        low: BTreeMap<usize, usize>,
        on_stack: BTreeSet<usize>,
        stack: Vec<usize>,
        next: usize,
        out: Vec<Vec<usize>>,
    }
    let mut st = State {
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        on_stack: BTreeSet::new(),
        stack: Vec::new(),
        next: 0,
        out: Vec::new(),
    };
    // Iterative DFS: a deep dependency chain must not overflow the stack.
    for &start in nodes {
        if st.index.contains_key(&start) {
            continue;
        }
        let mut call: Vec<(usize, Vec<usize>, usize)> = Vec::new();
        st.index.insert(start, st.next);
        st.low.insert(start, st.next);
        st.next += 1;
        st.stack.push(start);
        st.on_stack.insert(start);
        call.push((start, edges(start), 0));
        while let Some((v, succ, pos)) = call.last_mut() {
            let v = *v;
            if let Some(&w) = succ.get(*pos) {
                *pos += 1;
                if !st.index.contains_key(&w) {
                    st.index.insert(w, st.next);
                    st.low.insert(w, st.next);
                    st.next += 1;
                    st.stack.push(w);
                    st.on_stack.insert(w);
                    call.push((w, edges(w), 0));
                } else if st.on_stack.contains(&w) {
                    let lw = st.index[&w].min(st.low[&v]);
                    st.low.insert(v, lw);
                }
                continue;
            }
            call.pop();
            if let Some((parent, _, _)) = call.last() {
                let lp = st.low[parent].min(st.low[&v]);
                st.low.insert(*parent, lp);
            }
            if st.low[&v] == st.index[&v] {
                let mut scc = Vec::new();
                while let Some(w) = st.stack.pop() {
                    st.on_stack.remove(&w);
                    scc.push(w);
                    if w == v {
                        break;
                    }
                }
                scc.sort_unstable();
                st.out.push(scc);
            }
        }
    }
    st.out
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_deb::relation::parse_relations;

    fn pkg(name: &str, pre: &str, dep: &str) -> Control {
        Control {
            path: format!("{name}.deb").into(),
            package: name.into(),
            version: "1".into(),
            architecture: "amd64".into(),
            multi_arch: String::new(),
            essential: false,
            pre_depends: parse_relations(pre, "amd64").unwrap(),
            depends: parse_relations(dep, "amd64").unwrap(),
            provides: vec![],
        }
    }

    fn names(pkgs: &[Control], b: &[Batch]) -> Vec<Vec<String>> {
        b.iter()
            .map(|b| b.members.iter().map(|&i| pkgs[i].package.clone()).collect())
            .collect()
    }

    #[test]
    fn dependencies_come_first_and_cycles_stay_together() {
        let pkgs = vec![
            pkg("app", "", "liba, cyc1"),
            pkg("liba", "", "libc6"),
            pkg("cyc1", "", "cyc2"),
            pkg("cyc2", "", "cyc1 | other"),
            pkg("libc6", "", ""),
        ];
        let all = (0..pkgs.len()).collect();
        let b = batches(&pkgs, &all);
        assert_eq!(
            names(&pkgs, &b),
            vec![vec!["libc6", "liba", "cyc1", "cyc2", "app"]]
        );
    }

    #[test]
    fn a_pre_dependency_in_the_batch_starts_a_new_one() {
        let pkgs = vec![
            pkg("tool", "libx", ""),
            pkg("libx", "", ""),
            pkg("other", "", ""),
        ];
        let all = (0..pkgs.len()).collect();
        let b = batches(&pkgs, &all);
        assert_eq!(names(&pkgs, &b), vec![vec!["libx"], vec!["tool", "other"]]);
    }

    #[test]
    fn kernels_and_what_needs_them_come_last() {
        let pkgs = vec![
            pkg("initramfs-tools", "", ""),
            pkg("linux-image-6.1.0-1-cloud-amd64", "", "initramfs-tools"),
            pkg(
                "linux-image-cloud-amd64",
                "",
                "linux-image-6.1.0-1-cloud-amd64",
            ),
            pkg("udev", "", ""),
            pkg("my-kernel-tools", "", "linux-image-cloud-amd64"),
        ];
        let all: BTreeSet<usize> = (0..pkgs.len()).collect();
        let (early, late) = kernels_last(&pkgs, &all);
        assert_eq!(early, BTreeSet::from([0, 3]));
        assert_eq!(late, BTreeSet::from([1, 2, 4]));
    }

    #[test]
    fn closure_follows_first_present_alternative_and_provides() {
        let mut init = pkg("init-system-helpers", "", "usrmerge | usr-is-merged");
        init.essential = true;
        let mut perl = pkg("perl", "", "");
        perl.provides = vec!["perlapi".into()];
        let pkgs = vec![
            init,
            pkg("usrmerge", "", "perlapi"),
            perl,
            pkg("curl", "", ""),
        ];
        let set = essential_closure(&pkgs, &[false; 4]);
        assert_eq!(set.into_iter().collect::<Vec<_>>(), vec![0, 1, 2]);
    }
}
