//! `[[check]]`: what `kiln test` verifies in the booted machine.

use crate::dom::{At, Result, Table};
use crate::error::ErrorKind;
use crate::model::{
    Check, CheckKind, DEFAULT_CHECK_TIMEOUT_SECS, MAX_CHECK_TIMEOUT_SECS, MAX_READY_WITHIN_SECS,
};
use crate::names;
use crate::validate::{no_duplicates, shape};

const FIELDS: &[&str] = &[
    "name",
    "run",
    "unit",
    "port",
    "path",
    "contains",
    "timeout",
    "ready_within",
];
const KINDS: &[&str] = &["run", "unit", "port", "path"];

pub(super) fn validate(tables: &[Table<'_>]) -> Result<Vec<Check>> {
    let mut checks = Vec::with_capacity(tables.len());
    let mut names_seen = Vec::with_capacity(tables.len());
    for t in tables {
        let (check, span) = check(t)?;
        names_seen.push(At {
            value: check.name.clone(),
            span,
            path: t.path_of("name"),
        });
        checks.push(check);
    }
    if let Some(t) = tables.first() {
        no_duplicates(t.ctx(), &names_seen, "check name")?;
    }
    Ok(checks)
}

fn check(t: &Table<'_>) -> Result<(Check, std::ops::Range<usize>)> {
    t.deny_unknown(FIELDS)?;
    let ctx = t.ctx();
    let present: Vec<&str> = KINDS.iter().copied().filter(|k| t.has(k)).collect();
    let what = match present.as_slice() {
        [what] => *what,
        [] => {
            return Err(t.error_here(
                ErrorKind::Missing,
                t.path_of("run"),
                format!("{} needs one of `run`, `unit`, `port` or `path`", t.label()),
                Some(
                    "e.g. `unit = \"nginx.service\"` (must be active), `port = 80` (must \
                     accept connections), `path = \"/etc/app.conf\"` (must exist) or \
                     `run = \"curl -fsS http://127.0.0.1/\"` (must exit 0)"
                        .to_owned(),
                ),
            ));
        }
        [first, second, ..] => {
            return Err(t.error_at(
                second,
                ErrorKind::Conflict,
                format!(
                    "`{first}` and `{second}` cannot both be set in {}",
                    t.label()
                ),
                Some(
                    "each [[check]] checks one thing; split them into two [[check]] sections"
                        .to_owned(),
                ),
            ));
        }
    };

    if t.has("contains") && what != "path" {
        return Err(t.error_at(
            "contains",
            ErrorKind::Conflict,
            format!("`{}` only goes with `path`", t.path_of("contains")),
            Some(
                "to look for text in a command's output, use `run = \"… | grep -q TEXT\"`"
                    .to_owned(),
            ),
        ));
    }

    let kind = match what {
        "run" => {
            let run = t.required_string("run", "\"true\"")?;
            if run.value.trim().is_empty() {
                return Err(run.error(
                    ctx,
                    ErrorKind::InvalidValue,
                    format!("`{}` is empty", run.path),
                    Some("write a shell command that exits 0 when the image is healthy".to_owned()),
                ));
            }
            CheckKind::Run {
                command: run.value.to_owned(),
            }
        }
        "unit" => {
            let unit = t.required_string("unit", "\"nginx.service\"")?;
            shape(ctx, &unit, "unit name", names::unit_name)?;
            CheckKind::Unit {
                unit: unit.value.to_owned(),
            }
        }
        "port" => {
            let port = t.integer("port")?.ok_or_else(|| t.missing("port", "80"))?;
            let Some(value) = u16::try_from(port.value).ok().filter(|p| *p != 0) else {
                return Err(port.error(
                    ctx,
                    ErrorKind::InvalidValue,
                    format!("`{}`: {} is not a TCP port", port.path, port.value),
                    Some("ports are 1 to 65535".to_owned()),
                ));
            };
            CheckKind::Port { port: value }
        }
        _ => {
            let path = t.required_string("path", "\"/etc/motd\"")?;
            shape(ctx, &path, "path", names::guest_path)?;
            CheckKind::Path {
                path: path.value.to_owned(),
                contains: t.string("contains")?.map(|c| c.value.to_owned()),
            }
        }
    };

    let timeout_secs = match t.integer("timeout")? {
        None => DEFAULT_CHECK_TIMEOUT_SECS,
        Some(timeout) => u64::try_from(timeout.value)
            .ok()
            .filter(|s| (1..=MAX_CHECK_TIMEOUT_SECS).contains(s))
            .ok_or_else(|| {
                timeout.error(
                    ctx,
                    ErrorKind::InvalidValue,
                    format!(
                        "`{}`: {} is not a usable timeout",
                        timeout.path, timeout.value
                    ),
                    Some(format!(
                        "seconds, from 1 to {MAX_CHECK_TIMEOUT_SECS}; the default is \
                         {DEFAULT_CHECK_TIMEOUT_SECS}"
                    )),
                )
            })?,
    };

    let ready_within_ms = match t.string("ready_within")? {
        None => None,
        Some(text) => Some(
            humantime::parse_duration(text.value.trim())
                .ok()
                .filter(|d| !d.is_zero() && d.as_secs() < MAX_READY_WITHIN_SECS)
                .and_then(|d| u64::try_from(d.as_millis()).ok())
                .ok_or_else(|| {
                    text.error(
                        ctx,
                        ErrorKind::InvalidValue,
                        format!(
                            "`{}`: \"{}\" is not a usable boot time",
                            text.path, text.value
                        ),
                        Some(format!(
                            "a duration such as \"10s\", \"1m 30s\" or \"500ms\", above 0 and \
                             under {MAX_READY_WITHIN_SECS}s: the time from starting the machine \
                             to multi-user that `kiln test` accepts"
                        )),
                    )
                })?,
        ),
    };

    let (name, span) = match t.string("name")? {
        Some(name) if name.value.trim().is_empty() => {
            return Err(name.error(
                ctx,
                ErrorKind::InvalidValue,
                format!("`{}` is empty", name.path),
                Some("leave `name` out to have one made from what is checked".to_owned()),
            ));
        }
        Some(name) => (name.value.to_owned(), name.span),
        None => (derived_name(&kind), t.span().unwrap_or_default()),
    };

    Ok((
        Check {
            name,
            kind,
            timeout_secs,
            ready_within_ms,
        },
        span,
    ))
}

fn derived_name(kind: &CheckKind) -> String {
    match kind {
        CheckKind::Run { command } => format!("`{command}` succeeds"),
        CheckKind::Unit { unit } => format!("{unit} is active"),
        CheckKind::Port { port } => format!("port {port} accepts connections"),
        CheckKind::Path {
            path,
            contains: None,
        } => format!("{path} exists"),
        CheckKind::Path {
            path,
            contains: Some(text),
        } => format!("{path} contains {text:?}"),
    }
}
