//! The packages dpkg has installed, from its status file.

use std::path::Path;

use crate::deb822::{self, Paragraph};
use crate::{Error, Package, inroot};

pub(crate) const STATUS: &str = "/var/lib/dpkg/status";

/// Installed packages as the status file gives them, sorted by name then
/// architecture; licences and `.deb` digests come later. A tree without a
/// status file has none: not every rootfs is built by dpkg.
pub(crate) fn installed(root: &Path) -> Result<Vec<Package>, Error> {
    let Some(path) = inroot::resolve(root, STATUS)? else {
        return Ok(Vec::new());
    };
    let bytes = fs_err::read(&path)?;
    let text = String::from_utf8_lossy(&bytes);
    let mut out = Vec::new();
    for p in deb822::parse(&text) {
        if !is_installed(&p) {
            continue;
        }
        out.push(package(&p).map_err(|why| Error::Status {
            path: path.clone(),
            line: p.line,
            why,
        })?);
    }
    out.sort_by(|a, b| (&a.name, &a.architecture).cmp(&(&b.name, &b.architecture)));
    Ok(out)
}

/// Whether the package's files are on disk. The want flag does not matter:
/// a held package (`hold ok installed`) or one marked for removal
/// (`deinstall ok installed`) is still in the image.
fn is_installed(p: &Paragraph) -> bool {
    let words: Vec<&str> = p.get("Status").unwrap_or("").split_whitespace().collect();
    matches!(words.as_slice(), [_, "ok", "installed"])
}

fn package(p: &Paragraph) -> Result<Package, String> {
    let field = |name: &str| {
        p.get(name)
            .map(deb822::first_line)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| format!("an installed package has no {name} field"))
    };
    let name = field("Package")?.to_string();
    let version = field("Version")?.to_string();
    let architecture = field("Architecture")?.to_string();
    // `Source: glibc (2.36-9)` when the versions differ, `Source: glibc`
    // when only the names do, absent when both are the package's own.
    let (source, source_version) = match p.get("Source").map(deb822::first_line) {
        None | Some("") => (name.clone(), version.clone()),
        Some(s) => match s.split_once('(') {
            Some((n, v)) => (
                n.trim().to_string(),
                v.trim_end_matches(')').trim().to_string(),
            ),
            None => (s.to_string(), version.clone()),
        },
    };
    let installed_size = match p.get("Installed-Size").map(deb822::first_line) {
        None | Some("") => 0,
        Some(kib) => kib
            .parse::<u64>()
            .ok()
            .and_then(|k| k.checked_mul(1024))
            .ok_or_else(|| format!("{name}: Installed-Size `{kib}` is not a number of KiB"))?,
    };
    let homepage = p
        .get("Homepage")
        .map(deb822::first_line)
        .filter(|h| !h.is_empty())
        .map(str::to_string);
    Ok(Package {
        name,
        version,
        architecture,
        source,
        source_version,
        installed_size,
        licenses: Vec::new(),
        homepage,
        sha256: None,
        origin: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Vec<Package> {
        deb822::parse(text)
            .iter()
            .filter(|p| is_installed(p))
            .map(|p| package(p).unwrap())
            .collect()
    }

    #[test]
    fn status_paragraphs() {
        let got = parse(
            "Package: libc6\nStatus: install ok installed\nArchitecture: amd64\n\
             Source: glibc (2.36-9+deb12u4)\nVersion: 2.36-9+deb12u4+b1\nInstalled-Size: 12\n\
             Homepage: https://example.invalid/glibc\n\n\
             Package: gone\nStatus: deinstall ok config-files\nVersion: 1\nArchitecture: all\n\n\
             Package: held\nStatus: hold ok installed\nVersion: 1:2~rc1\nArchitecture: all\n\
             Source: heldsrc\n\n\
             Package: broken\nStatus: install reinstreq half-installed\nVersion: 1\nArchitecture: all\n",
        );
        assert_eq!(
            got,
            vec![
                Package {
                    name: "libc6".into(),
                    version: "2.36-9+deb12u4+b1".into(),
                    architecture: "amd64".into(),
                    source: "glibc".into(),
                    source_version: "2.36-9+deb12u4".into(),
                    installed_size: 12 * 1024,
                    licenses: vec![],
                    homepage: Some("https://example.invalid/glibc".into()),
                    sha256: None,
                    origin: None,
                },
                Package {
                    name: "held".into(),
                    version: "1:2~rc1".into(),
                    architecture: "all".into(),
                    source: "heldsrc".into(),
                    source_version: "1:2~rc1".into(),
                    installed_size: 0,
                    licenses: vec![],
                    homepage: None,
                    sha256: None,
                    origin: None,
                },
            ]
        );
    }

    #[test]
    fn a_bad_installed_size_is_an_error() {
        let ps = deb822::parse(
            "Package: a\nStatus: install ok installed\nVersion: 1\nArchitecture: all\nInstalled-Size: lots\n",
        );
        let err = package(&ps[0]).unwrap_err();
        assert!(err.contains("Installed-Size `lots`"), "{err}");
    }
}
