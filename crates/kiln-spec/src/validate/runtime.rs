//! `[runtime]`: configuration delivered at boot, never baked.

use crate::dom::{Result, Table};
use crate::error::ErrorKind;
use crate::model::Runtime;
use crate::names;
use crate::validate::{no_duplicates, shape};

pub(super) const FIELDS: &[&str] = &["env_file", "required"];

pub(super) fn validate(table: Option<&Table<'_>>) -> Result<Runtime> {
    let Some(t) = table else {
        return Ok(Runtime::default());
    };
    t.deny_unknown(FIELDS)?;
    let ctx = t.ctx();
    let env_file = t.string("env_file")?;
    if let Some(path) = &env_file {
        shape(ctx, path, "path", names::guest_path)?;
    }
    let required = t.string_list("required")?.unwrap_or_default();
    for name in &required {
        shape(ctx, name, "variable name", names::env_var)?;
    }
    no_duplicates(ctx, &required, "variable")?;
    if let (None, Some(first)) = (&env_file, required.first()) {
        return Err(first.error(
            ctx,
            ErrorKind::Missing,
            "`runtime.required` needs `runtime.env_file`: where the variables are written at boot",
            Some("add `env_file = \"/etc/default/NAME\"` to [runtime]".to_owned()),
        ));
    }
    Ok(Runtime {
        env_file: env_file.map(|p| p.value.to_owned()),
        required: required.iter().map(|r| r.value.to_owned()).collect(),
    })
}
