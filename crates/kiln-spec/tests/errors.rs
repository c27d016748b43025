//! What a user sees for each kind of mistake: the message, where, and the hint.
//! Review the snapshots as a user would read them.

mod common;

use common::{project, render, snapshot};

/// The example from DESIGN.md, valid once `files/site.conf` and
/// `scripts/setup.sh` exist beside it.
const WEB: &str = r#"[image]
name = "web"
version = "1.0.0"

[base]
distro = "debian"
suite = "bookworm"
variant = "minbase"

[packages]
install = ["nginx-light", "curl"]

[[files]]
src = "files/site.conf"
dst = "/etc/nginx/sites-enabled/default"
mode = "0644"

[[run]]
script = "scripts/setup.sh"

[disk]
size = "2G"
kernel = "linux-image-cloud-amd64"

[outputs]
formats = ["oci", "tar", "raw", "qcow2"]

[[check]]
unit = "nginx.service"
"#;

/// Renders the error for `WEB` with `from` replaced by `to`, in a real
/// directory so file checks run; temporary paths become `[TEMP_DIR]`.
fn error_for(from: &str, to: &str) -> String {
    assert!(WEB.contains(from), "{from:?} is not in the example");
    let text = WEB.replacen(from, to, 1);
    let dir = project(&text, &["files/site.conf", "scripts/setup.sh"]);
    match kiln_spec::load(dir.path()) {
        Ok(_) => panic!("expected an error for {to:?}"),
        Err(e) => render(&e),
    }
}

#[test]
fn the_example_is_valid() {
    let dir = project(WEB, &["files/site.conf", "scripts/setup.sh"]);
    if let Err(e) = kiln_spec::load(dir.path()) {
        panic!("{}", render(&e));
    }
}

#[test]
fn unknown_field_suggests_the_known_one() {
    snapshot("unknown_field", &error_for("install = [", "instal = ["));
}

#[test]
fn unknown_section_suggests_the_known_one() {
    snapshot("unknown_section", &error_for("[[check]]", "[[checks]]"));
}

#[test]
fn wrong_type_says_what_was_expected() {
    snapshot(
        "wrong_type",
        &error_for(
            "install = [\"nginx-light\", \"curl\"]",
            "install = \"nginx-light\"",
        ),
    );
}

#[test]
fn wrong_type_bool_in_quotes() {
    snapshot(
        "wrong_type_bool",
        &error_for(
            "install = [\"nginx-light\", \"curl\"]",
            "install = []\nrecommends = \"yes\"",
        ),
    );
}

#[test]
fn bad_architecture() {
    snapshot(
        "bad_architecture",
        &error_for(
            "variant = \"minbase\"",
            "variant = \"minbase\"\narchitecture = \"x86_64\"",
        ),
    );
}

#[test]
fn unknown_architecture() {
    snapshot(
        "unknown_architecture",
        &error_for(
            "variant = \"minbase\"",
            "variant = \"minbase\"\narchitecture = \"riscv64\"",
        ),
    );
}

#[test]
fn bad_variant() {
    snapshot(
        "bad_variant",
        &error_for("variant = \"minbase\"", "variant = \"minimal\""),
    );
}

#[test]
fn bad_suite() {
    snapshot(
        "bad_suite",
        &error_for("suite = \"bookworm\"", "suite = \"bookwrom\""),
    );
}

#[test]
fn suite_alias_asks_for_a_codename() {
    snapshot(
        "suite_alias",
        &error_for("suite = \"bookworm\"", "suite = \"stable\""),
    );
}

#[test]
fn both_distro_and_from() {
    snapshot(
        "distro_and_from",
        &error_for(
            "variant = \"minbase\"",
            "variant = \"minbase\"\nfrom = \"../base\"",
        ),
    );
}

#[test]
fn bad_pin() {
    snapshot(
        "bad_pin",
        &error_for("\"curl\"]", "\"curl\", \"openssl==3.0.11-1~deb12u2\"]"),
    );
}

#[test]
fn pin_to_a_word_is_not_a_version() {
    snapshot(
        "bad_pin_version",
        &error_for("\"curl\"]", "\"curl=latest\"]"),
    );
}

#[test]
fn version_range_is_not_a_pin() {
    snapshot("version_range", &error_for("\"curl\"]", "\"curl>=7.88\"]"));
}

#[test]
fn duplicate_package() {
    snapshot(
        "duplicate_package",
        &error_for("\"curl\"]", "\"curl\", \"curl=7.88.1-10+deb12u5\"]"),
    );
}

#[test]
fn bad_mode() {
    snapshot("bad_mode", &error_for("mode = \"0644\"", "mode = \"0964\""));
}

#[test]
fn mode_as_number() {
    snapshot(
        "mode_as_number",
        &error_for("mode = \"0644\"", "mode = 644"),
    );
}

#[test]
fn missing_file_src() {
    snapshot(
        "missing_file_src",
        &error_for("src = \"files/site.conf\"", "src = \"files/site.cnf\""),
    );
}

#[test]
fn unknown_output_format() {
    snapshot(
        "unknown_format",
        &error_for("\"raw\", \"qcow2\"]", "\"raw\", \"qcow\"]"),
    );
}

#[test]
fn disk_without_kernel() {
    snapshot(
        "disk_without_kernel",
        &error_for("kernel = \"linux-image-cloud-amd64\"\n", ""),
    );
}

#[test]
fn bad_disk_size() {
    snapshot(
        "bad_disk_size",
        &error_for("size = \"2G\"", "size = \"2GB\""),
    );
}

#[test]
fn unknown_initramfs_kind() {
    snapshot(
        "unknown_initramfs",
        &error_for(
            "kernel = \"linux-image-cloud-amd64\"\n",
            "kernel = \"linux-image-cloud-amd64\"\ninitramfs = \"tiny\"\n",
        ),
    );
}

#[test]
fn initramfs_without_kernel() {
    snapshot(
        "initramfs_without_kernel",
        &error_for(
            "kernel = \"linux-image-cloud-amd64\"\n",
            "initramfs = \"full\"\n",
        ),
    );
}

#[test]
fn unit_without_suffix() {
    snapshot(
        "unit_without_suffix",
        &error_for("unit = \"nginx.service\"", "unit = \"nginx\""),
    );
}

#[test]
fn missing_section() {
    snapshot(
        "missing_section",
        &error_for(
            "[base]\ndistro = \"debian\"\nsuite = \"bookworm\"\nvariant = \"minbase\"\n",
            "",
        ),
    );
}

#[test]
fn files_as_a_single_section() {
    snapshot("files_single_section", &error_for("[[files]]", "[files]"));
}

#[test]
fn check_with_two_kinds() {
    snapshot(
        "check_two_kinds",
        &error_for(
            "unit = \"nginx.service\"",
            "unit = \"nginx.service\"\nport = 80",
        ),
    );
}

#[test]
fn check_ready_within_that_is_not_a_duration() {
    snapshot(
        "check_ready_within",
        &error_for(
            "unit = \"nginx.service\"",
            "unit = \"nginx.service\"\nready_within = \"10 seconds please\"",
        ),
    );
}

#[test]
fn run_with_neither_script_nor_command() {
    snapshot(
        "run_empty",
        &error_for("script = \"scripts/setup.sh\"\n", ""),
    );
}

#[test]
fn toml_syntax_error() {
    snapshot("syntax", &error_for("name = \"web\"", "name = web"));
}

#[test]
fn missing_definition() {
    let dir = tempfile::tempdir().expect("tmp");
    let e = kiln_spec::load(&dir.path().join("nowhere")).expect_err("missing");
    snapshot("not_found", &render(&e));
}

/// `[[files]]` into what the image normalises or the machine makes itself:
/// each says why the file would be lost and where its contents belong.
#[test]
fn files_into_paths_the_image_does_not_keep() {
    let dst = "dst = \"/etc/nginx/sites-enabled/default\"";
    let cases = [
        ("files_into_run", "/run/nginx/site.conf"),
        ("files_into_var_run", "/var/run/app.pid"),
        ("files_into_tmp", "/tmp/seed"),
        ("files_into_var_tmp", "/var/tmp/cache"),
        ("files_machine_id", "/etc/machine-id"),
        ("files_hostname", "/etc/hostname"),
        ("files_resolv_conf", "/etc/resolv.conf"),
        ("files_ssh_host_key", "/etc/ssh/ssh_host_ed25519_key"),
    ];
    for (name, path) in cases {
        let text = error_for(dst, &format!("dst = \"{path}\""));
        snapshot(name, &text);
    }
}
