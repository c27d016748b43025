//! Credentials from the containers convention: `REGISTRY_AUTH_FILE`, else
//! `$XDG_RUNTIME_DIR/containers/auth.json`, else `~/.docker/config.json`,
//! each `{"auths": {"HOST[:PORT]": {"auth": base64("user:password")}}}`.

use std::path::{Path, PathBuf};

use base64::Engine as _;

use crate::RegistryError;

#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, <hidden>)", self.username)
    }
}

impl Credentials {
    /// The `Authorization: Basic …` value.
    pub(crate) fn basic(&self) -> String {
        let raw = format!("{}:{}", self.username, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }

    /// The credentials for `registry` (`host[:port]`) from the first auth
    /// file that exists; `None` when no file names the registry.
    pub fn lookup(registry: &str) -> Result<Option<Credentials>, RegistryError> {
        for path in auth_files() {
            match fs_err::read(&path) {
                Ok(bytes) => return parse(&path, &bytes, registry),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Ok(None)
    }
}

fn auth_files() -> Vec<PathBuf> {
    let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    if let Some(file) = var("REGISTRY_AUTH_FILE") {
        return vec![PathBuf::from(file)];
    }
    let mut out = Vec::new();
    if let Some(run) = var("XDG_RUNTIME_DIR") {
        out.push(Path::new(&run).join("containers/auth.json"));
    }
    if let Some(home) = var("HOME") {
        out.push(Path::new(&home).join(".docker/config.json"));
    }
    out
}

#[derive(serde::Deserialize)]
struct AuthFile {
    #[serde(default)]
    auths: std::collections::BTreeMap<String, AuthEntry>,
}

#[derive(serde::Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
}

fn parse(path: &Path, bytes: &[u8], registry: &str) -> Result<Option<Credentials>, RegistryError> {
    let bad = |why: String| RegistryError::AuthFile {
        path: path.to_path_buf(),
        why,
    };
    let file: AuthFile = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
    // Docker writes keys as URLs too (`https://host/v1/`).
    let entry = file.auths.iter().find(|(key, _)| {
        let key = key
            .trim_start_matches("https://")
            .trim_start_matches("http://");
        key.split('/').next() == Some(registry)
    });
    let Some((_, AuthEntry { auth: Some(auth) })) = entry else {
        return Ok(None);
    };
    let raw = base64::engine::general_purpose::STANDARD
        .decode(auth.trim())
        .map_err(|e| bad(format!("the auth of {registry} is not base64: {e}")))?;
    let text =
        String::from_utf8(raw).map_err(|_| bad(format!("the auth of {registry} is not UTF-8")))?;
    let (user, password) = text
        .split_once(':')
        .ok_or_else(|| bad(format!("the auth of {registry} is not USER:PASSWORD")))?;
    Ok(Some(Credentials {
        username: user.to_string(),
        password: password.to_string(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_files_are_read_by_registry_with_or_without_scheme() {
        let auth = base64::engine::general_purpose::STANDARD.encode("ann:s3:cret");
        let text = format!(
            r#"{{"auths": {{"https://127.0.0.1:5000/v1/": {{"auth": "{auth}"}}, "other:1": {{}}}}}}"#
        );
        let got = parse(Path::new("a.json"), text.as_bytes(), "127.0.0.1:5000").unwrap();
        assert_eq!(
            got,
            Some(Credentials {
                username: "ann".into(),
                password: "s3:cret".into()
            })
        );
        assert_eq!(
            parse(Path::new("a.json"), text.as_bytes(), "other:1").unwrap(),
            None
        );
        assert_eq!(
            parse(Path::new("a.json"), text.as_bytes(), "127.0.0.1").unwrap(),
            None
        );
        assert!(parse(Path::new("a.json"), b"[", "x").is_err());
    }
}
