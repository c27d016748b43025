//! The lock checksum moves exactly when what the resolver reads moves.

mod common;

use common::{ok, project};
use kiln_spec::{LockBase, LockInputs};

const BASE: &str = r#"
[packages]
install = ["nginx-light=1.22.1-9+deb12u1", "curl"]

[disk]
kernel = "linux-image-cloud-amd64"
"#;

fn checksum(extra: &str) -> String {
    ok(&format!("{BASE}\n{extra}")).lock_inputs().checksum()
}

fn checksum_of(text: &str) -> String {
    common::parse(text).expect("valid").lock_inputs().checksum()
}

/// The checksum of `MINIMAL` plus `BASE`, with `from` replaced by `to`.
fn edited(from: &str, to: &str) -> String {
    checksum_of(&format!("{}{BASE}", common::MINIMAL).replacen(from, to, 1))
}

#[test]
fn checksum_is_sha256_and_stable() {
    let sum = checksum("");
    assert!(sum.starts_with("sha256:"));
    assert_eq!(sum.len(), "sha256:".len() + 64);
    assert_eq!(sum, checksum(""));
}

#[test]
fn golden_checksum() {
    // A changed value here means every existing lock reads as stale: bump
    // `SCHEMA` on purpose, never by accident.
    let inputs = ok(BASE).lock_inputs();
    insta::assert_snapshot!(
        serde_json::to_string_pretty(&inputs).expect("json"),
        @r#"
    {
      "schema": 2,
      "base": {
        "kind": "debian",
        "suite": "bookworm",
        "variant": "minbase",
        "components": [
          "main"
        ],
        "architecture": "amd64",
        "keyring": "/usr/share/keyrings/debian-archive-keyring.gpg"
      },
      "install": [
        "nginx-light=1.22.1-9+deb12u1",
        "curl"
      ],
      "recommends": false,
      "kernel": "linux-image-cloud-amd64",
      "bootloader": "systemd-boot",
      "init": "systemd-sysv"
    }
    "#
    );
    insta::assert_snapshot!(
        inputs.checksum(),
        @"sha256:b52e36d0626a568d99772d69f09c4f3c7adbdec779e8b87370ce0cebab4fe5de"
    );
}

#[test]
fn what_is_installed_changes_the_checksum() {
    let before = edited("", "");
    let edits = [
        ("suite = \"bookworm\"", "suite = \"trixie\""),
        (
            "suite = \"bookworm\"",
            "suite = \"bookworm\"\nvariant = \"standard\"",
        ),
        (
            "suite = \"bookworm\"",
            "suite = \"bookworm\"\ncomponents = [\"main\", \"contrib\"]",
        ),
        (
            "suite = \"bookworm\"",
            "suite = \"bookworm\"\nkeyring = \"keys/debian.gpg\"",
        ),
        (
            "suite = \"bookworm\"",
            "suite = \"bookworm\"\narchitecture = \"arm64\"",
        ),
        ("\"curl\"]", "\"curl\", \"jq\"]"),
        ("\"curl\"]", "\"curl=7.88.1-10+deb12u5\"]"),
        (
            "nginx-light=1.22.1-9+deb12u1",
            "nginx-light=1.22.1-9+deb12u2",
        ),
        ("nginx-light=1.22.1-9+deb12u1", "nginx-light"),
        (
            "[\"nginx-light=1.22.1-9+deb12u1\", \"curl\"]",
            "[\"curl\", \"nginx-light=1.22.1-9+deb12u1\"]",
        ),
        ("install = [", "recommends = true\ninstall = ["),
        ("linux-image-cloud-amd64", "linux-image-amd64"),
        (
            "kernel = \"linux-image-cloud-amd64\"",
            "kernel = \"linux-image-cloud-amd64\"\nbootloader = \"systemd-boot-efi\"",
        ),
        (
            "kernel = \"linux-image-cloud-amd64\"",
            "kernel = \"linux-image-cloud-amd64\"\ninit = \"sysvinit-core\"",
        ),
    ];
    for (from, to) in edits {
        assert_ne!(edited(from, to), before, "{from} -> {to}");
    }
}

#[test]
fn equivalent_spellings_keep_the_checksum() {
    let before = edited("", "");
    let same = [
        (
            "suite = \"bookworm\"",
            "suite = \"bookworm\"\nvariant = \"minbase\"",
        ),
        (
            "suite = \"bookworm\"",
            "suite = \"bookworm\"\nvariant = \"required\"",
        ),
        (
            "suite = \"bookworm\"",
            "suite = \"bookworm\"\ncomponents = [\"main\"]",
        ),
        (
            "suite = \"bookworm\"",
            "suite = \"bookworm\"\narchitecture = \"amd64\"",
        ),
        (
            "suite = \"bookworm\"",
            "suite = \"bookworm\"\nkeyring = \"/usr/share/keyrings/debian-archive-keyring.gpg\"",
        ),
        ("install = [", "recommends = false\ninstall = ["),
        (
            "kernel = \"linux-image-cloud-amd64\"",
            "kernel = \"linux-image-cloud-amd64\"\nbootloader = \"systemd-boot\"\ninit = \"systemd-sysv\"",
        ),
    ];
    for (from, to) in same {
        assert_eq!(edited(from, to), before, "{from} -> {to}");
    }
}

#[test]
fn everything_else_leaves_the_checksum_alone() {
    let dir = project("", &["files/a.conf", "files/b.conf", "scripts/setup.sh"]);
    let path = dir.path().join("kiln.toml");
    let full = format!(
        "{}{BASE}{}",
        common::MINIMAL,
        r#"
[[files]]
src = "files/a.conf"
dst = "/etc/a.conf"

[[users]]
name = "app"
system = true

[[run]]
script = "scripts/setup.sh"

[services]
enable = ["nginx.service"]

[runtime]
env_file = "/etc/default/web"
required = ["DATABASE_URL"]

[outputs]
formats = ["oci", "raw"]

[[check]]
unit = "nginx.service"
"#
    );
    let sum = |text: &str| {
        kiln_spec::parse(text, &path)
            .expect("valid")
            .lock_inputs()
            .checksum()
    };
    let before = sum(&full);
    let edits = [
        ("name = \"web\"", "name = \"api\""),
        ("version = \"1.0.0\"", "version = \"2.0.0\""),
        ("files/a.conf", "files/b.conf"),
        (
            "dst = \"/etc/a.conf\"",
            "dst = \"/etc/a.conf\"\nmode = \"0600\"",
        ),
        ("system = true", "system = false\nuid = 1500"),
        ("script = \"scripts/setup.sh\"", "command = \"true\""),
        ("enable = [\"nginx.service\"]", "enable = []"),
        ("required = [\"DATABASE_URL\"]", "required = []"),
        ("formats = [\"oci\", \"raw\"]", "formats = [\"qcow2\"]"),
        ("[disk]", "[disk]\nsize = \"8G\""),
        ("unit = \"nginx.service\"", "port = 80\ntimeout = 5"),
    ];
    for (from, to) in edits {
        assert!(full.contains(from), "{from}");
        let text = full.replacen(from, to, 1);
        assert_eq!(sum(&text), before, "{from} -> {to}");
    }
}

#[test]
fn a_child_locks_against_its_parent_dir_as_written() {
    let root = tempfile::tempdir().expect("tmp");
    common::write(root.path(), "base/kiln.toml", common::MINIMAL);
    let child = "[image]\nname = \"app\"\nversion = \"1\"\n[base]\nfrom = \"../base\"\n";
    let path = common::write(root.path(), "app/kiln.toml", child);
    let inputs: LockInputs = kiln_spec::parse(child, &path).expect("valid").lock_inputs();
    assert_eq!(
        inputs.base,
        LockBase::From {
            from: "../base".into()
        }
    );
}
