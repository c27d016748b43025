//! `[[files]]`

use crate::dom::{At, Result, Table};
use crate::error::ErrorKind;
use crate::model::{FileSpec, Owner};
use crate::names;
use crate::validate::{no_duplicates, shape};

const FIELDS: &[&str] = &["src", "dst", "mode", "owner"];

pub(super) fn validate(tables: &[Table<'_>]) -> Result<Vec<FileSpec>> {
    let mut files = Vec::with_capacity(tables.len());
    let mut dsts = Vec::with_capacity(tables.len());
    for t in tables {
        t.deny_unknown(FIELDS)?;
        let ctx = t.ctx();
        let src = t.required_string("src", "\"files/NAME\"")?;
        let src = super::source_file(t, &src, "file")?;
        let dst = t.required_string("dst", "\"/etc/NAME\"")?;
        shape(ctx, &dst, "path", names::guest_path)?;
        if dst.value == "/" {
            return Err(dst.error(
                ctx,
                ErrorKind::InvalidValue,
                format!("`{}` must name a file, not `/`", dst.path),
                Some("write the full path of the file in the image, e.g. `/etc/motd`".to_owned()),
            ));
        }
        if let Some(u) = super::unbaked::check(dst.value) {
            return Err(dst.error(
                ctx,
                ErrorKind::InvalidValue,
                format!("`{}`: {}: {}", dst.path, dst.value, u.why),
                Some(u.hint.to_owned()),
            ));
        }
        if let Ok(Some(number)) = t.integer("mode") {
            // TOML reads 644 as decimal, and 0644 is not TOML at all.
            let raw = ctx.source.get(number.span.clone()).unwrap_or_default();
            let digits = raw.trim_start_matches("0o");
            return Err(number.error(
                ctx,
                ErrorKind::WrongType,
                format!("`{}` must be a string, not a number", number.path),
                Some(format!(
                    "write the octal mode in quotes: `mode = \"{digits:0>4}\"`"
                )),
            ));
        }
        let mode = match t.string("mode")? {
            Some(m) => mode(t, &m)?,
            None => 0o644,
        };
        let owner = match t.string("owner")? {
            Some(o) => owner(t, &o)?,
            None => Owner {
                user: "root".to_owned(),
                group: "root".to_owned(),
            },
        };
        dsts.push(At {
            value: dst.value.to_owned(),
            span: dst.span.clone(),
            path: dst.path.clone(),
        });
        files.push(FileSpec {
            src,
            dst: dst.value.to_owned(),
            mode,
            owner,
        });
    }
    if let Some(t) = tables.first() {
        no_duplicates(t.ctx(), &dsts, "destination")?;
    }
    Ok(files)
}

/// Octal permission bits as a string, so `0644` cannot be misread as decimal.
fn mode(t: &Table<'_>, m: &At<&str>) -> Result<u32> {
    let digits = m.value.strip_prefix("0o").unwrap_or(m.value);
    let ok = (3..=4).contains(&digits.len()) && digits.chars().all(|c| ('0'..='7').contains(&c));
    match u32::from_str_radix(digits, 8) {
        Ok(mode) if ok => Ok(mode),
        _ => Err(m.error(
            t.ctx(),
            ErrorKind::InvalidValue,
            format!(
                "`{}` must be octal permissions like \"0644\", not \"{}\"",
                m.path, m.value
            ),
            Some(
                "three or four digits from 0 to 7: e.g. \"0644\" for a file, \"0755\" for a \
                 program, \"0600\" for a secret"
                    .to_owned(),
            ),
        )),
    }
}

fn owner(t: &Table<'_>, o: &At<&str>) -> Result<Owner> {
    let ctx = t.ctx();
    let Some((user, group)) = o.value.split_once(':') else {
        return Err(o.error(
            ctx,
            ErrorKind::InvalidValue,
            format!("`{}` must be `user:group`, not `{}`", o.path, o.value),
            Some(format!("write `owner = \"{0}:{0}\"`", o.value)),
        ));
    };
    for (part, what) in [(user, "user"), (group, "group")] {
        let at = At {
            value: part,
            span: o.span.clone(),
            path: o.path.clone(),
        };
        if let Err(problem) = names::account_name(part) {
            return Err(at.error(
                ctx,
                ErrorKind::InvalidValue,
                format!(
                    "`{}`: `{part}` is not a valid {what} name: {}",
                    o.path, problem.reason
                ),
                Some("write `user:group` with names or numeric ids, e.g. `root:root`".to_owned()),
            ));
        }
    }
    Ok(Owner {
        user: user.to_owned(),
        group: group.to_owned(),
    })
}
