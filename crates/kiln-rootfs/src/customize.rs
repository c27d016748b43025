//! The definition's own changes to the image: `[[users]]`, `[[files]]`,
//! `[[run]]` and `[services]`, each done the way an administrator would do
//! it inside the machine (useradd, systemctl), in the build's sandbox.

use std::ffi::{OsStr, OsString};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use kiln_spec::{Definition, FileSpec, NO_HOME, RunStep, User};

use crate::BuildEnv;
use crate::Event;
use crate::confine::host_path;
use crate::error::RootfsError;
use crate::extract::io_at;
use crate::sandbox::{Network, NoDaemons, Sandbox};

/// Where `[[run]]` scripts are copied inside the image while they run.
const RUN_DIR: &str = "/tmp/kiln-run";

pub(crate) fn customize(root: &Path, def: &Definition, env: &BuildEnv) -> Result<(), RootfsError> {
    if def.users.is_empty()
        && def.files.is_empty()
        && def.run.is_empty()
        && def.services.enable.is_empty()
        && def.services.disable.is_empty()
    {
        return Ok(());
    }
    // Without [[run]] steps nothing but packages and files can provide a
    // unit, so a missing one is refused before any other change.
    let files: Vec<&str> = def.files.iter().map(|f| f.dst.as_str()).collect();
    if def.run.is_empty() {
        crate::units::require(root, "[services].enable", &def.services.enable, &files)?;
    }
    let no_daemons = NoDaemons::install(root)?;
    let sandbox = Sandbox {
        root,
        env,
        read_only: None,
    };
    for user in &def.users {
        env.emit(Event::Step(&format!("adding user {}", user.name)));
        add_user(&sandbox, user)?;
    }
    for file in &def.files {
        env.emit(Event::Step(&format!("writing {}", file.dst)));
        write_file(root, file)?;
    }
    for (n, run) in def.run.iter().enumerate() {
        let net = if run.network {
            Network::Host
        } else {
            Network::Loopback
        };
        run_step(&sandbox, n + 1, &run.step, net)?;
    }
    crate::units::require(root, "[services].enable", &def.services.enable, &[])?;
    services(&sandbox, &def.services)?;
    no_daemons.remove()?;
    Ok(())
}

fn add_user(sandbox: &Sandbox, user: &User) -> Result<(), RootfsError> {
    let accounts = Accounts::read(sandbox.root)?;
    let fail = |why: String| RootfsError::User {
        user: user.name.clone(),
        why,
    };
    if accounts.user(&user.name).is_some() {
        return Err(fail("already exists in the image".into()));
    }
    let missing: Vec<&str> = user
        .groups
        .iter()
        .filter(|g| accounts.group(g).is_none())
        .map(|g| g.as_str())
        .collect();
    if !missing.is_empty() {
        return Err(fail(format!(
            "no group {} in the image",
            missing.join(", ")
        )));
    }
    let mut argv: Vec<OsString> = vec!["useradd".into()];
    if user.system {
        argv.push("--system".into());
    }
    if let Some(uid) = user.uid {
        argv.extend(["--uid".into(), uid.to_string().into()]);
    }
    if !user.groups.is_empty() {
        argv.extend(["--groups".into(), user.groups.join(",").into()]);
    }
    argv.extend(["--shell".into(), user.shell.clone().into()]);
    argv.extend(["--home-dir".into(), user.home.clone().into()]);
    if user.home == NO_HOME {
        argv.push("--no-create-home".into());
    } else {
        argv.push("--create-home".into());
    }
    // --no-log-init: leave lastlog and faillog alone; their size grows with the uid.
    argv.push("--no-log-init".into());
    argv.push("--".into());
    argv.push(user.name.clone().into());
    let refs: Vec<&OsStr> = argv.iter().map(|a| a.as_os_str()).collect();
    sandbox.run(&format!("[[users]] {}: useradd", user.name), &refs)?;
    Ok(())
}

fn write_file(root: &Path, file: &FileSpec) -> Result<(), RootfsError> {
    let content = fs_err::read(&file.src.path)?;
    let accounts = Accounts::read(root)?;
    let unknown = |kind, name: &str| RootfsError::UnknownOwner {
        dst: file.dst.clone(),
        kind,
        name: name.to_string(),
    };
    let uid = numeric_or(&file.owner.user, |n| accounts.user(n))
        .ok_or_else(|| unknown("user", &file.owner.user))?;
    let gid = numeric_or(&file.owner.group, |n| accounts.group(n))
        .ok_or_else(|| unknown("group", &file.owner.group))?;
    let host = host_path(root, &file.dst, true)?;
    if let Ok(meta) = fs_err::symlink_metadata(&host) {
        // Replace a file or link, never write through a link or over a directory.
        if meta.is_dir() {
            return Err(crate::error::bad_path(
                &host,
                format!("[[files]] {}: is a directory in the image", file.dst),
            ));
        }
        fs_err::remove_file(&host)?;
    }
    fs_err::write(&host, content)?;
    // chown before chmod: chown clears setuid/setgid bits the mode may set.
    rustix::fs::chown(
        &host,
        Some(rustix::fs::Uid::from_raw(uid)),
        Some(rustix::fs::Gid::from_raw(gid)),
    )
    .map_err(|e| io_at(&host, "chown", e))?;
    fs_err::set_permissions(&host, std::fs::Permissions::from_mode(file.mode))?;
    Ok(())
}

fn run_step(sandbox: &Sandbox, n: usize, step: &RunStep, net: Network) -> Result<(), RootfsError> {
    match step {
        RunStep::Command(command) => {
            sandbox
                .env
                .emit(Event::Step(&format!("[[run]] #{n}: {command}")));
            let what = format!("[[run]] #{n} (command `{command}`)");
            sandbox.run_with(
                &what,
                &[OsStr::new("/bin/sh"), OsStr::new("-c"), OsStr::new(command)],
                net,
            )?;
        }
        RunStep::Script(script) => {
            sandbox
                .env
                .emit(Event::Step(&format!("[[run]] #{n}: {}", script.written)));
            let body = fs_err::read(&script.path)?;
            let inside = format!("{RUN_DIR}/step-{n}");
            let host = host_path(sandbox.root, &inside, true)?;
            fs_err::write(&host, &body)?;
            fs_err::set_permissions(&host, std::fs::Permissions::from_mode(0o755))?;
            let what = format!("[[run]] #{n} (script {})", script.written);
            // A script without `#!` runs under sh, as a shell would run it.
            let result = if body.starts_with(b"#!") {
                sandbox.run_with(&what, &[OsStr::new(&inside)], net)
            } else {
                sandbox.run_with(&what, &[OsStr::new("/bin/sh"), OsStr::new(&inside)], net)
            };
            fs_err::remove_dir_all(host_path(sandbox.root, RUN_DIR, false)?)?;
            result?;
        }
    }
    Ok(())
}

fn services(sandbox: &Sandbox, services: &kiln_spec::Services) -> Result<(), RootfsError> {
    if services.enable.is_empty() && services.disable.is_empty() {
        return Ok(());
    }
    let systemctl = host_path(sandbox.root, "/usr/bin/systemctl", false);
    if !systemctl.is_ok_and(|p| fs_err::symlink_metadata(p).is_ok()) {
        return Err(RootfsError::Services {
            why: "the image has no systemctl (systemd is not installed)".into(),
        });
    }
    // systemctl works on unit files when systemd is not running (as in a
    // chroot): it creates the same wants/ links `systemctl enable` makes on
    // a live machine, and starts nothing.
    for (verb, units) in [("disable", &services.disable), ("enable", &services.enable)] {
        if units.is_empty() {
            continue;
        }
        sandbox.env.emit(Event::Step(&format!(
            "systemctl {verb} {}",
            units.join(" ")
        )));
        let mut argv: Vec<&OsStr> =
            vec![OsStr::new("systemctl"), OsStr::new(verb), OsStr::new("--")];
        argv.extend(units.iter().map(OsStr::new));
        sandbox.run(&format!("[services] systemctl {verb}"), &argv)?;
    }
    Ok(())
}

fn numeric_or(name: &str, lookup: impl Fn(&str) -> Option<u32>) -> Option<u32> {
    name.parse().ok().or_else(|| lookup(name))
}

/// `/etc/passwd` and `/etc/group` of the image: names resolve as the image
/// resolves them, never as the build host does.
struct Accounts {
    users: Vec<(String, u32)>,
    groups: Vec<(String, u32)>,
}

impl Accounts {
    fn read(root: &Path) -> Result<Accounts, RootfsError> {
        let table = |path: &str| -> Result<Vec<(String, u32)>, RootfsError> {
            let host = host_path(root, path, false)?;
            let text = match fs_err::read_to_string(&host) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
                Err(e) => return Err(e.into()),
            };
            Ok(text
                .lines()
                .filter_map(|l| {
                    let mut f = l.split(':');
                    let name = f.next()?;
                    let id = f.nth(1)?.parse().ok()?;
                    Some((name.to_string(), id))
                })
                .collect())
        };
        Ok(Accounts {
            users: table("/etc/passwd")?,
            groups: table("/etc/group")?,
        })
    }

    fn user(&self, name: &str) -> Option<u32> {
        self.users
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, id)| *id)
    }

    fn group(&self, name: &str) -> Option<u32> {
        self.groups
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, id)| *id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    /// An image tree with the accounts of a small Debian system.
    fn image() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        let etc = t.path().join("etc");
        fs_err::create_dir_all(&etc).unwrap();
        fs_err::write(
            etc.join("passwd"),
            "root:x:0:0:root:/root:/bin/bash\nwww-data:x:33:33::/var/www:/usr/sbin/nologin\n",
        )
        .unwrap();
        fs_err::write(etc.join("group"), "root:x:0:\nwww-data:x:33:\nadm:x:4:\n").unwrap();
        t
    }

    fn file(src: &Path, dst: &str, user: &str, group: &str, mode: u32) -> FileSpec {
        FileSpec {
            src: kiln_spec::DefPath {
                written: "files/x".into(),
                path: src.to_path_buf(),
            },
            dst: dst.into(),
            mode,
            owner: kiln_spec::Owner {
                user: user.into(),
                group: group.into(),
            },
        }
    }

    fn sandbox<'a>(root: &'a Path, env: &'a BuildEnv) -> Sandbox<'a> {
        Sandbox {
            root,
            env,
            read_only: None,
        }
    }

    fn source(dir: &Path, content: &str) -> std::path::PathBuf {
        let p = dir.join("src");
        fs_err::write(&p, content).unwrap();
        p
    }

    #[test]
    fn accounts_resolve_as_the_image_does_not_the_host() {
        let t = image();
        let a = Accounts::read(t.path()).unwrap();
        assert_eq!(a.user("www-data"), Some(33));
        assert_eq!(a.group("adm"), Some(4));
        // Present on the host, absent from this image.
        assert_eq!(a.user("nobody"), None);
        assert_eq!(numeric_or("1234", |n| a.user(n)), Some(1234));
        assert_eq!(numeric_or("www-data", |n| a.user(n)), Some(33));
        assert_eq!(numeric_or("ghost", |n| a.user(n)), None);
        // An image without /etc/passwd knows no one.
        let empty = tempfile::tempdir().unwrap();
        fs_err::create_dir(empty.path().join("etc")).unwrap();
        assert_eq!(Accounts::read(empty.path()).unwrap().user("root"), None);
    }

    #[test]
    fn root_a_file_is_written_with_its_owner_and_mode() {
        let t = image();
        let src = source(t.path(), "server { }\n");
        let f = file(&src, "/etc/nginx/site.conf", "www-data", "adm", 0o4750);
        write_file(t.path(), &f).unwrap();
        let dst = t.path().join("etc/nginx/site.conf");
        let meta = fs_err::metadata(&dst).unwrap();
        assert_eq!(fs_err::read_to_string(&dst).unwrap(), "server { }\n");
        assert_eq!((meta.uid(), meta.gid()), (33, 4));
        // setuid survives: chmod comes after chown.
        assert_eq!(meta.mode() & 0o7777, 0o4750);
    }

    #[test]
    fn root_a_link_at_the_destination_is_replaced_not_followed() {
        let t = image();
        let outside = tempfile::tempdir().unwrap();
        let victim = outside.path().join("victim");
        fs_err::write(&victim, "host file\n").unwrap();
        std::os::unix::fs::symlink(&victim, t.path().join("etc/motd")).unwrap();
        let src = source(t.path(), "welcome\n");
        write_file(t.path(), &file(&src, "/etc/motd", "0", "0", 0o644)).unwrap();
        assert_eq!(fs_err::read_to_string(&victim).unwrap(), "host file\n");
        let motd = t.path().join("etc/motd");
        assert!(!fs_err::symlink_metadata(&motd).unwrap().is_symlink());
        assert_eq!(fs_err::read_to_string(&motd).unwrap(), "welcome\n");
    }

    #[test]
    fn unknown_owners_and_directories_are_refused_before_writing() {
        let t = image();
        let src = source(t.path(), "x");
        let e = write_file(
            t.path(),
            &file(&src, "/etc/app.conf", "ghost", "root", 0o644),
        )
        .unwrap_err();
        assert!(
            matches!(&e, RootfsError::UnknownOwner { kind: "user", name, .. } if name == "ghost"),
            "{e}"
        );
        assert!(e.is_user_error(), "{e}");
        let e = write_file(
            t.path(),
            &file(&src, "/etc/app.conf", "root", "staff", 0o644),
        )
        .unwrap_err();
        assert!(
            matches!(&e, RootfsError::UnknownOwner { kind: "group", .. }),
            "{e}"
        );
        assert!(!t.path().join("etc/app.conf").exists());
        let e = write_file(t.path(), &file(&src, "/etc", "root", "root", 0o644)).unwrap_err();
        assert!(e.to_string().contains("is a directory in the image"), "{e}");
    }

    #[test]
    fn existing_users_and_missing_groups_are_refused_before_useradd() {
        let t = image();
        let env = BuildEnv::new(0);
        let sandbox = sandbox(t.path(), &env);
        let user = |name: &str, groups: &[&str]| User {
            name: name.into(),
            system: true,
            uid: None,
            groups: groups.iter().map(|g| g.to_string()).collect(),
            shell: kiln_spec::SYSTEM_SHELL.into(),
            home: NO_HOME.into(),
        };
        let e = add_user(&sandbox, &user("www-data", &[])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "[[users]] www-data: already exists in the image"
        );
        let e = add_user(&sandbox, &user("app", &["adm", "docker", "video"])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "[[users]] app: no group docker, video in the image"
        );
        assert!(e.is_user_error());
    }

    #[test]
    fn services_without_systemctl_are_refused_with_the_reason() {
        let t = image();
        let env = BuildEnv::new(0);
        let sandbox = sandbox(t.path(), &env);
        let none = kiln_spec::Services::default();
        services(&sandbox, &none).unwrap();
        let some = kiln_spec::Services {
            enable: vec!["nginx.service".into()],
            disable: vec![],
        };
        let e = services(&sandbox, &some).unwrap_err();
        assert!(e.to_string().contains("no systemctl"), "{e}");
    }
}
