//! Typed, located access to the parsed TOML: every accessor that rejects a
//! value reports the file, the span, the dotted field path and a hint.

use std::borrow::Cow;
use std::ops::Range;
use std::path::Path;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::error::{Diagnostic, ErrorKind, SpecError};
use crate::suggest;

pub(crate) type Result<T> = std::result::Result<T, SpecError>;

/// The definition being validated: where it is and its text, for messages.
pub(crate) struct Ctx<'s> {
    pub file: &'s Path,
    pub dir: &'s Path,
    pub source: &'s str,
}

impl Ctx<'_> {
    pub fn error(
        &self,
        kind: ErrorKind,
        span: Option<Range<usize>>,
        field: impl Into<String>,
        message: impl Into<String>,
        hint: Option<String>,
    ) -> SpecError {
        SpecError::Invalid(Box::new(Diagnostic::new(
            kind,
            self.file,
            self.source,
            span,
            Some(field.into()),
            message.into(),
            hint,
        )))
    }

    pub fn syntax(&self, error: &toml::de::Error) -> SpecError {
        let raw = error
            .span()
            .and_then(|s| self.source.get(s))
            .filter(|raw| !raw.is_empty() && !raw.contains('\n'));
        let hint = match raw {
            Some(raw) if error.message().contains("must be quoted") => {
                format!("put the text in quotes: `\"{raw}\"`")
            }
            _ => "see https://toml.io for the syntax".to_owned(),
        };
        SpecError::Invalid(Box::new(Diagnostic::new(
            ErrorKind::Syntax,
            self.file,
            self.source,
            error.span(),
            None,
            format!("invalid TOML: {}", error.message().trim_end()),
            Some(hint),
        )))
    }
}

/// A value with where it came from.
#[derive(Debug, Clone)]
pub(crate) struct At<T> {
    pub value: T,
    pub span: Range<usize>,
    /// Dotted field path, e.g. `packages.install[2]`.
    pub path: String,
}

impl<T> At<T> {
    pub fn error(
        &self,
        ctx: &Ctx<'_>,
        kind: ErrorKind,
        message: impl Into<String>,
        hint: Option<String>,
    ) -> SpecError {
        ctx.error(kind, Some(self.span.clone()), &self.path, message, hint)
    }
}

type Entry<'a> = (&'a Spanned<Cow<'a, str>>, &'a Spanned<DeValue<'a>>);

/// One TOML table of the definition: a section, an entry of an array of
/// tables, or the document itself.
pub(crate) struct Table<'a> {
    ctx: &'a Ctx<'a>,
    /// Dotted path of the table; empty for the document.
    path: String,
    /// How messages name the table: `[packages]`, `` `files[1]` ``.
    label: String,
    /// The header (`[packages]`) or inline table; `None` for the document.
    span: Option<Range<usize>>,
    /// In source order, so the first problem reported is the first in the file.
    entries: Vec<Entry<'a>>,
}

impl<'a> Table<'a> {
    pub fn root(ctx: &'a Ctx<'a>, table: &'a DeTable<'a>) -> Self {
        Self::new(ctx, String::new(), "the top level".to_owned(), None, table)
    }

    fn new(
        ctx: &'a Ctx<'a>,
        path: String,
        label: String,
        span: Option<Range<usize>>,
        table: &'a DeTable<'a>,
    ) -> Self {
        let mut entries: Vec<Entry<'a>> = table.iter().collect();
        entries.sort_by_key(|(k, _)| k.span().start);
        Table {
            ctx,
            path,
            label,
            span,
            entries,
        }
    }

    pub fn ctx(&self) -> &'a Ctx<'a> {
        self.ctx
    }

    pub fn label(&self) -> &str {
        &self.label
    }

    pub fn span(&self) -> Option<Range<usize>> {
        self.span.clone()
    }

    pub fn path_of(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// Keys in source order with their spans.
    pub fn keys(&self) -> impl Iterator<Item = (&'a str, Range<usize>, &'a DeValue<'a>)> + '_ {
        self.entries
            .iter()
            .map(|(k, v)| (k.get_ref().as_ref(), k.span(), v.get_ref()))
    }

    pub fn has(&self, key: &str) -> bool {
        self.find(key).is_some()
    }

    fn find(&self, key: &str) -> Option<Entry<'a>> {
        self.entries
            .iter()
            .find(|(k, _)| k.get_ref().as_ref() == key)
            .copied()
    }

    pub fn key_span(&self, key: &str) -> Option<Range<usize>> {
        self.find(key).map(|(k, _)| k.span())
    }

    /// Rejects the first key (in source order) not in `known`.
    pub fn deny_unknown(&self, known: &[&str]) -> Result<()> {
        for (key, span, _) in self.keys() {
            if !known.contains(&key) {
                let hint = suggest::hint(key, known, &format!("{} takes", self.label));
                return Err(self.ctx.error(
                    ErrorKind::UnknownField,
                    Some(span),
                    self.path_of(key),
                    format!("unknown field `{key}` in {}", self.label),
                    Some(hint),
                ));
            }
        }
        Ok(())
    }

    /// An error at `key`'s name, for its value as a whole.
    pub fn error_at(
        &self,
        key: &str,
        kind: ErrorKind,
        message: impl Into<String>,
        hint: Option<String>,
    ) -> SpecError {
        self.ctx
            .error(kind, self.key_span(key), self.path_of(key), message, hint)
    }

    /// An error at the table's header, e.g. for a missing field.
    pub fn error_here(
        &self,
        kind: ErrorKind,
        field: String,
        message: impl Into<String>,
        hint: Option<String>,
    ) -> SpecError {
        self.ctx.error(kind, self.span(), field, message, hint)
    }

    pub fn missing(&self, key: &str, example: &str) -> SpecError {
        let field = self.path_of(key);
        self.error_here(
            ErrorKind::Missing,
            field,
            format!("missing field `{key}` in {}", self.label),
            Some(format!("add `{key} = {example}` to {}", self.label)),
        )
    }

    fn value(&self, key: &str) -> Option<At<&'a DeValue<'a>>> {
        self.find(key).map(|(_, v)| At {
            value: v.get_ref(),
            span: v.span(),
            path: self.path_of(key),
        })
    }

    pub fn string(&self, key: &str) -> Result<Option<At<&'a str>>> {
        self.value(key)
            .map(|v| as_str(self.ctx, key, v))
            .transpose()
    }

    pub fn required_string(&self, key: &str, example: &str) -> Result<At<&'a str>> {
        self.string(key)?.ok_or_else(|| self.missing(key, example))
    }

    pub fn bool(&self, key: &str) -> Result<Option<At<bool>>> {
        self.value(key)
            .map(|v| match v.value {
                DeValue::Boolean(b) => Ok(At {
                    value: *b,
                    span: v.span,
                    path: v.path,
                }),
                _ => Err(wrong_type(self.ctx, key, &v, Expected::Bool)),
            })
            .transpose()
    }

    pub fn integer(&self, key: &str) -> Result<Option<At<i128>>> {
        self.value(key)
            .map(|v| {
                let n = match v.value {
                    DeValue::Integer(n) => i128::from_str_radix(n.as_str(), n.radix()).ok(),
                    _ => return Err(wrong_type(self.ctx, key, &v, Expected::Integer)),
                };
                match n {
                    Some(n) => Ok(At {
                        value: n,
                        span: v.span,
                        path: v.path,
                    }),
                    None => Err(v.error(
                        self.ctx,
                        ErrorKind::InvalidValue,
                        format!("`{}` is too large", v.path),
                        None,
                    )),
                }
            })
            .transpose()
    }

    pub fn string_list(&self, key: &str) -> Result<Option<Vec<At<&'a str>>>> {
        let Some(v) = self.value(key) else {
            return Ok(None);
        };
        let DeValue::Array(items) = v.value else {
            return Err(wrong_type(self.ctx, key, &v, Expected::List));
        };
        items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let at = At {
                    value: item.get_ref(),
                    span: item.span(),
                    path: format!("{}[{i}]", v.path),
                };
                as_str(self.ctx, key, at)
            })
            .collect::<Result<Vec<_>>>()
            .map(Some)
    }

    /// A `[section]` (or inline table) under this one.
    pub fn table(&self, key: &str) -> Result<Option<Table<'a>>> {
        let Some((_, v)) = self.find(key) else {
            return Ok(None);
        };
        let path = self.path_of(key);
        match v.get_ref() {
            DeValue::Table(t) => Ok(Some(Table::new(
                self.ctx,
                path.clone(),
                format!("[{path}]"),
                Some(v.span()),
                t,
            ))),
            _ => {
                let at = At {
                    value: v.get_ref(),
                    span: v.span(),
                    path,
                };
                Err(wrong_type(self.ctx, key, &at, Expected::Table))
            }
        }
    }

    /// A `[[section]]` list: each entry is its own table.
    pub fn tables(&self, key: &str) -> Result<Vec<Table<'a>>> {
        let Some((_, v)) = self.find(key) else {
            return Ok(Vec::new());
        };
        let path = self.path_of(key);
        let at = At {
            value: v.get_ref(),
            span: v.span(),
            path: path.clone(),
        };
        let DeValue::Array(items) = v.get_ref() else {
            return Err(wrong_type(self.ctx, key, &at, Expected::Tables));
        };
        items
            .iter()
            .enumerate()
            .map(|(i, item)| match item.get_ref() {
                DeValue::Table(t) => {
                    let path = format!("{path}[{i}]");
                    Ok(Table::new(
                        self.ctx,
                        path.clone(),
                        format!("`{path}`"),
                        Some(item.span()),
                        t,
                    ))
                }
                _ => Err(wrong_type(self.ctx, key, &at, Expected::Tables)),
            })
            .collect()
    }
}

fn as_str<'a>(ctx: &Ctx<'_>, key: &str, v: At<&'a DeValue<'a>>) -> Result<At<&'a str>> {
    match v.value {
        DeValue::String(s) => Ok(At {
            value: s.as_ref(),
            span: v.span,
            path: v.path,
        }),
        _ => Err(wrong_type(ctx, key, &v, Expected::String)),
    }
}

#[derive(Clone, Copy)]
enum Expected {
    String,
    Bool,
    Integer,
    List,
    Table,
    Tables,
}

impl Expected {
    fn noun(self) -> &'static str {
        match self {
            Expected::String => "a string",
            Expected::Bool => "a boolean (`true` or `false`)",
            Expected::Integer => "a whole number",
            Expected::List => "a list",
            Expected::Table => "a section",
            Expected::Tables => "a list of sections",
        }
    }
}

fn found(value: &DeValue<'_>) -> &'static str {
    match value {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "a number",
        DeValue::Float(_) => "a decimal number",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date",
        DeValue::Array(_) => "a list",
        DeValue::Table(_) => "a table",
    }
}

fn wrong_type(ctx: &Ctx<'_>, key: &str, v: &At<&DeValue<'_>>, expected: Expected) -> SpecError {
    let raw = ctx
        .source
        .get(v.span.clone())
        .unwrap_or_default()
        .lines()
        .next()
        .unwrap_or_default();
    let hint = match (expected, v.value) {
        (Expected::Bool, DeValue::String(_)) => {
            format!("write `{key} = true` or `{key} = false`, without quotes")
        }
        (Expected::String, DeValue::Integer(_) | DeValue::Float(_) | DeValue::Boolean(_)) => {
            format!("put the value in quotes: `{key} = \"{raw}\"`")
        }
        (Expected::Integer, DeValue::String(s)) if s.parse::<i64>().is_ok() => {
            format!("write the number without quotes: `{key} = {s}`")
        }
        (Expected::List, DeValue::String(_)) => format!("write a list: `{key} = [{raw}]`"),
        (Expected::Tables, DeValue::Table(_)) => format!(
            "write each entry as its own `[[{}]]` section, with two brackets",
            v.path
        ),
        (Expected::Table, _) => format!("write it as a section: `[{}]` on its own line", v.path),
        _ => format!("`{}` takes {}", v.path, expected.noun()),
    };
    ctx.error(
        ErrorKind::WrongType,
        Some(v.span.clone()),
        &v.path,
        format!(
            "`{}` must be {}, not {}",
            v.path,
            expected.noun(),
            found(v.value)
        ),
        Some(hint),
    )
}
