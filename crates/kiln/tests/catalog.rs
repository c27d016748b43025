//! The catalog end to end: real builds of the examples recorded, then
//! `images`, `show`, `diff`, `promote`, `rollback`, `where` and `history`
//! answering from the record, on SQLite and on a real PostgreSQL server
//! (`pg_` tests start one). The SBOM of a real build goes before the SPDX
//! project's validator.
//!
//! `root_` tests need root, `net_` ones the archive (and, for the
//! validator, the Python package registry).

mod common;
#[allow(dead_code)]
#[path = "../../kiln-catalog/tests/catalog/pg.rs"]
mod pg;
#[path = "../../kiln-manifest/tests/support/spdx_validator.rs"]
mod spdx_validator;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use common::{Run, copy_dir, examples, kiln};

/// kiln with the shared store, `catalog`, and a fixed user name.
fn k(catalog: &str, args: &[&str]) -> Run {
    kiln(args, &[("KILN_CATALOG", catalog), ("KILN_USER", "tester")])
}

fn ok(catalog: &str, args: &[&str]) -> String {
    let r = k(catalog, args);
    assert_eq!(r.code, 0, "kiln {args:?}: {}{}", r.stdout, r.stderr);
    r.stdout
}

fn build(catalog: &str, dir: &Path, formats: &[&str]) -> serde_json::Value {
    let mut args = vec!["build", dir.to_str().unwrap(), "--json"];
    for f in formats {
        args.extend(["--format", f]);
    }
    serde_json::from_str(&ok(catalog, &args)).expect("--json report")
}

/// Ids, digests, times and the temporary directory vary; what a user sees
/// around them is the snapshot.
fn settings(tmp: &Path) -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.add_filter(&regex_escape(&tmp.display().to_string()), "[TMP]");
    s.add_filter(r"sha256:[0-9a-f]{64}", "[DIGEST]");
    s.add_filter(r"\b[0-9a-f]{12}\b", "[BUILD]");
    s.add_filter(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "[TIME]");
    s.add_filter(r"-?\d+\.\d MiB", "[SIZE]");
    s.add_filter(r"\b\d+ packages, \d+ files", "[N] packages, [N] files");
    s.add_filter(r"ready in \d+\.\ds", "ready in [S]");
    s.add_filter(r"kiln +\d+\.\d+\.\d+", "kiln        [VERSION]");
    s
}

fn regex_escape(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '/' || c == '_' || c == '-' {
                c.to_string()
            } else {
                format!("\\{c}")
            }
        })
        .collect()
}

/// (name, version) of each package in a list.
fn name_versions(list: &serde_json::Value) -> BTreeSet<(String, String)> {
    let text = |v: &serde_json::Value| v.as_str().unwrap().to_string();
    list.as_array()
        .unwrap()
        .iter()
        .map(|p| (text(&p["name"]), text(&p["version"])))
        .collect()
}

/// The packages a lockfile pins.
fn locked(path: &Path) -> BTreeSet<(String, String)> {
    let lock: serde_json::Value = toml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    name_versions(&lock["package"])
}

/// The whole catalog story on one catalog. Both databases share the
/// snapshots: what a user sees must not depend on which one is behind.
fn catalog_commands(catalog: &str) {
    let ex = examples();
    let tmp = ex.path();
    let base_dir = tmp.join("base");
    let web_dir = tmp.join("web");
    let base = build(catalog, &base_dir, &["tar"]);
    let web = build(catalog, &web_dir, &["tar", "oci"]);
    assert!(!web["catalog"].as_str().unwrap().is_empty());
    let settings = settings(tmp);
    let _guard = settings.bind_to_scope();

    // images: newest first, both builds, untested, nowhere yet.
    let images: serde_json::Value =
        serde_json::from_str(&ok(catalog, &["images", "--json"])).unwrap();
    let ids: Vec<&str> = images
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2, "{images:#}");
    assert!(ids.contains(&web["build"].as_str().unwrap()));
    assert!(ids.contains(&base["build"].as_str().unwrap()));
    insta::assert_snapshot!("images", ok(catalog, &["images", "--name", "web"]));

    // show: by name, by a build id prefix and by an output digest prefix,
    // all the same build, with lineage to base.
    let show = ok(catalog, &["show", "web@latest"]);
    let web_id = web["build"].as_str().unwrap();
    let tar_digest = web["outputs"][0]["digest"].as_str().unwrap();
    assert_eq!(web["outputs"][0]["format"], "tar");
    assert_eq!(ok(catalog, &["show", &web_id[7..19]]), show);
    assert_eq!(ok(catalog, &["show", &tar_digest[..19]]), show);
    assert!(show.contains(base["build"].as_str().unwrap().get(7..19).unwrap()));
    insta::assert_snapshot!("show", show);
    let shown: serde_json::Value =
        serde_json::from_str(&ok(catalog, &["show", "web@1.0.0", "--json"])).unwrap();
    assert_eq!(shown["lineage"].as_array().unwrap().len(), 2);
    assert_eq!(shown["lineage"][1]["id"], base["build"]);
    assert_eq!(shown["build"]["parent"], base["build"]);
    assert_eq!(shown["build"]["lock_digest"], web["lock"]);

    // diff base → web names exactly the packages web's lock adds.
    let diff: serde_json::Value = serde_json::from_str(&ok(
        catalog,
        &["diff", "base@latest", "web@latest", "--json"],
    ))
    .unwrap();
    let added = name_versions(&diff["diff"]["packages_added"]);
    assert_eq!(added, locked(&web_dir.join("kiln.lock")));
    assert_eq!(diff["diff"]["packages_removed"], serde_json::json!([]));
    let files_added: Vec<&str> = diff["diff"]["files_added"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert!(
        files_added.contains(&"/var/www/html/index.html") || {
            // Debian ships its own index page there; then web's is a change.
            diff["diff"]["files_changed"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f["path"] == "/var/www/html/index.html")
        }
    );
    assert!(files_added.contains(&"/usr/sbin/nginx"));
    // The other way round, everything is mirrored.
    let back: serde_json::Value = serde_json::from_str(&ok(
        catalog,
        &["diff", "web@latest", "base@latest", "--json"],
    ))
    .unwrap();
    assert_eq!(
        back["diff"]["packages_removed"],
        diff["diff"]["packages_added"]
    );
    assert_eq!(
        ok(catalog, &["diff", "web@latest", "web@latest"])
            .lines()
            .nth(1),
        Some("no changes")
    );
    let text = ok(catalog, &["diff", "base@latest", "web@latest"]);
    {
        // The archive moves: versions, file counts and which files are
        // listed first are the archive's; the shape is kiln's.
        let mut s = insta::Settings::clone_current();
        s.add_filter(r"(?m)^(  \+ \S+) \S+ (\(\w+\))$", "$1 [VERSION] $2");
        s.add_filter(r"(?m)^  [+~-] /.*$", "  [FILE]");
        s.add_filter(r"packages: \d+ added", "packages: [N] added");
        s.add_filter(
            r"files: \d+ added, \d+ removed, \d+ changed",
            "files: [N] added, [N] removed, [N] changed",
        );
        s.add_filter(r"… and \d+ more", "… and [N] more");
        s.bind(|| insta::assert_snapshot!("diff", text));
    }
    let summary = format!(
        "packages: {} added, 0 removed, 0 upgraded, 0 downgraded",
        added.len()
    );
    assert!(text.contains(&summary), "{text}");
    for (name, _) in &added {
        assert!(text.contains(&format!("  + {name} ")), "{text}");
    }

    // Environments: promote, refuse a repeat, where, history.
    let p = ok(catalog, &["promote", "base@latest", "--to", "staging"]);
    insta::assert_snapshot!("promote", p);
    ok(
        catalog,
        &[
            "promote",
            "web@latest",
            "--to",
            "staging",
            "--note",
            "first web",
        ],
    );
    let again = k(catalog, &["promote", "web@latest", "--to", "staging"]);
    again.assert_exit(1, &["already running in staging"]);
    let bad = k(catalog, &["promote", "web@latest", "--to", "Prod"]);
    bad.assert_exit(1, &["hint:"]);
    let none = k(catalog, &["rollback", "staging", "web"]);
    assert_eq!(none.code, 1, "{}", none.stderr);

    // A second web build (one file changed), promoted, then rolled back.
    std::fs::write(web_dir.join("files/index.html"), "<h1>web, take two</h1>\n").unwrap();
    let web2 = build(catalog, &web_dir, &["tar"]);
    assert_ne!(web2["build"], web["build"]);
    let web2_id = web2["build"].as_str().unwrap();
    ok(catalog, &["promote", &web2_id[7..19], "--to", "staging"]);
    ok(catalog, &["promote", &web2_id[7..19], "--to", "production"]);
    let where_web: serde_json::Value =
        serde_json::from_str(&ok(catalog, &["where", "web", "--json"])).unwrap();
    let now: Vec<(&str, &str)> = where_web
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["env"].as_str().unwrap(), d["build"].as_str().unwrap()))
        .collect();
    assert_eq!(now, [("production", web2_id), ("staging", web2_id)]);
    let rolled = ok(catalog, &["rollback", "staging", "web"]);
    insta::assert_snapshot!("rollback", rolled);
    assert!(
        rolled.starts_with("staging: rolled back web 1.0.0"),
        "{rolled}"
    );
    insta::assert_snapshot!("where", ok(catalog, &["where"]));
    insta::assert_snapshot!("history", ok(catalog, &["history", "staging"]));
    let history: serde_json::Value =
        serde_json::from_str(&ok(catalog, &["history", "staging", "--json"])).unwrap();
    let steps: Vec<(&str, &str, &str)> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["kind"].as_str().unwrap(),
                p["name"].as_str().unwrap(),
                p["build"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            ("promote", "base", base["build"].as_str().unwrap()),
            ("promote", "web", web_id),
            ("promote", "web", web2_id),
            ("rollback", "web", web_id),
        ]
    );
    assert!(
        history
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["who"] == "tester")
    );
    assert_eq!(history[3]["previous"], web2["build"]);
    // images filters by environment.
    let in_prod: serde_json::Value =
        serde_json::from_str(&ok(catalog, &["images", "--env", "production", "--json"])).unwrap();
    assert_eq!(in_prod.as_array().unwrap().len(), 1);
    assert_eq!(in_prod[0]["id"], web2["build"]);

    // A reference that names nothing, or too little, is the user's error.
    let missing = k(catalog, &["show", "nosuch@latest"]);
    missing.assert_exit(1, &["hint:"]);
    let short = k(catalog, &["show", "abc"]);
    assert_eq!(short.code, 1);
}

#[test]
fn net_root_catalog_commands_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = dir.path().join("catalog.sqlite");
    catalog_commands(catalog.to_str().unwrap());
}

#[test]
fn pg_net_root_catalog_commands_on_postgresql() {
    let server = pg::PgServer::start();
    catalog_commands(&server.database("kiln"));
}

/// Several builds at once, each of a different image, into one catalog:
/// every one is recorded with its output.
fn concurrent_builds(catalog: &str) {
    let ex = examples();
    // The base first, so the variants only add their own layer.
    build(catalog, &ex.path().join("base"), &["tar"]);
    let variants: Vec<PathBuf> = (0..3)
        .map(|i| {
            let dir = ex.path().join(format!("web{i}"));
            copy_dir(&ex.path().join("web"), &dir);
            std::fs::write(
                dir.join("files/index.html"),
                format!("<p>variant {i}</p>\n"),
            )
            .unwrap();
            dir
        })
        .collect();
    let reports: Vec<serde_json::Value> = std::thread::scope(|s| {
        let handles: Vec<_> = variants
            .iter()
            .map(|dir| s.spawn(move || build(catalog, dir, &["tar"])))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let images: serde_json::Value =
        serde_json::from_str(&ok(catalog, &["images", "--name", "web", "--json"])).unwrap();
    let recorded: BTreeSet<(String, String)> = images
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            let tar = common::output(b, "tar");
            (
                b["id"].as_str().unwrap().to_string(),
                tar["digest"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let built: BTreeSet<(String, String)> = reports
        .iter()
        .map(|r| {
            (
                r["build"].as_str().unwrap().to_string(),
                r["outputs"][0]["digest"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(built.len(), variants.len());
    assert_eq!(recorded, built);
}

#[test]
fn net_root_concurrent_builds_record_into_one_sqlite_catalog() {
    let dir = tempfile::tempdir().unwrap();
    concurrent_builds(dir.path().join("catalog.sqlite").to_str().unwrap());
}

#[test]
fn pg_net_root_concurrent_builds_record_into_one_postgresql_catalog() {
    let server = pg::PgServer::start();
    concurrent_builds(&server.database("kiln"));
}

/// What a build writes beside its outputs: an SBOM the SPDX validator
/// accepts, listing every package of the image, and a provenance statement
/// naming the outputs; both attached to the OCI image as referrers.
#[test]
fn net_root_the_sbom_is_valid_spdx_and_the_provenance_names_the_outputs() {
    let ex = examples();
    let dir = tempfile::tempdir().unwrap();
    let catalog = dir.path().join("catalog.sqlite");
    let catalog = catalog.to_str().unwrap();
    let web = build(catalog, &ex.path().join("web"), &["tar", "oci"]);

    let sbom_path = PathBuf::from(web["sbom"].as_str().unwrap());
    spdx_validator::validate(&sbom_path);
    let sbom: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&sbom_path).unwrap()).unwrap();
    assert_eq!(sbom["spdxVersion"], "SPDX-2.3");
    let mut pinned = locked(&ex.path().join("base/kiln.lock"));
    pinned.extend(locked(&ex.path().join("web/kiln.lock")));
    let listed: BTreeSet<(String, String)> = sbom["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| {
            let purl = p["externalRefs"]
                .as_array()?
                .iter()
                .find(|r| r["referenceType"] == "purl")?;
            assert!(
                purl["referenceLocator"]
                    .as_str()?
                    .starts_with("pkg:deb/debian/")
            );
            Some((
                p["name"].as_str()?.to_string(),
                p["versionInfo"].as_str()?.to_string(),
            ))
        })
        .collect();
    assert_eq!(listed, pinned, "the SBOM lists exactly the locked packages");

    let prov_path = PathBuf::from(web["provenance"].as_str().unwrap());
    let prov: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&prov_path).unwrap()).unwrap();
    assert_eq!(prov["_type"], "https://in-toto.io/Statement/v1");
    assert_eq!(prov["predicateType"], "https://slsa.dev/provenance/v1");
    let subjects: BTreeSet<String> = prov["subject"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| format!("sha256:{}", s["digest"]["sha256"].as_str().unwrap()))
        .collect();
    let outputs: BTreeSet<String> = web["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["format"] != "oci-archive")
        .map(|o| o["digest"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(subjects, outputs);
    let debs = prov["predicate"]["buildDefinition"]["resolvedDependencies"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["uri"].as_str().is_some_and(|u| u.starts_with("pkg:deb/")))
        .count();
    assert_eq!(debs, pinned.len());
    let params = &prov["predicate"]["buildDefinition"]["externalParameters"]["parameters"];
    assert_eq!(params["formats"], serde_json::json!(["tar", "oci"]));

    // Attached to the OCI image: two referrers whose subject is the image,
    // carrying the very bytes written beside the outputs.
    let layout = ex.path().join("web/out/web-1.0.0.oci");
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let image = common::output(&web, "oci")["digest"].clone();
    let blob = |d: &serde_json::Value| layout.join("blobs/sha256").join(&d.as_str().unwrap()[7..]);
    let top = &index["manifests"][0];
    assert_eq!(
        top["annotations"]["org.opencontainers.image.ref.name"],
        "1.0.0"
    );
    let nested: serde_json::Value =
        serde_json::from_slice(&std::fs::read(blob(&top["digest"])).unwrap()).unwrap();
    assert_eq!(nested["manifests"][0]["digest"], image);
    let mut attached = Vec::new();
    for entry in nested["manifests"].as_array().unwrap() {
        let Some(kind) = entry["artifactType"].as_str() else {
            continue;
        };
        let m: serde_json::Value =
            serde_json::from_slice(&std::fs::read(blob(&entry["digest"])).unwrap()).unwrap();
        assert_eq!(m["subject"]["digest"], image);
        attached.push((
            kind.to_string(),
            std::fs::read(blob(&m["layers"][0]["digest"])).unwrap(),
        ));
    }
    assert_eq!(
        attached,
        [
            (
                "application/spdx+json".to_string(),
                std::fs::read(&sbom_path).unwrap()
            ),
            (
                "application/vnd.in-toto+json".to_string(),
                std::fs::read(&prov_path).unwrap()
            ),
        ]
    );
}

/// With nothing recorded, each command says so; a catalog that cannot be
/// reached is kiln's environment failing (exit 2), not the user's request.
#[test]
fn catalog_commands_explain_an_empty_catalog() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = dir.path().join("empty.sqlite");
    let catalog = catalog.to_str().unwrap();
    assert_eq!(ok(catalog, &["images"]).trim(), "no builds recorded");
    assert!(ok(catalog, &["where"]).contains("no environment runs a build yet"));
    assert_eq!(
        ok(catalog, &["history", "production"]).trim(),
        "nothing was ever promoted to production"
    );
    let r = k(catalog, &["diff", "a@latest", "b@latest"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let bad = k("postgres://nobody@/nodb?host=/nonexistent", &["images"]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
}
