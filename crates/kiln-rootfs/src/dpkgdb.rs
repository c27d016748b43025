//! dpkg's database in `/var/lib/dpkg`, written as `dpkg --unpack` leaves it
//! for a package that was not installed: its control files in `info/`, the
//! list of its paths, a `Status: install ok unpacked` entry whose conffiles
//! are not configured yet (`newconffile`), its trigger interests, and the
//! file triggers its paths activate in packages already configured.
//!
//! dpkg itself then configures the packages (`dpkg --configure -a`), which
//! also rewrites the status file in its own field order.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use kiln_deb::names;

use crate::confine::{append_file, image_dir, plain_name, replace_file};
use crate::deb::ControlMember;
use crate::error::{RootfsError, bad_path};
use crate::extract::set_mtime;
use crate::status::STATUS;

pub(crate) const INFO: &str = "var/lib/dpkg/info";
const TRIGGERS: &str = "var/lib/dpkg/triggers";
const DIVERSIONS: &str = "var/lib/dpkg/diversions";

/// A package about to be recorded as unpacked.
#[derive(Debug, Clone)]
pub(crate) struct NewPackage {
    pub name: String,
    pub architecture: String,
    pub multi_arch: String,
    pub members: Vec<ControlMember>,
    /// Every path of its `data.tar` in archive order, as `.list` holds them
    /// (`/.` for the root, no trailing `/`).
    pub paths: Vec<String>,
}

impl NewPackage {
    /// The name dpkg files the package under: with its architecture when it
    /// is `Multi-Arch: same`, as several architectures may be installed.
    pub(crate) fn db_name(&self) -> String {
        db_name(&self.name, &self.architecture, &self.multi_arch)
    }

    pub(crate) fn member(&self, name: &str) -> Option<&ControlMember> {
        self.members.iter().find(|m| m.name == name)
    }

    /// The image paths of its conffiles. Entries flagged `remove-on-upgrade`
    /// are obsolete ones the package does not ship.
    pub(crate) fn conffiles(&self) -> Vec<String> {
        let Some(m) = self.member("conffiles") else {
            return Vec::new();
        };
        String::from_utf8_lossy(&m.data)
            .lines()
            .map(str::trim)
            .filter(|l| l.starts_with('/'))
            .map(str::to_string)
            .collect()
    }
}

fn db_name(name: &str, arch: &str, multi_arch: &str) -> String {
    if multi_arch == "same" {
        format!("{name}:{arch}")
    } else {
        name.to_string()
    }
}

/// Refuses a package whose name or architecture could not be a file name
/// in dpkg's database, or whose trigger interests are not trigger names:
/// they become paths under `info/` and `triggers/`.
pub(crate) fn check_names(pkg: &NewPackage) -> Result<(), RootfsError> {
    let bad = |why: String| RootfsError::BadDeb {
        path: pkg.name.clone().into(),
        why,
    };
    if !names::is_package_name(&pkg.name) {
        return Err(bad(format!(
            "package name `{}` is not a Debian package name",
            pkg.name.escape_debug()
        )));
    }
    if !names::is_architecture(&pkg.architecture) {
        return Err(bad(format!(
            "architecture `{}` is not an architecture name",
            pkg.architecture.escape_debug()
        )));
    }
    for m in &pkg.members {
        plain_name(&m.name, "a control.tar member").map_err(|e| bad(e.to_string()))?;
    }
    for (directive, name) in trigger_directives(pkg) {
        if !directive.starts_with("interest") {
            continue;
        }
        let ok = if name.starts_with('/') {
            names::is_file_trigger(&name)
        } else {
            names::is_trigger_name(&name)
        };
        if !ok {
            return Err(bad(format!(
                "trigger `{directive} {}` does not name a trigger or an absolute path",
                name.escape_debug()
            )));
        }
    }
    Ok(())
}

/// Records `pkgs` as unpacked, in this order.
pub(crate) fn record_unpacked(root: &Path, pkgs: &[NewPackage]) -> Result<(), RootfsError> {
    for pkg in pkgs {
        check_names(pkg)?;
    }
    let info = image_dir(root, INFO)?;
    // dpkg upgrades a database without a format file on its next run; these
    // names are already in format 1 (Multi-Arch qualified).
    if fs_err::symlink_metadata(info.join("format")).is_err() {
        replace_file(&info, "format", b"1\n", 0o644)?;
    }
    let mut stanzas = String::new();
    for pkg in pkgs {
        let db = pkg.db_name();
        for m in pkg.members.iter().filter(|m| m.name != "control") {
            write_info_file(&info, &format!("{db}.{}", m.name), m)?;
        }
        let mut list = pkg.paths.join("\n");
        list.push('\n');
        replace_file(&info, &format!("{db}.list"), list.as_bytes(), 0o644)?;
        stanzas.push_str(&stanza(pkg)?);
        stanzas.push('\n');
    }
    let (dir, status) = status_file(root)?;
    let mut text = read_plain(&dir.join(status))?;
    if !text.is_empty() && !text.ends_with("\n\n") {
        text.push('\n');
    }
    text.push_str(&stanzas);
    replace_file(&dir, status, text.as_bytes(), 0o644)?;
    register_interests(root, pkgs)
}

/// The file as dpkg installs it: the control member's bytes, mode and
/// time, as `dir/name` (never through a symlink already there).
pub(crate) fn write_info_file(
    dir: &Path,
    name: &str,
    m: &ControlMember,
) -> Result<(), RootfsError> {
    let path = replace_file(dir, name, &m.data, m.mode)?;
    set_mtime(&path, m.mtime, false)
}

/// The directory of dpkg's status file, resolved inside `root`, and its name.
fn status_file(root: &Path) -> Result<(PathBuf, &'static str), RootfsError> {
    let (dir, name) = STATUS
        .rsplit_once('/')
        .ok_or_else(|| bad_path(STATUS, "not under a directory"))?;
    Ok((image_dir(root, dir)?, name))
}

/// A database file's text; a symlink in its place is refused, so a package
/// cannot make kiln read (and copy into the image) a file of the host.
fn read_plain(path: &Path) -> Result<String, RootfsError> {
    if fs_err::symlink_metadata(path)?.file_type().is_symlink() {
        return Err(bad_path(
            path,
            "is a symbolic link; refusing to read through it",
        ));
    }
    Ok(fs_err::read_to_string(path)?)
}

/// The package's status entry: its control fields, its state, and its
/// conffiles awaiting configuration.
fn stanza(pkg: &NewPackage) -> Result<String, RootfsError> {
    let control = pkg.member("control").ok_or_else(|| RootfsError::BadDeb {
        path: pkg.name.clone().into(),
        why: "control.tar has no control file".into(),
    })?;
    let text = String::from_utf8_lossy(&control.data);
    let mut out = String::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        out.push_str(line);
        out.push('\n');
        if line.starts_with("Package:") {
            out.push_str("Status: install ok unpacked\n");
        }
    }
    let conffiles = pkg.conffiles();
    if !conffiles.is_empty() {
        out.push_str("Conffiles:\n");
        for c in conffiles {
            out.push_str(&format!(" {c} newconffile\n"));
        }
    }
    Ok(out)
}

/// A package's `triggers` file, one directive per line.
fn trigger_directives(pkg: &NewPackage) -> Vec<(String, String)> {
    let Some(m) = pkg.member("triggers") else {
        return Vec::new();
    };
    String::from_utf8_lossy(&m.data)
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            Some((words.next()?.to_string(), words.next()?.to_string()))
        })
        .collect()
}

/// Adds each package's `interest` directives to `triggers/File` (paths) or
/// `triggers/NAME` (named triggers), as dpkg does when it unpacks it.
fn register_interests(root: &Path, pkgs: &[NewPackage]) -> Result<(), RootfsError> {
    let mut file_lines = String::new();
    let mut named: BTreeMap<String, String> = BTreeMap::new();
    for pkg in pkgs {
        for (directive, name) in trigger_directives(pkg) {
            let who = match directive.as_str() {
                "interest" | "interest-await" => pkg.db_name(),
                "interest-noawait" => format!("{}/noawait", pkg.db_name()),
                _ => continue,
            };
            if name.starts_with('/') {
                file_lines.push_str(&format!("{name} {who}\n"));
            } else {
                named.entry(name).or_default().push_str(&format!("{who}\n"));
            }
        }
    }
    if file_lines.is_empty() && named.is_empty() {
        return Ok(());
    }
    let dir = image_dir(root, TRIGGERS)?;
    if !file_lines.is_empty() {
        append_file(&dir, "File", file_lines.as_bytes())?;
    }
    for (name, lines) in named {
        append_file(&dir, &name, lines.as_bytes())?;
    }
    Ok(())
}

/// Marks the file triggers that `paths` activate as pending in the packages
/// already configured that declared an interest in them. Packages not
/// configured yet are skipped, as dpkg skips them: their postinst does the
/// work when it runs.
pub(crate) fn activate_file_triggers<'a>(
    root: &Path,
    paths: impl IntoIterator<Item = &'a str>,
) -> Result<(), RootfsError> {
    let Some(dir) = existing_dir(root, TRIGGERS)? else {
        return Ok(());
    };
    let interests: Vec<(String, String)> = match read_plain(&dir.join("File")) {
        Ok(text) => text
            .lines()
            .filter_map(|l| {
                let (path, who) = l.split_once(' ')?;
                let who = who.split('/').next().unwrap_or(who);
                Some((path.to_string(), who.to_string()))
            })
            .collect(),
        Err(RootfsError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if interests.is_empty() {
        return Ok(());
    }
    let mut pending: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for path in paths {
        for (dir, who) in &interests {
            let under = path
                .strip_prefix(dir.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'));
            if under {
                let triggers = pending.entry(who.clone()).or_default();
                if !triggers.contains(dir) {
                    triggers.push(dir.clone());
                }
            }
        }
    }
    if pending.is_empty() {
        return Ok(());
    }
    let (dir, status) = status_file(root)?;
    let text = read_plain(&dir.join(status))?;
    replace_file(
        &dir,
        status,
        mark_pending(&text, &pending).as_bytes(),
        0o644,
    )?;
    Ok(())
}

/// `text` (a status file) with `pending` triggers added to the configured
/// packages named (by database name) as its keys.
fn mark_pending(text: &str, pending: &BTreeMap<String, Vec<String>>) -> String {
    let mut out = String::with_capacity(text.len() + 256);
    for stanza in text.split("\n\n").filter(|s| !s.trim().is_empty()) {
        let field = |name: &str| {
            stanza
                .lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(':').map(str::trim))
                .unwrap_or("")
        };
        let db = db_name(field("Package"), field("Architecture"), field("Multi-Arch"));
        let state = field("Status");
        let configured = matches!(
            state,
            "install ok installed" | "install ok triggers-pending" | "install ok triggers-awaited"
        );
        match pending.get(&db) {
            Some(triggers) if configured => {
                let mut names: Vec<String> = field("Triggers-Pending")
                    .split_whitespace()
                    .map(str::to_string)
                    .collect();
                for t in triggers {
                    if !names.contains(t) {
                        names.push(t.clone());
                    }
                }
                for line in stanza.lines() {
                    if line.starts_with("Triggers-Pending:") {
                        continue;
                    }
                    if line.starts_with("Status:") && state == "install ok installed" {
                        out.push_str("Status: install ok triggers-pending\n");
                    } else {
                        out.push_str(line);
                        out.push('\n');
                    }
                }
                out.push_str(&format!("Triggers-Pending: {}\n", names.join(" ")));
            }
            _ => {
                out.push_str(stanza.trim_end_matches('\n'));
                out.push('\n');
            }
        }
        out.push('\n');
    }
    out
}

/// Every path some installed package owns, from the `.list` files.
pub(crate) fn owned_paths(root: &Path) -> Result<HashSet<String>, RootfsError> {
    let mut out = HashSet::new();
    let Some(info) = existing_dir(root, INFO)? else {
        return Ok(out);
    };
    let entries = match fs_err::read_dir(&info) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e.into()),
    };
    for e in entries {
        let path = e?.path();
        if path.extension().is_some_and(|x| x == "list") {
            let text = fs_err::read_to_string(&path)?;
            out.extend(text.lines().map(str::to_string));
        }
    }
    Ok(out)
}

/// The paths dpkg-divert has diverted (`diversions` holds three lines per
/// diversion: from, to, by).
pub(crate) fn diverted_paths(root: &Path) -> Result<HashSet<String>, RootfsError> {
    let (dir, name) = DIVERSIONS
        .rsplit_once('/')
        .ok_or_else(|| bad_path(DIVERSIONS, "not under a directory"))?;
    let Some(dir) = existing_dir(root, dir)? else {
        return Ok(HashSet::new());
    };
    match read_plain(&dir.join(name)) {
        Ok(text) => Ok(text.lines().step_by(3).map(str::to_string).collect()),
        Err(RootfsError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => Ok(HashSet::new()),
        Err(e) => Err(e),
    }
}

/// The host directory of `image_dir` resolved inside `root`, if it exists.
fn existing_dir(root: &Path, image_dir: &str) -> Result<Option<PathBuf>, RootfsError> {
    let components = crate::confine::image_components(image_dir)?;
    match crate::confine::resolve_dir(root, &components, false) {
        Ok(dir) => Ok(Some(dir)),
        Err(RootfsError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn member(name: &str, data: &str) -> ControlMember {
        ControlMember {
            name: name.into(),
            data: data.as_bytes().to_vec(),
            mode: 0o644,
            mtime: 1_600_000_000,
        }
    }

    fn pkg(name: &str, multi_arch: &str, members: Vec<ControlMember>) -> NewPackage {
        NewPackage {
            name: name.into(),
            architecture: "amd64".into(),
            multi_arch: multi_arch.into(),
            members,
            paths: vec!["/.".into(), "/etc".into(), "/etc/x.conf".into()],
        }
    }

    #[test]
    fn records_a_package_as_dpkg_unpack_does() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs_err::create_dir_all(root.join("var/lib/dpkg")).unwrap();
        fs_err::write(root.join(STATUS), "").unwrap();
        let control = "Package: libx\nVersion: 1\nArchitecture: amd64\nMulti-Arch: same\nDescription: x\n more\n";
        let mut script = member("postinst", "#!/bin/sh\n");
        script.mode = 0o755;
        let p = pkg(
            "libx",
            "same",
            vec![
                member("control", control),
                member(
                    "conffiles",
                    "/etc/x.conf\nremove-on-upgrade /etc/old.conf\n",
                ),
                member(
                    "triggers",
                    "# comment\ninterest-noawait /usr/lib/x\nactivate-noawait ldconfig\ninterest x-named\n",
                ),
                script,
            ],
        );
        record_unpacked(root, &[p]).unwrap();
        let info = root.join(INFO);
        assert_eq!(
            fs_err::read_to_string(info.join("libx:amd64.list")).unwrap(),
            "/.\n/etc\n/etc/x.conf\n"
        );
        let mode = fs_err::metadata(info.join("libx:amd64.postinst"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755);
        assert!(!info.join("libx:amd64.control").exists());
        assert_eq!(fs_err::read_to_string(info.join("format")).unwrap(), "1\n");
        assert_eq!(
            fs_err::read_to_string(root.join(STATUS)).unwrap(),
            "Package: libx\nStatus: install ok unpacked\nVersion: 1\nArchitecture: amd64\nMulti-Arch: same\nDescription: x\n more\nConffiles:\n /etc/x.conf newconffile\n\n"
        );
        assert_eq!(
            fs_err::read_to_string(root.join(TRIGGERS).join("File")).unwrap(),
            "/usr/lib/x libx:amd64/noawait\n"
        );
        assert_eq!(
            fs_err::read_to_string(root.join(TRIGGERS).join("x-named")).unwrap(),
            "libx:amd64\n"
        );
        // Parsed back as dpkg-query would.
        let installed = crate::status::read(root).unwrap();
        assert_eq!(installed[0].status, "install ok unpacked");
    }

    #[test]
    fn file_triggers_pend_only_in_configured_packages() {
        let status = "Package: man\nStatus: install ok installed\nVersion: 1\n\nPackage: late\nStatus: install ok unpacked\nVersion: 1\n\nPackage: other\nStatus: install ok installed\nVersion: 2\n";
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs_err::create_dir_all(root.join(TRIGGERS)).unwrap();
        fs_err::write(root.join(STATUS), status).unwrap();
        fs_err::write(
            root.join(TRIGGERS).join("File"),
            "/usr/share/man man/noawait\n/usr/lib/late late\n/usr/share/mandoc other\n",
        )
        .unwrap();
        activate_file_triggers(
            root,
            [
                "/usr/share/man/man1/a.1.gz",
                "/usr/lib/late/x",
                "/usr/share/manx",
            ],
        )
        .unwrap();
        assert_eq!(
            fs_err::read_to_string(root.join(STATUS)).unwrap(),
            "Package: man\nStatus: install ok triggers-pending\nVersion: 1\nTriggers-Pending: /usr/share/man\n\nPackage: late\nStatus: install ok unpacked\nVersion: 1\n\nPackage: other\nStatus: install ok installed\nVersion: 2\n\n"
        );
    }

    #[test]
    fn reads_owned_and_diverted_paths() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs_err::create_dir_all(root.join(INFO)).unwrap();
        fs_err::write(root.join(INFO).join("a.list"), "/.\n/bin/sh\n").unwrap();
        fs_err::write(root.join(INFO).join("a.md5sums"), "x  bin/zzz\n").unwrap();
        fs_err::write(
            root.join(DIVERSIONS),
            "/bin/sh\n/bin/sh.distrib\ndash\n/usr/x\n/usr/x.real\n:\n",
        )
        .unwrap();
        let owned = owned_paths(root).unwrap();
        assert!(owned.contains("/bin/sh") && !owned.contains("bin/zzz"));
        let diverted = diverted_paths(root).unwrap();
        assert_eq!(diverted.len(), 2);
        assert!(diverted.contains("/usr/x") && !diverted.contains("dash"));
    }
}
