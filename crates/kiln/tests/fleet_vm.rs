//! `kiln rebuild` gating each branch on its boot test, against the real
//! archive and real QEMU (TCG). Two images are booted: one whose check
//! passes and one whose check fails; what is built on the failing one is
//! skipped, what is built on the passing one goes on.

mod common;

use common::{examples, kiln, write};

fn child(name: &str, from: &str, formats: &str, check: &str) -> String {
    format!(
        "[image]\nname = \"{name}\"\nversion = \"1\"\n\n[base]\nfrom = \"{from}\"\n\n[outputs]\nformats = [{formats}]\n{check}"
    )
}

#[test]
fn vm_net_root_a_failing_boot_check_stops_its_own_branch_only() {
    let root = examples();
    let r = root.path();
    std::fs::remove_dir_all(r.join("web")).expect("only the base is kept");
    let passing = "\n[[check]]\npath = \"/etc/os-release\"\ncontains = \"bookworm\"\n";
    // A step of its own, so its root filesystem (and build) differs from good's.
    let failing = "\n[[run]]\ncommand = \"echo bad > /etc/variant\"\n\n[[check]]\nname = \"made to fail\"\nrun = \"test -e /nonexistent\"\n";
    write(
        &r.join("good/kiln.toml"),
        &child("good", "../base", "\"qcow2\"", passing),
    );
    write(
        &r.join("bad/kiln.toml"),
        &child("bad", "../base", "\"qcow2\"", failing),
    );
    write(
        &r.join("after-good/kiln.toml"),
        &child("after-good", "../good", "\"tar\"", ""),
    );
    write(
        &r.join("after-bad/kiln.toml"),
        &child("after-bad", "../bad", "\"tar\"", ""),
    );
    for n in ["good", "bad", "after-good", "after-bad"] {
        let run = kiln(&["lock", r.join(n).to_str().expect("utf-8")], &[]);
        assert_eq!(run.code, 0, "{n}: {}", run.stderr);
    }
    let catalog = r.join("catalog.sqlite");
    let run = kiln(
        &[
            "rebuild",
            r.to_str().expect("utf-8"),
            "base",
            "--json",
            "--catalog",
            catalog.to_str().expect("utf-8"),
        ],
        &[("KILN_ACCEL", "tcg")],
    );
    assert_eq!(run.code, 1, "a check failed: {}{}", run.stdout, run.stderr);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).expect("json");
    let outcome = |n: &str| {
        v["images"]
            .as_array()
            .expect("images")
            .iter()
            .find(|o| o["name"] == n)
            .cloned()
            .unwrap_or_else(|| panic!("{n} in {v}"))
    };
    assert_eq!(outcome("base")["status"], "passed", "{v}");
    assert!(outcome("base")["tested"].is_null(), "no disk: not booted");
    assert_eq!(outcome("good")["status"], "passed", "{v}");
    assert_eq!(outcome("good")["tested"], "passed", "{v}");
    assert_eq!(outcome("bad")["status"], "failed", "{v}");
    assert_eq!(outcome("bad")["tested"], "failed", "{v}");
    assert!(
        outcome("bad")["detail"]
            .as_str()
            .expect("why")
            .contains("made to fail"),
        "{v}"
    );
    assert_eq!(outcome("after-good")["status"], "passed", "{v}");
    assert_eq!(outcome("after-bad")["status"], "skipped", "{v}");
    assert_eq!(outcome("after-bad")["detail"], "built on bad, which failed");
    assert!(
        outcome("after-bad")["build"].is_null(),
        "nothing built on a failed image"
    );
    // Each branch waited for its parent's verdict: the waves say so.
    assert_eq!(outcome("good")["wave"], 2);
    assert_eq!(outcome("after-good")["wave"], 3);
}
