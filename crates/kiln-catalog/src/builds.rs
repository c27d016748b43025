//! Recording builds and test verdicts, and reading them back.

use std::collections::{HashMap, HashSet};

use crate::db::{Row, Tx, Value, placeholders};
use crate::error::Error;
use crate::model::{Build, BuildFilter, NewBuild, NewTest, Output, TestRecord};
use crate::names;
use crate::reference::is_digest;

/// Always read from `builds b`, in this order: see `from_row`.
pub(crate) const BUILD_COLUMNS: &str = "b.id, b.name, b.version, b.parent, b.definition_digest, \
     b.lock_digest, b.kiln_version, b.git_commit, b.built_at, b.last_built_at, b.source_date_epoch";

const TEST_COLUMNS: &str = "t.id, t.build, t.at, t.passed, t.accel, t.boot_seconds, t.report";

/// Keeps IN lists well under either database's limit on parameters.
const CHUNK: usize = 500;

pub(crate) fn record(tx: &mut dyn Tx, b: &NewBuild) -> Result<Build, Error> {
    check(b)?;
    if let Some(parent) = &b.parent
        && !exists(tx, parent)?
    {
        return Err(Error::UnknownParent {
            id: b.id.clone(),
            parent: parent.clone(),
        });
    }
    // The same id is the same image built again: keep the first record and
    // widen its time span.
    let rows = tx.query(
        "INSERT INTO builds (id, name, version, parent, definition_digest, lock_digest, \
             kiln_version, git_commit, built_at, last_built_at, source_date_epoch, manifest) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
         ON CONFLICT (id) DO UPDATE SET \
             built_at = CASE WHEN excluded.built_at < builds.built_at \
                 THEN excluded.built_at ELSE builds.built_at END, \
             last_built_at = CASE WHEN excluded.last_built_at > builds.last_built_at \
                 THEN excluded.last_built_at ELSE builds.last_built_at END \
         RETURNING last_built_at",
        &[
            (&b.id).into(),
            (&b.name).into(),
            (&b.version).into(),
            b.parent.as_ref().into(),
            (&b.definition_digest).into(),
            (&b.lock_digest).into(),
            (&b.kiln_version).into(),
            b.git_commit.as_ref().into(),
            b.built_at.into(),
            b.built_at.into(),
            b.source_date_epoch.into(),
            Value::Blob(b.manifest.clone()),
        ],
    )?;
    let last_built_at = match rows.first() {
        Some(row) => row.int(0)?,
        None => return Err(vanished(&b.id)),
    };
    // Paths from an older recording that arrives late must not replace the
    // newer ones; it may still add formats the newer one lacks.
    let newest = last_built_at == b.built_at;
    let on_conflict = if newest {
        "DO UPDATE SET position = excluded.position, path = excluded.path, \
             digest = excluded.digest, size = excluded.size"
    } else {
        "DO NOTHING"
    };
    let sql = format!(
        "INSERT INTO outputs (build, format, position, path, digest, size) \
         VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (build, format) {on_conflict}"
    );
    for (position, o) in b.outputs.iter().enumerate() {
        tx.execute(
            &sql,
            &[
                (&b.id).into(),
                (&o.format).into(),
                Value::Int(position as i64),
                (&o.path).into(),
                (&o.digest).into(),
                Value::Int(size(o)?),
            ],
        )?;
    }
    get(tx, &b.id)?.ok_or_else(|| vanished(&b.id))
}

/// A record the caller made wrong: kiln computes these, a user does not type them.
fn check(b: &NewBuild) -> Result<(), Error> {
    let invalid = |m: String| Err(Error::InvalidRecord(m));
    if !is_digest(&b.id) {
        return invalid(format!(
            "build id `{}` is not `sha256:` and 64 lowercase hex digits",
            b.id
        ));
    }
    names::check_image(&b.name)?;
    if b.version.is_empty() {
        return invalid(format!("build {} has an empty version", b.id));
    }
    if b.parent.as_deref() == Some(b.id.as_str()) {
        return invalid(format!("build {} names itself as its parent", b.id));
    }
    let mut formats = HashSet::new();
    for o in &b.outputs {
        if o.format.is_empty() || !formats.insert(o.format.as_str()) {
            return invalid(format!(
                "build {}: output format `{}` is empty or given twice",
                b.id, o.format
            ));
        }
        if !is_digest(&o.digest) {
            return invalid(format!(
                "build {}: output {} has digest `{}`, not `sha256:` and 64 lowercase hex digits",
                b.id, o.path, o.digest
            ));
        }
        size(o)?;
    }
    Ok(())
}

fn size(o: &Output) -> Result<i64, Error> {
    i64::try_from(o.size)
        .map_err(|_| Error::InvalidRecord(format!("output {} is too large: {}", o.path, o.size)))
}

fn vanished(id: &str) -> Error {
    Error::InvalidRecord(format!(
        "build {id} was not there right after being written"
    ))
}

pub(crate) fn exists(tx: &mut dyn Tx, id: &str) -> Result<bool, Error> {
    Ok(!tx
        .query("SELECT 1 FROM builds WHERE id = ?", &[id.into()])?
        .is_empty())
}

pub(crate) fn record_test(tx: &mut dyn Tx, build: &str, t: &NewTest) -> Result<TestRecord, Error> {
    if !exists(tx, build)? {
        return Err(Error::UnknownBuild {
            id: build.to_string(),
        });
    }
    let rows = tx.query(
        "INSERT INTO tests (build, at, passed, accel, boot_seconds, report) \
         VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
        &[
            build.into(),
            t.at.into(),
            t.passed.into(),
            (&t.accel).into(),
            t.boot_seconds.map_or(Value::Null, Value::Real),
            (&t.report).into(),
        ],
    )?;
    let id = match rows.first() {
        Some(row) => row.int(0)?,
        None => return Err(vanished(build)),
    };
    Ok(TestRecord {
        id,
        build: build.to_string(),
        at: t.at,
        passed: t.passed,
        accel: t.accel.clone(),
        boot_seconds: t.boot_seconds,
        report: t.report.clone(),
    })
}

pub(crate) fn get(tx: &mut dyn Tx, id: &str) -> Result<Option<Build>, Error> {
    let rows = tx.query(
        &format!("SELECT {BUILD_COLUMNS} FROM builds b WHERE b.id = ?"),
        &[id.into()],
    )?;
    Ok(complete(tx, rows)?.pop())
}

/// Newest first: by when the build was first recorded, then by id so that
/// the order never depends on the database.
pub(crate) fn list(tx: &mut dyn Tx, filter: &BuildFilter) -> Result<Vec<Build>, Error> {
    let mut sql = format!("SELECT {BUILD_COLUMNS} FROM builds b WHERE 1 = 1");
    let mut params = Vec::new();
    if let Some(name) = &filter.name {
        sql.push_str(" AND b.name = ?");
        params.push(name.into());
    }
    if let Some(env) = &filter.env {
        names::check_env(env)?;
        sql.push_str(
            " AND b.id IN (SELECT p.build FROM promotions p WHERE p.env = ? AND p.seq = \
                 (SELECT MAX(q.seq) FROM promotions q WHERE q.env = p.env AND q.name = p.name))",
        );
        params.push(env.into());
    }
    if let Some(passed) = filter.passed {
        sql.push_str(
            " AND (SELECT t.passed FROM tests t WHERE t.build = b.id \
                 ORDER BY t.at DESC, t.id DESC LIMIT 1) = ?",
        );
        params.push(passed.into());
    }
    sql.push_str(" ORDER BY b.built_at DESC, b.id");
    if let Some(limit) = filter.limit {
        sql.push_str(" LIMIT ?");
        params.push(Value::Int(i64::try_from(limit).unwrap_or(i64::MAX)));
    }
    let rows = tx.query(&sql, &params)?;
    complete(tx, rows)
}

/// The build, its parent, and so on up to the image built on a distribution.
pub(crate) fn lineage(tx: &mut dyn Tx, id: &str) -> Result<Vec<Build>, Error> {
    let mut chain: Vec<Build> = Vec::new();
    let mut seen = HashSet::new();
    let mut next = Some(id.to_string());
    while let Some(id) = next {
        if !seen.insert(id.clone()) {
            break;
        }
        let Some(build) = get(tx, &id)? else {
            return match chain.last() {
                None => Err(Error::UnknownBuild { id }),
                // The foreign key keeps parents present; a gap means damage.
                Some(child) => Err(Error::Corrupt {
                    location: tx.location().to_string(),
                    reason: format!("build {} names parent {id}, which is missing", child.id),
                }),
            };
        };
        next = build.parent.clone();
        chain.push(build);
    }
    Ok(chain)
}

pub(crate) fn manifest(tx: &mut dyn Tx, id: &str) -> Result<Option<Vec<u8>>, Error> {
    let rows = tx.query("SELECT manifest FROM builds WHERE id = ?", &[id.into()])?;
    rows.first().map(|r| r.blob(0)).transpose()
}

/// Oldest first.
pub(crate) fn tests(tx: &mut dyn Tx, id: &str) -> Result<Vec<TestRecord>, Error> {
    if !exists(tx, id)? {
        return Err(Error::UnknownBuild { id: id.to_string() });
    }
    let rows = tx.query(
        &format!("SELECT {TEST_COLUMNS} FROM tests t WHERE t.build = ? ORDER BY t.at, t.id"),
        &[id.into()],
    )?;
    rows.iter().map(test_from_row).collect()
}

fn test_from_row(r: &Row) -> Result<TestRecord, Error> {
    Ok(TestRecord {
        id: r.int(0)?,
        build: r.text(1)?,
        at: r.int(2)?,
        passed: r.bool(3)?,
        accel: r.text(4)?,
        boot_seconds: r.real_opt(5)?,
        report: r.text(6)?,
    })
}

fn from_row(r: &Row) -> Result<Build, Error> {
    Ok(Build {
        id: r.text(0)?,
        name: r.text(1)?,
        version: r.text(2)?,
        parent: r.opt_text(3)?,
        definition_digest: r.text(4)?,
        lock_digest: r.text(5)?,
        kiln_version: r.text(6)?,
        git_commit: r.opt_text(7)?,
        built_at: r.int(8)?,
        last_built_at: r.int(9)?,
        source_date_epoch: r.int(10)?,
        outputs: Vec::new(),
        last_test: None,
    })
}

/// Builds from `BUILD_COLUMNS` rows, with their outputs and last tests.
fn complete(tx: &mut dyn Tx, rows: Vec<Row>) -> Result<Vec<Build>, Error> {
    let mut builds = rows.iter().map(from_row).collect::<Result<Vec<_>, _>>()?;
    let mut outputs: HashMap<String, Vec<Output>> = HashMap::new();
    let mut last_tests: HashMap<String, TestRecord> = HashMap::new();
    let ids: Vec<Value> = builds.iter().map(|b| (&b.id).into()).collect();
    for chunk in ids.chunks(CHUNK) {
        let list = placeholders(chunk.len());
        let rows = tx.query(
            &format!(
                "SELECT build, format, path, digest, size FROM outputs \
                 WHERE build IN ({list}) ORDER BY build, position, format"
            ),
            chunk,
        )?;
        for r in &rows {
            let size = r.int(4)?;
            outputs.entry(r.text(0)?).or_default().push(Output {
                format: r.text(1)?,
                path: r.text(2)?,
                digest: r.text(3)?,
                size: u64::try_from(size).map_err(|_| Error::Corrupt {
                    location: r.location.to_string(),
                    reason: format!("negative output size {size}"),
                })?,
            });
        }
        let rows = tx.query(
            &format!(
                "SELECT {TEST_COLUMNS} FROM tests t WHERE t.build IN ({list}) \
                 AND NOT EXISTS (SELECT 1 FROM tests u WHERE u.build = t.build \
                     AND (u.at > t.at OR (u.at = t.at AND u.id > t.id)))"
            ),
            chunk,
        )?;
        for r in &rows {
            let t = test_from_row(r)?;
            last_tests.insert(t.build.clone(), t);
        }
    }
    for b in &mut builds {
        b.outputs = outputs.remove(&b.id).unwrap_or_default();
        b.last_test = last_tests.remove(&b.id);
    }
    Ok(builds)
}

/// The verdict promotion goes by: the latest test, by time and then by
/// the order recorded.
pub(crate) fn last_test(tx: &mut dyn Tx, id: &str) -> Result<Option<TestRecord>, Error> {
    let rows = tx.query(
        &format!(
            "SELECT {TEST_COLUMNS} FROM tests t WHERE t.build = ? \
             ORDER BY t.at DESC, t.id DESC LIMIT 1"
        ),
        &[id.into()],
    )?;
    rows.first().map(test_from_row).transpose()
}
