//! `[base].architecture`: a value the definition holds and passes down,
//! refused by `kiln build` where kiln cannot run what it would build.

mod common;

use std::path::Path;

use common::{Run, kiln_with_store, write};

/// `kiln build` of a one-image definition for `arch`, in `dir`.
fn build(dir: &Path, arch: &str, store: &Path) -> Run {
    write(
        &dir.join("kiln.toml"),
        &format!(
            "[image]\nname = \"arm\"\nversion = \"1\"\n[base]\ndistro = \"debian\"\n\
             suite = \"bookworm\"\narchitecture = \"{arch}\"\n"
        ),
    );
    kiln_with_store(&["build", dir.to_str().unwrap()], &[], store)
}

#[test]
fn an_arm64_image_is_refused_by_build_before_any_work() {
    let root = tempfile::tempdir().unwrap();
    let store = tempfile::tempdir().unwrap();
    let r = build(root.path(), "arm64", store.path());
    assert_eq!(r.code, 1, "a user error: {}", r.stderr);
    assert!(r.stderr.contains("arm64 is not built yet"), "{}", r.stderr);
    assert!(r.stderr.contains("hint:"), "{}", r.stderr);
    assert!(
        std::fs::read_dir(store.path()).unwrap().next().is_none(),
        "nothing made in the store"
    );

    // An architecture kiln does not know is the definition's error.
    let r = build(root.path(), "aarch64", store.path());
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("did you mean `arm64`?"), "{}", r.stderr);
}
