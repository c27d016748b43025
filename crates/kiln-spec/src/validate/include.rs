//! `include = ["../fragments/ssh.toml"]`: fragments merged into a definition.
//!
//! Each fragment is validated as a definition's sections are (its own file,
//! line and hint; `src` and `script` paths relative to the fragment), then
//! merged: fragments first, in the order written, then the definition's own
//! entries. The same request twice is kept once; two different values for
//! one thing (a `dst`, a user, a package pin, `env_file`) are an error that
//! names both places, since either choice would surprise someone.

use std::fmt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use toml::de::DeTable;

use crate::dom::{At, Ctx, Result, Table};
use crate::error::{ErrorKind, SpecError};
use crate::fragment::{FRAGMENT_SECTIONS, Fragment};
use crate::model::{
    Check, Definition, FileSpec, PackageRef, Packages, Run, Runtime, Services, User,
};

use super::{checks, files, packages, run, runtime, services, users};

/// The top-level key of a definition that lists its fragments.
pub(super) const KEY: &str = "include";

/// Reads, validates and merges the fragments `root` includes into `def`.
pub(super) fn apply(root: &Table<'_>, def: &mut Definition) -> Result<()> {
    let Some(entries) = root.string_list(KEY)? else {
        return Ok(());
    };
    let ctx = root.ctx();
    super::no_duplicates(ctx, &entries, "fragment")?;
    let mut merged = Merged::default();
    for entry in &entries {
        let path = super::source_file(root, entry, "fragment")?;
        let bytes = fs_err::read(&path.path)?;
        let digest = format!("sha256:{}", hex::encode(Sha256::digest(&bytes)));
        let Ok(text) = String::from_utf8(bytes) else {
            return Err(entry.error(
                ctx,
                ErrorKind::InvalidValue,
                format!("`{}`: `{}` is not UTF-8 text", entry.path, entry.value),
                Some("a fragment is a TOML file like kiln.toml".to_owned()),
            ));
        };
        let fctx = Ctx {
            file: &path.path,
            dir: path.path.parent().unwrap_or(Path::new("")),
            source: &text,
        };
        let document = DeTable::parse(&text).map_err(|e| fctx.syntax(&e))?;
        let froot = Table::root(&fctx, document.get_ref());
        only_fragment_sections(&froot)?;
        // Units are merged from their located entries below; this checks them.
        services::validate(froot.table("services")?.as_ref())?;
        let part = Part {
            packages: packages::validate(froot.table("packages")?.as_ref())?,
            files: files::validate(&froot.tables("files")?)?,
            users: users::validate(&froot.tables("users")?)?,
            run: run::validate(&froot.tables("run")?)?,
            runtime: runtime::validate(froot.table("runtime")?.as_ref())?,
            checks: checks::validate(&froot.tables("check")?)?,
        };
        merged.add(&froot, part)?;
        def.includes.push(Fragment { path, digest });
    }
    let own = Part::take(def);
    merged.add(root, own)?;
    merged.into_definition(def);
    Ok(())
}

/// A fragment adds to an image; what the image is stays in its definition.
fn only_fragment_sections(root: &Table<'_>) -> Result<()> {
    for (key, span, _) in root.keys() {
        if FRAGMENT_SECTIONS.contains(&key) {
            continue;
        }
        if key == KEY || super::SECTIONS.iter().any(|(name, _)| *name == key) {
            let written = super::SECTIONS
                .iter()
                .find(|(name, _)| *name == key)
                .map_or(format!("`{key}`"), |(_, w)| (*w).to_owned());
            return Err(root.ctx().error(
                ErrorKind::UnknownField,
                Some(span),
                key,
                format!("a fragment cannot hold {written}"),
                Some(format!(
                    "fragments hold {}; set {written} in each definition that includes this \
                     fragment",
                    fragment_sections()
                )),
            ));
        }
    }
    super::deny_unknown_sections(root)
}

fn fragment_sections() -> String {
    super::SECTIONS
        .iter()
        .filter(|(name, _)| FRAGMENT_SECTIONS.contains(name))
        .map(|(_, written)| *written)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The sections of a fragment or of the definition itself, validated.
struct Part {
    packages: Packages,
    files: Vec<FileSpec>,
    users: Vec<User>,
    run: Vec<Run>,
    runtime: Runtime,
    checks: Vec<Check>,
}

impl Part {
    /// The definition's own sections, validated already by the caller.
    fn take(def: &mut Definition) -> Part {
        Part {
            packages: Packages {
                install: std::mem::take(&mut def.packages.install),
                recommends: def.packages.recommends,
                local: std::mem::take(&mut def.packages.local),
            },
            files: std::mem::take(&mut def.files),
            users: std::mem::take(&mut def.users),
            run: std::mem::take(&mut def.run),
            runtime: std::mem::take(&mut def.runtime),
            checks: std::mem::take(&mut def.checks),
        }
    }
}

/// Where a merged value was written, for the message about a conflict.
#[derive(Debug, Clone)]
struct Place {
    file: PathBuf,
    line: usize,
    field: String,
}

impl Place {
    fn of<T>(ctx: &Ctx<'_>, at: &At<T>) -> Place {
        let before = ctx.source.get(..at.span.start).unwrap_or_default();
        Place {
            file: ctx.file.to_path_buf(),
            line: before.matches('\n').count() + 1,
            field: at.path.clone(),
        }
    }
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` at {}:{}",
            self.field,
            self.file.display(),
            self.line
        )
    }
}

fn conflict<T>(ctx: &Ctx<'_>, at: &At<T>, message: String, first: &Place) -> SpecError {
    at.error(
        ctx,
        ErrorKind::Conflict,
        message,
        Some(format!("it is also set by {first}; keep one of the two")),
    )
}

#[derive(Default)]
struct Merged {
    install: Vec<(PackageRef, Place)>,
    recommends: bool,
    /// `.deb` files, each resolved against the file that named it.
    local: Vec<crate::LocalDeb>,
    files: Vec<(FileSpec, Place)>,
    users: Vec<(User, Place)>,
    run: Vec<Run>,
    enable: Vec<(String, Place)>,
    disable: Vec<(String, Place)>,
    env_file: Option<(String, Place)>,
    required: Vec<String>,
    checks: Vec<Check>,
}

impl Merged {
    /// Appends `part`, read from `t`, whose spans locate its values.
    fn add(&mut self, t: &Table<'_>, part: Part) -> Result<()> {
        let ctx = t.ctx();
        let install = match t.table("packages")? {
            Some(p) => p.string_list("install")?.unwrap_or_default(),
            None => Vec::new(),
        };
        for (package, at) in part.packages.install.into_iter().zip(&install) {
            match self.install.iter().find(|(p, _)| p.name == package.name) {
                Some((p, _)) if *p == package => {}
                Some((p, first)) => {
                    let message = format!(
                        "`{}`: `{package}` here, but `{p}` where the package is also asked for",
                        at.path
                    );
                    return Err(conflict(ctx, at, message, first));
                }
                None => self.install.push((package, Place::of(ctx, at))),
            }
        }
        self.recommends |= part.packages.recommends;
        self.local.extend(part.packages.local);

        let dsts = located(&t.tables("files")?, "dst")?;
        for (file, at) in part.files.into_iter().zip(&dsts) {
            if let Some((_, first)) = self.files.iter().find(|(f, _)| f.dst == file.dst) {
                let message = format!("`{}`: `{}` is written twice", at.path, file.dst);
                return Err(conflict(ctx, at, message, first));
            }
            self.files.push((file, Place::of(ctx, at)));
        }

        let names = located(&t.tables("users")?, "name")?;
        for (user, at) in part.users.into_iter().zip(&names) {
            match self.users.iter().find(|(u, _)| u.name == user.name) {
                Some((u, _)) if *u == user => {}
                Some((_, first)) => {
                    let message = format!(
                        "`{}`: user `{}` is defined twice, differently",
                        at.path, user.name
                    );
                    return Err(conflict(ctx, at, message, first));
                }
                None => self.users.push((user, Place::of(ctx, at))),
            }
        }

        self.run.extend(part.run);

        let (enable, disable) = match t.table("services")? {
            Some(s) => (
                s.string_list("enable")?.unwrap_or_default(),
                s.string_list("disable")?.unwrap_or_default(),
            ),
            None => (Vec::new(), Vec::new()),
        };
        units(ctx, &mut self.enable, &self.disable, &enable, "enabled")?;
        units(ctx, &mut self.disable, &self.enable, &disable, "disabled")?;

        if let Some(env_file) = part.runtime.env_file {
            let at = match t.table("runtime")? {
                Some(r) => r.string("env_file")?,
                None => None,
            };
            match (&self.env_file, at) {
                (Some((first, place)), Some(at)) if *first != env_file => {
                    let message =
                        format!("`{}`: `{env_file}` here, but `{first}` elsewhere", at.path);
                    return Err(conflict(ctx, &at, message, place));
                }
                (None, Some(at)) => self.env_file = Some((env_file, Place::of(ctx, &at))),
                _ => {}
            }
        }
        for variable in part.runtime.required {
            if !self.required.contains(&variable) {
                self.required.push(variable);
            }
        }

        self.checks.extend(part.checks);
        Ok(())
    }

    fn into_definition(self, def: &mut Definition) {
        def.packages.install = self.install.into_iter().map(|(p, _)| p).collect();
        def.packages.recommends = self.recommends;
        def.packages.local = self.local;
        def.files = self.files.into_iter().map(|(f, _)| f).collect();
        def.users = self.users.into_iter().map(|(u, _)| u).collect();
        def.run = self.run;
        def.services = Services {
            enable: self.enable.into_iter().map(|(u, _)| u).collect(),
            disable: self.disable.into_iter().map(|(u, _)| u).collect(),
        };
        def.runtime = Runtime {
            env_file: self.env_file.map(|(e, _)| e),
            required: self.required,
        };
        def.checks = self.checks;
    }
}

/// The required string `key` of each table, located (validation ran already).
fn located<'a>(tables: &[Table<'a>], key: &str) -> Result<Vec<At<&'a str>>> {
    tables
        .iter()
        .map(|t| t.required_string(key, "\"\""))
        .collect()
}

/// Adds the units in `new` to `list` once each, refusing one `other` has.
fn units(
    ctx: &Ctx<'_>,
    list: &mut Vec<(String, Place)>,
    other: &[(String, Place)],
    new: &[At<&str>],
    verb: &str,
) -> Result<()> {
    for at in new {
        if let Some((_, first)) = other.iter().find(|(u, _)| u == at.value) {
            let message = format!(
                "`{}`: `{}` is {verb} here and the opposite elsewhere",
                at.path, at.value
            );
            return Err(conflict(ctx, at, message, first));
        }
        if !list.iter().any(|(u, _)| u == at.value) {
            list.push((at.value.to_owned(), Place::of(ctx, at)));
        }
    }
    Ok(())
}
