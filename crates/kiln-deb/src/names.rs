//! The names Debian allows for packages, architectures and triggers. They
//! become file names in dpkg's database (`info/NAME.list`,
//! `triggers/NAME`), so a name outside these rules is refused before it
//! reaches a path.

/// A package name as Debian policy §5.6.1 defines it: lowercase letters,
/// digits, `+`, `-` and `.`, starting with a letter or digit, at least two
/// characters long.
pub fn is_package_name(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() >= 2
        && b.len() <= 255
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"+-.".contains(c))
}

/// An architecture name (`amd64`, `all`, `kfreebsd-i386`): lowercase
/// letters, digits and `-`.
pub fn is_architecture(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('-')
        && name
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
}

/// A named trigger (`ldconfig`, `update-initramfs`) as dpkg checks it:
/// printable ASCII without whitespace, not starting with `/` (that is a
/// file trigger). kiln also refuses `/` anywhere, and `.`/`..`, because the
/// name is a file in `triggers/`.
pub fn is_trigger_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name != "."
        && name != ".."
        && name.bytes().all(|c| c.is_ascii_graphic() && c != b'/')
}

/// A file trigger: an absolute path without `.`/`..` components or
/// whitespace (it is one word of a line in `triggers/File`).
pub fn is_file_trigger(path: &str) -> bool {
    path.starts_with('/')
        && path.len() <= 4096
        && path.bytes().all(|c| c.is_ascii_graphic())
        && path.split('/').all(|c| c != "." && c != "..")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_names_follow_policy() {
        for ok in ["libc6", "g++", "0ad", "libstdc++6", "python3.11"] {
            assert!(is_package_name(ok), "{ok}");
        }
        for bad in ["", "a", "../x", "a/b", "Foo", "-x", ".x", "a b", "x\n"] {
            assert!(!is_package_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn architectures_and_triggers() {
        assert!(is_architecture("amd64") && is_architecture("all"));
        assert!(!is_architecture("../amd64") && !is_architecture("a/b") && !is_architecture(""));
        assert!(is_trigger_name("ldconfig") && is_trigger_name("update-initramfs"));
        for bad in ["", ".", "..", "../../etc/x", "a/b", "a b"] {
            assert!(!is_trigger_name(bad), "{bad:?}");
        }
        assert!(is_file_trigger("/usr/lib/x"));
        assert!(!is_file_trigger("/usr/../etc") && !is_file_trigger("usr/lib"));
    }
}
