//! `base.from` chains: loaded root first, loops caught.

mod common;

use kiln_spec::{Base, SpecError};

fn child(name: &str, from: &str) -> String {
    format!("[image]\nname = \"{name}\"\nversion = \"1\"\n[base]\nfrom = \"{from}\"\n")
}

#[test]
fn chain_is_root_first() {
    let root = tempfile::tempdir().expect("tmp");
    common::write(root.path(), "base/kiln.toml", common::MINIMAL);
    common::write(
        root.path(),
        "runtime/kiln.toml",
        &child("runtime", "../base"),
    );
    common::write(
        root.path(),
        "apps/web/kiln.toml",
        &child("app", "../../runtime"),
    );
    let chain = kiln_spec::load_chain(&root.path().join("apps/web")).expect("chain");
    let names: Vec<&str> = chain.iter().map(|d| d.image.name.as_str()).collect();
    assert_eq!(names, ["web", "runtime", "app"]);
    assert!(matches!(chain[0].base, Base::Debian(_)));
}

#[test]
fn a_single_definition_is_a_chain_of_one() {
    let dir = common::project(common::MINIMAL, &[]);
    let chain = kiln_spec::load_chain(dir.path()).expect("chain");
    assert_eq!(chain.len(), 1);
}

#[test]
fn loops_are_errors() {
    let root = tempfile::tempdir().expect("tmp");
    common::write(root.path(), "a/kiln.toml", &child("a", "../b"));
    common::write(root.path(), "b/kiln.toml", &child("b", "../a"));
    let e = kiln_spec::load_chain(&root.path().join("a")).expect_err("loop");
    let SpecError::Cycle { chain } = &e else {
        panic!("expected a cycle, got {e}")
    };
    assert_eq!(chain.len(), 3);
    assert_eq!(chain.first(), chain.last());
    assert!(e.hint().is_some());
}

#[test]
fn a_broken_parent_names_the_parents_file() {
    let root = tempfile::tempdir().expect("tmp");
    let bad = common::MINIMAL.replace("bookworm", "bookwrom");
    let parent = common::write(root.path(), "base/kiln.toml", &bad);
    common::write(root.path(), "app/kiln.toml", &child("app", "../base"));
    let e = kiln_spec::load_chain(&root.path().join("app")).expect_err("bad parent");
    let file = &e.diagnostic().expect("diagnostic").file;
    assert_eq!(file.canonicalize().ok(), parent.canonicalize().ok());
}

#[test]
fn missing_definition_says_how_to_make_one() {
    let dir = tempfile::tempdir().expect("tmp");
    let e = kiln_spec::load(dir.path()).expect_err("none");
    assert!(matches!(e, SpecError::NotFound { .. }));
    assert!(e.hint().expect("hint").contains("kiln init"));
}
