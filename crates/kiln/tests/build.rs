//! `kiln build` end to end: real packages from Debian's archive, the
//! image's own dpkg in a sandbox, and real OCI clients reading the result.
//! `root_` tests need root (namespaces, chroot); `net_` ones the archive.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Run, examples, kiln, kiln_with_store, repo, run_tool, seeded_store};

fn build(dir: &Path, store: &Path, out: &Path) -> (Run, serde_json::Value) {
    build_formats(dir, store, out, &[])
}

fn build_formats(
    dir: &Path,
    store: &Path,
    out: &Path,
    formats: &[&str],
) -> (Run, serde_json::Value) {
    let mut args = vec![
        "build",
        dir.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--json",
    ];
    for f in formats {
        args.extend(["--format", f]);
    }
    let r = kiln_with_store(&args, &[], store);
    assert_eq!(r.code, 0, "kiln build {}: {}", dir.display(), r.stderr);
    let report = serde_json::from_str(&r.stdout).expect("--json report");
    (r, report)
}

/// Every file below `dir`, by relative path, with its sha256: a raw disk's
/// two gigabytes need not sit in memory to be compared.
fn files(dir: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                out.insert(
                    e.path().strip_prefix(dir).unwrap().to_path_buf(),
                    kiln_disk::sha256_file(&e.path()).unwrap(),
                );
            }
        }
    }
    out
}

/// The record of one stage in a `--json` report.
fn stages_json(report: &serde_json::Value, stage: &str, image: &str) -> serde_json::Value {
    report["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stage"] == stage && s["image"] == image)
        .cloned()
        .unwrap_or_else(|| panic!("no {stage} stage of {image}: {report}"))
}

/// (stage, image) → cached?
fn stages(report: &serde_json::Value) -> BTreeMap<(String, String), bool> {
    report["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                (
                    s["stage"].as_str().unwrap().to_string(),
                    s["image"].as_str().unwrap().to_string(),
                ),
                s["cached"].as_bool().unwrap(),
            )
        })
        .collect()
}

#[test]
fn net_root_web_built_twice_cold_in_two_stores_is_identical_and_real_clients_read_it() {
    let ex = examples();
    let web = ex.path().join("web");
    let all = ["oci", "tar", "raw", "qcow2"];
    let site = std::fs::read(web.join("files/index.html")).unwrap();
    // The first build is read by real clients, then kept only as digests,
    // so the two builds never hold the disk at once (CI's disk is small).
    let (report_a, a) = first_of_two_cold_builds(&ex, &all);
    std::fs::write(web.join("files/index.html"), site).unwrap();

    let store_b = seeded_store();
    let out_b = tempfile::tempdir().unwrap();
    let (_, report_b) = build_formats(&web, store_b.path(), out_b.path(), &all);
    // The claim itself: same definition and lock, same bytes.
    let b = files(out_b.path());
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (path, digest) in &a {
        if path.to_string_lossy().ends_with(".build.json") {
            continue; // records timings
        }
        assert_eq!(
            digest,
            &b[path],
            "{} differs between the two builds",
            path.display()
        );
    }
    assert_eq!(report_a["layers"], report_b["layers"]);
}

/// Builds `all` formats of the examples' web image cold, checks what real
/// clients and a warm rebuild make of it, and returns its report and the
/// digests of its outputs (taken before anything else touched them).
fn first_of_two_cold_builds(
    ex: &tempfile::TempDir,
    all: &[&str],
) -> (serde_json::Value, BTreeMap<PathBuf, String>) {
    let web = ex.path().join("web");
    let store_a = seeded_store();
    let out = tempfile::tempdir().unwrap();
    let out_a = out.path().join("a");
    let (_, report_a) = build_formats(&web, store_a.path(), &out_a, all);
    assert!(
        stages(&report_a).values().all(|cached| !cached),
        "a cold store caches nothing"
    );
    let a = files(&out_a);

    // On a cold build the child's copy of its parent starts during the
    // parent's last dpkg run; the tree it gives is the one a plain copy of
    // the finished parent gives.
    let web_rootfs = stages_json(&report_a, "rootfs", "web");
    assert_eq!(
        web_rootfs["note"], "began from a copy of base made while it built",
        "{report_a}"
    );
    let web_key = web_rootfs["key"].as_str().unwrap();
    std::fs::remove_dir_all(store_a.path().join("rootfs-v2").join(web_key)).unwrap();
    let plain = out.path().join("plain");
    let (_, again) = build_formats(&web, store_a.path(), &plain, &["tar"]);
    assert!(
        stages_json(&again, "rootfs", "web")["note"].is_null(),
        "{again}"
    );
    assert_eq!(
        a[Path::new("web-1.0.0.tar")],
        files(&plain)[Path::new("web-1.0.0.tar")]
    );
    let tar = |r: &serde_json::Value| {
        r["outputs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["format"] == "tar")
            .map(|o| o["digest"].clone())
    };
    assert_eq!(tar(&again), tar(&report_a));
    std::fs::remove_dir_all(&plain).unwrap();
    for output in [
        "web-1.0.0.tar",
        "web-1.0.0.raw",
        "web-1.0.0.qcow2",
        "web-1.0.0.oci.tar",
    ] {
        assert!(
            a.keys().any(|p| p.ends_with(output)),
            "{output} was not built"
        );
    }
    assert!(
        a.keys()
            .filter(|p| p.starts_with("web-1.0.0.oci/blobs/sha256"))
            .count()
            >= 4
    );

    // One layer per image; the base's layer is byte-identical to the base
    // image's own.
    let (_, base_report) = build(
        &ex.path().join("base"),
        store_a.path(),
        &out.path().join("base"),
    );
    let layers = report_a["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 2);
    assert_eq!(layers[0], base_report["layers"][0]);

    // skopeo reads the layout and the archive and copies the image.
    let layout = format!("oci:{}:1.0.0", out_a.join("web-1.0.0.oci").display());
    let inspected: serde_json::Value =
        serde_json::from_str(&run_tool(Command::new("skopeo").args(["inspect", &layout]))).unwrap();
    let digests: Vec<&str> = layers
        .iter()
        .map(|l| l["digest"].as_str().unwrap())
        .collect();
    let seen: Vec<&str> = inspected["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert_eq!(seen, digests);
    let copy = format!("oci:{}:1.0.0", out.path().join("copy").display());
    run_tool(Command::new("skopeo").args(["copy", &layout, &copy]));
    let archive = format!("oci-archive:{}", out_a.join("web-1.0.0.oci.tar").display());
    run_tool(Command::new("skopeo").args(["inspect", &archive]));

    // The rootfs runs: nginx accepts its configuration, in a chroot.
    let root = out.path().join("rootfs");
    common::untar(&out_a.join("web-1.0.0.tar"), &root);
    run_tool(
        Command::new("chroot")
            .arg(&root)
            .args(["/usr/sbin/nginx", "-t"]),
    );
    let site = std::fs::read_to_string(root.join("etc/nginx/sites-enabled/default")).unwrap();
    assert!(site.contains("root /var/www/html"));
    assert_eq!(
        std::fs::read(root.join("etc/machine-id")).unwrap(),
        b"",
        "no machine id is baked"
    );
    assert!(
        !root.join("var/lib/apt/lists/lock").exists()
            || std::fs::read_dir(root.join("var/lib/apt/lists"))
                .unwrap()
                .count()
                <= 2
    );
    std::fs::remove_dir_all(&root).unwrap();

    // `kiln inspect` reports what the build made.
    let inspected = kiln_with_store(
        &[
            "inspect",
            web.to_str().unwrap(),
            "--out",
            out_a.to_str().unwrap(),
            "--json",
        ],
        &[],
        store_a.path(),
    );
    assert_eq!(inspected.code, 0, "{}", inspected.stderr);
    let inspected: serde_json::Value = serde_json::from_str(&inspected.stdout).unwrap();
    assert_eq!(inspected["layers"], report_a["layers"]);
    assert_eq!(inspected["outputs"], report_a["outputs"]);
    assert!(
        inspected["packages"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "nginx-light" && p["image"] == "web")
    );

    // Unchanged inputs: every stage comes from the cache.
    let (_, again) = build(&web, store_a.path(), &out_a);
    assert!(
        stages(&again)
            .iter()
            .filter(|((s, _), _)| s != "oci")
            .all(|(_, cached)| *cached),
        "{again}"
    );

    // One file of the child changed: only the child's stages rebuild.
    std::fs::write(web.join("files/index.html"), "<p>changed</p>\n").unwrap();
    let (_, changed) = build(&web, store_a.path(), &out_a);
    let s = stages(&changed);
    assert!(
        s[&("rootfs".into(), "base".into())] && s[&("layer".into(), "base".into())],
        "{s:?}"
    );
    assert!(
        !s[&("rootfs".into(), "web".into())] && !s[&("layer".into(), "web".into())],
        "{s:?}"
    );
    assert_eq!(changed["layers"][0], report_a["layers"][0]);
    assert_ne!(changed["layers"][1], report_a["layers"][1]);
    (report_a, a)
}

/// Two builds sharing a store from two containers: each in its own PID
/// namespace, where both are pid 1.
#[test]
fn net_root_a_killed_build_leaves_the_store_usable_and_builds_from_two_pid_namespaces_both_succeed()
{
    let store = seeded_store();
    let ex = examples();
    let web = ex.path().join("web");
    let out = tempfile::tempdir().unwrap();
    let mut child = common::kiln_command(
        &[
            "build",
            web.to_str().unwrap(),
            "--out",
            out.path().join("killed").to_str().unwrap(),
        ],
        &[],
        store.path(),
    )
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null())
    .spawn()
    .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(8));
    child.kill().unwrap();
    child.wait().unwrap();

    let builds: Vec<std::thread::JoinHandle<serde_json::Value>> = ["one", "two"]
        .into_iter()
        .map(|name| {
            let (web, store, out) = (
                web.clone(),
                store.path().to_path_buf(),
                out.path().join(name),
            );
            std::thread::spawn(move || build_as_pid_1(&web, &store, &out))
        })
        .collect();
    let reports: Vec<serde_json::Value> = builds.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(reports[0]["layers"], reports[1]["layers"]);
    assert_eq!(
        reports[0]["outputs"][0]["digest"],
        reports[1]["outputs"][0]["digest"]
    );
    for r in &reports {
        assert_eq!(r["pid"], 1, "not in its own PID namespace: {r}");
    }
    let leftovers: Vec<_> = std::fs::read_dir(store.path().join("rootfs-v2"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "temporary trees left: {leftovers:?}");
}

/// `kiln build --json` as pid 1 of a new PID namespace (with its own /proc),
/// as in a container; the report gains the pid the build saw.
fn build_as_pid_1(dir: &Path, store: &Path, out: &Path) -> serde_json::Value {
    let script = format!(
        "echo $$ >&2; exec {} build {} --out {} --json",
        env!("CARGO_BIN_EXE_kiln"),
        dir.display(),
        out.display()
    );
    let o = Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc", "sh", "-c", &script])
        .env("KILN_CACHE", store)
        .env_remove("KILN_MIRROR")
        .env_remove("KILN_SECURITY_MIRROR")
        .env_remove("KILN_CATALOG")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "kiln build as pid 1: {stderr}");
    let mut report: serde_json::Value = serde_json::from_slice(&o.stdout).expect("--json");
    report["pid"] = stderr
        .lines()
        .next()
        .unwrap_or("")
        .trim()
        .parse::<u32>()
        .unwrap_or(0)
        .into();
    report
}

/// A build's progress reaches a log (stderr not a terminal) as plain lines,
/// with no bar or terminal escapes; `--json` keeps stderr quiet.
#[test]
fn net_root_progress_reaches_logs_as_plain_lines() {
    let ex = examples();
    let base = ex.path().join("base");
    let out = tempfile::tempdir().unwrap();
    let args = |json: bool| {
        let mut a = vec![
            "build".to_string(),
            base.display().to_string(),
            "--format".into(),
            "tar".into(),
            "--out".into(),
            out.path()
                .join(if json { "json" } else { "plain" })
                .display()
                .to_string(),
        ];
        if json {
            a.push("--json".into());
        }
        a
    };
    let plain: Vec<String> = args(false);
    let r = kiln(&plain.iter().map(String::as_str).collect::<Vec<_>>(), &[]);
    r.assert_exit(0, &["  base: writing the rootfs tar\n"]);
    assert!(!r.stderr.contains('\x1b'), "{:?}", r.stderr);
    assert!(r.stdout.contains("built base 1.0.0"), "{}", r.stdout);
    let json: Vec<String> = args(true);
    let r = kiln(&json.iter().map(String::as_str).collect::<Vec<_>>(), &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stderr, "");
}

#[test]
fn offline_build_lists_exactly_the_missing_packages() {
    let store = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let r = kiln_with_store(
        &[
            "build",
            repo().join("examples/base").to_str().unwrap(),
            "--offline",
            "--out",
            out.path().to_str().unwrap(),
        ],
        &[],
        store.path(),
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    let lock: toml::Table =
        toml::from_str(&std::fs::read_to_string(repo().join("examples/base/kiln.lock")).unwrap())
            .unwrap();
    let count = lock["package"].as_array().unwrap().len();
    assert!(
        r.stderr.contains(&format!("lacks {count} package(s)")),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("hint: run once without --offline"),
        "{}",
        r.stderr
    );
}

/// A `[[run]]` step with `network = true` is non-hermetic: the lock inputs
/// and the provenance say so, a plain rebuild reuses its tree, and
/// `--refresh-network-steps` builds it again.
#[test]
fn net_root_a_networked_step_is_marked_and_refreshed_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let def = dir.path().join("def");
    std::fs::create_dir_all(&def).unwrap();
    std::fs::write(
        def.join("kiln.toml"),
        "[image]\nname = \"netstep\"\nversion = \"1\"\n[base]\ndistro = \"debian\"\nsuite = \"bookworm\"\nvariant = \"minbase\"\n\n[[run]]\ncommand = \"true\"\nnetwork = true\n\n[outputs]\nformats = [\"tar\"]\n",
    )
    .unwrap();
    let store = common::store();
    let r = kiln_with_store(&["lock", def.to_str().unwrap()], &[], &store);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lock = std::fs::read_to_string(def.join("kiln.lock")).unwrap();
    assert!(lock.contains("non_hermetic = [1]"), "{lock}");
    let out = dir.path().join("out");
    let key = |report: &serde_json::Value| stages_json(report, "rootfs", "netstep")["key"].clone();
    let (_, first) = build(&def, &store, &out);
    let (_, second) = build(&def, &store, &out);
    assert!(stages(&second)[&("rootfs".to_string(), "netstep".to_string())]);
    let r = kiln_with_store(
        &[
            "build",
            def.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--json",
            "--refresh-network-steps",
        ],
        &[],
        &store,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let third: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert!(!stages(&third)[&("rootfs".to_string(), "netstep".to_string())]);
    assert_eq!(key(&first), key(&third));
    let provenance: serde_json::Value =
        serde_json::from_slice(&std::fs::read(third["provenance"].as_str().unwrap()).unwrap())
            .unwrap();
    let params = &provenance["predicate"]["buildDefinition"]["externalParameters"]["parameters"];
    assert_eq!(params["hermetic"], false, "{params}");
    assert_eq!(
        params["nonHermeticRunSteps"],
        serde_json::json!([1]),
        "{params}"
    );
}
