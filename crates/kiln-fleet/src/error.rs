//! What can go wrong reading a fleet.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A definition or fragment is invalid; kiln-spec names file and line.
    #[error(transparent)]
    Spec(#[from] kiln_spec::SpecError),

    /// Reading a directory failed; fs-err has put the path in the message.
    #[error(transparent)]
    Io(#[from] std::io::Error),

    /// Boxed: the pipeline's error is large, and a fleet passes many results.
    #[error(transparent)]
    Build(Box<kiln_build::Error>),

    #[error("no kiln.toml under {}", dir.display())]
    Empty { dir: PathBuf },

    #[error("two images are named `{name}`: {} and {}", first.display(), second.display())]
    DuplicateName {
        name: String,
        first: PathBuf,
        second: PathBuf,
    },

    #[error("{} is built `from = \"{from}\"`, but {} {reason}", child.display(), parent.display())]
    MissingParent {
        child: PathBuf,
        from: String,
        parent: PathBuf,
        reason: &'static str,
    },

    #[error("`git {args}` in {} failed: {stderr}", dir.display())]
    Git {
        dir: PathBuf,
        args: String,
        stderr: String,
    },

    #[error("no image named `{name}` under {}", dir.display())]
    UnknownImage { name: String, dir: PathBuf },
}

impl Error {
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::Spec(e) => e.hint(),
            Error::Build(e) => e.hint(),
            Error::Io(_) => None,
            Error::Empty { .. } => {
                Some("run `kiln init DIR` to write a definition, or name the directory holding your images".into())
            }
            Error::DuplicateName { .. } => Some(
                "image names identify builds in the catalog; rename one in its [image] section"
                    .into(),
            ),
            Error::MissingParent { .. } => Some(
                "point `from` at a directory holding a kiln.toml under the same tree, or run \
                 the command on a directory that holds both"
                    .into(),
            ),
            Error::UnknownImage { .. } => Some("`kiln graph` lists the images".into()),
            Error::Git { .. } => Some(
                "--changed-since needs DIR inside a git repository and a revision it knows"
                    .into(),
            ),
        }
    }

    /// 1 for a problem in the definitions or the request, 2 for kiln's own.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Io(_) => 2,
            Error::Build(e) => e.exit_code(),
            _ => 1,
        }
    }
}

impl From<kiln_build::Error> for Error {
    fn from(e: kiln_build::Error) -> Self {
        Error::Build(Box::new(e))
    }
}
