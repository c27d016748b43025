//! Errors are the product's face: each names the file, the line and column,
//! the field as a dotted path, and carries a hint the CLI prints on its own line.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// Everything that can go wrong reading a definition.
///
/// The CLI prints `error: {err}` and then, when [`SpecError::hint`] gives one,
/// `hint: {hint}` on its own line. All of these are the user's problem (exit 1).
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// The directory holds no `kiln.toml`.
    #[error("no kiln.toml in {}", dir.display())]
    NotFound { dir: PathBuf },

    /// Reading the file failed; fs-err has already put the path in the message.
    #[error(transparent)]
    Io(#[from] std::io::Error),

    /// The file is not valid TOML, or not a valid definition.
    #[error("{0}")]
    Invalid(Box<Diagnostic>),

    /// A chain of `base.from` leads back to a definition already in it.
    #[error("`base.from` goes round in a circle: {}", render_chain(chain))]
    Cycle { chain: Vec<PathBuf> },
}

impl SpecError {
    /// What the user can do about it, printed on its own `hint:` line.
    pub fn hint(&self) -> Option<String> {
        match self {
            SpecError::NotFound { dir } => Some(format!(
                "run `kiln init {}` to write a starter definition",
                dir.display()
            )),
            SpecError::Io(_) => None,
            SpecError::Invalid(diagnostic) => diagnostic.hint.clone(),
            SpecError::Cycle { .. } => Some(
                "an image cannot be built on itself; point one of these `base.from` at a \
                 definition with `distro = \"debian\"` instead"
                    .to_owned(),
            ),
        }
    }

    /// The located diagnostic, when the error is about the definition's content.
    pub fn diagnostic(&self) -> Option<&Diagnostic> {
        match self {
            SpecError::Invalid(diagnostic) => Some(diagnostic),
            _ => None,
        }
    }

    /// The kind of problem, when the error is about the definition's content.
    pub fn kind(&self) -> Option<ErrorKind> {
        self.diagnostic().map(|d| d.kind)
    }
}

fn render_chain(chain: &[PathBuf]) -> String {
    chain
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(" -> ")
}

/// What sort of mistake a [`Diagnostic`] reports; lets tests and tools match
/// on the problem without parsing the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Not valid TOML.
    Syntax,
    /// A key the definition does not know.
    UnknownField,
    /// A value of the wrong TOML type (a string where a list belongs, …).
    WrongType,
    /// A required field or section is absent.
    Missing,
    /// A value of the right type that is not acceptable.
    InvalidValue,
    /// Two fields that cannot be set together, or a required choice not made.
    Conflict,
    /// The same item listed twice.
    Duplicate,
    /// A path in the definition that does not exist on disk.
    MissingPath,
}

/// A 1-based line and column (columns count characters, not bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    pub line: usize,
    pub column: usize,
}

/// One located problem in a definition.
#[derive(Debug, Clone)]
pub struct Diagnostic {
    pub kind: ErrorKind,
    /// The definition file, as the caller named it.
    pub file: PathBuf,
    /// Dotted path of the field, e.g. `packages.install[2]`; `None` for syntax errors.
    pub field: Option<String>,
    pub message: String,
    pub hint: Option<String>,
    pub location: Option<Location>,
    snippet: Option<Snippet>,
}

#[derive(Debug, Clone)]
struct Snippet {
    text: String,
    caret_start: usize,
    caret_len: usize,
}

impl Diagnostic {
    pub(crate) fn new(
        kind: ErrorKind,
        file: &Path,
        source: &str,
        span: Option<Range<usize>>,
        field: Option<String>,
        message: String,
        hint: Option<String>,
    ) -> Self {
        let (location, snippet) = match span {
            Some(span) => {
                let (location, snippet) = locate(source, span);
                (Some(location), Some(snippet))
            }
            _ => (None, None),
        };
        Diagnostic {
            kind,
            file: file.to_path_buf(),
            field,
            message,
            hint,
            location,
            snippet,
        }
    }
}

fn locate(source: &str, span: Range<usize>) -> (Location, Snippet) {
    let start = floor_char_boundary(source, span.start.min(source.len()));
    let end = floor_char_boundary(source, span.end.clamp(start, source.len()));
    let line_start = source[..start].rfind('\n').map_or(0, |i| i + 1);
    let line_end = source[start..]
        .find('\n')
        .map_or(source.len(), |i| start + i);
    let line = source[..start].matches('\n').count() + 1;
    let text = source[line_start..line_end].trim_end_matches('\r');
    let column = source[line_start..start].chars().count() + 1;
    // A span running past its first line is underlined to the end of that line.
    let caret_len = source[start..end.min(line_end)].chars().count().max(1);
    (
        Location { line, column },
        Snippet {
            // A tab would shift the caret off its target; one space keeps columns aligned.
            text: text.replace('\t', " "),
            caret_start: column - 1,
            caret_len,
        },
    )
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.message)?;
        let (Some(location), Some(snippet)) = (self.location, &self.snippet) else {
            return write!(f, "\n --> {}", self.file.display());
        };
        let number = location.line.to_string();
        let pad = " ".repeat(number.len());
        write!(
            f,
            "\n{pad}--> {}:{}:{}",
            self.file.display(),
            location.line,
            location.column
        )?;
        write!(f, "\n{pad} |")?;
        write!(f, "\n{number} | {}", snippet.text)?;
        write!(
            f,
            "\n{pad} | {}{}",
            " ".repeat(snippet.caret_start),
            "^".repeat(snippet.caret_len)
        )
    }
}
