//! `[packages] local`: the team's own `.deb` files, beside the definition.

use crate::dom::{Result, Table};
use crate::error::{ErrorKind, SpecError};
use crate::repository::{LocalDeb, digest};
use crate::validate::{no_duplicates, source_file};

pub(super) fn validate(t: &Table<'_>) -> Result<Vec<LocalDeb>> {
    let ctx = t.ctx();
    let entries = t.string_list("local")?.unwrap_or_default();
    no_duplicates(ctx, &entries, "file")?;
    let mut out = Vec::with_capacity(entries.len());
    for entry in &entries {
        if !entry.value.ends_with(".deb") {
            return Err(entry.error(
                ctx,
                ErrorKind::InvalidValue,
                format!("`{}`: `{}` is not a .deb file", entry.path, entry.value),
                Some(
                    "list Debian packages built by `dpkg-buildpackage` or `dpkg-deb --build`, \
                     e.g. `../dist/app_1.4.2_amd64.deb`"
                        .to_owned(),
                ),
            ));
        }
        let file = source_file(t, entry, ".deb file")?;
        let (sha256, size) = fs_err::File::open(&file.path)
            .and_then(|mut f| digest(&mut f))
            .map_err(SpecError::Io)?;
        out.push(LocalDeb { file, sha256, size });
    }
    Ok(out)
}
