//! `[image]`

use crate::dom::{Result, Table};
use crate::model::Image;
use crate::names;
use crate::validate::shape;

pub(super) const FIELDS: &[&str] = &["name", "version"];

pub(super) fn validate(t: &Table<'_>) -> Result<Image> {
    t.deny_unknown(FIELDS)?;
    let name = t.required_string("name", "\"web\"")?;
    shape(t.ctx(), &name, "image name", names::dns_label)?;
    let version = t.required_string("version", "\"1.0.0\"")?;
    shape(t.ctx(), &version, "image version", names::oci_tag)?;
    Ok(Image {
        name: name.value.to_owned(),
        version: version.value.to_owned(),
    })
}
