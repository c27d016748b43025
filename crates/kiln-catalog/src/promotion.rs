//! Which build runs in which environment, and every move that put it there.
//!
//! Each move appends a row to `promotions`, numbered within its environment
//! while the environment is locked, so `seq` and `previous` stay right when
//! several people or pipelines promote at once. What runs now is the last
//! row for an (environment, image name).

use crate::builds;
use crate::db::{Row, Tx};
use crate::error::Error;
use crate::model::{Deployment, NewPromotion, Promotion, PromotionKind};
use crate::names;

/// Read from `promotions p JOIN builds b ON b.id = p.build`: see `from_row`.
const COLUMNS: &str =
    "p.seq, p.env, p.name, p.build, b.version, p.previous, p.kind, p.who, p.at, p.forced, p.note";
const FROM: &str = "promotions p JOIN builds b ON b.id = p.build";
/// Keeps only the last move per (environment, image name).
const CURRENT: &str =
    "p.seq = (SELECT MAX(q.seq) FROM promotions q WHERE q.env = p.env AND q.name = p.name)";

pub(crate) fn promote(tx: &mut dyn Tx, p: &NewPromotion) -> Result<Promotion, Error> {
    names::check_env(&p.env)?;
    let Some((name, version, built_at)) = summary(tx, &p.build)? else {
        return Err(Error::UnknownBuild {
            id: p.build.clone(),
        });
    };
    tx.lock_environment(&p.env)?;
    let current = current(tx, &p.env, &name)?;
    if current.as_ref().is_some_and(|c| c.build == p.build) {
        return Err(Error::AlreadyRunning {
            env: p.env.clone(),
            name,
            version,
            build: p.build.clone(),
        });
    }
    // A build never tested may go; one whose latest verdict is a failure
    // needs the user to say so.
    let failed = builds::last_test(tx, &p.build)?.is_some_and(|t| !t.passed);
    if failed && !p.force {
        return Err(Error::LastTestFailed {
            env: p.env.clone(),
            name,
            version,
            build: p.build.clone(),
        });
    }
    let kind = match &current {
        Some(c) if ran_before(tx, &p.env, &name, &p.build)? => {
            let current_built_at = summary(tx, &c.build)?.map_or(i64::MIN, |s| s.2);
            if built_at < current_built_at {
                PromotionKind::Rollback
            } else {
                PromotionKind::Promote
            }
        }
        _ => PromotionKind::Promote,
    };
    append(
        tx,
        Promotion {
            seq: 0,
            env: p.env.clone(),
            name,
            build: p.build.clone(),
            version,
            previous: current.map(|c| c.build),
            kind,
            who: p.who.clone(),
            at: p.at,
            forced: failed,
            note: p.note.clone(),
        },
    )
}

/// Moves back one step. Repeated rollbacks walk back through what ran
/// before (C → B → A) rather than swapping the last two: the step back from
/// a build is taken from the promotion that first brought it in.
pub(crate) fn rollback(
    tx: &mut dyn Tx,
    env: &str,
    name: &str,
    who: &str,
    at: i64,
) -> Result<Promotion, Error> {
    names::check_env(env)?;
    names::check_image(name)?;
    tx.lock_environment(env)?;
    let Some(current) = current(tx, env, name)? else {
        return Err(Error::NotDeployed {
            env: env.to_string(),
            name: name.to_string(),
        });
    };
    let rows = tx.query(
        "SELECT p.previous FROM promotions p \
         WHERE p.env = ? AND p.name = ? AND p.build = ? AND p.kind = 'promote' \
         ORDER BY p.seq DESC LIMIT 1",
        &[env.into(), name.into(), (&current.build).into()],
    )?;
    let target = match rows.first() {
        Some(row) => row.opt_text(0)?,
        None => current.previous.clone(),
    };
    let Some(target) = target else {
        return Err(Error::NothingToRollBack {
            env: env.to_string(),
            name: name.to_string(),
            build: current.build,
        });
    };
    let version = summary(tx, &target)?.map(|s| s.1).unwrap_or_default();
    append(
        tx,
        Promotion {
            seq: 0,
            env: env.to_string(),
            name: name.to_string(),
            build: target,
            version,
            previous: Some(current.build),
            kind: PromotionKind::Rollback,
            who: who.to_string(),
            at,
            forced: false,
            note: None,
        },
    )
}

/// Sorted by environment, then image name, the same whatever the
/// database's collation.
pub(crate) fn deployments(tx: &mut dyn Tx, name: Option<&str>) -> Result<Vec<Deployment>, Error> {
    let mut sql = format!("SELECT {COLUMNS} FROM {FROM} WHERE {CURRENT}");
    let mut params = Vec::new();
    if let Some(name) = name {
        sql.push_str(" AND p.name = ?");
        params.push(name.into());
    }
    let mut out = tx
        .query(&sql, &params)?
        .iter()
        .map(|r| {
            let p = from_row(r)?;
            Ok(Deployment {
                env: p.env,
                name: p.name,
                build: p.build,
                version: p.version,
                since: p.at,
                by: p.who,
            })
        })
        .collect::<Result<Vec<_>, Error>>()?;
    out.sort_by(|a, b| (&a.env, &a.name).cmp(&(&b.env, &b.name)));
    Ok(out)
}

pub(crate) fn history(tx: &mut dyn Tx, env: &str) -> Result<Vec<Promotion>, Error> {
    names::check_env(env)?;
    tx.query(
        &format!("SELECT {COLUMNS} FROM {FROM} WHERE p.env = ? ORDER BY p.seq"),
        &[env.into()],
    )?
    .iter()
    .map(from_row)
    .collect()
}

fn current(tx: &mut dyn Tx, env: &str, name: &str) -> Result<Option<Promotion>, Error> {
    tx.query(
        &format!(
            "SELECT {COLUMNS} FROM {FROM} WHERE p.env = ? AND p.name = ? \
             ORDER BY p.seq DESC LIMIT 1"
        ),
        &[env.into(), name.into()],
    )?
    .first()
    .map(from_row)
    .transpose()
}

fn ran_before(tx: &mut dyn Tx, env: &str, name: &str, build: &str) -> Result<bool, Error> {
    Ok(!tx
        .query(
            "SELECT 1 FROM promotions WHERE env = ? AND name = ? AND build = ? LIMIT 1",
            &[env.into(), name.into(), build.into()],
        )?
        .is_empty())
}

/// Name, version and first build time.
fn summary(tx: &mut dyn Tx, id: &str) -> Result<Option<(String, String, i64)>, Error> {
    tx.query(
        "SELECT name, version, built_at FROM builds WHERE id = ?",
        &[id.into()],
    )?
    .first()
    .map(|r| Ok((r.text(0)?, r.text(1)?, r.int(2)?)))
    .transpose()
}

/// Numbers the move and stores it; the caller holds the environment's lock.
fn append(tx: &mut dyn Tx, mut p: Promotion) -> Result<Promotion, Error> {
    let rows = tx.query(
        "SELECT COALESCE(MAX(seq), 0) + 1 FROM promotions WHERE env = ?",
        &[(&p.env).into()],
    )?;
    p.seq = match rows.first() {
        Some(r) => r.int(0)?,
        None => 1,
    };
    tx.execute(
        "INSERT INTO promotions (env, seq, name, build, previous, kind, who, at, forced, note) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        &[
            (&p.env).into(),
            p.seq.into(),
            (&p.name).into(),
            (&p.build).into(),
            p.previous.as_ref().into(),
            p.kind.as_str().into(),
            (&p.who).into(),
            p.at.into(),
            p.forced.into(),
            p.note.as_ref().into(),
        ],
    )?;
    Ok(p)
}

fn from_row(r: &Row) -> Result<Promotion, Error> {
    let kind = match r.text(6)?.as_str() {
        "promote" => PromotionKind::Promote,
        "rollback" => PromotionKind::Rollback,
        other => {
            return Err(Error::Corrupt {
                location: r.location.to_string(),
                reason: format!("unknown promotion kind `{other}`"),
            });
        }
    };
    Ok(Promotion {
        seq: r.int(0)?,
        env: r.text(1)?,
        name: r.text(2)?,
        build: r.text(3)?,
        version: r.text(4)?,
        previous: r.opt_text(5)?,
        kind,
        who: r.text(7)?,
        at: r.int(8)?,
        forced: r.bool(9)?,
        note: r.opt_text(10)?,
    })
}
