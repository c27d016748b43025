//! `[base]`: a Debian suite, or another image's directory.

use std::path::Path;

use crate::dom::{Result, Table};
use crate::error::ErrorKind;
use crate::model::{
    Architecture, Base, Component, DEFAULT_KEYRING, DebianBase, DefPath, ParentRef, Suite, Variant,
};
use crate::validate::{no_duplicates, word};

pub(super) const FIELDS: &[&str] = &[
    "distro",
    "suite",
    "variant",
    "components",
    "keyring",
    "architecture",
    "from",
];

/// Fields that describe a distribution base; a `from` child inherits them.
const DISTRO_FIELDS: &[&str] = &["suite", "variant", "components", "keyring", "architecture"];

pub(super) fn validate(t: &Table<'_>) -> Result<Base> {
    t.deny_unknown(FIELDS)?;
    let ctx = t.ctx();
    let distro = t.string("distro")?;
    let from = t.string("from")?;
    match (distro, from) {
        (Some(_), Some(from)) => Err(from.error(
            ctx,
            ErrorKind::Conflict,
            "`base.distro` and `base.from` cannot both be set",
            Some(
                "a base is a distribution (`distro` and `suite`) or another image \
                 (`from = \"DIR\"`), not both: remove one"
                    .to_owned(),
            ),
        )),
        (None, None) => Err(t.error_here(
            ErrorKind::Conflict,
            "base".to_owned(),
            "[base] needs `distro` or `from`",
            Some(
                "add `distro = \"debian\"` and `suite = \"bookworm\"`, or `from = \"../base\"` \
                 to build on another image"
                    .to_owned(),
            ),
        )),
        (None, Some(from)) => {
            if let Some(field) = DISTRO_FIELDS.iter().find(|f| t.has(f)) {
                return Err(t.error_at(
                    field,
                    ErrorKind::Conflict,
                    format!("`base.{field}` cannot be set with `base.from`"),
                    Some(format!(
                        "an image built `from` another uses its parent's {field}; remove it here"
                    )),
                ));
            }
            if from.value.is_empty() {
                return Err(from.error(
                    ctx,
                    ErrorKind::InvalidValue,
                    "`base.from` is empty",
                    Some(
                        "name the directory holding the parent's kiln.toml, e.g. `\"../base\"`"
                            .to_owned(),
                    ),
                ));
            }
            let dir = ctx.dir.join(from.value);
            if !dir.join("kiln.toml").is_file() {
                return Err(from.error(
                    ctx,
                    ErrorKind::MissingPath,
                    format!("`base.from`: no kiln.toml in `{}`", from.value),
                    Some(format!(
                        "`from` is a directory relative to this definition; looked for {}",
                        dir.join("kiln.toml").display()
                    )),
                ));
            }
            if same_dir(&dir, ctx.dir) {
                return Err(from.error(
                    ctx,
                    ErrorKind::Conflict,
                    "`base.from` names this definition's own directory",
                    Some(
                        "an image cannot be built on itself; name the parent's directory"
                            .to_owned(),
                    ),
                ));
            }
            Ok(Base::From(ParentRef {
                written: from.value.to_owned(),
                dir,
            }))
        }
        (Some(distro), None) => {
            if distro.value != "debian" {
                let hint = if crate::suggest::closest(distro.value, &["debian"]).is_some() {
                    "did you mean `debian`?"
                } else {
                    "kiln builds Debian images: `distro = \"debian\"`"
                };
                return Err(distro.error(
                    ctx,
                    ErrorKind::InvalidValue,
                    format!("`base.distro`: unknown distribution `{}`", distro.value),
                    Some(hint.to_owned()),
                ));
            }
            debian(t).map(Base::Debian)
        }
    }
}

fn debian(t: &Table<'_>) -> Result<DebianBase> {
    let ctx = t.ctx();
    let suite = t.required_string("suite", "\"bookworm\"")?;
    let suite = match Suite::from_word(suite.value) {
        Some(s) => s,
        None => {
            let hint = match alias(suite.value) {
                Some(codename) => format!(
                    "kiln pins a release by codename so the image never changes release under \
                     you: write `suite = \"{codename}\"`"
                ),
                None => crate::suggest::hint(suite.value, &Suite::words(), "suites are"),
            };
            return Err(suite.error(
                ctx,
                ErrorKind::InvalidValue,
                format!("`base.suite`: unknown suite `{}`", suite.value),
                Some(hint),
            ));
        }
    };

    let variant = match t.string("variant")? {
        None => Variant::Minbase,
        Some(v) if v.value == "required" => Variant::Minbase,
        Some(v) => Variant::from_word(v.value).ok_or_else(|| {
            let words = [
                "essential",
                "apt",
                "minbase",
                "required",
                "important",
                "standard",
            ];
            let guess = match v.value {
                "minimal" | "min" | "base" | "minbase-apt" => Some("minbase"),
                "full" | "default" => Some("standard"),
                _ => crate::suggest::closest(v.value, &words),
            };
            let all = "variants are `essential`, `apt`, `minbase` (the default; also called \
                       `required`), `important` and `standard`";
            v.error(
                ctx,
                ErrorKind::InvalidValue,
                format!("`base.variant`: unknown variant `{}`", v.value),
                Some(match guess {
                    Some(g) => format!("did you mean `{g}`? {all}"),
                    None => all.to_owned(),
                }),
            )
        })?,
    };

    let components = match t.string_list("components")? {
        None => vec![Component::Main],
        Some(list) => {
            if list.is_empty() {
                return Err(t.error_at(
                    "components",
                    ErrorKind::InvalidValue,
                    "`base.components` is empty",
                    Some("leave it out for `[\"main\"]`".to_owned()),
                ));
            }
            no_duplicates(ctx, &list, "component")?;
            list.iter()
                .map(|c| {
                    word(
                        ctx,
                        c,
                        "component",
                        &Component::words(),
                        Component::from_word,
                    )
                })
                .collect::<Result<Vec<_>>>()?
        }
    };

    let keyring = match t.string("keyring")? {
        None => DefPath::resolve(ctx.dir, DEFAULT_KEYRING),
        Some(k) if k.value.is_empty() => {
            return Err(k.error(
                ctx,
                ErrorKind::InvalidValue,
                "`base.keyring` is empty",
                Some(format!("leave it out for {DEFAULT_KEYRING}")),
            ));
        }
        Some(k) => DefPath::resolve(ctx.dir, k.value),
    };

    let architecture = match t.string("architecture")? {
        None => Architecture::Amd64,
        Some(a) => Architecture::from_debian(a.value).ok_or_else(|| {
            let known: Vec<&str> = Architecture::ALL.iter().map(|a| a.debian()).collect();
            // Other tools' names for the same machines.
            let guess = match a.value {
                "x86_64" | "x86-64" | "x64" => Some("amd64"),
                "aarch64" | "arm64v8" => Some("arm64"),
                other => crate::suggest::closest(other, &known),
            };
            let all = format!(
                "kiln builds only for machines it can run: {} (Debian's names; `amd64` is the default)",
                crate::suggest::list(&known)
            );
            a.error(
                ctx,
                ErrorKind::InvalidValue,
                format!("`base.architecture`: `{}` is not supported", a.value),
                Some(match guess {
                    Some(g) => format!("did you mean `{g}`? {all}"),
                    None => all,
                }),
            )
        })?,
    };

    Ok(DebianBase {
        suite,
        variant,
        components,
        keyring,
        architecture,
    })
}

/// Names people use for a release that are not a pinned codename.
fn alias(word: &str) -> Option<&'static str> {
    match word {
        "stable" | "13" | "debian13" | "trixie-updates" => Some("trixie"),
        "oldstable" | "12" | "debian12" | "bookworm-updates" => Some("bookworm"),
        _ => None,
    }
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}
