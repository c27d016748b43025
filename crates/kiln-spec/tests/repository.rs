//! `[[repository]]` and `[packages] local`: what is accepted, what the
//! errors say, and that both are lock inputs.

mod common;

use common::{MINIMAL, project, render, snapshot, write};

const REPO: &str = r#"
[[repository]]
uri = "http://127.0.0.1:8080/debian/"
suite = "stable"
signed-by = "keys/vendor.asc"
pin = ["app"]

[packages]
install = ["app"]
local = ["dist/tool_1.0_amd64.deb"]
"#;

const FILES: &[&str] = &["keys/vendor.asc", "dist/tool_1.0_amd64.deb"];

fn load(text: &str) -> Result<kiln_spec::Definition, String> {
    let dir = project(&format!("{MINIMAL}{text}"), FILES);
    kiln_spec::load(dir.path()).map_err(|e| render(&e))
}

fn error_for(from: &str, to: &str) -> String {
    assert!(REPO.contains(from), "{from:?} is not in the example");
    match load(&REPO.replacen(from, to, 1)) {
        Ok(_) => panic!("expected an error for {to:?}"),
        Err(e) => e,
    }
}

#[test]
fn a_repository_and_a_local_package_are_read_with_their_defaults() {
    let def = load(REPO).unwrap_or_else(|e| panic!("{e}"));
    let [repo] = def.repositories.as_slice() else {
        panic!("one repository expected: {:?}", def.repositories);
    };
    assert_eq!(repo.name, "stable", "the name defaults to the suite");
    assert_eq!(repo.uri, "http://127.0.0.1:8080/debian");
    assert_eq!(repo.components, ["main"]);
    assert_eq!(repo.pin.as_deref(), Some(&["app".to_owned()][..]));
    assert_eq!(repo.signed_by.written, "keys/vendor.asc");
    let [local] = def.packages.local.as_slice() else {
        panic!("one local package expected");
    };
    assert_eq!(local.file.written, "dist/tool_1.0_amd64.deb");
    assert_eq!(local.size, "#!/bin/sh\n".len() as u64);
    assert!(local.sha256.starts_with("sha256:"));
}

#[test]
fn changing_the_key_or_a_local_package_makes_the_lock_inputs_differ_but_not_the_uri() {
    let dir = project(&format!("{MINIMAL}{REPO}"), FILES);
    let before = kiln_spec::load(dir.path()).unwrap().lock_inputs();
    let table = toml::Table::try_from(&before).unwrap();
    assert!(
        !toml::to_string(&table).unwrap().contains("127.0.0.1"),
        "the lock never records the repository's URI"
    );

    write(dir.path(), "keys/vendor.asc", "another key\n");
    let key = kiln_spec::load(dir.path()).unwrap().lock_inputs();
    assert_ne!(
        key.checksum(),
        before.checksum(),
        "a new key is a new input"
    );
    assert_ne!(key.repositories[0].key, before.repositories[0].key);

    write(dir.path(), "dist/tool_1.0_amd64.deb", "rebuilt\n");
    let deb = kiln_spec::load(dir.path()).unwrap().lock_inputs();
    assert_ne!(deb.local, key.local);
    assert!(deb.local[0].starts_with("dist/tool_1.0_amd64.deb sha256:"));

    // The checksum with REPO's `from` written as `to`.
    let edited = |from: &str, to: &str| {
        let text = format!("{MINIMAL}{}", REPO.replace(from, to));
        write(dir.path(), "kiln.toml", &text);
        kiln_spec::load(dir.path())
            .unwrap()
            .lock_inputs()
            .checksum()
    };
    assert_eq!(
        edited("127.0.0.1:8080", "127.0.0.1:9090"),
        deb.checksum(),
        "another copy of the repository"
    );
    assert_ne!(
        edited("pin = [\"app\"]\n", ""),
        deb.checksum(),
        "the pin decides what may come from it"
    );
}

#[test]
fn a_definition_without_either_keeps_its_checksum() {
    // Existing locks stay fresh: the new inputs are left out when empty.
    let def = common::ok("");
    let json = serde_json::to_string(&def.lock_inputs()).unwrap();
    assert!(
        !json.contains("repository") && !json.contains("local"),
        "{json}"
    );
}

#[test]
fn repository_missing_key() {
    snapshot(
        "repository_missing_key",
        &error_for("signed-by = \"keys/vendor.asc\"\n", ""),
    );
}

#[test]
fn repository_key_not_found() {
    snapshot(
        "repository_key_not_found",
        &error_for("keys/vendor.asc", "keys/vendr.asc"),
    );
}

#[test]
fn repository_bad_uri() {
    snapshot(
        "repository_bad_uri",
        &error_for("http://127.0.0.1:8080/debian/", "ftp://127.0.0.1/debian"),
    );
}

#[test]
fn repository_bad_suite() {
    snapshot(
        "repository_bad_suite",
        &error_for("suite = \"stable\"", "suite = \"../../etc\""),
    );
}

#[test]
fn repository_bad_pin() {
    snapshot(
        "repository_bad_pin",
        &error_for("pin = [\"app\"]", "pin = [\"App\"]"),
    );
}

#[test]
fn repository_unknown_field() {
    snapshot(
        "repository_unknown_field",
        &error_for("suite = \"stable\"", "suite = \"stable\"\nkeyring = \"k\""),
    );
}

#[test]
fn repository_names_collide() {
    let twice = REPO.replacen(
        "[packages]",
        "[[repository]]\nuri = \"http://127.0.0.1:9/x\"\nsuite = \"stable\"\nsigned-by = \"keys/vendor.asc\"\n\n[packages]",
        1,
    );
    snapshot("repository_names_collide", &load(&twice).unwrap_err());
}

#[test]
fn local_not_a_deb() {
    snapshot(
        "local_not_a_deb",
        &error_for("dist/tool_1.0_amd64.deb", "dist/tool_1.0_amd64.tar"),
    );
}

#[test]
fn local_missing() {
    snapshot(
        "local_missing",
        &error_for("dist/tool_1.0_amd64.deb", "dist/tool_1.1_amd64.deb"),
    );
}
