//! The fleet commands through the real binary: `kiln graph` on a tree of
//! four images and a shared fragment, and the fragment's edit making
//! exactly its includers' locks stale (against a signed archive built here).

mod common;
mod fleet_common;
#[allow(dead_code)]
#[path = "../../kiln-catalog/tests/catalog/pg.rs"]
mod pg;

use std::path::Path;

use common::{Archive, kiln_at, stanza, write};
use fleet_common::waves;

fn archive() -> Archive {
    Archive::new(&archive_text(), "", "")
}

fn archive_text() -> String {
    [
        stanza("base-files", "12.4", "Essential: yes\nPriority: required\n"),
        stanza("libc6", "2.36-9", "Priority: optional\n"),
        stanza(
            "dpkg",
            "1.21.22",
            "Essential: yes\nPriority: required\nPre-Depends: libc6\n",
        ),
        stanza("apt", "2.6.1", "Priority: required\nDepends: libc6\n"),
        stanza("openssh-server", "1:9.2p1-2", "Depends: libc6\n"),
        stanza("curl", "7.88.1-10", "Depends: libc6\n"),
        stanza("nginx-light", "1.22.1-9", "Depends: libc6\n"),
    ]
    .concat()
}

fn child(name: &str, from: &str, include: &str, install: &str) -> String {
    format!(
        "{include}[image]\nname = \"{name}\"\nversion = \"1\"\n\n[base]\nfrom = \"{from}\"\n\n[packages]\ninstall = [{install}]\n"
    )
}

/// base <- web <- shop, base <- api; web and api include fragments/ssh.toml.
fn fleet(root: &Path, archive: &Archive) {
    write(
        &root.join("base/kiln.toml"),
        &archive
            .definition("minbase", &[])
            .replace("name = \"t\"", "name = \"base\""),
    );
    let ssh = "include = [\"../fragments/ssh.toml\"]\n\n";
    write(
        &root.join("web/kiln.toml"),
        &child("web", "../base", ssh, "\"nginx-light\""),
    );
    write(
        &root.join("api/kiln.toml"),
        &child("api", "../base", ssh, ""),
    );
    write(
        &root.join("shop/kiln.toml"),
        &child("shop", "../web", "", "\"curl\""),
    );
    write(
        &root.join("fragments/ssh.toml"),
        "[packages]\ninstall = [\"openssh-server\"]\n",
    );
}

#[test]
fn graph_prints_the_tree_the_json_and_the_dot() {
    let (archive, root, store) = new_fleet(false);
    let d = root.path().to_str().expect("utf-8");
    let text = kiln_at(&archive, &["graph", d], store.path());
    assert_eq!(text.code, 0, "{}", text.stderr);
    insta::assert_snapshot!("graph_text", text.stdout);
    let dot = kiln_at(&archive, &["graph", d, "--dot"], store.path());
    assert_eq!(dot.code, 0, "{}", dot.stderr);
    insta::assert_snapshot!("graph_dot", dot.stdout);
    let json = kiln_at(&archive, &["graph", d, "--json"], store.path());
    assert_eq!(json.code, 0, "{}", json.stderr);
    let v: serde_json::Value = serde_json::from_str(&json.stdout).expect("json");
    let edges: Vec<String> = v["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| format!("{} -{}-> {}", e["from"], e["kind"], e["to"]).replace('"', ""))
        .collect();
    assert_eq!(
        edges,
        [
            "api -from-> base",
            "web -from-> base",
            "shop -from-> web",
            "api -include-> fragments/ssh.toml",
            "web -include-> fragments/ssh.toml",
        ]
    );
}

#[test]
fn graph_refuses_a_cycle_with_exit_1() {
    let archive = archive();
    let root = tempfile::tempdir().expect("tmp");
    fleet(root.path(), &archive);
    write(
        &root.path().join("base/kiln.toml"),
        &child("base", "../shop", "", ""),
    );
    let store = tempfile::tempdir().expect("tmp");
    let run = kiln_at(
        &archive,
        &["graph", root.path().to_str().expect("utf-8")],
        store.path(),
    );
    run.assert_exit(1, &["goes round in a circle", "hint: "]);
}

#[test]
fn editing_a_fragment_makes_exactly_its_includers_stale() {
    let (archive, root, store) = new_fleet(false);
    let dir = |name: &str| root.path().join(name).display().to_string();
    // Parents first: a child pins its parent's lock.
    for name in ["base", "web", "api", "shop"] {
        let run = kiln_at(&archive, &["lock", &dir(name)], store.path());
        assert_eq!(run.code, 0, "{name}: {}", run.stderr);
    }
    let web = std::fs::read_to_string(root.path().join("web/kiln.lock")).expect("web lock");
    assert!(
        web.contains("openssh-server"),
        "the fragment's package is locked:\n{web}"
    );
    let check = |name: &str| kiln_at(&archive, &["lock", "--check", &dir(name)], store.path());
    for name in ["base", "web", "api", "shop"] {
        assert_eq!(check(name).code, 0, "{name} is fresh before the edit");
    }
    write(
        &root.path().join("fragments/ssh.toml"),
        "[packages]\ninstall = [\"openssh-server\"]\n\n[[run]]\ncommand = \"true\"\n",
    );
    // The includers' own locks are stale, and say which input moved.
    for name in ["web", "api"] {
        let run = check(name);
        assert_eq!(run.code, 1, "{name}: {}{}", run.stdout, run.stderr);
        assert!(run.stdout.contains("fragments"), "{name}: {}", run.stdout);
    }
    assert_eq!(check("base").code, 0, "base includes nothing");
    // shop's own lock did not move; it is refused only because it is built
    // on web, which must be relocked first.
    let shop = check("shop");
    shop.assert_exit(1, &["/web is stale"]);
    assert!(
        shop.stdout.is_empty(),
        "no input of shop's own changed: {}",
        shop.stdout
    );
}

/// The archive, the fleet in a temporary directory and a private store;
/// with `locked`, every image locked.
fn new_fleet(locked: bool) -> (Archive, tempfile::TempDir, tempfile::TempDir) {
    let archive = archive();
    let root = tempfile::tempdir().expect("tmp");
    fleet(root.path(), &archive);
    let store = tempfile::tempdir().expect("tmp");
    if locked {
        lock_all(root.path(), &archive, store.path());
    }
    (archive, root, store)
}

/// Locks the four images, parents first.
fn lock_all(root: &Path, archive: &Archive, store: &Path) {
    for name in ["base", "web", "api", "shop"] {
        let dir = root.join(name).display().to_string();
        let run = kiln_at(archive, &["lock", &dir], store);
        assert_eq!(run.code, 0, "{name}: {}", run.stderr);
    }
}

#[test]
fn outdated_names_the_package_its_suite_and_every_descendant() {
    let (archive, root, store) = new_fleet(true);
    let d = root.path().to_str().expect("utf-8");
    let fresh = kiln_at(&archive, &["outdated", d], store.path());
    assert_eq!(fresh.code, 0, "{}{}", fresh.stdout, fresh.stderr);

    move_archive(&archive);

    let run = kiln_at(&archive, &["outdated", d, "--json"], store.path());
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).expect("json");
    let image = |name: &str| common::item(&v, "images", "name", name).clone();
    let base = image("base");
    let own = base["pending"].as_array().expect("pending");
    assert_eq!(own.len(), 1, "{base}");
    assert_eq!(own[0]["name"], "libc6");
    assert_eq!(own[0]["locked"], "2.36-9");
    assert_eq!(own[0]["available"], "2.36-9+deb12u4");
    assert_eq!(own[0]["suite"], "bookworm-security");
    assert_eq!(own[0]["security"], true);
    for name in ["web", "api", "shop"] {
        let i = image(name);
        let inherited = i["inherited"].as_array().expect("inherited");
        assert!(
            inherited
                .iter()
                .any(|p| p["name"] == "libc6" && p["from"] == "base"),
            "{name} inherits libc6 from base: {i}"
        );
    }
    // curl is shop's own, from -updates, and not a security update.
    let shop = image("shop");
    let own = shop["pending"].as_array().expect("pending");
    assert_eq!(own.len(), 1, "{shop}");
    assert_eq!(own[0]["name"], "curl");
    assert_eq!(own[0]["suite"], "bookworm-updates");
    assert_eq!(own[0]["security"], false);
    assert!(image("api")["pending"].as_array().expect("p").is_empty());

    let security_only = kiln_at(
        &archive,
        &["outdated", d, "--security-only", "--json"],
        store.path(),
    );
    assert_eq!(security_only.code, 1);
    let v: serde_json::Value = serde_json::from_str(&security_only.stdout).expect("json");
    let shop = v["images"]
        .as_array()
        .expect("images")
        .iter()
        .find(|i| i["name"] == "shop")
        .cloned();
    assert_eq!(
        shop.expect("shop")["pending"].as_array().map(Vec::len),
        Some(0)
    );

    let text = kiln_at(&archive, &["outdated", d], store.path());
    assert_eq!(text.code, 1);
    insta::assert_snapshot!("outdated_text", text.stdout);
}

/// Moves the archive: libc6 (base's) gets a security update, curl (shop's)
/// a point update.
fn move_archive(archive: &Archive) {
    let security = stanza("libc6", "2.36-9+deb12u4", "Priority: optional\n");
    let updates = stanza("curl", "7.88.1-10+deb12u5", "Depends: libc6\n");
    archive.publish(&archive_text(), &updates, &security);
}

#[test]
fn rebuild_plans_the_outdated_and_everything_built_on_them_in_waves() {
    let (archive, root, store) = new_fleet(true);
    let d = root.path().to_str().expect("utf-8");
    // The JSON plan of `kiln rebuild DIR SELECTION --plan`.
    let plan = |selection: &str| {
        let run = kiln_at(
            &archive,
            &["rebuild", d, selection, "--plan", "--json"],
            store.path(),
        );
        assert_eq!(run.code, 0, "{}", run.stderr);
        serde_json::from_str::<serde_json::Value>(&run.stdout).expect("json")
    };
    let v = plan("--outdated");
    assert!(
        waves(&v).is_empty(),
        "a fresh fleet has nothing to rebuild: {v}"
    );

    move_archive(&archive);
    let v = plan("--outdated");
    assert_eq!(waves(&v), [vec!["base"], vec!["api", "web"], vec!["shop"]]);
    assert_eq!(v["waves"][0][0]["update"], serde_json::json!(["libc6"]));
    assert_eq!(v["waves"][1][0]["reason"], "built on base");
    assert_eq!(v["waves"][2][0]["update"], serde_json::json!(["curl"]));

    let text = kiln_at(
        &archive,
        &["rebuild", d, "--outdated", "--plan"],
        store.path(),
    );
    insta::assert_snapshot!("rebuild_plan", text.stdout);

    assert_eq!(waves(&plan("web")), [vec!["web"], vec!["shop"]]);

    let unknown = kiln_at(&archive, &["rebuild", d, "wbe", "--plan"], store.path());
    assert_eq!(unknown.code, 1, "{}", unknown.stderr);
}

#[test]
fn rebuild_changed_since_follows_fragments_and_descendants() {
    let archive = archive();
    let root = tempfile::tempdir().expect("tmp");
    fleet(root.path(), &archive);
    let git = |args: &[&str]| {
        common::run_tool(
            std::process::Command::new("git")
                .arg("-C")
                .arg(root.path())
                .args(["-c", "user.name=t", "-c", "user.email=t@invalid"])
                .args(args),
        )
    };
    git(&["init", "-q"]);
    git(&["add", "."]);
    git(&["commit", "-q", "-m", "fleet"]);
    write(
        &root.path().join("fragments/ssh.toml"),
        "[packages]\ninstall = [\"openssh-server\", \"curl\"]\n",
    );
    let store = tempfile::tempdir().expect("tmp");
    let d = root.path().to_str().expect("utf-8");
    let run = kiln_at(
        &archive,
        &["rebuild", d, "--changed-since", "HEAD", "--plan", "--json"],
        store.path(),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).expect("json");
    assert_eq!(waves(&v), [vec!["api", "web"], vec!["shop"]]);
    assert_eq!(v["waves"][0][0]["reason"], "changed: fragments/ssh.toml");
    // A new file in one image's directory: that image and its descendants.
    git(&["checkout", "-q", "--", "."]);
    write(&root.path().join("web/notes.txt"), "todo\n");
    let run = kiln_at(
        &archive,
        &["rebuild", d, "--changed-since", "HEAD", "--plan", "--json"],
        store.path(),
    );
    let v: serde_json::Value = serde_json::from_str(&run.stdout).expect("json");
    assert_eq!(waves(&v), [vec!["web"], vec!["shop"]]);
}

#[test]
fn rebuild_relocks_only_the_outdated_package_and_a_failure_stops_its_branch() {
    let dir = tempfile::tempdir().expect("tmp");
    let catalog = dir.path().join("catalog.sqlite");
    relock_and_stop(catalog.to_str().expect("utf-8"));
}

#[test]
fn pg_rebuild_is_one_rollout_in_a_postgresql_catalog() {
    let server = pg::PgServer::start();
    relock_and_stop(&server.database("kiln"));
}

/// `kiln rebuild --outdated` over the fleet, its report, and its rollout
/// as `kiln rollouts` reads it back from `catalog`.
fn relock_and_stop(catalog: &str) {
    let (archive, root, store) = new_fleet(true);
    let packages = |name: &str| {
        let text = std::fs::read_to_string(root.path().join(name).join("kiln.lock")).expect("lock");
        let lock: toml::Table = toml::from_str(&text).expect("toml");
        lock["package"].as_array().expect("packages").clone()
    };
    let before = packages("base");
    move_archive(&archive);
    // The archive here has indices but no package bodies: every build fails
    // after its relock, which shows both the relock and what a failure stops.
    let d = root.path().to_str().expect("utf-8");
    let run = kiln_at(
        &archive,
        &[
            "rebuild",
            d,
            "--outdated",
            "--json",
            "--max-parallel",
            "1",
            "--catalog",
            catalog,
        ],
        store.path(),
    );
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    let after = packages("base");
    assert_eq!(before.len(), after.len());
    for (b, a) in before.iter().zip(&after) {
        if b["name"].as_str() == Some("libc6") {
            assert_eq!(a["version"].as_str(), Some("2.36-9+deb12u4"));
            assert_eq!(a["suite"].as_str(), Some("bookworm-security"));
        } else {
            assert_eq!(a, b, "only libc6 moves");
        }
    }
    let v: serde_json::Value = serde_json::from_str(&run.stdout).expect("json");
    let images = v["images"].as_array().expect("images");
    let status: Vec<(String, String)> = images
        .iter()
        .map(|o| {
            (
                o["name"].as_str().expect("n").into(),
                o["status"].as_str().expect("s").into(),
            )
        })
        .collect();
    let expect: Vec<(String, String)> = [
        ("base", "failed"),
        ("api", "skipped"),
        ("web", "skipped"),
        ("shop", "skipped"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(status, expect, "{v}");
    assert_eq!(images[0]["relocked"][0]["name"], "libc6");
    assert_eq!(images[3]["detail"], "built on web, which was skipped");
    assert_eq!(images[1]["detail"], "built on base, which failed");
    let id = v["rollout"].as_i64().expect("a rollout id");
    assert_eq!(v["attempt"], 1, "{v}");

    let list = kiln_at(
        &archive,
        &["rollouts", "--json", "--catalog", catalog],
        store.path(),
    );
    assert_eq!(list.code, 0, "{}", list.stderr);
    let list: serde_json::Value = serde_json::from_str(&list.stdout).expect("json");
    let rollouts = list["rollouts"].as_array().expect("rollouts");
    assert_eq!(rollouts.len(), 1, "{list}");
    let r = &rollouts[0];
    assert_eq!(r["id"], id);
    assert_eq!(r["trigger"], "--outdated");
    assert_eq!(r["outcome"], "failed");
    assert_eq!(r["attempts"], 1);
    assert!(r["finished_at"].is_i64(), "{r}");
    let options: serde_json::Value =
        serde_json::from_str(r["options"].as_str().expect("options")).expect("json");
    assert_eq!(options["max_parallel"], 1, "{options}");
    let dir = std::fs::canonicalize(root.path()).expect("canonical");
    assert_eq!(r["dir"], dir.to_str().expect("utf-8"));
    // The recorded rows say what the report said, image by image.
    let summary = |list: &serde_json::Value| -> Vec<String> {
        list.as_array()
            .expect("images")
            .iter()
            .map(|i| {
                format!(
                    "{} {} {} {}",
                    i["wave"], i["name"], i["status"], i["detail"]
                )
            })
            .collect()
    };
    assert_eq!(summary(&r["images"]), summary(&v["images"]));

    let text = kiln_at(
        &archive,
        &["rollouts", &id.to_string(), "--catalog", catalog],
        store.path(),
    );
    assert_eq!(text.code, 0, "{}", text.stderr);
    assert!(
        text.stdout
            .contains(&format!("rollout {id}: --outdated in {}", dir.display())),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout
            .contains("wave 2 api skipped  (built on base)\n    built on base, which failed"),
        "{}",
        text.stdout
    );
    let missing = kiln_at(
        &archive,
        &["rollouts", "999", "--catalog", catalog],
        store.path(),
    );
    missing.assert_exit(1, &["hint: `kiln rollouts`"]);

    // A finished rollout is not continued: the next run is a new one.
    let again = kiln_at(
        &archive,
        &["rebuild", d, "base", "--json", "--catalog", catalog],
        store.path(),
    );
    let v: serde_json::Value = serde_json::from_str(&again.stdout).expect("json");
    assert_ne!(v["rollout"], id, "{v}");
    assert_eq!(v["attempt"], 1, "{v}");
}
