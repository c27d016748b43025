//! `[[run]]`

use crate::dom::{Result, Table};
use crate::error::ErrorKind;
use crate::model::{Run, RunStep};

const FIELDS: &[&str] = &["script", "command", "network"];

pub(super) fn validate(tables: &[Table<'_>]) -> Result<Vec<Run>> {
    tables
        .iter()
        .map(|t| {
            Ok(Run {
                step: step(t)?,
                network: t.bool("network")?.is_some_and(|n| n.value),
            })
        })
        .collect()
}

fn step(t: &Table<'_>) -> Result<RunStep> {
    t.deny_unknown(FIELDS)?;
    let ctx = t.ctx();
    match (t.string("script")?, t.string("command")?) {
        (Some(script), None) => super::source_file(t, &script, "script").map(RunStep::Script),
        (None, Some(command)) if command.value.trim().is_empty() => Err(command.error(
            ctx,
            ErrorKind::InvalidValue,
            format!("`{}` is empty", command.path),
            Some("write the shell command to run, or remove this [[run]]".to_owned()),
        )),
        (None, Some(command)) => Ok(RunStep::Command(command.value.to_owned())),
        (Some(_), Some(command)) => Err(command.error(
            ctx,
            ErrorKind::Conflict,
            format!("`{}` and `script` cannot both be set", command.path),
            Some("each [[run]] runs one thing; split them into two [[run]] sections".to_owned()),
        )),
        (None, None) => Err(t.error_here(
            ErrorKind::Missing,
            t.path_of("script"),
            format!("{} needs `script` or `command`", t.label()),
            Some(
                "add `script = \"scripts/setup.sh\"` (a file beside kiln.toml) or \
                 `command = \"…\"`"
                    .to_owned(),
            ),
        )),
    }
}
