//! `kiln lock` against Debian's real archive (the mirror from this host's
//! apt sources). The oracle is apt itself, asked in the same run through
//! tests/oracle/apt-resolve: the archive moves, so nothing here names a
//! version.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use common::{copy_dir, kiln, repo, write};

fn locked(dir: &Path) -> BTreeMap<String, (String, String)> {
    let text = std::fs::read_to_string(dir.join("kiln.lock")).expect("reading kiln.lock");
    let lock: toml::Table = toml::from_str(&text).expect("parsing kiln.lock");
    lock.get("package")
        .and_then(|p| p.as_array())
        .map(|pkgs| {
            pkgs.iter()
                .map(|p| {
                    let s = |k: &str| p[k].as_str().unwrap_or_default().to_string();
                    (s("name"), (s("version"), s("suite")))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// What apt installs into an empty system for the same request.
fn apt(suite: &str, variant: &str, install: &[&str]) -> BTreeMap<String, String> {
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("apt-oracle");
    let out = common::run_tool(
        Command::new("bash")
            .arg(repo().join("tests/oracle/apt-resolve"))
            .args([
                "--cache",
                cache.to_str().unwrap(),
                "--suite",
                suite,
                "--variant",
                variant,
            ])
            .args(install),
    );
    out.lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

fn same_as_apt(suite: &str, variant: &str, install: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let list: Vec<String> = install.iter().map(|p| format!("\"{p}\"")).collect();
    write(
        &dir.path().join("kiln.toml"),
        &format!(
            "[image]\nname = \"oracle\"\nversion = \"1\"\n[base]\ndistro = \"debian\"\nsuite = \"{suite}\"\nvariant = \"{variant}\"\n[packages]\ninstall = [{}]\n",
            list.join(", ")
        ),
    );
    let r = kiln(&["lock", dir.path().to_str().unwrap()], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let ours = locked(dir.path());
    let theirs = apt(suite, variant, install);
    let only_ours: Vec<&String> = ours.keys().filter(|n| !theirs.contains_key(*n)).collect();
    let only_apt: Vec<&String> = theirs.keys().filter(|n| !ours.contains_key(*n)).collect();
    assert!(
        only_ours.is_empty() && only_apt.is_empty(),
        "{suite} {variant} {install:?}: only kiln: {only_ours:?}; only apt: {only_apt:?}"
    );
    for (name, (version, suite_of)) in &ours {
        let apt_version = &theirs[name];
        // The one allowed difference: kiln took a newer version from an
        // -updates or -security suite than the lists apt last fetched.
        let newer_from_updates = (suite_of.ends_with("-updates")
            || suite_of.ends_with("-security"))
            && parse(version) > parse(apt_version);
        assert!(
            version == apt_version || newer_from_updates,
            "{name}: kiln locked {version} ({suite_of}), apt installs {apt_version}"
        );
    }
    assert!(
        ours.len() > 50,
        "a base system has more than {} packages",
        ours.len()
    );
}

#[test]
fn net_oracle_bookworm_minbase() {
    same_as_apt("bookworm", "minbase", &[]);
}

#[test]
fn net_oracle_bookworm_openssh_server() {
    same_as_apt("bookworm", "minbase", &["openssh-server"]);
}

#[test]
fn net_oracle_bookworm_nginx_light_curl() {
    same_as_apt("bookworm", "minbase", &["nginx-light", "curl"]);
}

#[test]
fn net_oracle_bookworm_standard() {
    same_as_apt("bookworm", "standard", &[]);
}

#[test]
fn net_oracle_trixie_minbase_curl() {
    same_as_apt("trixie", "minbase", &["curl"]);
}

#[test]
fn net_examples_lock_to_the_same_bytes_and_committed_locks_are_fresh() {
    let root = tempfile::tempdir().unwrap();
    for ex in ["base", "web"] {
        let dst = root.path().join(ex);
        copy_dir(&repo().join("examples").join(ex), &dst);
        let _ = std::fs::remove_file(dst.join("kiln.lock"));
    }
    let lock = |ex: &str| {
        let r = kiln(&["lock", root.path().join(ex).to_str().unwrap()], &[]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        std::fs::read(root.path().join(ex).join("kiln.lock")).unwrap()
    };
    let (base1, web1) = (lock("base"), lock("web"));
    let (base2, web2) = (lock("base"), lock("web"));
    assert_eq!(base1, base2);
    assert_eq!(web1, web2);
    let web = locked(&root.path().join("web"));
    assert!(web.contains_key("nginx-light"));
    assert!(
        !web.contains_key("libc6"),
        "the child locks only what it adds"
    );

    // What is committed matches its definitions (no network needed).
    for ex in ["base", "web"] {
        let r = kiln(
            &[
                "lock",
                "--check",
                repo().join("examples").join(ex).to_str().unwrap(),
            ],
            &[],
        );
        assert_eq!(r.code, 0, "examples/{ex}: {}{}", r.stdout, r.stderr);
    }
}

/// mmdebstrap's two stages decide this one: the essential set takes mawk
/// for base-files' awk before gawk is asked for.
#[test]
fn net_oracle_bookworm_essential_gawk() {
    same_as_apt("bookworm", "essential", &["gawk"]);
}

/// A version either side cannot parse is a failure, never "newer".
fn parse(version: &str) -> debversion::Version {
    version
        .parse()
        .unwrap_or_else(|e| panic!("{version}: not a Debian version: {e:?}"))
}
