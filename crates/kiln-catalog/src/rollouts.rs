//! `kiln rebuild` runs as rollouts. A rerun after a kill continues the
//! rollout the kill interrupted instead of starting another: the user asked
//! for one change across the fleet, and its record should be one row that
//! ends once, not a dead row beside a second one that did half the work.

use crate::db::{Row, Tx, Value};
use crate::error::Error;
use crate::model::{NewRollout, Rollout, RolloutImage};

const COLUMNS: &str = "id, dir, trigger, options, who, started_at, finished_at, outcome, attempts";
const IMAGE_COLUMNS: &str =
    "name, wave, reason, status, build, cached, tested, promoted, detail, at";

/// The unfinished rollout of the same directory and trigger, its attempts
/// counted up and its options replaced; else a new one.
pub(crate) fn start(tx: &mut dyn Tx, r: &NewRollout) -> Result<Rollout, Error> {
    let unfinished = tx.query(
        "SELECT id FROM rollouts WHERE dir = ? AND trigger = ? AND finished_at IS NULL \
         ORDER BY id DESC LIMIT 1",
        &[(&r.dir).into(), (&r.trigger).into()],
    )?;
    let id = match unfinished.first() {
        Some(row) => {
            let id = row.int(0)?;
            tx.execute(
                "UPDATE rollouts SET attempts = attempts + 1, options = ? WHERE id = ?",
                &[(&r.options).into(), Value::Int(id)],
            )?;
            id
        }
        None => tx
            .query(
                "INSERT INTO rollouts (dir, trigger, options, who, started_at, attempts) \
                 VALUES (?, ?, ?, ?, ?, 1) RETURNING id",
                &[
                    (&r.dir).into(),
                    (&r.trigger).into(),
                    (&r.options).into(),
                    (&r.who).into(),
                    Value::Int(r.at),
                ],
            )?
            .first()
            .ok_or_else(|| Error::InvalidRecord("a rollout was inserted without an id".into()))?
            .int(0)?,
    };
    get(tx, id)?.ok_or(Error::UnknownRollout { id })
}

pub(crate) fn record_image(tx: &mut dyn Tx, id: i64, image: &RolloutImage) -> Result<(), Error> {
    if get_row(tx, id)?.is_none() {
        return Err(Error::UnknownRollout { id });
    }
    tx.execute(
        &format!(
            "INSERT INTO rollout_images (rollout, {IMAGE_COLUMNS}) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (rollout, name) DO UPDATE SET wave = excluded.wave, \
             reason = excluded.reason, status = excluded.status, build = excluded.build, \
             cached = excluded.cached, tested = excluded.tested, \
             promoted = excluded.promoted, detail = excluded.detail, at = excluded.at"
        ),
        &[
            Value::Int(id),
            (&image.name).into(),
            Value::Int(image.wave),
            (&image.reason).into(),
            (&image.status).into(),
            image.build.as_ref().into(),
            image.cached.into(),
            image.tested.as_ref().into(),
            image.promoted.as_ref().into(),
            image.detail.as_ref().into(),
            Value::Int(image.at),
        ],
    )?;
    Ok(())
}

pub(crate) fn finish(tx: &mut dyn Tx, id: i64, passed: bool, at: i64) -> Result<Rollout, Error> {
    let outcome = if passed { "passed" } else { "failed" };
    let n = tx.execute(
        "UPDATE rollouts SET finished_at = ?, outcome = ? WHERE id = ?",
        &[Value::Int(at), outcome.into(), Value::Int(id)],
    )?;
    if n == 0 {
        return Err(Error::UnknownRollout { id });
    }
    get(tx, id)?.ok_or(Error::UnknownRollout { id })
}

pub(crate) fn get(tx: &mut dyn Tx, id: i64) -> Result<Option<Rollout>, Error> {
    let Some(mut rollout) = get_row(tx, id)? else {
        return Ok(None);
    };
    rollout.images = images(tx, id)?;
    Ok(Some(rollout))
}

/// Newest first, each with its images.
pub(crate) fn list(tx: &mut dyn Tx, limit: Option<usize>) -> Result<Vec<Rollout>, Error> {
    let limit = limit.map_or(i64::MAX, |l| i64::try_from(l).unwrap_or(i64::MAX));
    let rows = tx.query(
        &format!("SELECT {COLUMNS} FROM rollouts ORDER BY id DESC LIMIT ?"),
        &[Value::Int(limit)],
    )?;
    let mut out = rows.iter().map(from_row).collect::<Result<Vec<_>, _>>()?;
    for r in &mut out {
        r.images = images(tx, r.id)?;
    }
    Ok(out)
}

fn get_row(tx: &mut dyn Tx, id: i64) -> Result<Option<Rollout>, Error> {
    tx.query(
        &format!("SELECT {COLUMNS} FROM rollouts WHERE id = ?"),
        &[Value::Int(id)],
    )?
    .first()
    .map(from_row)
    .transpose()
}

fn images(tx: &mut dyn Tx, id: i64) -> Result<Vec<RolloutImage>, Error> {
    // Waves in order, then names: a wave's images finish in any order.
    tx.query(
        &format!(
            "SELECT {IMAGE_COLUMNS} FROM rollout_images WHERE rollout = ? ORDER BY wave, name"
        ),
        &[Value::Int(id)],
    )?
    .iter()
    .map(|row| {
        Ok(RolloutImage {
            name: row.text(0)?,
            wave: row.int(1)?,
            reason: row.text(2)?,
            status: row.text(3)?,
            build: row.opt_text(4)?,
            cached: row.bool(5)?,
            tested: row.opt_text(6)?,
            promoted: row.opt_text(7)?,
            detail: row.opt_text(8)?,
            at: row.int(9)?,
        })
    })
    .collect()
}

fn from_row(row: &Row) -> Result<Rollout, Error> {
    Ok(Rollout {
        id: row.int(0)?,
        dir: row.text(1)?,
        trigger: row.text(2)?,
        options: row.text(3)?,
        who: row.text(4)?,
        started_at: row.int(5)?,
        finished_at: row.opt_int(6)?,
        outcome: row.opt_text(7)?,
        attempts: row.int(8)?,
        images: Vec::new(),
    })
}
