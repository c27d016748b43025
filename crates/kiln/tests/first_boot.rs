//! The first hour and the first boot, as a new user meets them: `kiln init`
//! gives a definition that locks, builds, boots and passes as written; a
//! trixie image with openssh-server and only `systemd-boot` said about
//! booting answers on port 22, and each machine made from one disk has its
//! own host keys and machine id. Real archive, real QEMU (TCG).

mod common;

use std::path::Path;

use common::{Run, kiln, write};

/// kiln with a catalog beside the definition's directory, booting under TCG.
fn run(dir: &Path, args: &[&str]) -> Run {
    let catalog = dir.with_file_name("catalog.sqlite");
    let catalog = catalog.to_str().unwrap();
    kiln(args, &[("KILN_CATALOG", catalog), ("KILN_ACCEL", "tcg")])
}

fn ok(r: Run, what: &str) -> Run {
    assert_eq!(r.code, 0, "{what}:\n{}\n{}", r.stdout, r.stderr);
    r
}

fn json(r: &Run) -> serde_json::Value {
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}", r.stdout))
}

#[test]
fn vm_net_root_kiln_init_locks_builds_and_passes_its_checks_as_written() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("app");
    let d = dir.to_str().unwrap();
    ok(run(&dir, &["init", d]), "kiln init");
    ok(run(&dir, &["lock", d]), "kiln lock");
    let lock: toml::Table =
        toml::from_str(&std::fs::read_to_string(dir.join("kiln.lock")).unwrap()).unwrap();
    let reason = |name: &str| {
        lock["package"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"].as_str() == Some(name))
            .and_then(|p| p["reason"].as_str())
            .map(str::to_owned)
    };
    assert_eq!(reason("systemd-boot").as_deref(), Some("disk"));
    assert_eq!(reason("systemd-sysv").as_deref(), Some("disk"));
    let built = json(&ok(run(&dir, &["build", d, "--json"]), "kiln build"));

    // out/ holds what ships, and kiln's records in one hidden directory.
    let mut shipped: Vec<String> = built["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["path"].as_str().unwrap().to_owned())
        .chain(["sbom", "provenance"].map(|k| built[k].as_str().unwrap().to_owned()))
        .map(|p| {
            Path::new(&p)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    shipped.push(".kiln".into());
    shipped.sort();
    let mut listed: Vec<String> = std::fs::read_dir(dir.join("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    listed.sort();
    assert_eq!(listed, shipped);

    // A check of a unit the image lacks is refused before anything boots.
    let text = std::fs::read_to_string(dir.join("kiln.toml")).unwrap();
    write(
        &dir.join("kiln.toml"),
        &format!("{text}\n[[check]]\nunit = \"multi-usr.target\"\n"),
    );
    let r = run(&dir, &["test", d]);
    r.assert_exit(1, &["no such unit", "did you mean `multi-user.target`"]);
    write(&dir.join("kiln.toml"), &text);

    let r = ok(
        run(&dir, &["test", d, "--json", "--timeout", "600"]),
        "kiln test",
    );
    let v = json(&r);
    assert_eq!(v["passed"], true, "{}", r.stdout);
}

/// What a check printed on the first boot of a `kiln test --json`.
fn output_of(report: &serde_json::Value, check: &str) -> String {
    common::item(&report["report"]["runs"][0], "checks", "name", check)["output"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn vm_net_root_trixie_sshd_answers_and_every_machine_has_its_own_identity() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("sshd");
    write(
        &dir.join("kiln.toml"),
        r#"[image]
name = "sshd"
version = "1.0.0"

[base]
distro = "debian"
suite = "trixie"
variant = "minbase"

[packages]
install = ["openssh-server", "systemd-boot"]

[disk]
kernel = "linux-image-amd64"

[outputs]
formats = ["qcow2"]

[[check]]
port = 22

[[check]]
unit = "ssh.service"

[[check]]
name = "identity"
run = "cat /etc/machine-id /etc/ssh/ssh_host_ed25519_key.pub"
"#,
    );
    let d = dir.to_str().unwrap();
    ok(run(&dir, &["lock", d]), "kiln lock");
    ok(run(&dir, &["build", d]), "kiln build");
    // Two machines from one disk: each boot has its own overlay.
    let first = json(&ok(
        run(&dir, &["test", d, "--json", "--timeout", "600"]),
        "first boot",
    ));
    let second = json(&ok(
        run(&dir, &["test", d, "--json", "--timeout", "600"]),
        "second boot",
    ));
    let (a, b) = (
        output_of(&first, "identity"),
        output_of(&second, "identity"),
    );
    let lines = |s: &str| s.lines().map(str::to_owned).collect::<Vec<_>>();
    let (a, b) = (lines(&a), lines(&b));
    assert_eq!(a.len(), 2, "machine id and host key: {a:?}");
    assert!(
        a[0].len() == 32 && a[0].chars().all(|c| c.is_ascii_hexdigit()),
        "{a:?}"
    );
    assert!(a[1].starts_with("ssh-ed25519 "), "{a:?}");
    assert_ne!(a[0], b[0], "each machine makes its own machine id");
    assert_ne!(a[1], b[1], "each machine makes its own host key");
}

/// A unit to enable that nothing provides is the definition's mistake
/// (exit 1), named with the unit that exists, before `systemctl` runs.
#[test]
fn net_root_enabling_a_unit_no_package_provides_is_refused_with_the_closest() {
    let ex = common::examples();
    let web = ex.path().join("web");
    let text = std::fs::read_to_string(web.join("kiln.toml")).unwrap();
    let text = text.replace(
        "enable = [\"nginx.service\"]",
        "enable = [\"ngnix.service\"]",
    );
    write(&web.join("kiln.toml"), &text);
    let r = run(&web, &["build", web.to_str().unwrap(), "--format", "tar"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("[services].enable: no unit `ngnix.service` in the image")
            && r.stderr.contains("hint: did you mean `nginx.service`?"),
        "{}",
        r.stderr
    );
}
