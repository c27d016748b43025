//! Whether the systemd units a definition names exist in the image, asked
//! before `systemctl` runs so the answer names the unit and the units that
//! do exist, rather than systemctl's "Unit file … does not exist".

use std::path::Path;

use crate::confine::host_path;
use crate::error::RootfsError;

/// Where unit files live, as systemd searches them for the system manager.
const UNIT_DIRS: &[&str] = &[
    "/etc/systemd/system",
    "/usr/lib/systemd/system",
    "/lib/systemd/system",
];

/// `Err(UnknownUnit)` for the first of `units` the tree at `root` lacks.
/// `extra` holds image paths that will exist before the units are used
/// (the definition's `[[files]]`).
pub fn require(
    root: &Path,
    section: &'static str,
    units: &[String],
    extra: &[&str],
) -> Result<(), RootfsError> {
    for unit in units {
        if !exists(root, unit, extra)? {
            let known = installed(root)?;
            let names: Vec<&str> = known.iter().map(String::as_str).collect();
            return Err(RootfsError::UnknownUnit {
                section,
                unit: unit.clone(),
                closest: kiln_spec::closest(unit, &names).map(str::to_owned),
            });
        }
    }
    Ok(())
}

/// A unit exists as a file or a link (an alias such as `sshd.service`) in
/// a unit directory; `getty@ttyS0.service` exists when its template does.
fn exists(root: &Path, unit: &str, extra: &[&str]) -> Result<bool, RootfsError> {
    for path in unit_paths(unit) {
        if extra.contains(&path.as_str()) {
            return Ok(true);
        }
        match host_path(root, &path, false) {
            Ok(host) if fs_err::symlink_metadata(&host).is_ok() => return Ok(true),
            Ok(_) => {}
            Err(RootfsError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(false)
}

/// The image paths at which `unit` would be found: its own file in each
/// unit directory, then its template's for an instance (`getty@ttyS0.service`).
pub fn unit_paths(unit: &str) -> Vec<String> {
    let template = unit
        .split_once('@')
        .and_then(|(name, rest)| rest.rsplit_once('.').map(|(_, ty)| format!("{name}@.{ty}")));
    std::iter::once(unit)
        .chain(template.as_deref())
        .flat_map(|name| UNIT_DIRS.iter().map(move |dir| format!("{dir}/{name}")))
        .collect()
}

/// Whether `path` (inside the image) is in a unit directory.
pub fn in_unit_dir(path: &str) -> Option<&str> {
    UNIT_DIRS
        .iter()
        .find_map(|d| path.strip_prefix(d)?.strip_prefix('/'))
        .filter(|name| !name.contains('/'))
}

/// Every unit name in the unit directories, sorted, for a suggestion.
fn installed(root: &Path) -> Result<Vec<String>, RootfsError> {
    let mut names = Vec::new();
    for dir in UNIT_DIRS {
        let Ok(host) = host_path(root, dir, false) else {
            continue;
        };
        let Ok(entries) = fs_err::read_dir(&host) else {
            continue;
        };
        for e in entries {
            let name = e?.file_name().to_string_lossy().into_owned();
            if name.contains('.') && !name.ends_with(".wants") && !name.ends_with(".d") {
                names.push(name);
            }
        }
    }
    names.sort();
    names.dedup();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("usr/lib/systemd/system");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("nginx.service"), b"").unwrap();
        std::fs::write(d.join("getty@.service"), b"").unwrap();
        std::os::unix::fs::symlink("nginx.service", d.join("www.service")).unwrap();
        t
    }

    #[test]
    fn units_files_aliases_and_template_instances_exist() {
        let t = tree();
        let units = [
            "nginx.service",
            "www.service",
            "getty@ttyS0.service",
            "app.service",
        ]
        .map(String::from);
        let extra = ["/etc/systemd/system/app.service"];
        require(t.path(), "[services].enable", &units, &extra).unwrap();
    }

    #[test]
    fn a_missing_unit_is_named_with_the_closest_that_exists() {
        let t = tree();
        let e = require(
            t.path(),
            "[services].enable",
            &["ngnix.service".into()],
            &[],
        )
        .unwrap_err();
        match &e {
            RootfsError::UnknownUnit { unit, closest, .. } => {
                assert_eq!(unit, "ngnix.service");
                assert_eq!(closest.as_deref(), Some("nginx.service"));
            }
            other => panic!("{other}"),
        }
        assert!(
            e.hint().unwrap().contains("nginx.service"),
            "{:?}",
            e.hint()
        );
    }
}
