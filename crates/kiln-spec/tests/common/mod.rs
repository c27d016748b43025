#![allow(dead_code, reason = "each test binary uses a different part")]

use std::path::{Path, PathBuf};

use kiln_spec::{Definition, SpecError};

/// A definition valid on its own: tests add or replace sections.
pub const MINIMAL: &str = r#"
[image]
name = "web"
version = "1.0.0"

[base]
distro = "debian"
suite = "bookworm"
"#;

/// Parses `text` as if it were `kiln.toml` in the current directory.
pub fn parse(text: &str) -> Result<Definition, SpecError> {
    kiln_spec::parse(text, Path::new("kiln.toml"))
}

/// `MINIMAL` plus `extra`.
pub fn with(extra: &str) -> Result<Definition, SpecError> {
    parse(&format!("{MINIMAL}\n{extra}"))
}

pub fn ok(extra: &str) -> Definition {
    match with(extra) {
        Ok(def) => def,
        Err(e) => panic!("expected a valid definition, got:\n{}", render(&e)),
    }
}

pub fn err(extra: &str) -> SpecError {
    match with(extra) {
        Ok(def) => panic!("expected an error, got {def:#?}"),
        Err(e) => e,
    }
}

/// What the CLI prints.
pub fn render(e: &SpecError) -> String {
    match e.hint() {
        Some(hint) => format!("error: {e}\nhint: {hint}"),
        None => format!("error: {e}"),
    }
}

/// A directory holding `kiln.toml` with `text` and the given extra files.
pub fn project(text: &str, files: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    write(dir.path(), "kiln.toml", text);
    for file in files {
        write(dir.path(), file, "#!/bin/sh\n");
    }
    dir
}

pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        fs_err::create_dir_all(parent).expect("create dir");
    }
    fs_err::write(&path, text).expect("write file");
    path
}

/// Snapshots `value` as `tests/snapshots/NAME.snap`, temporary paths as
/// `[TEMP_DIR]`.
pub fn snapshot(name: &str, value: &str) {
    insta::with_settings!({
        filters => vec![(r"(/[^/\s]+)*/\.tmp[A-Za-z0-9_]+", "[TEMP_DIR]")],
        prepend_module_to_snapshot => false,
        snapshot_path => "../snapshots",
    }, {
        insta::assert_snapshot!(name, value);
    });
}
