//! What every catalog must do, whatever database holds it. Each case takes
//! the location of a fresh, empty catalog; `main.rs` runs each against
//! SQLite and against PostgreSQL.

use std::collections::{HashMap, HashSet};
use std::process::Command;
use std::sync::{Arc, Barrier};

use kiln_catalog::{BuildFilter, Catalog, Error, NewPromotion, PromotionKind, SCHEMA_VERSION};

use crate::fixtures::{build, digest, digest_with_prefix, promotion, raw_execute, test};

fn open(location: &str) -> Catalog {
    Catalog::open(location).unwrap()
}

fn ids(builds: &[kiln_catalog::Build]) -> Vec<String> {
    builds.iter().map(|b| b.id.clone()).collect()
}

pub fn record_and_resolve(location: &str) {
    let c = open(location);
    let web1 = c.record_build(&build("web", "1.0.0", 100)).unwrap();
    let web2 = c.record_build(&build("web", "1.1.0", 300)).unwrap();
    let db = c.record_build(&build("db", "1.0.0", 200)).unwrap();
    assert_eq!(web1.outputs.len(), 2);
    assert_eq!(web1.outputs[0].format, "raw");
    assert_eq!(web1.outputs[1].format, "qcow2");
    assert_eq!(web1.last_test, None);

    let hex = &web1.id["sha256:".len()..];
    assert_eq!(c.resolve(&hex[..8]).unwrap().id, web1.id);
    assert_eq!(
        c.resolve(&format!("sha256:{}", &hex[..8])).unwrap().id,
        web1.id
    );
    assert_eq!(c.resolve(&hex[..8].to_uppercase()).unwrap().id, web1.id);
    assert_eq!(c.resolve(web1.id.as_str()).unwrap().id, web1.id);
    // An output's digest names the build it came from.
    let qcow2 = &db.outputs[1].digest;
    assert_eq!(c.resolve(&qcow2[..20]).unwrap().id, db.id);
    assert_eq!(c.resolve(&qcow2["sha256:".len()..]).unwrap().id, db.id);

    assert_eq!(c.resolve("web@1.0.0").unwrap().id, web1.id);
    assert_eq!(c.resolve("web@latest").unwrap().id, web2.id);
    assert_eq!(c.resolve("db@latest").unwrap().id, db.id);
    // The same version built again from other inputs: the newest wins.
    let rebuilt = c.record_build(&build("web", "1.0.0", 400)).unwrap();
    assert_ne!(rebuilt.id, web1.id);
    assert_eq!(c.resolve("web@1.0.0").unwrap().id, rebuilt.id);
    assert_eq!(c.resolve("web@latest").unwrap().id, rebuilt.id);

    for missing in ["web@9.9.9", "nosuch@latest", "ffff0000", "sha256:ffff0000"] {
        let e = c.resolve(missing).unwrap_err();
        assert!(matches!(e, Error::NotFound { .. }), "{missing}: {e}");
        assert!(e.is_user_error());
        assert!(e.hint().unwrap().contains("kiln images"), "{:?}", e.hint());
    }
    let e = c.resolve("web").unwrap_err();
    assert!(matches!(e, Error::BadReference { .. }), "{e}");
    assert!(e.to_string().contains("@VERSION or @latest"), "{e}");
    let e = c.resolve("abc").unwrap_err();
    assert!(e.to_string().contains("at least 4"), "{e}");
}

pub fn ambiguous_prefix(location: &str) {
    let c = open(location);
    let mut a = build("alpha", "1", 100);
    a.id = digest_with_prefix("abcd0", "a");
    let mut b = build("beta", "2", 200);
    b.id = digest_with_prefix("abcd1", "b");
    // A third build whose output, not id, shares the prefix.
    let mut g = build("gamma", "3", 300);
    g.outputs[0].digest = digest_with_prefix("abcd2", "g-raw");
    for x in [&a, &b, &g] {
        c.record_build(x).unwrap();
    }
    let e = c.resolve("abcd").unwrap_err();
    let Error::Ambiguous {
        count, candidates, ..
    } = &e
    else {
        panic!("expected ambiguity, got {e}");
    };
    assert_eq!(*count, 3);
    let text = e.to_string();
    for want in ["alpha@1", "beta@2", "gamma@3", "sha256:abcd0"] {
        assert!(text.contains(want), "{text}");
    }
    // Newest first, as everywhere.
    assert!(candidates[0].ends_with("gamma@3"), "{candidates:?}");
    assert!(e.is_user_error());
    assert!(e.hint().unwrap().contains("more digits"));
    assert_eq!(c.resolve("sha256:abcd1").unwrap().id, b.id);
    assert_eq!(c.resolve("abcd2").unwrap().id, g.id);
}

pub fn record_is_idempotent(location: &str) {
    let c = open(location);
    let first = build("web", "1.0.0", 100);
    c.record_build(&first).unwrap();

    // The same build recorded again at `at`, its outputs moved to `dir`.
    let again = |at: i64, dir: &str| {
        let mut again = first.clone();
        again.built_at = at;
        for o in &mut again.outputs {
            o.path = o.path.replace("/out/", dir);
        }
        c.record_build(&again).unwrap()
    };
    let b = again(300, "/out2/");
    assert_eq!((b.built_at, b.last_built_at), (100, 300));
    assert_eq!(b.outputs.len(), 2);
    assert!(b.outputs.iter().all(|o| o.path.contains("/out2/")), "{b:?}");

    // A recording from between the two, arriving last, changes no path.
    let b = again(200, "/stale/");
    assert_eq!((b.built_at, b.last_built_at), (100, 300));
    assert!(b.outputs.iter().all(|o| o.path.contains("/out2/")), "{b:?}");

    // An earlier time moves built_at back; a new format joins the others.
    let mut earliest = first.clone();
    earliest.built_at = 50;
    earliest.outputs = vec![crate::fixtures::output("web", "vmdk")];
    let b = c.record_build(&earliest).unwrap();
    assert_eq!((b.built_at, b.last_built_at), (50, 300));
    let formats: Vec<&str> = b.outputs.iter().map(|o| o.format.as_str()).collect();
    assert_eq!(formats.len(), 3, "{formats:?}");
    assert!(formats.contains(&"vmdk"));

    let all = c.builds(&BuildFilter::default()).unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0], c.get(first.id.as_str()).unwrap().unwrap());
}

pub fn records_are_checked(location: &str) {
    let c = open(location);
    let mut bad_id = build("web", "1", 1);
    bad_id.id = "sha256:1234".into();
    let e = c.record_build(&bad_id).unwrap_err();
    assert!(
        matches!(e, Error::InvalidRecord(_)) && !e.is_user_error(),
        "{e}"
    );
    let mut bad_name = build("Web_App", "1", 1);
    bad_name.name = "Web_App".into();
    let e = c.record_build(&bad_name).unwrap_err();
    assert!(matches!(e, Error::BadName { what: "image", .. }), "{e}");
    let mut twice = build("web", "1", 1);
    twice.outputs[1].format = "raw".into();
    assert!(matches!(
        c.record_build(&twice).unwrap_err(),
        Error::InvalidRecord(_)
    ));
    let mut orphan = build("web", "1", 1);
    orphan.parent = Some(digest("nowhere"));
    let e = c.record_build(&orphan).unwrap_err();
    assert!(matches!(e, Error::UnknownParent { .. }), "{e}");
    assert!(e.hint().unwrap().contains("parent"));
    // Nothing half-written.
    assert!(c.builds(&BuildFilter::default()).unwrap().is_empty());
}

pub fn builds_newest_first_and_filtered(location: &str) {
    let c = open(location);
    let a = c.record_build(&build("web", "1", 100)).unwrap();
    let b = c.record_build(&build("db", "1", 200)).unwrap();
    let d = c.record_build(&build("web", "2", 300)).unwrap();
    let mut tie = build("web", "3", 300);
    tie.id = digest_with_prefix("0000", "tie");
    let tie = c.record_build(&tie).unwrap();

    let all = c.builds(&BuildFilter::default()).unwrap();
    // Same time: by id.
    assert_eq!(
        ids(&all),
        [tie.id.as_str(), d.id.as_str(), b.id.as_str(), a.id.as_str()]
    );

    let web = c
        .builds(&BuildFilter {
            name: Some("web".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(ids(&web), [tie.id.as_str(), d.id.as_str(), a.id.as_str()]);
    let two = c
        .builds(&BuildFilter {
            limit: Some(2),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(ids(&two), [tie.id.as_str(), d.id.as_str()]);

    c.record_test(&a.id, &test(110, true)).unwrap();
    c.record_test(&b.id, &test(210, true)).unwrap();
    c.record_test(&b.id, &test(220, false)).unwrap();
    c.record_test(&d.id, &test(310, false)).unwrap();
    c.record_test(&d.id, &test(320, true)).unwrap();
    let passed = |p| {
        ids(&c
            .builds(&BuildFilter {
                passed: Some(p),
                ..Default::default()
            })
            .unwrap())
    };
    assert_eq!(passed(true), [d.id.as_str(), a.id.as_str()]);
    assert_eq!(passed(false), [b.id.as_str()]);

    c.promote(&promotion(&a.id, "prod", 400)).unwrap();
    c.promote(&NewPromotion {
        force: true,
        ..promotion(&b.id, "prod", 401)
    })
    .unwrap();
    c.promote(&promotion(&d.id, "staging", 402)).unwrap();
    // Replaced in prod: no longer there.
    c.promote(&promotion(&d.id, "prod", 403)).unwrap();
    let in_env = |env: &str| {
        ids(&c
            .builds(&BuildFilter {
                env: Some(env.into()),
                ..Default::default()
            })
            .unwrap())
    };
    assert_eq!(in_env("prod"), [d.id.as_str(), b.id.as_str()]);
    assert_eq!(in_env("staging"), [d.id.as_str()]);
    assert!(in_env("dev").is_empty());

    let combined = c
        .builds(&BuildFilter {
            name: Some("web".into()),
            env: Some("prod".into()),
            passed: Some(true),
            limit: Some(5),
        })
        .unwrap();
    assert_eq!(ids(&combined), [d.id.as_str()]);
    assert_eq!(combined[0].last_test.as_ref().unwrap().at, 320);
}

pub fn lineage_to_root(location: &str) {
    let c = open(location);
    let base = c.record_build(&build("base", "12", 100)).unwrap();
    let mut mid = build("runtime", "1", 200);
    mid.parent = Some(base.id.clone());
    let mid = c.record_build(&mid).unwrap();
    let mut app = build("app", "1", 300);
    app.parent = Some(mid.id.clone());
    let app = c.record_build(&app).unwrap();
    assert_eq!(app.parent.as_deref(), Some(mid.id.as_str()));

    assert_eq!(
        ids(&c.lineage(&app.id).unwrap()),
        [app.id.as_str(), mid.id.as_str(), base.id.as_str()]
    );
    assert_eq!(
        ids(&c.lineage(base.id.as_str()).unwrap()),
        [base.id.as_str()]
    );
    let e = c.lineage(&digest("nowhere")).unwrap_err();
    assert!(matches!(e, Error::UnknownBuild { .. }), "{e}");
}

pub fn manifest_roundtrip(location: &str) {
    let c = open(location);
    let mut b = build("web", "1", 100);
    b.manifest = (0..=255u8).cycle().take(100_000).collect();
    c.record_build(&b).unwrap();
    assert_eq!(c.manifest(b.id.as_str()).unwrap(), Some(b.manifest.clone()));
    let mut empty = build("web", "2", 200);
    empty.manifest = Vec::new();
    c.record_build(&empty).unwrap();
    assert_eq!(c.manifest(empty.id.as_str()).unwrap(), Some(Vec::new()));
    assert_eq!(c.manifest(&digest("nowhere")).unwrap(), None);
    assert_eq!(c.get(&digest("nowhere")).unwrap(), None);
}

pub fn tests_and_last_test(location: &str) {
    let c = open(location);
    let b = c.record_build(&build("web", "1", 100)).unwrap();
    assert!(c.tests(&b.id).unwrap().is_empty());
    let t1 = c.record_test(&b.id, &test(20, true)).unwrap();
    let mut slow = test(10, false);
    slow.boot_seconds = None;
    slow.accel = "kvm".into();
    let t0 = c.record_test(&b.id, &slow).unwrap();
    // Same time as t1 but recorded later: it is the last.
    let t2 = c.record_test(&b.id, &test(20, false)).unwrap();
    assert!(t0.id > t1.id && t2.id > t0.id);

    let all = c.tests(&b.id).unwrap();
    assert_eq!(all, [t0.clone(), t1, t2.clone()]);
    assert_eq!(all[0].boot_seconds, None);
    assert_eq!(all[0].accel, "kvm");
    assert_eq!(all[1].boot_seconds, Some(7.25));
    let report: serde_json::Value = serde_json::from_str(&all[1].report).unwrap();
    assert_eq!(report["passed"], true);

    let got = c.get(&b.id).unwrap().unwrap();
    assert_eq!(got.last_test, Some(t2));

    let e = c
        .record_test(&digest("nowhere"), &test(1, true))
        .unwrap_err();
    assert!(
        matches!(e, Error::UnknownBuild { .. }) && e.is_user_error(),
        "{e}"
    );
    assert!(matches!(
        c.tests(&digest("nowhere")).unwrap_err(),
        Error::UnknownBuild { .. }
    ));

    let json = serde_json::to_value(&got).unwrap();
    assert_eq!(json["last_test"]["passed"], false);
    assert_eq!(json["outputs"][0]["format"], "raw");
}

pub fn promote_and_rollback(location: &str) {
    let c = open(location);
    let a = c.record_build(&build("web", "1", 100)).unwrap();
    let b = c.record_build(&build("web", "2", 200)).unwrap();
    let d = c.record_build(&build("web", "3", 300)).unwrap();
    let db = c.record_build(&build("db", "1", 150)).unwrap();

    let p1 = c.promote(&promotion(&a.id, "prod", 1000)).unwrap();
    assert_eq!(
        (p1.seq, p1.kind, p1.previous.as_deref(), p1.forced),
        (1, PromotionKind::Promote, None, false)
    );
    assert_eq!((p1.name.as_str(), p1.version.as_str()), ("web", "1"));
    let p2 = c
        .promote(&NewPromotion {
            note: Some("ticket 42".into()),
            who: "alice".into(),
            ..promotion(&b.id, "prod", 1001)
        })
        .unwrap();
    assert_eq!(p2.previous.as_deref(), Some(a.id.as_str()));
    assert_eq!(p2.note.as_deref(), Some("ticket 42"));
    c.promote(&promotion(&d.id, "prod", 1002)).unwrap();
    c.promote(&promotion(&db.id, "prod", 1003)).unwrap();
    c.promote(&promotion(&a.id, "staging", 1004)).unwrap();

    // Rollbacks walk back: 3 → 2 → 1, then nothing before 1.
    let r1 = c.rollback("prod", "web", "bob", 1005).unwrap();
    assert_eq!(
        (r1.kind, r1.build.as_str(), r1.previous.as_deref()),
        (PromotionKind::Rollback, b.id.as_str(), Some(d.id.as_str()))
    );
    assert_eq!(
        (r1.who.as_str(), r1.at, r1.version.as_str()),
        ("bob", 1005, "2")
    );
    let r2 = c.rollback("prod", "web", "bob", 1006).unwrap();
    assert_eq!(r2.build, a.id);
    let e = c.rollback("prod", "web", "bob", 1007).unwrap_err();
    assert!(
        matches!(e, Error::NothingToRollBack { .. }) && e.is_user_error(),
        "{e}"
    );
    assert!(e.hint().unwrap().contains("kiln history prod"));

    // Forward again is a promotion; back to an older build that ran here
    // is a rollback even when asked for by name.
    let p = c.promote(&promotion(&d.id, "prod", 1008)).unwrap();
    assert_eq!(p.kind, PromotionKind::Promote);
    let p = c.promote(&promotion(&b.id, "prod", 1009)).unwrap();
    assert_eq!(
        (p.kind, p.previous.as_deref()),
        (PromotionKind::Rollback, Some(d.id.as_str()))
    );
    // Older, but never ran in staging: a promotion there.
    let p = c.promote(&promotion(&b.id, "staging", 1010)).unwrap();
    assert_eq!(p.kind, PromotionKind::Promote);
    let p = c.promote(&promotion(&a.id, "staging", 1011)).unwrap();
    assert_eq!(p.kind, PromotionKind::Rollback);

    let history = c.history("prod").unwrap();
    let summary: Vec<(i64, &str, PromotionKind)> = history
        .iter()
        .map(|p| (p.seq, p.version.as_str(), p.kind))
        .collect();
    use PromotionKind::{Promote as P, Rollback as R};
    assert_eq!(
        summary,
        [
            (1, "1", P),
            (2, "2", P),
            (3, "3", P),
            (4, "1", P),
            (5, "2", R),
            (6, "1", R),
            (7, "3", P),
            (8, "2", R),
        ]
    );
    assert_eq!(history[3].name, "db");
    assert_eq!(history[1].who, "alice");
    assert_eq!(c.history("staging").unwrap().len(), 3);
    assert!(c.history("dev").unwrap().is_empty());

    let where_: Vec<(String, String, String, i64)> = c
        .deployments(None)
        .unwrap()
        .into_iter()
        .map(|d| (d.env, d.name, d.version, d.since))
        .collect();
    let s = |x: &str| x.to_string();
    assert_eq!(
        where_,
        [
            (s("prod"), s("db"), s("1"), 1003),
            (s("prod"), s("web"), s("2"), 1009),
            (s("staging"), s("web"), s("1"), 1011),
        ]
    );
    let web = c.deployments(Some("web")).unwrap();
    assert_eq!(web.len(), 2);
    assert_eq!(web[0].build, b.id);
    assert_eq!(web[0].by, "ci");
    assert!(c.deployments(Some("nosuch")).unwrap().is_empty());

    let e = c.rollback("prod", "nosuch", "bob", 1).unwrap_err();
    assert!(
        matches!(e, Error::NotDeployed { .. }) && e.is_user_error(),
        "{e}"
    );
    let e = c
        .promote(&promotion(&digest("nowhere"), "prod", 1))
        .unwrap_err();
    assert!(matches!(e, Error::UnknownBuild { .. }), "{e}");
}

pub fn promote_refuses_failed_build(location: &str) {
    let c = open(location);
    let untested = c.record_build(&build("web", "1", 100)).unwrap();
    let failed = c.record_build(&build("web", "2", 200)).unwrap();
    let fixed = c.record_build(&build("web", "3", 300)).unwrap();
    c.record_test(&failed.id, &test(210, true)).unwrap();
    c.record_test(&failed.id, &test(220, false)).unwrap();
    c.record_test(&fixed.id, &test(310, false)).unwrap();
    c.record_test(&fixed.id, &test(320, true)).unwrap();

    // Never tested: allowed.
    c.promote(&promotion(&untested.id, "prod", 1000)).unwrap();
    let e = c.promote(&promotion(&failed.id, "prod", 1001)).unwrap_err();
    assert!(matches!(e, Error::LastTestFailed { .. }), "{e}");
    assert!(e.is_user_error());
    assert!(e.hint().unwrap().contains("--force"), "{:?}", e.hint());
    assert!(e.to_string().contains("web@2"), "{e}");
    assert_eq!(c.history("prod").unwrap().len(), 1);

    let forced = c
        .promote(&NewPromotion {
            force: true,
            note: Some("hotfix, test flaky".into()),
            ..promotion(&failed.id, "prod", 1002)
        })
        .unwrap();
    assert!(forced.forced);
    // Force on a build that needs none is not recorded as forced.
    let p = c
        .promote(&NewPromotion {
            force: true,
            ..promotion(&fixed.id, "prod", 1003)
        })
        .unwrap();
    assert!(!p.forced);
}

pub fn promote_already_running(location: &str) {
    let c = open(location);
    let a = c.record_build(&build("web", "1", 100)).unwrap();
    c.promote(&promotion(&a.id, "prod", 1000)).unwrap();
    let e = c.promote(&promotion(&a.id, "prod", 1001)).unwrap_err();
    assert!(
        matches!(e, Error::AlreadyRunning { .. }) && e.is_user_error(),
        "{e}"
    );
    assert!(e.to_string().contains("already running in prod"), "{e}");
    assert_eq!(c.history("prod").unwrap().len(), 1);
}

pub fn bad_env_name(location: &str) {
    let c = open(location);
    let a = c.record_build(&build("web", "1", 100)).unwrap();
    for env in ["Prod", "", "-x", "a b", "prod/eu"] {
        let e = c.promote(&promotion(&a.id, env, 1)).unwrap_err();
        assert!(
            matches!(
                e,
                Error::BadName {
                    what: "environment",
                    ..
                }
            ),
            "{env}: {e}"
        );
        assert!(e.is_user_error());
        assert!(e.hint().unwrap().contains("lowercase"));
        assert!(c.history(env).is_err());
        assert!(c.rollback(env, "web", "x", 1).is_err());
        let filter = BuildFilter {
            env: Some(env.into()),
            ..Default::default()
        };
        assert!(matches!(c.builds(&filter), Err(Error::BadName { .. })));
    }
    assert!(c.deployments(None).unwrap().is_empty());
}

pub fn reopen_is_noop(location: &str) {
    let c = open(location);
    assert_eq!(c.schema_version().unwrap(), SCHEMA_VERSION);
    let a = c.record_build(&build("web", "1", 100)).unwrap();
    c.promote(&promotion(&a.id, "prod", 1000)).unwrap();
    drop(c);
    for _ in 0..3 {
        let c = open(location);
        assert_eq!(c.schema_version().unwrap(), SCHEMA_VERSION);
        assert_eq!(c.get(a.id.as_str()).unwrap().unwrap(), a);
        assert_eq!(c.history("prod").unwrap().len(), 1);
    }
}

pub fn pushes_recorded_per_reference(location: &str) {
    let c = open(location);
    let web = c.record_build(&build("web", "1.0.0", 100)).unwrap();
    let at = |reference: &str, tags: &[&str], at: i64| kiln_catalog::Push {
        reference: reference.to_string(),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        at,
    };
    let here = format!("127.0.0.1:5000/team/web@{}", digest("image"));
    let there = format!("127.0.0.1:5001/web@{}", digest("image"));
    c.record_push(&web.id, &at(&here, &["1.0.0"], 200)).unwrap();
    c.record_push(&web.id, &at(&there, &["stable"], 300))
        .unwrap();
    // The same place again: its tags and time move, no second row.
    c.record_push(&web.id, &at(&here, &["1.0.0", "build-x"], 400))
        .unwrap();
    assert_eq!(
        c.pushes(&web.id).unwrap(),
        [
            at(&there, &["stable"], 300),
            at(&here, &["1.0.0", "build-x"], 400)
        ]
    );
    let e = c
        .record_push(&digest("nosuch"), &at(&here, &[], 500))
        .unwrap_err();
    assert!(matches!(e, Error::UnknownBuild { .. }), "{e}");
}

pub fn migrates_older_schema(location: &str) {
    let old = Catalog::open_at(location, SCHEMA_VERSION - 1).unwrap();
    assert_eq!(old.schema_version().unwrap(), SCHEMA_VERSION - 1);
    let a = old.record_build(&build("web", "1", 100)).unwrap();
    old.record_test(&a.id, &test(110, true)).unwrap();
    drop(old);

    let c = open(location);
    assert_eq!(c.schema_version().unwrap(), SCHEMA_VERSION);
    assert_eq!(
        c.get(a.id.as_str()).unwrap().unwrap(),
        a.clone().with_test(&c)
    );
    c.promote(&promotion(&a.id, "prod", 1000)).unwrap();
    assert_eq!(c.deployments(None).unwrap().len(), 1);
}

trait WithTest {
    fn with_test(self, c: &Catalog) -> Self;
}

impl WithTest for kiln_catalog::Build {
    fn with_test(mut self, c: &Catalog) -> Self {
        self.last_test = c.tests(&self.id).unwrap().pop();
        self
    }
}

pub fn refuses_newer_schema(location: &str) {
    drop(open(location));
    raw_execute(
        location,
        "INSERT INTO schema_migrations (version, name, applied_at) VALUES (99, 'future', 0)",
    );
    let e = Catalog::open(location).unwrap_err();
    assert!(matches!(e, Error::SchemaTooNew { found: 99, .. }), "{e}");
    assert!(e.to_string().contains("schema version 99"), "{e}");
    assert!(e.is_user_error());
    assert!(e.hint().unwrap().contains("upgrade kiln"), "{:?}", e.hint());
}

/// Many catalogs opened at once on one that does not exist yet.
pub fn concurrent_first_open(location: &str) {
    let barrier = Arc::new(Barrier::new(6));
    let threads: Vec<_> = (0..6)
        .map(|i| {
            let barrier = Arc::clone(&barrier);
            let location = location.to_string();
            std::thread::spawn(move || {
                barrier.wait();
                let c = Catalog::open(&location).unwrap();
                c.record_build(&build("web", &i.to_string(), i)).unwrap();
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let c = open(location);
    assert_eq!(c.schema_version().unwrap(), SCHEMA_VERSION);
    assert_eq!(c.builds(&BuildFilter::default()).unwrap().len(), 6);
}

pub const WORKERS: usize = 8;
pub const PER_WORKER: usize = 25;

/// One writer's share: builds with outputs, each followed by its test.
pub fn write_builds(location: &str, worker: usize, count: usize) {
    let c = Catalog::open(location).unwrap();
    for i in 0..count {
        let at = (worker * 1000 + i) as i64;
        let b = c
            .record_build(&build(&format!("w{worker}"), &i.to_string(), at))
            .unwrap();
        c.record_test(&b.id, &test(at + 1, i % 3 != 0)).unwrap();
    }
}

/// Half the writers are threads, half other processes (this test binary
/// run again, see `worker_process`), each with its own connection.
pub fn concurrent_writers(location: &str) {
    let exe = std::env::current_exe().unwrap();
    let barrier = Arc::new(Barrier::new(WORKERS / 2));
    let mut processes = Vec::new();
    for worker in WORKERS / 2..WORKERS {
        processes.push(
            Command::new(&exe)
                .args([
                    "worker_process",
                    "--exact",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(
                    crate::WORKER_ENV,
                    format!("{location}\n{worker}\n{PER_WORKER}"),
                )
                .spawn()
                .unwrap(),
        );
    }
    let threads: Vec<_> = (0..WORKERS / 2)
        .map(|worker| {
            let barrier = Arc::clone(&barrier);
            let location = location.to_string();
            std::thread::spawn(move || {
                barrier.wait();
                write_builds(&location, worker, PER_WORKER);
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    for mut p in processes {
        assert!(p.wait().unwrap().success(), "a writer process failed");
    }

    let c = open(location);
    let all = c.builds(&BuildFilter::default()).unwrap();
    assert_eq!(all.len(), WORKERS * PER_WORKER);
    let mut names = HashMap::<String, usize>::new();
    for b in &all {
        *names.entry(b.name.clone()).or_default() += 1;
        assert_eq!(b.outputs.len(), 2, "{}", b.id);
        let t = b.last_test.as_ref().expect("every build was tested");
        assert_eq!(t.at, b.built_at + 1);
        assert_eq!(c.tests(b.id.as_str()).unwrap().len(), 1);
    }
    assert_eq!(names.len(), WORKERS);
    assert!(names.values().all(|&n| n == PER_WORKER));
    let unique: HashSet<&str> = all.iter().map(|b| b.id.as_str()).collect();
    assert_eq!(unique.len(), all.len());
}

/// Promotions and rollbacks racing in one environment still form one chain.
pub fn concurrent_promotions(location: &str) {
    const THREADS: usize = 6;
    const EACH: usize = 5;
    let c = open(location);
    let mut all = Vec::new();
    for i in 0..THREADS * EACH {
        all.push(
            c.record_build(&build("web", &i.to_string(), i as i64))
                .unwrap()
                .id,
        );
    }
    let barrier = Arc::new(Barrier::new(THREADS));
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let barrier = Arc::clone(&barrier);
            let location = location.to_string();
            let mine: Vec<String> = all.iter().skip(t).step_by(THREADS).cloned().collect();
            std::thread::spawn(move || {
                let c = Catalog::open(&location).unwrap();
                barrier.wait();
                let mut done = 0;
                for (i, id) in mine.iter().enumerate() {
                    match c.promote(&promotion(id, "prod", i as i64)) {
                        Ok(_) => done += 1,
                        Err(e) => panic!("promote {id}: {e}"),
                    }
                    if i % 2 == 1 {
                        match c.rollback("prod", "web", &format!("t{t}"), i as i64) {
                            Ok(_) => done += 1,
                            Err(Error::NothingToRollBack { .. }) => {}
                            Err(e) => panic!("rollback: {e}"),
                        }
                    }
                }
                done
            })
        })
        .collect();
    let done: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();

    let history = c.history("prod").unwrap();
    assert_eq!(history.len(), done);
    assert!(done >= THREADS * EACH);
    for (i, p) in history.iter().enumerate() {
        assert_eq!(p.seq, i as i64 + 1);
        let before = i.checked_sub(1).map(|j| history[j].build.as_str());
        assert_eq!(p.previous.as_deref(), before, "record {}", p.seq);
        assert_ne!(Some(p.build.as_str()), before);
    }
    let now = c.deployments(Some("web")).unwrap();
    assert_eq!(now.len(), 1);
    assert_eq!(now[0].build, history.last().unwrap().build);
}

pub fn rollouts_recorded_and_continued(location: &str) {
    use kiln_catalog::{NewRollout, RolloutImage};
    let c = open(location);
    let base = c.record_build(&build("base", "1", 100)).unwrap();
    let new = |trigger: &str, at: i64| NewRollout {
        dir: "/srv/fleet".into(),
        trigger: trigger.into(),
        options: r#"{"max_parallel":2}"#.into(),
        who: "ci".into(),
        at,
    };
    let image = |name: &str, wave: i64, status: &str, at: i64| RolloutImage {
        name: name.into(),
        wave,
        reason: "named".into(),
        status: status.into(),
        at,
        ..RolloutImage::default()
    };
    let first = c.start_rollout(&new("images base", 1000)).unwrap();
    assert_eq!(first.attempts, 1);
    assert_eq!(first.finished_at, None);
    c.record_rollout_image(first.id, &image("web", 2, "started", 1001))
        .unwrap();
    let mut done = image("base", 1, "passed", 1002);
    done.build = Some(base.id.clone());
    done.cached = true;
    done.tested = Some("reused".into());
    done.promoted = Some("staging".into());
    c.record_rollout_image(first.id, &done).unwrap();

    // Killed here. The rerun of the same request continues the same row.
    let mut rerun = new("images base", 2000);
    rerun.options = r#"{"max_parallel":1}"#.into();
    let again = c.start_rollout(&rerun).unwrap();
    assert_eq!(again.id, first.id);
    assert_eq!(again.attempts, 2);
    assert_eq!(again.started_at, 1000, "it started with the first run");
    assert_eq!(again.options, rerun.options);
    assert_eq!(
        again.images,
        [done.clone(), image("web", 2, "started", 1001)]
    );
    let mut web = image("web", 2, "failed", 2001);
    web.detail = Some("a check failed".into());
    c.record_rollout_image(first.id, &web).unwrap();
    let finished = c.finish_rollout(first.id, false, 2002).unwrap();
    assert_eq!(finished.finished_at, Some(2002));
    assert_eq!(finished.outcome.as_deref(), Some("failed"));
    assert_eq!(finished.images, [done, web]);

    // Finished: the same request again is a new rollout; another trigger too.
    let next = c.start_rollout(&new("images base", 3000)).unwrap();
    assert_ne!(next.id, first.id);
    assert!(next.images.is_empty());
    let other = c.start_rollout(&new("--outdated", 3001)).unwrap();
    assert_ne!(other.id, next.id);
    let listed: Vec<i64> = c.rollouts(None).unwrap().iter().map(|r| r.id).collect();
    assert_eq!(listed, [other.id, next.id, first.id], "newest first");
    assert_eq!(c.rollouts(Some(1)).unwrap().len(), 1);
    assert_eq!(c.rollout(first.id).unwrap().unwrap(), finished);
    assert_eq!(c.rollout(9999).unwrap(), None);

    let e = c
        .record_rollout_image(9999, &image("web", 1, "passed", 1))
        .unwrap_err();
    assert!(matches!(e, Error::UnknownRollout { id: 9999 }), "{e}");
    let mut unknown_build = image("web", 1, "passed", 1);
    unknown_build.build = Some(digest("nosuch"));
    assert!(c.record_rollout_image(next.id, &unknown_build).is_err());
    let mut bad_status = image("web", 1, "bogus", 1);
    bad_status.build = None;
    assert!(c.record_rollout_image(next.id, &bad_status).is_err());
}
