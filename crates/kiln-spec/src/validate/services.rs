//! `[services]`

use std::collections::HashMap;

use crate::dom::{Result, Table};
use crate::error::ErrorKind;
use crate::model::Services;
use crate::names;
use crate::validate::{no_duplicates, shape};

pub(super) const FIELDS: &[&str] = &["enable", "disable"];

pub(super) fn validate(t: Option<&Table<'_>>) -> Result<Services> {
    let Some(t) = t else {
        return Ok(Services::default());
    };
    t.deny_unknown(FIELDS)?;
    let ctx = t.ctx();
    let enable = t.string_list("enable")?.unwrap_or_default();
    let disable = t.string_list("disable")?.unwrap_or_default();
    for unit in enable.iter().chain(&disable) {
        shape(ctx, unit, "unit name", names::unit_name)?;
    }
    no_duplicates(ctx, &enable, "unit")?;
    no_duplicates(ctx, &disable, "unit")?;
    let enabled: HashMap<&str, &str> = enable.iter().map(|u| (u.value, u.path.as_str())).collect();
    if let Some((unit, first)) = disable
        .iter()
        .find_map(|u| enabled.get(u.value).map(|first| (u, *first)))
    {
        return Err(unit.error(
            ctx,
            ErrorKind::Conflict,
            format!(
                "`{}`: `{}` is both enabled and disabled",
                unit.path, unit.value
            ),
            Some(format!("it is enabled at `{first}`; keep one")),
        ));
    }
    Ok(Services {
        enable: enable.iter().map(|u| u.value.to_owned()).collect(),
        disable: disable.iter().map(|u| u.value.to_owned()).collect(),
    })
}
