//! The shapes of names and paths the definition accepts. Each check returns
//! why a value is wrong and, where one helps, what to write instead.

pub(crate) struct Problem {
    pub reason: String,
    pub hint: Option<String>,
}

type Check = Result<(), Problem>;

fn problem(reason: impl Into<String>, hint: Option<String>) -> Check {
    Err(Problem {
        reason: reason.into(),
        hint,
    })
}

/// Debian policy 5.6.1: at least two characters of `[a-z0-9+.-]`, starting
/// with a letter or digit.
pub(crate) fn package_name(name: &str) -> Check {
    if name.is_empty() {
        return problem("it is empty", None);
    }
    if name.chars().any(|c| c.is_ascii_uppercase()) {
        return problem(
            "package names are lowercase",
            Some(format!("write `{}`", name.to_ascii_lowercase())),
        );
    }
    if let Some((_, arch)) = name.split_once(':') {
        return problem(
            format!("`:{arch}` architecture qualifiers are not supported"),
            Some("packages are installed for the image's architecture; drop the `:…`".to_owned()),
        );
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || "+.-".contains(*c)))
    {
        let hint = if "<>~^*".contains(c) {
            Some(
                "pins are exact: write `name=version`; version ranges are not supported".to_owned(),
            )
        } else {
            None
        };
        return problem(format!("`{c}` is not allowed in a package name"), hint);
    }
    if name.len() < 2 {
        return problem("package names are at least two characters long", None);
    }
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return problem("package names start with a letter or digit", None);
    }
    Ok(())
}

/// A Debian version (`[epoch:]upstream[-revision]`) whose upstream part starts
/// with a digit, as policy 5.6.12 asks and as every archive version does.
/// No hint: the caller knows the package and says what to write.
pub(crate) fn debian_version(version: &str) -> Check {
    if version.is_empty() {
        return problem("the version after `=` is empty", None);
    }
    let Ok(parsed) = version.parse::<debversion::Version>() else {
        return problem(format!("`{version}` is not a Debian version"), None);
    };
    if !parsed
        .upstream_version
        .starts_with(|c: char| c.is_ascii_digit())
    {
        return problem(
            format!(
                "`{version}` is not a Debian version: the upstream part must start with a digit"
            ),
            None,
        );
    }
    Ok(())
}

/// Lowercase DNS label, so the name works as a hostname, a file name and an
/// OCI repository component.
pub(crate) fn dns_label(name: &str) -> Check {
    let fix = || {
        let fixed: String = name
            .to_ascii_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        let fixed = fixed.trim_matches('-').to_owned();
        (!fixed.is_empty() && fixed != name).then(|| format!("try `{fixed}`"))
    };
    if name.is_empty() {
        return problem("it is empty", None);
    }
    if name.len() > 63 {
        return problem("it is longer than 63 characters", None);
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        return problem("use only lowercase letters, digits and `-`", fix());
    }
    if name.starts_with('-') || name.ends_with('-') {
        return problem("it cannot start or end with `-`", fix());
    }
    Ok(())
}

/// An OCI tag, because the version becomes the image's tag.
pub(crate) fn oci_tag(version: &str) -> Check {
    if version.is_empty() {
        return problem("it is empty", Some("e.g. `version = \"1.0.0\"`".to_owned()));
    }
    if version.len() > 128 {
        return problem("it is longer than 128 characters", None);
    }
    let ok_char = |c: char| c.is_ascii_alphanumeric() || "._-".contains(c);
    if version.starts_with(['.', '-']) || !version.chars().all(ok_char) {
        return problem(
            "it becomes the image's OCI tag, which allows letters, digits, `_`, `.` and `-` \
             (not first)",
            Some(format!(
                "try `{}`",
                version
                    .chars()
                    .map(|c| if ok_char(c) { c } else { '-' })
                    .collect::<String>()
                    .trim_start_matches(['.', '-'])
            )),
        );
    }
    Ok(())
}

/// A user or group name as Debian's adduser accepts it by default, or a
/// numeric id.
pub(crate) fn account_name(name: &str) -> Check {
    if name.is_empty() {
        return problem("it is empty", None);
    }
    if name.chars().all(|c| c.is_ascii_digit()) {
        return Ok(());
    }
    if name.len() > 32 {
        return problem("it is longer than 32 characters", None);
    }
    let first_ok = name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_');
    let body = name.strip_suffix('$').unwrap_or(name);
    let rest_ok = body
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if !first_ok || !rest_ok {
        return problem(
            "names start with a lowercase letter or `_`, then lowercase letters, digits, `_` or `-`",
            None,
        );
    }
    Ok(())
}

/// An environment variable name as POSIX shells accept it.
pub(crate) fn env_var(name: &str) -> Check {
    let ok = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        let fixed: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_uppercase()
                } else {
                    '_'
                }
            })
            .collect();
        problem(
            "variable names are letters, digits and `_`, not starting with a digit",
            (!fixed.is_empty() && !fixed.starts_with(|c: char| c.is_ascii_digit()))
                .then(|| format!("try `{fixed}`")),
        )
    }
}

pub(crate) const UNIT_SUFFIXES: &[&str] = &[
    "service",
    "socket",
    "timer",
    "target",
    "path",
    "mount",
    "automount",
    "swap",
    "slice",
    "device",
    "scope",
];

/// A systemd unit name with its type suffix, e.g. `nginx.service`.
pub(crate) fn unit_name(name: &str) -> Check {
    let suffix = name.rsplit_once('.').map(|(_, s)| s);
    if !suffix.is_some_and(|s| UNIT_SUFFIXES.contains(&s)) {
        return problem(
            "unit names end in their type, e.g. `.service` or `.timer`",
            Some(format!("did you mean `{name}.service`?")),
        );
    }
    let stem_ok = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || ":-_.\\@".contains(c));
    if name.len() > 255 || name.starts_with('.') || !stem_ok {
        return problem(
            "unit names are letters, digits and `:-_.\\@`, at most 255 characters",
            None,
        );
    }
    Ok(())
}

/// An absolute path inside the image, already normalised, so two spellings
/// of one path cannot both appear.
pub(crate) fn guest_path(path: &str) -> Check {
    if !path.starts_with('/') {
        return problem(
            "paths inside the image are absolute",
            Some(format!("write `/{path}`")),
        );
    }
    if path.contains('\0') {
        return problem("it contains a NUL byte", None);
    }
    let parts: Vec<&str> = path
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    if parts.contains(&"..") {
        return problem("`..` is not allowed in paths inside the image", None);
    }
    let normal = format!("/{}", parts.join("/"));
    if normal != path {
        return problem(
            "it is not written in its plain form",
            Some(format!("write `{normal}`")),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `check` accepts every name in `ok` and refuses every one in `bad`.
    #[track_caller]
    fn sorts(check: fn(&str) -> Check, ok: &[&str], bad: &[&str]) {
        for name in ok {
            assert!(check(name).is_ok(), "{name}");
        }
        for name in bad {
            assert!(check(name).is_err(), "{name}");
        }
    }

    #[test]
    fn package_names() {
        sorts(
            package_name,
            &["nginx-light", "g++", "libc6", "0ad", "python3.11"],
            &[
                "",
                "a",
                "Nginx",
                "-x",
                "nginx>=1",
                "libc6:amd64",
                "foo_bar",
                "a b",
            ],
        );
    }

    #[test]
    fn debian_versions() {
        sorts(
            debian_version,
            &[
                "1.22.1-9+deb12u1",
                "1:2.3",
                "2.36.1-8+deb12u1",
                "1.0~rc1-1",
                "7",
            ],
            &["", "=1.2", "latest", "1.0 beta", "a:1.0"],
        );
    }

    #[test]
    fn dns_labels() {
        sorts(
            dns_label,
            &["web", "web-2"],
            &["", "Web", "-web", "web-", "web_app", &"a".repeat(64)],
        );
    }

    #[test]
    fn oci_tags() {
        sorts(
            oci_tag,
            &["1.0.0", "2024_01-rc.1"],
            &["", ".1", "1.0+git", "1 0"],
        );
    }

    #[test]
    fn account_names() {
        sorts(
            account_name,
            &["app", "_apt", "www-data", "1000", "machine$"],
            &["", "App", "1app", "a b", &"a".repeat(33)],
        );
    }

    #[test]
    fn env_vars() {
        sorts(
            env_var,
            &["DATABASE_URL", "_x1"],
            &["", "1X", "DATABASE-URL", "A B"],
        );
    }

    #[test]
    fn unit_names() {
        sorts(
            unit_name,
            &[
                "nginx.service",
                "getty@tty1.service",
                "fstrim.timer",
                "multi-user.target",
            ],
            &["nginx", "nginx.serv", ".service", "a b.service"],
        );
    }

    #[test]
    fn guest_paths() {
        sorts(
            guest_path,
            &["/etc/nginx/nginx.conf", "/"],
            &["etc/x", "/etc/../x", "/etc//x", "/etc/x/", "/./x"],
        );
    }
}
