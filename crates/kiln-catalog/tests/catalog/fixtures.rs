//! Builds, tests and promotions as kiln would record them, and raw access
//! to a catalog's database for what the public interface cannot do (such as
//! pretending a newer kiln has been there).

use kiln_catalog::{NewBuild, NewPromotion, NewTest, Output};
use sha2::{Digest, Sha256};

pub fn hex(seed: &str) -> String {
    hex::encode(Sha256::digest(seed.as_bytes()))
}

pub fn digest(seed: &str) -> String {
    format!("sha256:{}", hex(seed))
}

/// A digest that starts with `prefix` (hex digits).
pub fn digest_with_prefix(prefix: &str, seed: &str) -> String {
    format!("sha256:{prefix}{}", &hex(seed)[prefix.len()..])
}

pub fn output(build_seed: &str, format: &str) -> Output {
    Output {
        format: format.to_string(),
        path: format!("/var/lib/kiln/out/{build_seed}.{format}"),
        digest: digest(&format!("{build_seed} {format}")),
        size: 1 << 30,
    }
}

/// A build whose id and outputs follow from name, version and time.
pub fn build(name: &str, version: &str, at: i64) -> NewBuild {
    let seed = format!("{name}@{version}@{at}");
    NewBuild {
        id: digest(&seed),
        name: name.to_string(),
        version: version.to_string(),
        parent: None,
        definition_digest: digest(&format!("definition {seed}")),
        lock_digest: digest(&format!("lock {seed}")),
        kiln_version: "0.1.0".to_string(),
        git_commit: Some("0123456789abcdef0123456789abcdef01234567".to_string()),
        built_at: at,
        source_date_epoch: 1_700_000_000,
        outputs: vec![output(&seed, "raw"), output(&seed, "qcow2")],
        manifest: format!("packages of {seed}\n").into_bytes(),
    }
}

pub fn test(at: i64, passed: bool) -> NewTest {
    NewTest {
        at,
        passed,
        accel: "tcg".to_string(),
        boot_seconds: Some(7.25),
        report: format!(r#"{{"passed":{passed},"checks":[]}}"#),
    }
}

pub fn promotion(build: &str, env: &str, at: i64) -> NewPromotion {
    NewPromotion {
        build: build.to_string(),
        env: env.to_string(),
        who: "ci".to_string(),
        at,
        force: false,
        note: None,
    }
}

/// Runs SQL on the catalog's database directly.
pub fn raw_execute(location: &str, sql: &str) {
    if location.starts_with("host=") {
        let mut client = postgres::Client::connect(location, postgres::NoTls).unwrap();
        client.batch_execute(sql).unwrap();
    } else {
        let conn = rusqlite::Connection::open(location).unwrap();
        conn.execute_batch(sql).unwrap();
    }
}
