//! kiln's own `dpkg --unpack` for packages the root does not hold yet.
//!
//! dpkg unpacks one package at a time and forks `dpkg-split`, `dpkg-deb` and
//! `tar` for each: 25–35 ms a package on a virtual machine, most of a base
//! image's install time besides the maintainer scripts. kiln extracts every
//! package of a batch at once, on every core, and writes dpkg's database as
//! `dpkg --unpack` would (see `dpkgdb`); each `preinst install` runs first,
//! in order, as dpkg runs it. dpkg itself then configures the batch
//! (`dpkg --configure -a`): every postinst, conffile and trigger is dpkg's.
//!
//! Only the plain case is done here: packages new to the root, no file
//! shipped twice or already owned, nothing diverted. Anything else is left
//! to `dpkg --install`, untouched, with the reason.

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::path::Path;

use crate::confine::{entry_components, host_path};
use crate::deb::{Control, open_member, read_control_members};
use crate::dpkgdb::{self, NewPackage};
use crate::error::RootfsError;
use crate::extract::{DPKG_NEW, extract_all, image_path, io_at, make_dir, set_mtime};
use crate::sandbox::Sandbox;
use crate::stage::StagedDebs;
use crate::{Event, status};

/// Runs each `preinst install` in turn inside the image, as dpkg runs it:
/// from `tmp.ci`, holding the package's control files (debconf reads the
/// templates there and names the owner from the script's path), with the
/// environment dpkg gives maintainer scripts. Arguments: dpkg's version,
/// then (package, architecture, database name) for each script; the control
/// files are in `CONTROL_DIRS/DATABASE-NAME`.
const PREINSTS: &str = r#"set -e
version=$1; shift
admin=/var/lib/dpkg
while [ $# -gt 0 ]; do
  echo "kiln: running the preinst of $1"
  rm -rf "$admin/tmp.ci"
  cp -a "$admin/kiln-ci/$3" "$admin/tmp.ci"
  DPKG_MAINTSCRIPT_PACKAGE=$1 DPKG_MAINTSCRIPT_ARCH=$2 \
  DPKG_MAINTSCRIPT_NAME=preinst DPKG_MAINTSCRIPT_PACKAGE_REFCOUNT=1 \
  DPKG_RUNNING_VERSION=$version DPKG_ADMINDIR=$admin DPKG_ROOT= \
    "$admin/tmp.ci/preinst" install
  shift 3
done
rm -rf "$admin/tmp.ci" "$admin/kiln-ci"
"#;

/// Where the control files of the packages whose preinst runs wait.
const CONTROL_DIRS: &str = "var/lib/dpkg/kiln-ci";

/// How a batch was unpacked.
pub(crate) enum Unpacked {
    /// By kiln: dpkg only has to configure it.
    ByKiln,
    /// Not at all: dpkg must install it, for this reason.
    LeftToDpkg(String),
}

/// What [`pre_extract`] put in place: each package's listing, in order.
pub(crate) struct Extracted(Vec<Listing>);

/// Unpacks the packages `members` (indexes into `controls`, in dpkg's order)
/// into the sandbox's root. With `extracted`, their files are already in
/// place (the bootstrap's essential set), so only the database, the
/// conffiles' `.dpkg-new` copies and the preinsts are left to do.
pub(crate) fn unpack(
    sandbox: &Sandbox,
    staged: &StagedDebs,
    controls: &[Control],
    members: &[usize],
    extracted: Option<Extracted>,
) -> Result<Unpacked, RootfsError> {
    let pre_extracted = extracted.is_some();
    let root = sandbox.root;
    let installed = status::read(root)?;
    if let Some(c) = members
        .iter()
        .map(|&i| &controls[i])
        .find(|c| installed.iter().any(|p| p.name == c.package))
    {
        return Ok(Unpacked::LeftToDpkg(format!(
            "{} is already in the image",
            c.package
        )));
    }

    let pkgs = read_packages(staged, controls, members, extracted)?;
    if let Some(why) = conflict(root, &pkgs, pre_extracted)? {
        return Ok(Unpacked::LeftToDpkg(why));
    }
    let conffiles: Vec<HashSet<String>> = pkgs
        .iter()
        .map(|(p, _)| p.conffiles().into_iter().collect())
        .collect();
    let (new, dirs): (Vec<NewPackage>, Vec<Vec<Option<Dir>>>) = pkgs.into_iter().unzip();

    dpkgdb::record_unpacked(root, &new)?;
    if pre_extracted {
        for c in conffiles.iter().flatten() {
            copy_beside(root, c)?;
        }
    }
    run_preinsts(sandbox, &new, controls, &installed)?;
    if !pre_extracted {
        let listings: Vec<(&[String], &[Option<Dir>])> = new
            .iter()
            .zip(&dirs)
            .map(|(p, d)| (p.paths.as_slice(), d.as_slice()))
            .collect();
        extract_in_order(root, staged, members, &listings, &conffiles)?;
        dpkgdb::activate_file_triggers(
            root,
            new.iter().flat_map(|p| p.paths.iter().map(String::as_str)),
        )?;
    }
    Ok(Unpacked::ByKiln)
}

/// A package as read for unpacking: its record, and which of its paths are
/// directories (with their metadata).
type Read = (NewPackage, Vec<Option<Dir>>);

/// Each package's control files and the paths of its `data.tar`, read from
/// the decompressed copies unless [`pre_extract`] listed them already.
fn read_packages(
    staged: &StagedDebs,
    controls: &[Control],
    members: &[usize],
    extracted: Option<Extracted>,
) -> Result<Vec<Read>, RootfsError> {
    let listings = match extracted {
        Some(Extracted(listings)) => listings,
        None => kiln_deb::par::map(members, |&i| list_paths(&staged.host[i]))?,
    };
    let control_files = kiln_deb::par::map(members, |&i| read_control_members(&staged.host[i]))?;
    Ok(members
        .iter()
        .zip(listings)
        .zip(control_files)
        .map(|((&i, (paths, dirs)), members)| {
            let c = &controls[i];
            let pkg = NewPackage {
                name: c.package.clone(),
                architecture: c.architecture.clone(),
                multi_arch: c.multi_arch.clone(),
                members,
                paths,
            };
            (pkg, dirs)
        })
        .collect())
}

/// A directory entry's metadata.
#[derive(Debug, Clone, Copy)]
struct Dir {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: i64,
}

/// The paths of a `data.tar` as `.list` holds them, and for each the
/// metadata of the directory it is, if it is one.
type Listing = (Vec<String>, Vec<Option<Dir>>);

/// The [`Listing`] of the `.deb` at `deb`.
fn list_paths(deb: &Path) -> Result<Listing, RootfsError> {
    let corrupt = |e: std::io::Error| RootfsError::BadDeb {
        path: deb.to_path_buf(),
        why: format!("data.tar: {e}"),
    };
    let mut archive = tar::Archive::new(open_member(deb, "data.tar")?);
    let mut paths = Vec::new();
    let mut dirs = Vec::new();
    for entry in archive.entries().map_err(corrupt)? {
        let entry = entry.map_err(corrupt)?;
        let header = entry.header();
        if header.entry_type() == tar::EntryType::XGlobalHeader {
            continue;
        }
        let name = entry.path_bytes();
        let components = entry_components(&name).map_err(|why| RootfsError::UnsafeEntry {
            deb: deb.to_path_buf(),
            entry: String::from_utf8_lossy(&name).into_owned(),
            why,
        })?;
        paths.push(image_path(&components));
        dirs.push(if header.entry_type() == tar::EntryType::Directory {
            Some(Dir {
                mode: header.mode().map_err(corrupt)? & 0o7777,
                uid: header.uid().map_err(corrupt)? as u32,
                gid: header.gid().map_err(corrupt)? as u32,
                mtime: header.mtime().map_err(corrupt)? as i64,
            })
        } else {
            None
        });
    }
    Ok((paths, dirs))
}

/// Extracts `members` (in dpkg's order) at once. Their directories are made
/// first, one package after the other, so a directory several of them ship
/// gets what the first one says, as with dpkg, whichever thread is faster.
fn extract_in_order(
    root: &Path,
    staged: &StagedDebs,
    members: &[usize],
    listings: &[(&[String], &[Option<Dir>])],
    conffiles: &[HashSet<String>],
) -> Result<(), RootfsError> {
    for (paths, dirs) in listings {
        for (path, dir) in paths.iter().zip(dirs.iter()) {
            if let Some(d) = dir
                && path != "/."
            {
                let host = host_path(root, path, true)?;
                make_dir(&host, d.mode, d.uid, d.gid, d.mtime)?;
            }
        }
    }
    let jobs: Vec<(&Path, &HashSet<String>)> = members
        .iter()
        .zip(conffiles)
        .map(|(&i, c)| (staged.host[i].as_path(), c))
        .collect();
    extract_all(root, &jobs)
}

/// The bootstrap's first step: the essential set's files, all in place
/// (conffiles too), before anything can run in the image.
pub(crate) fn pre_extract(
    root: &Path,
    staged: &StagedDebs,
    members: &[usize],
) -> Result<Extracted, RootfsError> {
    let listings = kiln_deb::par::map(members, |&i| list_paths(&staged.host[i]))?;
    let refs: Vec<(&[String], &[Option<Dir>])> = listings
        .iter()
        .map(|(p, d)| (p.as_slice(), d.as_slice()))
        .collect();
    let in_place = vec![HashSet::new(); members.len()];
    extract_in_order(root, staged, members, &refs, &in_place)?;
    Ok(Extracted(listings))
}

/// Why dpkg must unpack these packages itself, if it must: a file shipped
/// twice (dpkg settles that with Replaces), a file another package already
/// owns, or a diverted path.
fn conflict(
    root: &Path,
    pkgs: &[Read],
    pre_extracted: bool,
) -> Result<Option<String>, RootfsError> {
    let owned = if pre_extracted {
        HashSet::new()
    } else {
        dpkgdb::owned_paths(root)?
    };
    let diverted = dpkgdb::diverted_paths(root)?;
    let mut shipped: HashMap<&str, &str> = HashMap::new();
    for (pkg, dirs) in pkgs {
        for (path, dir) in pkg.paths.iter().zip(dirs) {
            if diverted.contains(path) {
                return Ok(Some(format!("{path} of {} is diverted", pkg.name)));
            }
            if dir.is_some() {
                continue;
            }
            if owned.contains(path) {
                return Ok(Some(format!(
                    "{path} of {} belongs to an installed package",
                    pkg.name
                )));
            }
            if let Some(other) = shipped.insert(path, &pkg.name) {
                return Ok(Some(format!(
                    "{path} is shipped by both {other} and {}",
                    pkg.name
                )));
            }
        }
    }
    Ok(None)
}

/// Copies a conffile extracted in place to `PATH.dpkg-new`, where
/// `dpkg --unpack` would have put it for `dpkg --configure` to settle.
fn copy_beside(root: &Path, image: &str) -> Result<(), RootfsError> {
    use std::os::unix::fs::MetadataExt;
    let path = host_path(root, image, false)?;
    let meta = match fs_err::symlink_metadata(&path) {
        Ok(m) if m.is_file() => m,
        // A conffile that is not a plain file is dpkg's business, as before.
        _ => return Ok(()),
    };
    let mut new = path.as_os_str().to_os_string();
    new.push(DPKG_NEW);
    let new = std::path::PathBuf::from(new);
    fs_err::copy(&path, &new)?;
    rustix::fs::chown(
        &new,
        Some(rustix::fs::Uid::from_raw(meta.uid())),
        Some(rustix::fs::Gid::from_raw(meta.gid())),
    )
    .map_err(|e| io_at(&new, "chown", e))?;
    fs_err::set_permissions(&new, meta.permissions())?;
    set_mtime(&new, meta.mtime(), false)
}

/// Runs the packages' `preinst install` scripts, in order, in one sandbox.
fn run_preinsts(
    sandbox: &Sandbox,
    pkgs: &[NewPackage],
    controls: &[Control],
    installed: &[status::Installed],
) -> Result<(), RootfsError> {
    let with_preinst: Vec<&NewPackage> = pkgs
        .iter()
        .filter(|p| p.member("preinst").is_some())
        .collect();
    if with_preinst.is_empty() {
        return Ok(());
    }
    let dpkg_version = installed
        .iter()
        .find(|p| p.name == "dpkg")
        .map(|p| p.version.clone())
        .or_else(|| {
            controls
                .iter()
                .find(|c| c.package == "dpkg")
                .map(|c| c.version.clone())
        })
        .unwrap_or_default();
    let mut argv: Vec<String> = vec![
        "/bin/sh".into(),
        "-c".into(),
        PREINSTS.into(),
        "kiln-preinst".into(),
        dpkg_version,
    ];
    let dirs = sandbox.root.join(CONTROL_DIRS);
    for p in &with_preinst {
        let dir = dirs.join(p.db_name());
        fs_err::create_dir_all(&dir)?;
        for m in &p.members {
            crate::dpkgdb::write_info_file(&dir, &m.name, m)?;
        }
        argv.push(p.name.clone());
        argv.push(p.architecture.clone());
        argv.push(p.db_name());
    }
    let what = format!("preinst scripts ({} packages)", with_preinst.len());
    sandbox.env.emit(Event::Step(&what));
    let refs: Vec<&OsStr> = argv.iter().map(OsStr::new).collect();
    sandbox.run(&what, &refs)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkg(name: &str, files: &[&str], dirs: &[&str]) -> Read {
        let dir = Dir {
            mode: 0o755,
            uid: 0,
            gid: 0,
            mtime: 0,
        };
        let mut paths = Vec::new();
        let mut kinds = Vec::new();
        for d in dirs {
            paths.push(d.to_string());
            kinds.push(Some(dir));
        }
        for f in files {
            paths.push(f.to_string());
            kinds.push(None);
        }
        let p = NewPackage {
            name: name.into(),
            architecture: "amd64".into(),
            multi_arch: String::new(),
            members: Vec::new(),
            paths,
        };
        (p, kinds)
    }

    #[test]
    fn only_the_plain_case_is_unpacked_by_kiln() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs_err::create_dir_all(root.join(dpkgdb::INFO)).unwrap();
        fs_err::write(
            root.join(dpkgdb::INFO).join("old.list"),
            "/.\n/usr\n/usr/bin/old\n",
        )
        .unwrap();
        fs_err::write(
            root.join("var/lib/dpkg/diversions"),
            "/bin/sh\n/bin/sh.distrib\ndash\n",
        )
        .unwrap();
        let conflict =
            |pkgs: &[(NewPackage, Vec<Option<Dir>>)]| conflict(root, pkgs, false).unwrap();

        // Shared directories, distinct files: kiln's.
        let plain = [
            pkg("a", &["/usr/bin/a"], &["/.", "/usr", "/usr/bin"]),
            pkg("b", &["/usr/bin/b"], &["/.", "/usr", "/usr/bin"]),
        ];
        assert_eq!(conflict(&plain), None);

        let twice = [
            pkg("a", &["/usr/bin/x"], &[]),
            pkg("b", &["/usr/bin/x"], &[]),
        ];
        assert_eq!(
            conflict(&twice).as_deref(),
            Some("/usr/bin/x is shipped by both a and b")
        );
        let owned = [pkg("new", &["/usr/bin/old"], &[])];
        assert_eq!(
            conflict(&owned).as_deref(),
            Some("/usr/bin/old of new belongs to an installed package")
        );
        let diverted = [pkg("bash", &["/bin/sh"], &[])];
        assert_eq!(
            conflict(&diverted).as_deref(),
            Some("/bin/sh of bash is diverted")
        );
        // A fresh root owns nothing yet, whatever the lists say.
        assert_eq!(super::conflict(root, &owned, true).unwrap(), None);
    }
}
