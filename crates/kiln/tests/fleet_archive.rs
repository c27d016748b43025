//! `kiln outdated` and `kiln rebuild --outdated` on a fleet of four images
//! against Debian's real archive. The archive moves, so the package that is
//! outdated is found in the same run: the verified Packages indices the lock
//! names (read here with a parser of the test's own) hold a package whose
//! version in bookworm is older than in bookworm-security or -updates; the
//! base's lock is pinned back to the bookworm version, as if locked before
//! the update. No version is typed here.

mod common;
mod fleet_common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{kiln, write};
use debversion::Version;
use fleet_common::waves;

#[derive(Debug, Clone)]
struct Stanza {
    version: String,
    filename: String,
    size: u64,
    sha256: String,
    depends: Vec<String>,
}

/// Every package of the suites the lock in `dir` was made from, by suite.
fn indices(dir: &Path) -> BTreeMap<String, BTreeMap<String, Stanza>> {
    let lock = read_lock(dir);
    let mut out = BTreeMap::new();
    for suite in lock["suite"].as_array().expect("suites") {
        let name = suite["name"].as_str().expect("suite name").to_owned();
        let mut packages = BTreeMap::new();
        for digest in suite["indices"].as_array().expect("indices") {
            let hex = digest
                .as_str()
                .and_then(|d| d.strip_prefix("sha256:"))
                .expect("digest");
            let path = common::store().join("blobs/sha256").join(hex);
            let text = std::fs::read_to_string(&path).expect("a verified index in the store");
            for stanza in text.split("\n\n") {
                let field = |f: &str| {
                    stanza
                        .lines()
                        .find_map(|l| l.strip_prefix(&format!("{f}: ")))
                        .map(str::to_owned)
                };
                let (Some(name), Some(version), Some(arch)) =
                    (field("Package"), field("Version"), field("Architecture"))
                else {
                    continue;
                };
                if arch != "amd64" && arch != "all" {
                    continue;
                }
                let depends = [field("Depends"), field("Pre-Depends")]
                    .into_iter()
                    .flatten()
                    .flat_map(|d| {
                        d.split([',', '|'])
                            .map(|a| {
                                a.split_whitespace()
                                    .next()
                                    .unwrap_or("")
                                    .split(':')
                                    .next()
                                    .unwrap_or("")
                                    .to_owned()
                            })
                            .collect::<Vec<_>>()
                    })
                    .filter(|d| !d.is_empty())
                    .collect();
                packages.insert(
                    name,
                    Stanza {
                        version,
                        filename: field("Filename").expect("Filename"),
                        size: field("Size").and_then(|s| s.parse().ok()).expect("Size"),
                        sha256: field("SHA256").expect("SHA256"),
                        depends,
                    },
                );
            }
        }
        out.insert(name, packages);
    }
    out
}

fn read_lock(dir: &Path) -> toml::Table {
    let text = std::fs::read_to_string(dir.join("kiln.lock")).expect("kiln.lock");
    toml::from_str(&text).expect("a lock")
}

/// A package newer in -security or -updates than in bookworm: (name, the
/// bookworm stanza, the newest version, its suite). One the base already
/// has if there is one; else one whose dependencies the base has, added.
fn outdated_candidate(
    indices: &BTreeMap<String, BTreeMap<String, Stanza>>,
    base: &[String],
) -> (String, Stanza, String, String) {
    let release = &indices["bookworm"];
    let mut found = Vec::new();
    for suite in ["bookworm-security", "bookworm-updates"] {
        for (name, newer) in &indices[suite] {
            let Some(old) = release.get(name) else {
                continue;
            };
            let (o, n): (Version, Version) = (
                old.version.parse().expect("version"),
                newer.version.parse().expect("version"),
            );
            if n > o {
                found.push((
                    name.clone(),
                    old.clone(),
                    newer.version.clone(),
                    suite.to_owned(),
                    newer.size,
                ));
            }
        }
    }
    assert!(
        !found.is_empty(),
        "no package of bookworm has a newer version in -security or -updates"
    );
    // The newest candidate across both suites is what kiln must report.
    let newest = |name: &str| {
        found
            .iter()
            .filter(|f| f.0 == name)
            .max_by(|a, b| {
                a.2.parse::<Version>()
                    .expect("v")
                    .cmp(&b.2.parse::<Version>().expect("v"))
            })
            .cloned()
            .expect("found")
    };
    if let Some(f) = found.iter().find(|f| base.contains(&f.0)) {
        let n = newest(&f.0);
        return (n.0, n.1, n.2, n.3);
    }
    let mut cheap: Vec<_> = found
        .iter()
        .filter(|f| f.1.depends.iter().all(|d| base.contains(d)))
        .collect();
    cheap.sort_by_key(|f| f.4);
    let f = cheap
        .first()
        .expect("an outdated package with no new dependencies");
    let n = newest(&f.0);
    (n.0, n.1, n.2, n.3)
}

fn names(dir: &Path) -> Vec<String> {
    read_lock(dir)["package"]
        .as_array()
        .expect("packages")
        .iter()
        .map(|p| p["name"].as_str().expect("name").to_owned())
        .collect()
}

/// The `[[package]]` blocks of a lock, by name, as bytes.
fn blocks(dir: &Path) -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(dir.join("kiln.lock")).expect("kiln.lock");
    text.split("\n[[package]]\n")
        .skip(1)
        .map(|b| {
            let name = b.lines().next().unwrap_or_default().to_owned();
            (name, b.to_owned())
        })
        .collect()
}

fn base_toml(install: &[String]) -> String {
    let list: Vec<String> = install.iter().map(|p| format!("\"{p}\"")).collect();
    format!(
        "[image]\nname = \"base\"\nversion = \"1\"\n\n[base]\ndistro = \"debian\"\nsuite = \"bookworm\"\nvariant = \"minbase\"\n\n[packages]\ninstall = [{}]\n\n[outputs]\nformats = [\"tar\"]\n",
        list.join(", ")
    )
}

fn child_toml(name: &str, from: &str, include: bool, install: &str) -> String {
    let include = if include {
        "include = [\"../fragments/net.toml\"]\n\n"
    } else {
        ""
    };
    format!(
        "{include}[image]\nname = \"{name}\"\nversion = \"1\"\n\n[base]\nfrom = \"{from}\"\n\n[packages]\ninstall = [{install}]\n\n[outputs]\nformats = [\"tar\"]\n"
    )
}

/// web and api on base, including fragments/net.toml; shop on web.
fn write_children(r: &Path) {
    write(
        &r.join("fragments/net.toml"),
        "[packages]\ninstall = [\"netbase\"]\n",
    );
    write(
        &r.join("web/kiln.toml"),
        &child_toml("web", "../base", true, "\"less\""),
    );
    write(
        &r.join("api/kiln.toml"),
        &child_toml("api", "../base", true, ""),
    );
    write(
        &r.join("shop/kiln.toml"),
        &child_toml("shop", "../web", false, "\"bzip2\""),
    );
}

fn ok(args: &[&str]) -> common::Run {
    let run = kiln(args, &[]);
    assert_eq!(run.code, 0, "kiln {args:?}: {}{}", run.stdout, run.stderr);
    run
}

#[test]
fn net_root_outdated_and_rebuild_move_only_the_outdated_package_in_waves() {
    let root = tempfile::tempdir().expect("tmp");
    let r = root.path();
    let catalog = r.join("catalog.sqlite");
    let catalog = catalog.to_str().expect("utf-8");
    let dir = |n: &str| r.join(n).to_str().expect("utf-8").to_owned();
    write(&r.join("base/kiln.toml"), &base_toml(&[]));
    ok(&["lock", &dir("base")]);

    let indices = indices(&r.join("base"));
    let (name, old, newest, suite) = outdated_candidate(&indices, &names(&r.join("base")));
    eprintln!(
        "oracle: {name} {} in bookworm, {newest} in {suite}",
        old.version
    );
    if !names(&r.join("base")).contains(&name) {
        write(
            &r.join("base/kiln.toml"),
            &base_toml(std::slice::from_ref(&name)),
        );
        ok(&["lock", &dir("base")]);
    }
    // Pin the package back to bookworm's version, as a lock made before the
    // update would have it; `kiln lock` keeps a locked version the archive
    // still has, and writes the lock in its own form.
    let mut lock = read_lock(&r.join("base"));
    for p in lock["package"].as_array_mut().expect("packages") {
        if p["name"].as_str() == Some(&name) {
            p["version"] = old.version.clone().into();
            p["path"] = old.filename.clone().into();
            p["size"] = (old.size as i64).into();
            p["sha256"] = old.sha256.clone().into();
            p["suite"] = "bookworm".into();
        }
    }
    write(
        &r.join("base/kiln.lock"),
        &toml::to_string(&lock).expect("toml"),
    );
    ok(&["lock", &dir("base")]);
    let pinned = blocks(&r.join("base"));
    assert!(
        pinned[&format!("name = \"{name}\"")].contains(&old.version),
        "{name} pinned back"
    );

    write_children(r);
    for n in ["web", "api", "shop"] {
        ok(&["lock", &dir(n)]);
    }
    let before: BTreeMap<&str, BTreeMap<String, String>> = ["base", "web", "api", "shop"]
        .into_iter()
        .map(|n| (n, blocks(&r.join(n))))
        .collect();

    let graph = ok(&["graph", r.to_str().expect("utf-8"), "--json"]);
    let v: serde_json::Value = serde_json::from_str(&graph.stdout).expect("json");
    assert_eq!(v["edges"].as_array().map(Vec::len), Some(5), "{v}");

    let run = kiln(&["outdated", r.to_str().expect("utf-8"), "--json"], &[]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).expect("json");
    let image = |n: &str| common::item(&v, "images", "name", n).clone();
    let base = image("base");
    let pending = base["pending"].as_array().expect("pending");
    let mine = pending
        .iter()
        .find(|p| p["name"] == name.as_str())
        .unwrap_or_else(|| panic!("{name} in {base}"));
    assert_eq!(mine["locked"], old.version.as_str());
    assert_eq!(mine["available"], newest.as_str());
    assert_eq!(mine["suite"], suite.as_str());
    assert_eq!(mine["security"], suite.ends_with("-security"));
    assert_eq!(
        pending.len(),
        1,
        "only the pinned-back package is outdated: {base}"
    );
    for n in ["web", "api", "shop"] {
        let i = image(n);
        let inherited = i["inherited"].as_array().expect("inherited");
        assert!(
            inherited
                .iter()
                .any(|p| p["name"] == name.as_str() && p["from"] == "base"),
            "{n}: {i}"
        );
    }

    // What production runs now: built before the update, promoted.
    ok(&["build", &dir("shop"), "--catalog", catalog]);
    ok(&[
        "promote",
        "shop@latest",
        "--to",
        "prod",
        "--catalog",
        catalog,
    ]);
    let built = kiln(
        &[
            "outdated",
            &dir(""),
            "--built",
            "--json",
            "--catalog",
            catalog,
        ],
        &[],
    );
    assert_eq!(built.code, 1, "{}{}", built.stdout, built.stderr);
    let v: serde_json::Value = serde_json::from_str(&built.stdout).expect("json");
    let prod = &v["environments"][0];
    assert_eq!(prod["env"], "prod", "{v}");
    assert_eq!(prod["image"], "shop", "{v}");
    assert!(
        prod["pending"]
            .as_array()
            .expect("pending")
            .iter()
            .any(|p| p["name"] == name.as_str() && p["available"] == newest.as_str()),
        "{v}"
    );

    let plan = ok(&["rebuild", &dir(""), "--outdated", "--plan", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&plan.stdout).expect("json");
    assert_eq!(waves(&v), [vec!["base"], vec!["api", "web"], vec!["shop"]]);

    // Killed once the base passed, during the second wave.
    let mut child = common::kiln_command(
        &[
            "rebuild",
            &dir(""),
            "--outdated",
            "--max-parallel",
            "1",
            "--catalog",
            catalog,
        ],
        &[],
        &common::store(),
    )
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .expect("kiln rebuild starts");
    let stderr = child.stderr.take().expect("stderr");
    let mut seen = Vec::new();
    for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)) {
        let line = line.expect("a line");
        seen.push(line.clone());
        if line.trim() == "base: passed" {
            break;
        }
    }
    child.kill().expect("kill");
    let _ = child.wait();
    assert!(
        seen.iter().any(|l| l.trim() == "wave 1/3: base"),
        "{seen:?}"
    );
    assert!(seen.iter().any(|l| l.trim() == "base: passed"), "{seen:?}");

    let run = kiln(
        &[
            "rebuild",
            &dir(""),
            "--outdated",
            "--json",
            "--catalog",
            catalog,
            "--max-parallel",
            "2",
            "--promote",
            "prod",
        ],
        &[],
    );
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let report: serde_json::Value = serde_json::from_str(&run.stdout).expect("json");
    let order: Vec<(&str, &str)> = report["images"]
        .as_array()
        .expect("images")
        .iter()
        .map(|o| {
            (
                o["name"].as_str().expect("n"),
                o["status"].as_str().expect("s"),
            )
        })
        .collect();
    // The base was done before the kill: the rerun does not touch it.
    assert_eq!(
        order,
        [("api", "passed"), ("web", "passed"), ("shop", "passed")],
        "{report}"
    );
    let built = kiln(
        &["outdated", &dir(""), "--built", "--catalog", catalog],
        &[],
    );
    assert_eq!(
        built.code, 0,
        "prod now runs the rebuilt shop: {}{}",
        built.stdout, built.stderr
    );

    // Only the outdated package moved; every other entry is the same bytes.
    for (n, old_blocks) in &before {
        let now = blocks(&r.join(n));
        assert_eq!(
            now.keys().collect::<Vec<_>>(),
            old_blocks.keys().collect::<Vec<_>>(),
            "{n}"
        );
        for (key, block) in old_blocks {
            if *n == "base" && *key == format!("name = \"{name}\"") {
                assert!(
                    now[key].contains(&format!("version = \"{newest}\"")),
                    "{}",
                    now[key]
                );
            } else {
                assert_eq!(&now[key], block, "{n}: {key} must not move");
            }
        }
    }
    let fresh = kiln(&["outdated", r.to_str().expect("utf-8")], &[]);
    assert_eq!(fresh.code, 0, "{}{}", fresh.stdout, fresh.stderr);

    // The catalog's lineage of the grandchild is the new web and base.
    let shop_build = report["images"][2]["build"].as_str().expect("build id");
    let web_build = report["images"][1]["build"].as_str().expect("build id");
    let show = ok(&["show", shop_build, "--json", "--catalog", catalog]);
    let v: serde_json::Value = serde_json::from_str(&show.stdout).expect("json");
    let lineage: Vec<&str> = v["lineage"]
        .as_array()
        .expect("lineage")
        .iter()
        .map(|b| b["id"].as_str().expect("id"))
        .collect();
    assert_eq!(lineage.len(), 3, "{v}");
    assert_eq!(lineage[1], web_build, "{v}");

    // A rerun does nothing again: every stage from the cache.
    let rerun = kiln(
        &["rebuild", &dir(""), "base", "--json", "--catalog", catalog],
        &[],
    );
    assert_eq!(rerun.code, 0, "{}{}", rerun.stdout, rerun.stderr);
    let v: serde_json::Value = serde_json::from_str(&rerun.stdout).expect("json");
    for o in v["images"].as_array().expect("images") {
        assert_eq!(o["cached"], true, "{o}");
        assert_eq!(o["relocked"].as_array().map(Vec::len), Some(0), "{o}");
    }
}

/// sha256 of each image's rootfs tarball under `root`, by image.
fn tar_digests(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for image in ["base", "web", "api", "shop"] {
        let dir = root.join(image).join("out");
        let tar = std::fs::read_dir(&dir)
            .expect("out/")
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|e| e == "tar"))
            .unwrap_or_else(|| panic!("no tarball in {}", dir.display()));
        out.insert(
            image.to_owned(),
            kiln_disk::sha256_file(&tar).expect("hash"),
        );
    }
    out
}

#[test]
fn net_root_rebuild_with_one_or_two_at_once_gives_the_same_bytes() {
    let one = tempfile::tempdir().expect("tmp");
    let r = one.path();
    write(&r.join("base/kiln.toml"), &base_toml(&[]));
    write_children(r);
    for n in ["base", "web", "api", "shop"] {
        ok(&["lock", r.join(n).to_str().expect("utf-8")]);
    }
    let two = tempfile::tempdir().expect("tmp");
    common::copy_dir(r, two.path());

    let first = kiln(
        &[
            "rebuild",
            r.to_str().expect("utf-8"),
            "base",
            "--max-parallel",
            "2",
        ],
        &[],
    );
    assert_eq!(first.code, 0, "{}{}", first.stdout, first.stderr);
    // The other run starts from a store holding only the packages, so it
    // builds every stage itself, one image at a time.
    let store = tempfile::tempdir().expect("tmp");
    let blobs = store.path().join("blobs/sha256");
    std::fs::create_dir_all(&blobs).expect("mkdir");
    for e in std::fs::read_dir(common::store().join("blobs/sha256")).expect("store") {
        let e = e.expect("entry");
        if !e.file_name().to_string_lossy().starts_with('.') {
            std::fs::hard_link(e.path(), blobs.join(e.file_name())).expect("link");
        }
    }
    let catalog = two.path().join("catalog.sqlite");
    let second = common::kiln_with_store(
        &[
            "rebuild",
            two.path().to_str().expect("utf-8"),
            "base",
            "--max-parallel",
            "1",
            "--json",
            "--catalog",
            catalog.to_str().expect("utf-8"),
        ],
        &[],
        store.path(),
    );
    assert_eq!(second.code, 0, "{}{}", second.stdout, second.stderr);
    let v: serde_json::Value = serde_json::from_str(&second.stdout).expect("json");
    for o in v["images"].as_array().expect("images") {
        assert_eq!(o["cached"], false, "built, not taken from a cache: {o}");
    }
    let (a, b) = (tar_digests(r), tar_digests(two.path()));
    assert_eq!(a, b);
    eprintln!("rootfs digests: {a:?}");
}
