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
