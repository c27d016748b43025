//! `[outputs]`

use crate::dom::{Result, Table};
use crate::error::ErrorKind;
use crate::model::{Format, Outputs};
use crate::validate::{no_duplicates, word};

pub(super) const FIELDS: &[&str] = &["formats"];

pub(super) fn validate(t: Option<&Table<'_>>, kernel_known: bool) -> Result<Outputs> {
    let default = || Outputs {
        formats: vec![Format::Oci, Format::Tar],
    };
    let Some(t) = t else {
        return Ok(default());
    };
    t.deny_unknown(FIELDS)?;
    let ctx = t.ctx();
    let Some(list) = t.string_list("formats")? else {
        return Ok(default());
    };
    if list.is_empty() {
        return Err(t.error_at(
            "formats",
            ErrorKind::InvalidValue,
            "`outputs.formats` is empty: there would be nothing to build",
            Some("leave it out for `[\"oci\", \"tar\"]`".to_owned()),
        ));
    }
    let mut formats = Vec::with_capacity(list.len());
    for item in &list {
        let format = word(ctx, item, "format", &Format::words(), Format::from_word)?;
        if format.is_disk() && !kernel_known {
            return Err(item.error(
                ctx,
                ErrorKind::Missing,
                format!(
                    "`{}`: `{format}` is a bootable disk, and [disk] names no kernel",
                    item.path
                ),
                Some("add `kernel = \"linux-image-cloud-amd64\"` to [disk]".to_owned()),
            ));
        }
        formats.push(format);
    }
    no_duplicates(ctx, &list, "format")?;
    Ok(Outputs { formats })
}
