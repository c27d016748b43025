//! `[base].architecture`: a value the definition holds and passes down,
//! refused by `kiln build` where kiln cannot run what it would build.

mod common;

use common::{kiln_with_store, write};

#[test]
fn an_arm64_image_is_refused_by_build_before_any_work() {
    let root = tempfile::tempdir().unwrap();
    let store = tempfile::tempdir().unwrap();
    let dir = root.path().join("arm");
    write(
        &dir.join("kiln.toml"),
        "[image]\nname = \"arm\"\nversion = \"1\"\n[base]\ndistro = \"debian\"\nsuite = \"bookworm\"\narchitecture = \"arm64\"\n",
    );
    let r = kiln_with_store(&["build", dir.to_str().unwrap()], &[], store.path());
    assert_eq!(r.code, 1, "a user error: {}", r.stderr);
    assert!(r.stderr.contains("arm64 is not built yet"), "{}", r.stderr);
    assert!(r.stderr.contains("hint:"), "{}", r.stderr);
    assert!(
        std::fs::read_dir(store.path()).unwrap().next().is_none(),
        "nothing made in the store"
    );

    // An architecture kiln does not know is the definition's error.
    write(
        &dir.join("kiln.toml"),
        "[image]\nname = \"arm\"\nversion = \"1\"\n[base]\ndistro = \"debian\"\nsuite = \"bookworm\"\narchitecture = \"aarch64\"\n",
    );
    let r = kiln_with_store(&["build", dir.to_str().unwrap()], &[], store.path());
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("did you mean `arm64`?"), "{}", r.stderr);
}
