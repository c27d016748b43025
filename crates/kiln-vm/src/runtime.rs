//! The runtime configuration a machine is given at boot (`--runtime-config`),
//! checked against the definition's `[runtime]` before anything boots.
//!
//! The file is `KEY=VALUE` lines, blank lines and `#` comments: the format of
//! systemd's `EnvironmentFile=`. It is delivered byte for byte. Error
//! messages name keys and line numbers, never values: those are secrets.

use std::path::{Path, PathBuf};

use kiln_spec::Runtime;

/// A validated runtime configuration, ready to put on the seed disk.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuntimeConfig {
    delivery: Option<Delivery>,
}

#[derive(Clone, PartialEq, Eq)]
struct Delivery {
    /// `[runtime].env_file`: where the guest writes it.
    env_file: String,
    contents: Vec<u8>,
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("env_file", &self.env_file)
            .field("contents", &format_args!("<{} bytes>", self.contents.len()))
            .finish()
    }
}

/// The user's problem (exit 1): the configuration does not fit the definition.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeConfigError {
    #[error(transparent)]
    Read(#[from] std::io::Error),

    #[error(
        "{}:{line}: expected KEY=VALUE, a blank line or a # comment\nhint: KEY is letters, digits and _, not starting with a digit",
        path.display()
    )]
    Syntax { path: PathBuf, line: usize },

    #[error(
        "the runtime configuration {} sets no value for {}, which [runtime].required asks for\nhint: {}",
        origin(path.as_deref()),
        keys.join(", "),
        hint_missing(path.as_deref(), keys)
    )]
    MissingKeys {
        path: Option<PathBuf>,
        keys: Vec<String>,
    },

    #[error(
        "--runtime-config {} was given, but the definition has no [runtime].env_file to deliver it to\nhint: add `env_file = \"/etc/default/NAME\"` under [runtime]",
        path.display()
    )]
    NoEnvFile { path: PathBuf },
}

fn origin(path: Option<&Path>) -> String {
    match path {
        Some(p) => p.display().to_string(),
        None => "(none given)".into(),
    }
}

fn hint_missing(path: Option<&Path>, keys: &[String]) -> String {
    let first = keys.first().map(String::as_str).unwrap_or("KEY");
    match path {
        Some(p) => format!("add a line `{first}=…` to {}", p.display()),
        None => format!("pass --runtime-config FILE with a line `{first}=…`"),
    }
}

impl RuntimeConfig {
    /// Nothing to deliver.
    pub fn none() -> RuntimeConfig {
        RuntimeConfig::default()
    }

    /// Reads and checks `file` against `runtime`. With no file, succeeds
    /// only when nothing is required.
    pub fn load(
        file: Option<&Path>,
        runtime: &Runtime,
    ) -> Result<RuntimeConfig, RuntimeConfigError> {
        match file {
            None => {
                missing(&runtime.required, &[], None)?;
                Ok(RuntimeConfig::none())
            }
            Some(path) => RuntimeConfig::parse(fs_err::read(path)?, path, runtime),
        }
    }

    /// Checks `contents`, read from `path`, against `runtime`.
    pub fn parse(
        contents: Vec<u8>,
        path: &Path,
        runtime: &Runtime,
    ) -> Result<RuntimeConfig, RuntimeConfigError> {
        let set = keys_set(&contents, path)?;
        missing(&runtime.required, &set, Some(path))?;
        let Some(env_file) = &runtime.env_file else {
            return Err(RuntimeConfigError::NoEnvFile {
                path: path.to_path_buf(),
            });
        };
        Ok(RuntimeConfig {
            delivery: Some(Delivery {
                env_file: env_file.clone(),
                contents,
            }),
        })
    }

    /// `(env_file, contents)` when there is something to deliver.
    pub(crate) fn delivery(&self) -> Option<(&str, &[u8])> {
        self.delivery
            .as_ref()
            .map(|d| (d.env_file.as_str(), d.contents.as_slice()))
    }
}

/// The keys given a non-empty value, in order.
fn keys_set(contents: &[u8], path: &Path) -> Result<Vec<String>, RuntimeConfigError> {
    let mut keys = Vec::new();
    for (i, line) in contents.split(|&b| b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let trimmed = line.trim_ascii_start();
        if trimmed.is_empty() || trimmed.starts_with(b"#") || trimmed.starts_with(b";") {
            continue;
        }
        let syntax = || RuntimeConfigError::Syntax {
            path: path.to_path_buf(),
            line: i + 1,
        };
        let eq = trimmed.iter().position(|&b| b == b'=').ok_or_else(syntax)?;
        let key = trimmed[..eq].trim_ascii_end();
        let valid = key
            .first()
            .is_some_and(|b| b.is_ascii_alphabetic() || *b == b'_')
            && key.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'_');
        if !valid {
            return Err(syntax());
        }
        let key = String::from_utf8_lossy(key).into_owned();
        let value = trimmed[eq + 1..].trim_ascii();
        let empty = value.is_empty() || value == b"\"\"" || value == b"''";
        keys.retain(|k| k != &key);
        if !empty {
            keys.push(key);
        }
    }
    Ok(keys)
}

fn missing(
    required: &[String],
    set: &[String],
    path: Option<&Path>,
) -> Result<(), RuntimeConfigError> {
    let keys: Vec<String> = required
        .iter()
        .filter(|k| !set.contains(k))
        .cloned()
        .collect();
    if keys.is_empty() {
        Ok(())
    } else {
        Err(RuntimeConfigError::MissingKeys {
            path: path.map(Path::to_path_buf),
            keys,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime(required: &[&str]) -> Runtime {
        Runtime {
            env_file: Some("/etc/default/web".into()),
            required: required.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn a_complete_file_is_delivered_byte_for_byte() {
        let text =
            b"# database\nDATABASE_URL=postgres://u:secret@db/web\n\nMODE = \"prod\"\r\n".to_vec();
        let rc = RuntimeConfig::parse(
            text.clone(),
            Path::new("rt.env"),
            &runtime(&["DATABASE_URL", "MODE"]),
        )
        .unwrap();
        assert_eq!(rc.delivery(), Some(("/etc/default/web", text.as_slice())));
    }

    #[test]
    fn missing_and_empty_required_keys_are_named_without_values() {
        let text = b"DATABASE_URL=\nOTHER=s3cr3t\n".to_vec();
        let err = RuntimeConfig::parse(
            text,
            Path::new("rt.env"),
            &runtime(&["DATABASE_URL", "TOKEN", "OTHER"]),
        )
        .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("sets no value for DATABASE_URL, TOKEN"),
            "{msg}"
        );
        assert!(
            msg.contains("add a line `DATABASE_URL=…` to rt.env"),
            "{msg}"
        );
        assert!(!msg.contains("s3cr3t"), "{msg}");
    }

    #[test]
    fn a_later_empty_assignment_unsets_a_key() {
        let err = RuntimeConfig::parse(b"A=1\nA=\n".to_vec(), Path::new("f"), &runtime(&["A"]))
            .unwrap_err();
        assert!(
            matches!(err, RuntimeConfigError::MissingKeys { .. }),
            "{err}"
        );
    }

    #[test]
    fn no_file_is_fine_only_when_nothing_is_required() {
        assert_eq!(
            RuntimeConfig::load(None, &runtime(&[])).unwrap(),
            RuntimeConfig::none()
        );
        let err = RuntimeConfig::load(None, &runtime(&["DATABASE_URL"]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("(none given) sets no value for DATABASE_URL"),
            "{err}"
        );
        assert!(err.contains("pass --runtime-config FILE"), "{err}");
    }

    #[test]
    fn a_line_that_is_not_an_assignment_is_reported_by_number_only() {
        for bad in [
            &b"A=1\nexport B=2\n"[..],
            b"A=1\nsecret-value\n",
            b"A=1\n1X=2\n",
        ] {
            let err =
                RuntimeConfig::parse(bad.to_vec(), Path::new("rt.env"), &runtime(&[])).unwrap_err();
            let msg = err.to_string();
            assert!(msg.starts_with("rt.env:2: expected KEY=VALUE"), "{msg}");
            assert!(!msg.contains("secret") && !msg.contains("=2"), "{msg}");
        }
    }

    #[test]
    fn a_file_with_nowhere_to_go_is_refused() {
        let rt = Runtime {
            env_file: None,
            required: vec![],
        };
        let err = RuntimeConfig::parse(b"A=1\n".to_vec(), Path::new("rt.env"), &rt)
            .unwrap_err()
            .to_string();
        assert!(err.contains("no [runtime].env_file"), "{err}");
    }

    #[test]
    fn an_unreadable_file_names_its_path() {
        let err =
            RuntimeConfig::load(Some(Path::new("/nonexistent/rt.env")), &runtime(&[])).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/rt.env"), "{err}");
    }
}
