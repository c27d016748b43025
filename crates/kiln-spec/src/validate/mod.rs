//! From the TOML document to a [`Definition`]: one module per section.

mod base;
mod checks;
mod disk;
mod files;
mod image;
mod include;
mod local;
mod outputs;
mod packages;
mod repository;
mod run;
mod runtime;
mod services;
mod unbaked;
mod users;

use std::collections::HashMap;
use std::path::Path;

use toml::de::DeValue;

use crate::dom::{At, Ctx, Result, Table};
use crate::error::{ErrorKind, SpecError};
use crate::model::{Base, DefPath, Definition};
use crate::names::Problem;
use crate::suggest;

/// Sections, with how they are written, for messages and did-you-mean.
const SECTIONS: &[(&str, &str)] = &[
    ("image", "[image]"),
    ("base", "[base]"),
    ("repository", "[[repository]]"),
    ("packages", "[packages]"),
    ("files", "[[files]]"),
    ("users", "[[users]]"),
    ("run", "[[run]]"),
    ("services", "[services]"),
    ("runtime", "[runtime]"),
    ("disk", "[disk]"),
    ("outputs", "[outputs]"),
    ("check", "[[check]]"),
];

pub(crate) fn definition(ctx: &Ctx<'_>, root: &Table<'_>) -> Result<Definition> {
    deny_unknown_sections(root)?;

    let image = match root.table("image")? {
        Some(t) => image::validate(&t)?,
        None => return Err(missing_section(root, "image", "with `name` and `version`")),
    };
    let base = match root.table("base")? {
        Some(t) => base::validate(&t)?,
        None => {
            return Err(missing_section(
                root,
                "base",
                "with `distro = \"debian\"` and `suite = \"bookworm\"`, or `from = \"../base\"` \
                 to build on another image",
            ));
        }
    };
    let repositories = repository::validate(&root.tables("repository")?)?;
    let packages = packages::validate(root.table("packages")?.as_ref())?;
    let files = files::validate(&root.tables("files")?)?;
    let users = users::validate(&root.tables("users")?)?;
    let run = run::validate(&root.tables("run")?)?;
    let services = services::validate(root.table("services")?.as_ref())?;
    let runtime = runtime::validate(root.table("runtime")?.as_ref())?;
    let disk = disk::validate(root.table("disk")?.as_ref())?;
    // A child boots its parent's kernel, so only a Debian base must name one.
    let kernel_known = disk.kernel.is_some() || matches!(base, Base::From(_));
    let outputs = outputs::validate(root.table("outputs")?.as_ref(), kernel_known)?;
    let checks = checks::validate(&root.tables("check")?)?;

    let mut definition = Definition {
        path: ctx.file.to_path_buf(),
        dir: ctx.dir.to_path_buf(),
        image,
        base,
        repositories,
        packages,
        files,
        users,
        run,
        services,
        runtime,
        disk,
        outputs,
        checks,
        includes: Vec::new(),
    };
    include::apply(root, &mut definition)?;
    Ok(definition)
}

fn deny_unknown_sections(root: &Table<'_>) -> Result<()> {
    let names: Vec<&str> = SECTIONS.iter().map(|(n, _)| *n).collect();
    for (key, span, value) in root.keys() {
        if names.contains(&key) || key == include::KEY {
            continue;
        }
        let is_section = matches!(value, DeValue::Table(_))
            || matches!(value, DeValue::Array(a) if a.iter().all(|v| v.get_ref().is_table()));
        let (message, hint) = if is_section {
            let written = |n: &str| {
                SECTIONS
                    .iter()
                    .find(|(name, _)| *name == n)
                    .map_or(n.to_owned(), |(_, w)| (*w).to_owned())
            };
            let hint = match suggest::closest(key, &names) {
                Some(best) => format!("did you mean `{}`?", written(best)),
                None => format!(
                    "the sections are {}",
                    SECTIONS
                        .iter()
                        .map(|(_, w)| *w)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
            let brackets = if matches!(value, DeValue::Array(_)) {
                format!("[[{key}]]")
            } else {
                format!("[{key}]")
            };
            (format!("unknown section {brackets}"), hint)
        } else {
            let hint = match section_of_field(key) {
                Some(section) => format!("`{key}` belongs under {section}"),
                None => "settings go under a section, e.g. `name` under [image]".to_owned(),
            };
            (format!("unknown field `{key}` at the top level"), hint)
        };
        return Err(root.ctx().error(
            ErrorKind::UnknownField,
            Some(span),
            key,
            message,
            Some(hint),
        ));
    }
    Ok(())
}

fn section_of_field(key: &str) -> Option<&'static str> {
    let fields: HashMap<&str, &str> = [
        (image::FIELDS, "[image]"),
        (base::FIELDS, "[base]"),
        (packages::FIELDS, "[packages]"),
        (services::FIELDS, "[services]"),
        (runtime::FIELDS, "[runtime]"),
        (disk::FIELDS, "[disk]"),
        (outputs::FIELDS, "[outputs]"),
    ]
    .iter()
    .flat_map(|(fields, section)| fields.iter().map(move |f| (*f, *section)))
    .collect();
    fields.get(key).copied()
}

fn missing_section(root: &Table<'_>, name: &str, what: &str) -> SpecError {
    root.error_here(
        ErrorKind::Missing,
        name.to_owned(),
        format!("missing section [{name}]"),
        Some(format!("add a [{name}] section {what}")),
    )
}

/// Rejects a value that does not have the shape `check` wants.
pub(crate) fn shape(
    ctx: &Ctx<'_>,
    at: &At<&str>,
    what: &str,
    check: fn(&str) -> std::result::Result<(), Problem>,
) -> Result<()> {
    check(at.value).map_err(|Problem { reason, hint }| {
        at.error(
            ctx,
            ErrorKind::InvalidValue,
            format!(
                "`{}`: `{}` is not a valid {what}: {reason}",
                at.path, at.value
            ),
            hint,
        )
    })
}

/// Rejects the second occurrence of a value, pointing back at the first.
pub(crate) fn no_duplicates<T: AsRef<str>>(
    ctx: &Ctx<'_>,
    items: &[At<T>],
    noun: &str,
) -> Result<()> {
    let mut seen: HashMap<&str, &str> = HashMap::new();
    for item in items {
        let key = item.value.as_ref();
        if let Some(first) = seen.insert(key, &item.path) {
            return Err(item.error(
                ctx,
                ErrorKind::Duplicate,
                format!("`{}`: {noun} `{key}` is listed twice", item.path),
                Some(format!("it is already at `{first}`; remove one")),
            ));
        }
    }
    Ok(())
}

/// A word from a closed set (suite, variant, format, …) or a did-you-mean.
pub(crate) fn word<T>(
    ctx: &Ctx<'_>,
    at: &At<&str>,
    noun: &str,
    words: &[&str],
    parse: impl Fn(&str) -> Option<T>,
) -> Result<T> {
    parse(at.value).ok_or_else(|| {
        at.error(
            ctx,
            ErrorKind::InvalidValue,
            format!("`{}`: unknown {noun} `{}`", at.path, at.value),
            Some(suggest::hint(at.value, words, &format!("{noun}s are"))),
        )
    })
}

/// A file beside the definition (`files.src`, `run.script`) that must exist,
/// so a typo fails here rather than halfway through a build.
pub(crate) fn source_file(t: &Table<'_>, at: &At<&str>, noun: &str) -> Result<DefPath> {
    let ctx = t.ctx();
    if at.value.is_empty() {
        return Err(at.error(
            ctx,
            ErrorKind::InvalidValue,
            format!("`{}` is empty", at.path),
            Some(format!(
                "name a {noun} relative to the definition's directory"
            )),
        ));
    }
    if Path::new(at.value).is_absolute() {
        return Err(at.error(
            ctx,
            ErrorKind::InvalidValue,
            format!(
                "`{}` must be relative to the definition, not `{}`",
                at.path, at.value
            ),
            Some(
                "keep the file beside kiln.toml so the build is the same on every machine"
                    .to_owned(),
            ),
        ));
    }
    let path = DefPath::resolve(ctx.dir, at.value);
    if !path.path.exists() {
        let hint = match sibling_like(&path.path) {
            Some(name) => {
                let written = Path::new(at.value).with_file_name(name);
                format!("did you mean `{}`?", written.display())
            }
            None => format!(
                "paths are relative to the definition's directory; looked for {}",
                path.path.display()
            ),
        };
        return Err(at.error(
            ctx,
            ErrorKind::MissingPath,
            format!("`{}`: `{}` does not exist", at.path, at.value),
            Some(hint),
        ));
    }
    if !path.path.is_file() {
        return Err(at.error(
            ctx,
            ErrorKind::InvalidValue,
            format!("`{}`: `{}` is not a regular file", at.path, at.value),
            Some(format!("name a {noun}, not a directory")),
        ));
    }
    Ok(path)
}

/// A file next to where `missing` was looked for, with a name close to it.
fn sibling_like(missing: &Path) -> Option<String> {
    let name = missing.file_name()?.to_str()?;
    let dir = match missing.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let siblings: Vec<String> = fs_err::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    let mut siblings: Vec<&str> = siblings.iter().map(String::as_str).collect();
    // Sorted so the suggestion does not depend on directory order.
    siblings.sort_unstable();
    suggest::closest(name, &siblings).map(str::to_owned)
}
