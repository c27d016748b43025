//! `Graph::discover` on real directories: the edges written, the waves, and
//! the errors a user sees for a broken fleet.

use std::path::Path;

use kiln_fleet::{EdgeKind, Error, Graph};

fn write(root: &Path, name: &str, text: &str) {
    let path = root.join(name);
    fs_err::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    fs_err::write(&path, text).expect("write");
}

fn base(name: &str) -> String {
    format!(
        "[image]\nname = \"{name}\"\nversion = \"1\"\n\n[base]\ndistro = \"debian\"\nsuite = \"bookworm\"\n"
    )
}

fn child(name: &str, from: &str, include: &[&str]) -> String {
    let include = if include.is_empty() {
        String::new()
    } else {
        let list: Vec<String> = include.iter().map(|i| format!("\"{i}\"")).collect();
        format!("include = [{}]\n\n", list.join(", "))
    };
    format!("{include}[image]\nname = \"{name}\"\nversion = \"1\"\n\n[base]\nfrom = \"{from}\"\n")
}

/// base <- web <- shop, base <- api; web and api include fragments/ssh.toml.
fn fleet() -> tempfile::TempDir {
    let root = tempfile::tempdir().expect("tmp");
    let r = root.path();
    write(r, "base/kiln.toml", &base("base"));
    write(
        r,
        "web/kiln.toml",
        &child("web", "../base", &["../fragments/ssh.toml"]),
    );
    write(
        r,
        "api/kiln.toml",
        &child("api", "../base", &["../fragments/ssh.toml"]),
    );
    write(r, "shop/kiln.toml", &child("shop", "../web", &[]));
    write(
        r,
        "fragments/ssh.toml",
        "[packages]\ninstall = [\"openssh-server\"]\n",
    );
    // Not part of the fleet: build outputs, hidden and ignored directories.
    write(r, "web/out/kiln.toml", "not toml at all [");
    write(r, ".git/kiln.toml", "not toml at all [");
    write(r, "target/kiln.toml", "not toml at all [");
    write(r, "attic/old/kiln.toml", "not toml at all [");
    write(r, ".kilnignore", "# old experiments\nattic/old/\n");
    root
}

fn render(e: &Error) -> String {
    match e.hint() {
        Some(hint) => format!("error: {e}\nhint: {hint}"),
        None => format!("error: {e}"),
    }
}

fn snapshot(name: &str, e: &Error) {
    insta::with_settings!({
        filters => vec![(r"(/[^/\s]+)*/\.tmp[A-Za-z0-9_]+", "[TEMP_DIR]")],
    }, {
        insta::assert_snapshot!(name, render(e));
    });
}

/// The error for the fleet with `file` written as `text`: the user's.
fn refused(file: &str, text: &str) -> Error {
    let root = fleet();
    write(root.path(), file, text);
    let e = error(root.path());
    assert_eq!(e.exit_code(), 1, "{}", render(&e));
    e
}

fn error(root: &Path) -> Error {
    match Graph::discover(root) {
        Ok(g) => panic!("expected an error, got {g:#?}"),
        Err(e) => e,
    }
}

#[test]
fn the_edges_are_exactly_those_written() {
    let root = fleet();
    let graph = Graph::discover(root.path()).expect("valid fleet");
    let json = serde_json::to_value(&graph).expect("json");
    let edges: Vec<(String, String, String)> = json["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| {
            let s = |k: &str| e[k].as_str().expect(k).to_owned();
            (s("from"), s("to"), s("kind"))
        })
        .collect();
    let expect = [
        ("api", "base", "from"),
        ("web", "base", "from"),
        ("shop", "web", "from"),
        ("api", "fragments/ssh.toml", "include"),
        ("web", "fragments/ssh.toml", "include"),
    ];
    let expect: Vec<(String, String, String)> = expect
        .iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
        .collect();
    assert_eq!(edges, expect);
    let waves: Vec<Vec<&str>> = graph
        .waves()
        .iter()
        .map(|w| w.iter().map(|i| i.name.as_str()).collect())
        .collect();
    assert_eq!(waves, [vec!["base"], vec!["api", "web"], vec!["shop"]]);
    assert_eq!(graph.fragments.len(), 1);
    assert_eq!(graph.fragments[0].included_by, ["api", "web"]);
    let names: Vec<&str> = graph
        .descendants("web")
        .iter()
        .map(|i| i.name.as_str())
        .collect();
    assert_eq!(names, ["shop"]);
    let names: Vec<&str> = graph
        .descendants("base")
        .iter()
        .map(|i| i.name.as_str())
        .collect();
    assert_eq!(names, ["api", "web", "shop"]);
    assert!(
        graph
            .edges
            .iter()
            .all(|e| e.kind == EdgeKind::From || e.to.ends_with(".toml"))
    );
}

/// A cycle names every file in it; a missing parent, and two images with
/// one name, name both files.
#[test]
fn a_broken_graph_names_the_files_that_break_it() {
    for (name, file, text) in [
        ("cycle", "base/kiln.toml", child("base", "../shop", &[])),
        (
            "missing_parent",
            "shop/kiln.toml",
            child("shop", "../webb", &[]),
        ),
        (
            "duplicate_name",
            "api/kiln.toml",
            child("web", "../base", &[]),
        ),
    ] {
        snapshot(name, &refused(file, &text));
    }
}

#[test]
fn a_parent_outside_the_tree_is_named() {
    let root = fleet();
    write(root.path(), ".kilnignore", "attic/old\nweb\n");
    let e = error(root.path());
    snapshot("parent_ignored", &e);
}

#[test]
fn an_invalid_fragment_is_reported_in_its_file() {
    let e = refused("fragments/ssh.toml", "[packages]\ninstal = []\n");
    assert!(
        render(&e).contains("fragments/ssh.toml:2:1"),
        "{}",
        render(&e)
    );
}

#[test]
fn an_empty_tree_is_an_error() {
    let root = tempfile::tempdir().expect("tmp");
    let e = error(root.path());
    assert!(matches!(e, Error::Empty { .. }));
    assert_eq!(e.exit_code(), 1);
}
