//! The catalog against real databases: every case of `suite` runs once on an
//! SQLite file and once on a PostgreSQL server started for the test. The
//! PostgreSQL tests are named `pg_…` so the fast test run can leave them out.

mod fixtures;
mod pg;
mod suite;

use kiln_catalog::{BuildFilter, Catalog, Error};

use crate::fixtures::build;
use crate::pg::PgServer;

/// Set when this binary is run again as one of several writer processes.
pub const WORKER_ENV: &str = "KILN_CATALOG_TEST_WORKER";

fn sqlite_location(dir: &tempfile::TempDir) -> String {
    // A directory that does not exist yet: opening creates it.
    dir.path()
        .join("state/kiln/catalog.db")
        .display()
        .to_string()
}

macro_rules! on_both {
    ($($case:ident / $pg:ident),* $(,)?) => {$(
        #[test]
        fn $case() {
            let dir = tempfile::tempdir().unwrap();
            suite::$case(&sqlite_location(&dir));
        }

        #[test]
        fn $pg() {
            let server = PgServer::start();
            suite::$case(&server.database("kiln"));
        }
    )*};
}

on_both! {
    record_and_resolve / pg_record_and_resolve,
    ambiguous_prefix / pg_ambiguous_prefix,
    record_is_idempotent / pg_record_is_idempotent,
    records_are_checked / pg_records_are_checked,
    builds_newest_first_and_filtered / pg_builds_newest_first_and_filtered,
    lineage_to_root / pg_lineage_to_root,
    manifest_roundtrip / pg_manifest_roundtrip,
    tests_and_last_test / pg_tests_and_last_test,
    promote_and_rollback / pg_promote_and_rollback,
    promote_refuses_failed_build / pg_promote_refuses_failed_build,
    promote_already_running / pg_promote_already_running,
    bad_env_name / pg_bad_env_name,
    reopen_is_noop / pg_reopen_is_noop,
    migrates_older_schema / pg_migrates_older_schema,
    pushes_recorded_per_reference / pg_pushes_recorded_per_reference,
    rollouts_recorded_and_continued / pg_rollouts_recorded_and_continued,
    refuses_newer_schema / pg_refuses_newer_schema,
    concurrent_first_open / pg_concurrent_first_open,
    concurrent_writers / pg_concurrent_writers,
    concurrent_promotions / pg_concurrent_promotions,
}

/// Not a test of its own: `suite::concurrent_writers` runs this binary again
/// with `WORKER_ENV` set, and here it writes its share of builds.
#[test]
fn worker_process() {
    let Ok(job) = std::env::var(WORKER_ENV) else {
        return;
    };
    let mut parts = job.split('\n');
    let (Some(location), Some(worker), Some(count)) = (parts.next(), parts.next(), parts.next())
    else {
        panic!("{WORKER_ENV}: expected location, worker and count on three lines");
    };
    suite::write_builds(location, worker.parse().unwrap(), count.parse().unwrap());
}

#[test]
fn sqlite_location_forms() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a/b/catalog.db");
    let c = Catalog::open(&format!("sqlite:{}", path.display())).unwrap();
    assert_eq!(c.describe(), format!("sqlite {}", path.display()));
    let b = c.record_build(&build("web", "1", 1)).unwrap();
    drop(c);
    // The same file, named as a plain path.
    let c = Catalog::open(path.to_str().unwrap()).unwrap();
    assert_eq!(c.get(&b.id).unwrap().unwrap(), b);
    let mode: String = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn sqlite_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.db");
    std::fs::write(&path, vec![b'x'; 4096]).unwrap();
    let e = Catalog::open(path.to_str().unwrap()).unwrap_err();
    assert!(e.to_string().contains(path.to_str().unwrap()), "{e}");
    assert!(!e.is_user_error());
    assert_eq!(e.hint(), None);

    // A directory where the parent directory should go.
    let blocked = dir.path().join("file");
    std::fs::write(&blocked, "").unwrap();
    let e = Catalog::open(blocked.join("catalog.db").to_str().unwrap()).unwrap_err();
    assert!(e.to_string().contains(blocked.to_str().unwrap()), "{e}");
}

#[test]
fn unknown_location_scheme() {
    let e = Catalog::open("mysql://db/kiln").unwrap_err();
    assert!(
        matches!(e, Error::BadLocation { .. }) && e.is_user_error(),
        "{e}"
    );
    assert!(e.hint().unwrap().contains("postgresql://"));
}

#[test]
fn catalog_is_shared_between_threads() {
    fn assert_sync<T: Send + Sync>() {}
    assert_sync::<Catalog>();
    assert_sync::<Error>();

    let dir = tempfile::tempdir().unwrap();
    let c = Catalog::open(&sqlite_location(&dir)).unwrap();
    std::thread::scope(|s| {
        for t in 0..4 {
            let c = &c;
            s.spawn(move || {
                for i in 0..10 {
                    c.record_build(&build("web", &format!("{t}.{i}"), t * 100 + i))
                        .unwrap();
                }
            });
        }
    });
    assert_eq!(c.builds(&BuildFilter::default()).unwrap().len(), 40);
}

#[test]
fn pg_url_location_hides_password() {
    let server = PgServer::start();
    server.database("urlform");
    let socket = server
        .socket_dir()
        .display()
        .to_string()
        .replace('/', "%2F");
    let url = format!(
        "postgresql://postgres:s3cret@{socket}:{}/urlform",
        server.port()
    );
    let c = Catalog::open(&url).unwrap();
    let described = c.describe();
    assert!(described.starts_with("postgresql /"), "{described}");
    assert!(described.ends_with("/urlform"), "{described}");
    assert!(!described.contains("s3cret"));
    assert!(!format!("{c:?}").contains("s3cret"));
    c.record_build(&build("web", "1", 1)).unwrap();
    assert_eq!(c.builds(&BuildFilter::default()).unwrap().len(), 1);
}

#[test]
fn pg_missing_database_is_reported() {
    let server = PgServer::start();
    let e = Catalog::open(&server.conninfo("nosuch")).unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("nosuch") && text.contains("does not exist"),
        "{text}"
    );
    assert!(text.starts_with("catalog postgresql /"), "{text}");
    assert!(!e.is_user_error());
    eprintln!("ran against {}", server.version());
}
