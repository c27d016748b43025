//! `[packages]`

use crate::dom::{At, Result, Table};
use crate::error::ErrorKind;
use crate::model::{PackageRef, Packages};
use crate::names;
use crate::validate::no_duplicates;

pub(super) const FIELDS: &[&str] = &["install", "recommends", "local"];

pub(super) fn validate(t: Option<&Table<'_>>) -> Result<Packages> {
    let Some(t) = t else {
        return Ok(Packages {
            install: Vec::new(),
            recommends: false,
            local: Vec::new(),
        });
    };
    t.deny_unknown(FIELDS)?;
    let ctx = t.ctx();
    let entries = t.string_list("install")?.unwrap_or_default();
    let mut install = Vec::with_capacity(entries.len());
    let mut names = Vec::with_capacity(entries.len());
    for entry in &entries {
        let package = pin(t, entry)?;
        names.push(At {
            value: package.name.clone(),
            span: entry.span.clone(),
            path: entry.path.clone(),
        });
        install.push(package);
    }
    no_duplicates(ctx, &names, "package")?;
    let recommends = t.bool("recommends")?.is_some_and(|r| r.value);
    let local = super::local::validate(t)?;
    Ok(Packages {
        install,
        recommends,
        local,
    })
}

/// `name` or `name=version`.
fn pin(t: &Table<'_>, entry: &At<&str>) -> Result<PackageRef> {
    let ctx = t.ctx();
    if let Some(problem) = not_a_pin(&entry.path, entry.value) {
        return Err(entry.error(ctx, ErrorKind::InvalidValue, problem.0, Some(problem.1)));
    }
    let (name, version) = match entry.value.split_once('=') {
        Some((name, version)) => (name, Some(version)),
        None => (entry.value, None),
    };
    if let Err(problem) = names::package_name(name) {
        return Err(entry.error(
            ctx,
            ErrorKind::InvalidValue,
            format!(
                "`{}`: `{}` is not a valid package name: {}",
                entry.path, name, problem.reason
            ),
            problem.hint.or_else(|| Some(pin_hint())),
        ));
    }
    if let Some(Err(problem)) = version.map(names::debian_version) {
        return Err(entry.error(
            ctx,
            ErrorKind::InvalidValue,
            format!(
                "`{}`: `{}` is not a valid pin: {}",
                entry.path, entry.value, problem.reason
            ),
            Some(format!(
                "pin the exact version `apt-cache policy {name}` shows, e.g. \
                 `nginx-light=1.22.1-9+deb12u1`, or write `{name}` alone for the suite's version"
            )),
        ));
    }
    Ok(PackageRef {
        name: name.to_owned(),
        version: version.map(str::to_owned),
    })
}

/// apt, pip and cargo habits that are not pins: say what they are, not
/// that some fragment of them is a bad name.
fn not_a_pin(path: &str, entry: &str) -> Option<(String, String)> {
    if let Some((name, version)) = entry.split_once("==") {
        return Some((
            format!("`{path}`: `{entry}` is not a valid pin: a pin uses a single `=`"),
            format!("write `{name}={version}`"),
        ));
    }
    let operator = entry.find(['<', '>', '~', '^', '*'])?;
    let name = &entry[..operator];
    Some((
        format!("`{path}`: `{entry}` is a version range; kiln installs exact versions"),
        format!(
            "pins are exact: write `{name}` for the suite's version, or `{name}=VERSION` with \
             the exact version `apt-cache policy {name}` shows"
        ),
    ))
}

fn pin_hint() -> String {
    "write a package as `name`, or pinned as `name=version`, e.g. `nginx-light=1.22.1-9+deb12u1`"
        .to_owned()
}
