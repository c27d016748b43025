//! `[[repository]]`

use std::io::Read;

use crate::dom::{At, Result, Table};
use crate::error::{ErrorKind, SpecError};
use crate::model::DefPath;
use crate::names::{self, Problem};
use crate::repository::{Repository, digest};
use crate::validate::{no_duplicates, shape};

pub(super) const FIELDS: &[&str] = &["name", "uri", "suite", "components", "signed-by", "pin"];

/// Key files are small; anything larger is not a key.
const KEY_LIMIT: u64 = 1 << 20;

pub(super) fn validate(tables: &[Table<'_>]) -> Result<Vec<Repository>> {
    let mut out = Vec::with_capacity(tables.len());
    let mut names = Vec::with_capacity(tables.len());
    for t in tables {
        t.deny_unknown(FIELDS)?;
        let ctx = t.ctx();
        let uri = t.required_string("uri", "\"https://apt.example.com/debian\"")?;
        shape(ctx, &uri, "repository URI", repository_uri)?;
        let suite = t.required_string("suite", "\"stable\"")?;
        shape(ctx, &suite, "suite", archive_word)?;
        let name = match t.string("name")? {
            Some(n) => {
                shape(ctx, &n, "repository name", names::dns_label)?;
                n.value.to_owned()
            }
            None => suite.value.to_owned(),
        };
        names.push(At {
            value: name.clone(),
            span: t.key_span("name").unwrap_or_else(|| suite.span.clone()),
            path: t.path_of("name"),
        });
        let components = match t.string_list("components")? {
            Some(list) => {
                for c in &list {
                    shape(ctx, c, "component", archive_word)?;
                }
                if list.is_empty() {
                    return Err(t.error_here(
                        ErrorKind::InvalidValue,
                        t.path_of("components"),
                        format!("`{}` is empty", t.path_of("components")),
                        Some("list the repository's components, e.g. `[\"main\"]`".to_owned()),
                    ));
                }
                no_duplicates(ctx, &list, "component")?;
                list.iter().map(|c| c.value.to_owned()).collect()
            }
            None => vec!["main".to_owned()],
        };
        let key = t.required_string("signed-by", "\"keys/vendor.asc\"")?;
        let signed_by = super::source_file(t, &key, "key file")?;
        let key_sha256 = key_digest(t, &key, &signed_by)?;
        let pin = match t.string_list("pin")? {
            Some(list) => {
                for p in &list {
                    shape(ctx, p, "package name", names::package_name)?;
                }
                no_duplicates(ctx, &list, "package")?;
                Some(list.iter().map(|p| p.value.to_owned()).collect())
            }
            None => None,
        };
        out.push(Repository {
            name,
            uri: uri.value.trim_end_matches('/').to_owned(),
            suite: suite.value.to_owned(),
            components,
            signed_by,
            key_sha256,
            pin,
        });
    }
    if let Some(t) = tables.first() {
        // A name defaults to the suite, so two repositories of one suite
        // need a `name` each.
        no_duplicates(t.ctx(), &names, "repository name")?;
    }
    Ok(out)
}

fn key_digest(t: &Table<'_>, at: &At<&str>, key: &DefPath) -> Result<String> {
    let mut bytes = Vec::new();
    let read =
        fs_err::File::open(&key.path).and_then(|f| f.take(KEY_LIMIT + 1).read_to_end(&mut bytes));
    if let Err(e) = read {
        return Err(SpecError::Io(e));
    }
    if bytes.len() as u64 > KEY_LIMIT {
        return Err(at.error(
            t.ctx(),
            ErrorKind::InvalidValue,
            format!("`{}`: `{}` is larger than 1 MiB", at.path, at.value),
            Some("name the repository's public key, exported with `gpg --export`".to_owned()),
        ));
    }
    Ok(digest(&mut bytes.as_slice()).map_err(SpecError::Io)?.0)
}

fn repository_uri(uri: &str) -> std::result::Result<(), Problem> {
    let rest = uri
        .strip_prefix("https://")
        .or_else(|| uri.strip_prefix("http://"));
    let Some(rest) = rest else {
        return Err(Problem {
            reason: "kiln fetches repositories over http:// or https://".to_owned(),
            hint: Some("write the URI apt's sources.list has for it".to_owned()),
        });
    };
    if rest.is_empty() || rest.starts_with('/') || rest.contains(char::is_whitespace) {
        return Err(Problem {
            reason: "it has no host".to_owned(),
            hint: Some("write the URI apt's sources.list has for it".to_owned()),
        });
    }
    Ok(())
}

/// Suites and components become URL path segments and store keys: letters,
/// digits, `.`, `_`, `-`, and `/` between words (`stable/updates`).
fn archive_word(word: &str) -> std::result::Result<(), Problem> {
    let bad = word.is_empty()
        || word.split('/').any(|part| {
            part.is_empty()
                || part == "."
                || part == ".."
                || !part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        });
    if bad {
        return Err(Problem {
            reason: "only letters, digits, `.`, `_`, `-` and `/` between words are allowed"
                .to_owned(),
            hint: Some("write it as the repository's apt sources line does".to_owned()),
        });
    }
    Ok(())
}
