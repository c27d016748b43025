//! A layer holding only what a child tree changes relative to its parent.
//!
//! An entry is written when it is new or differs in type, permission bits,
//! owner, size, content, symlink target, device numbers, kept xattrs or
//! hard-link group. The mtime is not compared: it is clamped to
//! SOURCE_DATE_EPOCH anyway, and a build step that rewrites a file with the
//! same bytes (a regenerated cache, a re-run `update-alternatives`) must not
//! grow the layer; a directory's mtime changes with every entry added to it,
//! so comparing it would re-send every touched directory. The price: such a
//! file keeps the parent's mtime in the merged image.
//!
//! Removed entries become OCI whiteouts (`.wh.<name>`), only at the top of a
//! removed subtree; a directory none of whose parent entries survive gets an
//! opaque whiteout (`.wh..wh..opq`) instead of one whiteout per entry. An
//! entry whose type changes needs no whiteout: appliers replace it.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::Path;

use crate::tar::{Header, TarWriter, TypeFlag};
use crate::tree::{Kind, Node, Tree};
use crate::{ImageError, TarOptions, TarSummary};

/// Writes a tar of what `child` changes relative to `parent`, with the same
/// determinism as [`crate::write_tar`]. Applying the parent's layers and then
/// this one gives `child`, mtimes of unchanged-content entries aside.
pub fn write_diff_tar(
    parent: &Path,
    child: &Path,
    out: &mut dyn Write,
    opts: &TarOptions,
) -> Result<TarSummary, ImageError> {
    let parent = Tree::scan(parent)?;
    let child = Tree::scan(child)?;
    let items = plan(&parent, &child)?;
    let emitted = {
        let mut emitted = vec![false; child.nodes.len()];
        for item in &items {
            if let Item::Node(i) = item {
                emitted[*i] = true;
            }
        }
        emitted
    };
    let links = child.hard_links(|i| emitted[i]);
    let mut tar = TarWriter::new(out);
    for item in &items {
        match item {
            Item::Node(i) => {
                let link = links[*i].map(|j| &child.nodes[j]);
                tar.node(&child, &child.nodes[*i], link, opts)?;
            }
            Item::Whiteout { dir, name } => {
                let mut marker = dir_prefix(dir);
                marker.extend_from_slice(b".wh.");
                marker.extend_from_slice(name);
                whiteout(&mut tar, &marker, opts)?;
            }
            Item::Opaque { dir } => {
                let mut marker = dir_prefix(dir);
                marker.extend_from_slice(b".wh..wh..opq");
                whiteout(&mut tar, &marker, opts)?;
            }
        }
    }
    tar.finish()
}

#[derive(Debug, PartialEq, Eq)]
enum Item {
    /// A child entry, by index.
    Node(usize),
    /// `dir/.wh.name`: `name` is gone from `dir`.
    Whiteout { dir: Vec<u8>, name: Vec<u8> },
    /// `dir/.wh..wh..opq`: nothing of `dir` in lower layers remains.
    Opaque { dir: Vec<u8> },
}

impl Item {
    /// Entries sort bytewise by path, except that a directory's whiteouts
    /// come right after the directory and before its other entries (a NUL,
    /// which no name holds, stands for `.wh.`): an applier that deletes as it
    /// reads must not delete entries this very layer just added.
    fn key(&self, child: &Tree) -> Vec<u8> {
        match self {
            Item::Node(i) => child.nodes[*i].path.clone(),
            Item::Whiteout { dir, name } => {
                let mut key = dir_prefix(dir);
                key.push(0);
                key.push(1);
                key.extend_from_slice(name);
                key
            }
            Item::Opaque { dir } => {
                let mut key = dir_prefix(dir);
                key.push(0);
                key.push(0);
                key
            }
        }
    }
}

fn dir_prefix(dir: &[u8]) -> Vec<u8> {
    let mut out = dir.to_vec();
    if !out.is_empty() {
        out.push(b'/');
    }
    out
}

fn split(path: &[u8]) -> (&[u8], &[u8]) {
    match path.iter().rposition(|&b| b == b'/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => (&[], path),
    }
}

/// Decides what the diff layer holds, in write order.
fn plan(parent: &Tree, child: &Tree) -> Result<Vec<Item>, ImageError> {
    let parent_at: HashMap<&[u8], usize> = index(parent);
    let child_at: HashMap<&[u8], usize> = index(child);
    let parent_groups = link_groups(parent);
    let child_groups = link_groups(child);

    let mut changed = vec![false; child.nodes.len()];
    for (i, node) in child.nodes.iter().enumerate() {
        changed[i] = match parent_at.get(node.path.as_slice()) {
            None => true,
            Some(&p) => {
                let before = &parent.nodes[p];
                let group_before = parent_groups[p].map(|g| &parent.nodes[g].path);
                let group_after = child_groups[i].map(|g| &child.nodes[g].path);
                group_before != group_after
                    || !same_metadata(before, node)
                    || !same_content(parent, before, child, node)?
            }
        };
    }
    // A hard-link group travels whole, so that every link in the layer points
    // at a file in the same layer.
    let mut changed_groups = vec![false; child.nodes.len()];
    for (i, group) in child_groups.iter().enumerate() {
        if let Some(g) = group {
            changed_groups[*g] |= changed[i];
        }
    }
    for (i, group) in child_groups.iter().enumerate() {
        if let Some(g) = group {
            changed[i] |= changed_groups[*g];
        }
    }

    let mut items: Vec<Item> = (0..child.nodes.len())
        .filter(|&i| changed[i])
        .map(Item::Node)
        .collect();

    // Removed entries whose directory is still a directory in the child;
    // the others vanish with their removed or replaced ancestor.
    let is_child_dir = |dir: &[u8]| {
        dir.is_empty()
            || child_at
                .get(dir)
                .is_some_and(|&i| child.nodes[i].kind == Kind::Dir)
    };
    let mut entries_in: HashMap<&[u8], usize> = HashMap::new();
    let mut removed_in: HashMap<&[u8], Vec<&[u8]>> = HashMap::new();
    for node in &parent.nodes {
        let (dir, name) = split(&node.path);
        *entries_in.entry(dir).or_default() += 1;
        if !child_at.contains_key(node.path.as_slice()) && is_child_dir(dir) {
            removed_in.entry(dir).or_default().push(name);
        }
    }
    for (dir, names) in removed_in {
        if names.len() == entries_in[dir] {
            items.push(Item::Opaque { dir: dir.to_vec() });
        } else {
            items.extend(names.into_iter().map(|name| Item::Whiteout {
                dir: dir.to_vec(),
                name: name.to_vec(),
            }));
        }
    }
    items.sort_by_cached_key(|item| item.key(child));
    Ok(items)
}

fn index(tree: &Tree) -> HashMap<&[u8], usize> {
    tree.nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.path.as_slice(), i))
        .collect()
}

/// For each entry in a hard-link group of two or more paths, the index of
/// the group's first path; `None` for entries not hard linked in the tree.
fn link_groups(tree: &Tree) -> Vec<Option<usize>> {
    let links = tree.hard_links(|_| true);
    let mut grouped = vec![false; links.len()];
    for (i, link) in links.iter().enumerate() {
        if let Some(j) = link {
            grouped[i] = true;
            grouped[*j] = true;
        }
    }
    (0..links.len())
        .map(|i| grouped[i].then(|| links[i].unwrap_or(i)))
        .collect()
}

fn same_metadata(a: &Node, b: &Node) -> bool {
    a.kind == b.kind && a.mode == b.mode && a.uid == b.uid && a.gid == b.gid && a.xattrs == b.xattrs
}

/// Whether two regular files of equal size hold the same bytes. The same
/// inode (a child tree made from its parent by hard links or in place) is
/// the same content without reading it.
fn same_content(parent: &Tree, a: &Node, child: &Tree, b: &Node) -> Result<bool, ImageError> {
    let Kind::File { size } = a.kind else {
        return Ok(true);
    };
    if size == 0 || (a.dev, a.ino) == (b.dev, b.ino) {
        return Ok(true);
    }
    let (pa, pb) = (parent.full_path(a), child.full_path(b));
    let mut fa = fs_err::File::open(&pa)?;
    let mut fb = fs_err::File::open(&pb)?;
    let mut ba = vec![0u8; 64 * 1024];
    let mut bb = vec![0u8; 64 * 1024];
    loop {
        let na = fill(&mut fa, &mut ba)?;
        let nb = fill(&mut fb, &mut bb)?;
        if na != nb || ba[..na] != bb[..nb] {
            return Ok(false);
        }
        if na < ba.len() {
            return Ok(true);
        }
    }
}

/// Reads until `buf` is full or the file ends.
fn fill(file: &mut fs_err::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

fn whiteout(tar: &mut TarWriter<'_>, name: &[u8], opts: &TarOptions) -> Result<(), ImageError> {
    tar.header(&Header {
        name,
        flag: TypeFlag::File,
        mode: 0o644,
        uid: 0,
        gid: 0,
        mtime: opts.source_date_epoch,
        size: 0,
        linkname: &[],
        device: (0, 0),
        xattrs: &[],
    })
    .map_err(ImageError::Output)
}
