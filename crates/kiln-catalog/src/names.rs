//! Names the catalog stores and users type: environments, and image names as
//! kiln's definition allows them.

use crate::error::Error;

const MAX_LEN: usize = 128;

/// `[a-z0-9][a-z0-9._-]*`: safe in a file name, a URL and a shell word.
pub(crate) fn check_env(env: &str) -> Result<(), Error> {
    let mut chars = env.chars();
    let ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'))
        && env.len() <= MAX_LEN;
    refused_unless(ok, "environment", env)
}

/// The definition's rule for `[image].name`: a lowercase DNS label.
pub(crate) fn check_image(name: &str) -> Result<(), Error> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    refused_unless(ok, "image", name)
}

fn refused_unless(ok: bool, what: &'static str, name: &str) -> Result<(), Error> {
    if ok {
        Ok(())
    } else {
        Err(Error::BadName {
            what,
            name: name.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_names() {
        for good in ["prod", "0", "eu-west.staging", "a_b"] {
            assert!(check_env(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "Prod",
            "-x",
            ".x",
            "a b",
            "a/b",
            "prød",
            &"a".repeat(129),
        ] {
            let e = check_env(bad).unwrap_err();
            assert!(e.is_user_error() && e.hint().is_some(), "{bad}");
        }
    }

    #[test]
    fn image_names() {
        for good in ["web", "base-1", "0"] {
            assert!(check_image(good).is_ok(), "{good}");
        }
        for bad in ["", "Web", "-web", "web-", "we.b", "we_b", &"a".repeat(64)] {
            assert!(check_image(bad).is_err(), "{bad}");
        }
    }
}
