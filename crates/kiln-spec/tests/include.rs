//! `include`: fragments merged into definitions, their errors as a user
//! reads them, and their digests in the lock inputs.

mod common;

use std::path::Path;

use common::{render, snapshot, write};
use kiln_spec::{CheckKind, ErrorKind, RunStep};

const SSH: &str = r#"[packages]
install = ["openssh-server", "curl"]

[[files]]
src = "files/sshd_config"
dst = "/etc/ssh/sshd_config"
mode = "0600"

[[users]]
name = "ops"

[[run]]
script = "scripts/keys.sh"

[services]
enable = ["ssh.service"]

[runtime]
env_file = "/etc/default/app"
required = ["OPS_KEY"]

[[check]]
unit = "ssh.service"
"#;

const WEB: &str = r#"include = ["../fragments/ssh.toml"]

[image]
name = "web"
version = "1.0.0"

[base]
distro = "debian"
suite = "bookworm"

[packages]
install = ["nginx-light", "curl"]

[[files]]
src = "files/site.conf"
dst = "/etc/nginx/sites-enabled/default"

[[run]]
command = "true"

[runtime]
env_file = "/etc/default/app"
required = ["DATABASE_URL"]

[[check]]
port = 80
"#;

/// `fragments/ssh.toml` (with `ssh`) and `web/kiln.toml` (with `web`), and
/// the files both name.
fn tree(ssh: &str, web: &str) -> tempfile::TempDir {
    let root = tempfile::tempdir().expect("temp dir");
    write(root.path(), "fragments/ssh.toml", ssh);
    write(root.path(), "fragments/files/sshd_config", "Port 22\n");
    write(root.path(), "fragments/scripts/keys.sh", "#!/bin/sh\n");
    write(root.path(), "web/kiln.toml", web);
    write(root.path(), "web/files/site.conf", "server {}\n");
    root
}

fn load(root: &Path) -> Result<kiln_spec::Definition, kiln_spec::SpecError> {
    kiln_spec::load(&root.join("web"))
}

fn error(ssh: &str, web: &str) -> String {
    let root = tree(ssh, web);
    match load(root.path()) {
        Ok(def) => panic!("expected an error, got {def:#?}"),
        Err(e) => render(&e),
    }
}

#[test]
fn fragments_come_first_then_the_definition_and_paths_follow_the_fragment() {
    let root = tree(SSH, WEB);
    let def = load(root.path()).unwrap_or_else(|e| panic!("{}", render(&e)));
    let names: Vec<String> = def.packages.install.iter().map(|p| p.to_string()).collect();
    // `curl` is asked for twice and kept once, where it was first asked for.
    assert_eq!(names, ["openssh-server", "curl", "nginx-light"]);
    let dsts: Vec<&str> = def.files.iter().map(|f| f.dst.as_str()).collect();
    assert_eq!(
        dsts,
        ["/etc/ssh/sshd_config", "/etc/nginx/sites-enabled/default"]
    );
    assert_eq!(
        def.files[0].src.path,
        root.path().join("web/../fragments/files/sshd_config")
    );
    assert_eq!(def.files[0].mode, 0o600);
    assert_eq!(def.users[0].name, "ops");
    match &def.run[0].step {
        RunStep::Script(p) => {
            assert_eq!(p.path, root.path().join("web/../fragments/scripts/keys.sh"))
        }
        other => panic!("expected the fragment's script first, got {other:?}"),
    }
    assert_eq!(def.run[1].step, RunStep::Command("true".into()));
    assert_eq!(def.services.enable, ["ssh.service"]);
    assert_eq!(def.runtime.env_file.as_deref(), Some("/etc/default/app"));
    assert_eq!(def.runtime.required, ["OPS_KEY", "DATABASE_URL"]);
    assert!(matches!(def.checks[0].kind, CheckKind::Unit { .. }));
    assert!(matches!(def.checks[1].kind, CheckKind::Port { port: 80 }));
    assert_eq!(def.includes.len(), 1);
    assert_eq!(def.includes[0].path.written, "../fragments/ssh.toml");
    assert!(def.includes[0].digest.starts_with("sha256:"));
}

#[test]
fn editing_a_fragment_changes_the_lock_inputs_of_its_includer_only() {
    let root = tree(SSH, WEB);
    write(
        root.path(),
        "other/kiln.toml",
        &WEB.replace("include = [\"../fragments/ssh.toml\"]\n", "")
            .replace("name = \"web\"", "name = \"other\""),
    );
    write(root.path(), "other/files/site.conf", "server {}\n");
    let sums = || {
        let web = load(root.path()).expect("web").lock_inputs().checksum();
        let other = kiln_spec::load(&root.path().join("other"))
            .expect("other")
            .lock_inputs()
            .checksum();
        (web, other)
    };
    let before = sums();
    // A comment changes no section, but the fragment's bytes: stale all the same.
    write(
        root.path(),
        "fragments/ssh.toml",
        &format!("# edited\n{SSH}"),
    );
    let after = sums();
    assert_ne!(after.0, before.0, "the includer's lock inputs must change");
    assert_eq!(after.1, before.1, "an image without the fragment must not");
}

#[test]
fn a_definition_without_include_keeps_its_checksum_shape() {
    let root = tree(SSH, WEB);
    let def = load(root.path()).expect("valid");
    let inputs = toml::Table::try_from(def.lock_inputs()).expect("toml");
    let fragments = inputs["fragments"].as_array().expect("fragments listed");
    assert_eq!(fragments.len(), 1);
    let plain = common::parse(common::MINIMAL).expect("valid");
    let inputs = toml::Table::try_from(plain.lock_inputs()).expect("toml");
    assert!(!inputs.contains_key("fragments"));
}

#[test]
fn the_same_dst_twice_names_both_places() {
    let web = WEB.replace("/etc/nginx/sites-enabled/default", "/etc/ssh/sshd_config");
    let e = error(SSH, &web);
    snapshot("include_dst_twice", &e);
}

#[test]
fn a_package_pinned_differently_names_both_places() {
    let web = WEB.replace(
        "\"nginx-light\", \"curl\"",
        "\"nginx-light\", \"curl=1.0-1\"",
    );
    snapshot("include_pin_conflict", &error(SSH, &web));
}

#[test]
fn a_unit_enabled_and_disabled_across_files_names_both() {
    let web = format!("{WEB}\n[services]\ndisable = [\"ssh.service\"]\n");
    snapshot("include_unit_conflict", &error(SSH, &web));
}

#[test]
fn a_fragment_is_validated_with_its_own_file_and_line() {
    let ssh = SSH.replace("install = [", "instal = [");
    snapshot("include_unknown_field", &error(&ssh, WEB));
}

#[test]
fn a_fragment_src_is_relative_to_the_fragment() {
    let ssh = SSH.replace("files/sshd_config", "files/sshd_conf");
    snapshot("include_missing_src", &error(&ssh, WEB));
}

#[test]
fn a_fragment_cannot_say_what_the_image_is() {
    let ssh = format!("[disk]\nsize = \"4G\"\n\n{SSH}");
    snapshot("include_image_section", &error(&ssh, WEB));
}

#[test]
fn a_missing_fragment_suggests_a_neighbour() {
    let web = WEB.replace("ssh.toml", "sshd.toml");
    snapshot("include_missing", &error(SSH, &web));
}

#[test]
fn include_must_be_a_list() {
    let web = WEB.replace("[\"../fragments/ssh.toml\"]", "\"../fragments/ssh.toml\"");
    let root = tree(SSH, &web);
    let e = load(root.path()).expect_err("a string is not a list");
    assert_eq!(e.kind(), Some(ErrorKind::WrongType));
}

#[test]
fn a_fragment_cannot_include_another() {
    let ssh = format!("include = [\"other.toml\"]\n{SSH}");
    let root = tree(&ssh, WEB);
    let e = load(root.path()).expect_err("nested include");
    let d = e.diagnostic().expect("located");
    assert!(d.file.ends_with("fragments/ssh.toml"), "{}", render(&e));
    assert_eq!(d.location.map(|l| l.line), Some(1));
}
