//! `kiln rebuild` as a rollout, against the real archive and real QEMU
//! (TCG). One graph, three runs, three boots:
//!
//!   base (no disk) ─┬─ bad  (disk, a check made to fail) ── after-bad
//!                   └─ good (disk, a passing check)      ── after-good
//!
//! 1. `--canary 1`: bad is wave 2's canary; it fails, so good is not built
//!    and the report says why.
//! 2. Without a canary: bad fails again, good passes and is promoted, then
//!    the run is killed (SIGKILL) while wave 3 builds after-good.
//! 3. The same command again continues that rollout: nothing already built
//!    is built again, nothing already tested is booted again, and it ends
//!    with after-good built and promoted and after-bad skipped.

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Stdio;

use common::{examples, kiln, write};

fn child(name: &str, from: &str, formats: &str, check: &str) -> String {
    format!(
        "[image]\nname = \"{name}\"\nversion = \"1\"\n\n[base]\nfrom = \"{from}\"\n\n[outputs]\nformats = [{formats}]\n{check}"
    )
}

fn json(run: &common::Run) -> serde_json::Value {
    serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", run.stdout, run.stderr))
}

/// The report's (or rollout's) entry for image `n`.
fn outcome(v: &serde_json::Value, n: &str) -> serde_json::Value {
    common::item(v, "images", "name", n).clone()
}

/// Image names running in `env`, sorted, as `kiln where` says.
fn running(catalog: &str, env: &str) -> Vec<String> {
    let run = kiln(&["where", "--json", "--catalog", catalog], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let mut names: Vec<String> = json(&run)
        .as_array()
        .expect("deployments")
        .iter()
        .filter(|d| d["env"] == env)
        .map(|d| d["name"].as_str().expect("name").to_owned())
        .collect();
    names.sort();
    names
}

/// Every build of image `n` in the catalog, each with its number of tests.
fn builds(catalog: &str, n: &str) -> Vec<(String, usize)> {
    let run = kiln(
        &["images", "--name", n, "--json", "--catalog", catalog],
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    json(&run)
        .as_array()
        .expect("builds")
        .iter()
        .map(|b| {
            let id = b["id"].as_str().expect("id").to_owned();
            let show = kiln(&["show", &id, "--json", "--catalog", catalog], &[]);
            assert_eq!(show.code, 0, "{}", show.stderr);
            let tests = json(&show)["tests"].as_array().expect("tests").len();
            (id, tests)
        })
        .collect()
}

fn rollout(catalog: &str, id: i64) -> serde_json::Value {
    let run = kiln(
        &["rollouts", &id.to_string(), "--json", "--catalog", catalog],
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    json(&run)
}

/// Runs `kiln ARGS` and SIGKILLs it (and the tools it started) as soon as
/// its progress prints `line`; gives what it printed until then.
fn kill_at(args: &[&str], line: &str) -> String {
    let mut child = common::kiln_command(args, &[("KILN_ACCEL", "tcg")], &common::store())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("starting kiln");
    let pid = i32::try_from(child.id()).expect("a pid");
    let mut seen = String::new();
    for l in BufReader::new(child.stderr.take().expect("stderr")).lines() {
        let l = l.expect("a line of progress");
        seen.push_str(&l);
        seen.push('\n');
        if l.contains(line) {
            // SAFETY: kill(2) on the process group the child leads.
            assert_eq!(unsafe { libc::kill(-pid, libc::SIGKILL) }, 0);
            break;
        }
    }
    let status = child.wait().expect("waiting for kiln");
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(libc::SIGKILL),
        "kiln ended before `{line}` ({status}):\n{seen}"
    );
    seen
}

fn setup(r: &Path) {
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
    for n in ["base", "good", "bad", "after-good", "after-bad"] {
        let run = kiln(&["lock", r.join(n).to_str().expect("utf-8")], &[]);
        assert_eq!(run.code, 0, "{n}: {}", run.stderr);
    }
}

#[test]
fn vm_net_root_a_rollout_gates_on_checks_and_canaries_and_a_rerun_after_a_kill_redoes_nothing() {
    let root = examples();
    let r = root.path();
    setup(r);
    let catalog = r.join("catalog.sqlite");
    let catalog = catalog.to_str().expect("utf-8");
    let d = r.to_str().expect("utf-8");
    let tcg = [("KILN_ACCEL", "tcg")];
    let rebuild = [
        "rebuild",
        d,
        "base",
        "--max-parallel",
        "1",
        "--promote",
        "staging",
        "--catalog",
        catalog,
    ];

    // 1. A failing canary stops the rest of its wave.
    let mut args = rebuild.to_vec();
    args.extend(["--canary", "1", "--json"]);
    let run = kiln(&args, &tcg);
    assert_eq!(run.code, 1, "a check failed: {}{}", run.stdout, run.stderr);
    let v = json(&run);
    let first = v["rollout"].as_i64().expect("a rollout");
    assert_eq!(outcome(&v, "base")["status"], "passed", "{v}");
    assert!(
        outcome(&v, "base")["tested"].is_null(),
        "no disk: not booted"
    );
    assert_eq!(outcome(&v, "base")["promoted"], "staging", "{v}");
    let bad = outcome(&v, "bad");
    assert_eq!(bad["status"], "failed", "{v}");
    assert_eq!(bad["tested"], "failed", "{v}");
    assert!(bad["promoted"].is_null(), "a failed image is not promoted");
    let why = bad["detail"].as_str().expect("why");
    assert!(why.contains("made to fail"), "{v}");
    assert_eq!(outcome(&v, "good")["status"], "skipped", "{v}");
    assert_eq!(outcome(&v, "good")["detail"], "the canary bad failed");
    assert!(outcome(&v, "good")["build"].is_null(), "not built");
    assert_eq!(
        outcome(&v, "after-good")["detail"],
        "built on good, which was skipped"
    );
    assert_eq!(
        outcome(&v, "after-bad")["detail"],
        "built on bad, which failed"
    );
    let recorded = rollout(catalog, first);
    assert_eq!(recorded["outcome"], "failed", "{recorded}");
    assert_eq!(recorded["trigger"], "images base");
    assert_eq!(
        outcome(&recorded, "good")["detail"],
        "the canary bad failed"
    );
    assert_eq!(running(catalog, "staging"), ["base"]);
    // The environment's history names the rollout that promoted.
    let history = kiln(&["history", "staging", "--json", "--catalog", catalog], &[]);
    assert_eq!(history.code, 0, "{}", history.stderr);
    let note = json(&history)[0]["note"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(note, format!("kiln rebuild, rollout {first}: named"));

    // 2. Killed while wave 3 builds: bad failed again (a new rollout tests
    //    again), good passed and was promoted.
    let seen = kill_at(&rebuild, "after-good: building");
    assert!(seen.contains("bad: FAILED"), "{seen}");
    assert!(seen.contains("good: passed"), "{seen}");
    let list = kiln(&["rollouts", "--json", "--catalog", catalog], &[]);
    let list = json(&list);
    let killed = &list["rollouts"][0];
    let second = killed["id"].as_i64().expect("id");
    assert_ne!(second, first, "the first rollout had finished");
    assert!(killed["finished_at"].is_null(), "{killed}");
    assert!(killed["outcome"].is_null(), "{killed}");
    assert_eq!(outcome(killed, "good")["tested"], "passed", "{killed}");
    assert_eq!(outcome(killed, "good")["promoted"], "staging");
    assert_eq!(outcome(killed, "after-good")["status"], "started");
    let text = kiln(&["rollouts", "--catalog", catalog], &[]);
    assert!(
        text.stdout
            .lines()
            .nth(1)
            .is_some_and(|l| l.contains("unfinished")),
        "{}",
        text.stdout
    );
    assert_eq!(running(catalog, "staging"), ["base", "good"]);
    let good_before = builds(catalog, "good");
    let bad_before = builds(catalog, "bad");
    assert_eq!(good_before.len(), 1, "{good_before:?}");
    assert_eq!(good_before[0].1, 1, "good booted once");
    assert_eq!(bad_before[0].1, 2, "bad booted in each rollout");

    // 3. The rerun continues the killed rollout and redoes nothing.
    let mut args = rebuild.to_vec();
    args.push("--json");
    let run = kiln(&args, &tcg);
    assert_eq!(run.code, 1, "bad still fails: {}{}", run.stdout, run.stderr);
    let v = json(&run);
    assert_eq!(v["rollout"], second, "{v}");
    assert_eq!(v["attempt"], 2, "{v}");
    for n in ["base", "bad", "good"] {
        assert_eq!(outcome(&v, n)["cached"], true, "{n} built already: {v}");
    }
    assert_eq!(
        outcome(&v, "good")["tested"],
        "reused",
        "tested already: {v}"
    );
    assert_eq!(outcome(&v, "good")["status"], "passed");
    assert_eq!(outcome(&v, "bad")["tested"], "failed", "{v}");
    let why = outcome(&v, "bad")["detail"]
        .as_str()
        .expect("why")
        .to_owned();
    assert!(why.contains("made to fail"), "{why}");
    assert!(why.contains("not booted again"), "{why}");
    assert_eq!(outcome(&v, "after-good")["status"], "passed", "{v}");
    assert_eq!(outcome(&v, "after-good")["promoted"], "staging", "{v}");
    assert_eq!(outcome(&v, "after-bad")["status"], "skipped", "{v}");
    assert!(outcome(&v, "after-bad")["build"].is_null());
    assert_eq!(outcome(&v, "good")["wave"], 2);
    assert_eq!(outcome(&v, "after-good")["wave"], 3);
    // The store and the catalog agree: no new build, no new boot.
    assert_eq!(builds(catalog, "good"), good_before);
    assert_eq!(builds(catalog, "bad"), bad_before);
    assert_eq!(builds(catalog, "after-good").len(), 1);
    let done = rollout(catalog, second);
    assert_eq!(done["attempts"], 2, "{done}");
    assert_eq!(done["outcome"], "failed", "{done}");
    assert_eq!(outcome(&done, "after-good")["status"], "passed", "{done}");
    assert_eq!(running(catalog, "staging"), ["after-good", "base", "good"]);
}
