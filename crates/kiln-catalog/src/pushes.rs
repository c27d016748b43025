//! Where builds were pushed. A push of the same build to the same place
//! again updates its tags and time instead of adding a twin.

use crate::db::Tx;
use crate::error::Error;
use crate::model::Push;

pub(crate) fn record(tx: &mut dyn Tx, build: &str, push: &Push) -> Result<(), Error> {
    if crate::builds::get(tx, build)?.is_none() {
        return Err(Error::UnknownBuild {
            id: build.to_string(),
        });
    }
    tx.execute(
        "INSERT INTO pushes (build, reference, tags, at) VALUES (?, ?, ?, ?) \
         ON CONFLICT (build, reference) DO UPDATE SET tags = excluded.tags, at = excluded.at",
        &[
            build.into(),
            (&push.reference).into(),
            push.tags.join(",").as_str().into(),
            push.at.into(),
        ],
    )?;
    Ok(())
}

/// Oldest first.
pub(crate) fn list(tx: &mut dyn Tx, build: &str) -> Result<Vec<Push>, Error> {
    tx.query(
        "SELECT reference, tags, at FROM pushes WHERE build = ? ORDER BY at, reference",
        &[build.into()],
    )?
    .iter()
    .map(|row| {
        let tags = row.text(1)?;
        Ok(Push {
            reference: row.text(0)?,
            tags: tags
                .split(',')
                .filter(|t| !t.is_empty())
                .map(str::to_string)
                .collect(),
            at: row.int(2)?,
        })
    })
    .collect()
}
