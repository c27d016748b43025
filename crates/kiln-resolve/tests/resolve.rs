//! The resolver against small hand-written indices: each test pins one rule
//! of apt's that kiln must follow, and the error messages users read.

use std::collections::BTreeMap;

use kiln_deb::packages::parse_packages;
use kiln_resolve::{Reason, Request, ResolveError, Seed, Universe, Variant, resolve};

fn stanza(name: &str, version: &str, extra: &str) -> String {
    format!(
        "Package: {name}\nVersion: {version}\nArchitecture: amd64\n{extra}Filename: pool/{name}_{version}.deb\nSize: 1\nSHA256: {}\n\n",
        "0".repeat(64)
    )
}

/// (name, version, extra control fields)
type Stanza<'a> = (&'a str, &'a str, &'a str);

fn universe(suites: &[(&str, &[Stanza])]) -> Universe {
    Universe::new(
        suites
            .iter()
            .map(|(suite, pkgs)| {
                let text: String = pkgs.iter().map(|(n, v, e)| stanza(n, v, e)).collect();
                (
                    suite.to_string(),
                    parse_packages(&text, suite, "amd64").unwrap(),
                )
            })
            .collect(),
    )
}

fn ask(names: &[&str]) -> Request {
    Request {
        seeds: names
            .iter()
            .map(|n| match n.split_once('=') {
                Some((n, v)) => Seed {
                    name: n.into(),
                    pin: Some(v.parse().unwrap()),
                    reason: Reason::Requested,
                },
                None => Seed {
                    name: n.to_string(),
                    pin: None,
                    reason: Reason::Requested,
                },
            })
            .collect(),
        ..Request::default()
    }
}

fn names(u: &Universe, r: &Request) -> Vec<String> {
    resolve(u, r)
        .unwrap()
        .packages
        .into_iter()
        .map(|p| format!("{}={}", p.name, p.version))
        .collect()
}

fn render(e: &ResolveError) -> String {
    match e.hint() {
        Some(h) => format!("error: {e}\nhint: {h}"),
        None => format!("error: {e}"),
    }
}

#[test]
fn newest_version_across_suites_wins() {
    let u = universe(&[
        (
            "bookworm",
            &[("libc6", "2.36-9", ""), ("tool", "1.0", "Depends: libc6\n")],
        ),
        ("bookworm-security", &[("libc6", "2.36-9+deb12u4", "")]),
    ]);
    assert_eq!(
        names(&u, &ask(&["tool"])),
        ["libc6=2.36-9+deb12u4", "tool=1.0"]
    );
    let r = resolve(&u, &ask(&["tool"])).unwrap();
    assert_eq!(r.packages[0].suite, "bookworm-security");
    assert_eq!(r.packages[0].reason, Reason::Dependency);
    assert!(r.packages[0].needed_by.contains("tool"));
}

#[test]
fn first_installable_alternative_is_chosen() {
    let u = universe(&[(
        "s",
        &[
            ("app", "1", "Depends: missing | b (>= 2) | c | d\n"),
            ("b", "1", ""),
            ("c", "1", ""),
            ("d", "1", ""),
        ],
    )]);
    assert_eq!(names(&u, &ask(&["app"])), ["app=1", "c=1"]);
}

#[test]
fn an_alternative_already_chosen_satisfies_the_dependency() {
    let u = universe(&[(
        "s",
        &[
            ("app", "1", "Depends: a | b\n"),
            ("a", "1", ""),
            ("b", "1", ""),
        ],
    )]);
    // Both are named by the user, so apt marks b before following app's dependencies.
    assert_eq!(names(&u, &ask(&["app", "b"])), ["app=1", "b=1"]);
}

#[test]
fn virtual_packages_prefer_essential_then_priority() {
    let u = universe(&[(
        "s",
        &[
            ("app", "1", "Depends: awk\n"),
            ("gawk", "1", "Priority: optional\nProvides: awk\n"),
            ("mawk", "1", "Priority: required\nProvides: awk\n"),
            (
                "busybox-awk",
                "1",
                "Priority: optional\nEssential: yes\nProvides: awk\n",
            ),
        ],
    )]);
    assert_eq!(names(&u, &ask(&["app"])), ["app=1", "busybox-awk=1"]);
}

#[test]
fn versioned_provides_satisfy_versioned_dependencies() {
    let u = universe(&[(
        "s",
        &[
            ("app", "1", "Depends: abi (>= 2)\n"),
            ("old", "1", "Provides: abi\n"),
            ("new", "1", "Provides: abi (= 3)\n"),
        ],
    )]);
    assert_eq!(names(&u, &ask(&["app"])), ["app=1", "new=1"]);
}

#[test]
fn conflicting_alternative_is_skipped() {
    let u = universe(&[(
        "s",
        &[
            ("app", "1", "Depends: mta-a | mta-b\n"),
            ("mta-a", "1", "Conflicts: base\n"),
            ("mta-b", "1", ""),
            ("base", "1", ""),
        ],
    )]);
    assert_eq!(
        names(&u, &ask(&["base", "app"])),
        ["app=1", "base=1", "mta-b=1"]
    );
}

#[test]
fn recommends_follow_only_when_asked() {
    let u = universe(&[(
        "s",
        &[
            ("app", "1", "Recommends: extra, gone\n"),
            ("extra", "1", ""),
        ],
    )]);
    assert_eq!(names(&u, &ask(&["app"])), ["app=1"]);
    let mut r = ask(&["app"]);
    r.recommends = true;
    assert_eq!(names(&u, &r), ["app=1", "extra=1"]);
}

#[test]
fn pins_and_locked_versions_choose_the_candidate() {
    let u = universe(&[
        ("s", &[("a", "1", ""), ("b", "1", "Depends: a\n")]),
        (
            "s-updates",
            &[("a", "2", ""), ("b", "2", "Depends: a (>= 2)\n")],
        ),
    ]);
    assert_eq!(names(&u, &ask(&["b=1"])), ["a=2", "b=1"]);
    let mut r = ask(&["b"]);
    r.prefer = BTreeMap::from([
        ("a".into(), "1".parse().unwrap()),
        ("b".into(), "1".parse().unwrap()),
    ]);
    assert_eq!(names(&u, &r), ["a=1", "b=1"]);
    // A locked version the archive no longer has moves to the newest.
    r.prefer.insert("b".into(), "0.5".parse().unwrap());
    r.prefer.remove("a");
    assert_eq!(names(&u, &r), ["a=2", "b=2"]);
}

#[test]
fn parent_packages_are_fixed() {
    let u = universe(&[(
        "s",
        &[
            ("libc6", "2", ""),
            ("app", "1", "Depends: libc6 (>= 2)\n"),
            ("tool", "1", "Depends: libc6\n"),
        ],
    )]);
    let mut r = ask(&["tool"]);
    r.installed = BTreeMap::from([("libc6".into(), "1".parse().unwrap())]);
    assert_eq!(names(&u, &r), ["tool=1"]);
    let mut r = ask(&["app"]);
    r.installed = BTreeMap::from([("libc6".into(), "1".parse().unwrap())]);
    let e = resolve(&u, &r).unwrap_err();
    insta::assert_snapshot!(render(&e), @r"
    error: cannot install app: app 1 → libc6 2 is needed, but the parent image fixes libc6 at 1
    hint: rebuild the parent: run `kiln lock --update libc6` in the parent's directory, then lock this image again
    ");
}

#[test]
fn variant_seeds_follow_mmdebstrap() {
    let u = universe(&[(
        "s",
        &[
            ("base-files", "1", "Essential: yes\nPriority: required\n"),
            ("mawk", "1", "Priority: required\n"),
            ("apt", "1", "Priority: important\n"),
            ("less", "1", "Priority: important\n"),
            ("man-db", "1", "Priority: standard\n"),
            ("vim", "1", "Priority: optional\n"),
        ],
    )]);
    let seeds = |v: Variant| -> Vec<String> { v.seeds(&u).into_iter().map(|s| s.name).collect() };
    assert_eq!(seeds(Variant::Essential), ["base-files"]);
    assert_eq!(seeds(Variant::Apt), ["base-files", "apt"]);
    assert_eq!(seeds(Variant::Required), ["base-files", "mawk", "apt"]);
    assert_eq!(
        seeds(Variant::Important),
        ["apt", "base-files", "less", "mawk"]
    );
    assert_eq!(
        seeds(Variant::Standard),
        ["apt", "base-files", "less", "man-db", "mawk"]
    );
}

#[test]
fn unknown_package_names_the_closest() {
    let u = universe(&[(
        "s",
        &[
            ("nginx-light", "1", ""),
            ("nginx-full", "1", ""),
            ("curl", "1", ""),
        ],
    )]);
    let e = resolve(&u, &ask(&["nginx-lite"])).unwrap_err();
    insta::assert_snapshot!(render(&e), @r"
    error: unknown package `nginx-lite`: no suite offers it
    hint: did you mean `nginx-light`, `nginx-full`?
    ");
}

#[test]
fn unsatisfiable_request_shows_the_chain() {
    let u = universe(&[
        (
            "bookworm",
            &[
                ("nginx-light", "1.22", "Depends: libnginx-mod-x\n"),
                ("libnginx-mod-x", "1.22", "Depends: libc6 (>= 2.38)\n"),
                ("libc6", "2.36-9", ""),
            ],
        ),
        ("bookworm-security", &[("libc6", "2.36-9+deb12u4", "")]),
    ]);
    let e = resolve(&u, &ask(&["nginx-light"])).unwrap_err();
    insta::assert_snapshot!(render(&e), @r"
    error: cannot install nginx-light: nginx-light 1.22 → libnginx-mod-x 1.22 depends on libc6 (>= 2.38); bookworm-security has libc6 2.36-9+deb12u4
    hint: a pin or the suite may be too old for this package; try without pins or a newer suite
    ");
}

#[test]
fn pinned_version_the_archive_no_longer_has() {
    let u = universe(&[("bookworm", &[("curl", "7.88.1-10+deb12u12", "")])]);
    let e = resolve(&u, &ask(&["curl=7.88.1-10+deb12u5"])).unwrap_err();
    insta::assert_snapshot!(render(&e), @r"
    error: curl=7.88.1-10+deb12u5 is not in the archive (it has 7.88.1-10+deb12u12 (bookworm))
    hint: the archive keeps only current versions; drop the pin (`curl`) or pin one it has
    ");
}

#[test]
fn virtual_request_with_several_providers_is_refused() {
    let u = universe(&[(
        "s",
        &[
            ("gawk", "1", "Provides: awk\n"),
            ("mawk", "1", "Provides: awk\n"),
        ],
    )]);
    let e = resolve(&u, &ask(&["awk"])).unwrap_err();
    insta::assert_snapshot!(render(&e), @r"
    error: `awk` is a virtual package provided by gawk, mawk
    hint: name one of them in [packages].install, e.g. `gawk`
    ");
    let u = universe(&[("s", &[("mawk", "1", "Provides: awk\n")])]);
    assert_eq!(names(&u, &ask(&["awk"])), ["mawk=1"]);
}

#[test]
fn the_essential_set_is_resolved_before_the_rest() {
    // mmdebstrap installs the essential set first: base-files' need for an
    // awk is met by mawk before the user's gawk is considered.
    let u = universe(&[(
        "s",
        &[
            ("base-files", "1", "Essential: yes\nDepends: awk\n"),
            ("mawk", "1", "Priority: required\nProvides: awk\n"),
            ("gawk", "1", "Priority: optional\nProvides: awk\n"),
        ],
    )]);
    let mut r = ask(&["gawk"]);
    r.seeds.splice(0..0, Variant::Essential.seeds(&u));
    assert_eq!(names(&u, &r), ["base-files=1", "gawk=1", "mawk=1"]);
}
