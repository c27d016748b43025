//! Running a program inside the image: `chroot` in private mount, PID, UTS
//! and (unless a `[[run]]` step asks for the network) network namespaces,
//! with `/proc` (its `sys/` read-only), a read-only `/sys` and a minimal
//! `/dev` mounted inside the root. So a command inside cannot reach the
//! network, rename the host (`hostname foo` renames only its namespace) or
//! tune the host's kernel through `/proc/sys`.
//!
//! Every mount lives in a namespace that exists only as long as the command:
//! when it exits (or kiln dies: the `unshare` process gets SIGKILL with its
//! parent, and takes the namespace's PID 1 with it) the kernel drops them,
//! so nothing is left mounted on the host and no process survives the build.

use std::collections::VecDeque;
use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::error::{RootfsError, bad_path};
use crate::{BuildEnv, Event};

/// Host-side setup run by `unshare` in the new namespaces, then `chroot`.
/// `$1` is the root, `$2` a directory inside it to make read-only (the
/// package files; empty for none), `$3` `lo` when the command has its own
/// network namespace (whose loopback starts down), the rest is the command.
const ENTER: &str = r#"set -eu
root=$1; ro=$2; net=$3; shift 3
if [ "$net" = lo ]; then ip link set lo up; fi
mount -t proc -o nosuid,nodev,noexec proc "$root/proc"
mount --bind "$root/proc/sys" "$root/proc/sys"
mount -o remount,bind,ro,nosuid,nodev,noexec "$root/proc/sys"
if [ -e "$root/proc/sysrq-trigger" ]; then
  mount --bind "$root/proc/sysrq-trigger" "$root/proc/sysrq-trigger"
  mount -o remount,bind,ro "$root/proc/sysrq-trigger"
fi
mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$root/sys" 2>/dev/null || {
  mount --rbind /sys "$root/sys" && mount -o remount,bind,ro "$root/sys"; }
mount -t tmpfs -o mode=0755,nosuid,noexec,size=8m kiln-dev "$root/dev"
for d in null zero full random urandom tty; do
  [ -e "/dev/$d" ] || continue
  : > "$root/dev/$d"
  mount --bind "/dev/$d" "$root/dev/$d"
done
ln -s /proc/self/fd "$root/dev/fd"
ln -s /proc/self/fd/0 "$root/dev/stdin"
ln -s /proc/self/fd/1 "$root/dev/stdout"
ln -s /proc/self/fd/2 "$root/dev/stderr"
mkdir -m 0755 "$root/dev/pts"
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 kiln-pts "$root/dev/pts" 2>/dev/null || true
ln -s pts/ptmx "$root/dev/ptmx"
mkdir -m 1777 "$root/dev/shm"
if [ -n "$ro" ]; then
  mount --bind "$root$ro" "$root$ro"
  mount -o remount,bind,ro "$root$ro"
fi
# Not `exec`: this shell stays PID 1, outside the chroot, so ischroot(1) and
# `systemd-detect-virt --chroot` inside see a chroot (they compare / with
# /proc/1/root) and maintainer scripts skip `telinit u; sleep 1` and the like.
status=0
chroot "$root" "$@" || status=$?
exit "$status"
"#;

/// PATH inside the image: Debian's default for root.
const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Lines of output kept to explain a failure.
const TAIL_LINES: usize = 40;

/// What a command inside the image printed (stdout and stderr interleaved).
pub(crate) struct Output {
    pub text: String,
}

/// Runs commands inside one root.
pub(crate) struct Sandbox<'a> {
    pub root: &'a Path,
    pub env: &'a BuildEnv,
    /// A directory inside the image (`/var/cache/kiln-debs`) bind-mounted
    /// read-only over itself, so nothing run inside can write to the
    /// package files (they may be hard links into the store).
    pub read_only: Option<&'a str>,
}

/// Which network a command inside the image sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Network {
    /// Its own namespace with only a loopback interface.
    Loopback,
    /// The host's (a `[[run]]` step with `network = true`).
    Host,
}

impl Sandbox<'_> {
    /// Runs `argv` inside the image without network; `what` names it in
    /// errors. Fails with the exit status and the last lines of output when
    /// it does not exit 0.
    pub(crate) fn run(&self, what: &str, argv: &[&OsStr]) -> Result<Output, RootfsError> {
        self.run_with(what, argv, Network::Loopback)
    }

    /// [`Sandbox::run`] with the network `net`.
    pub(crate) fn run_with(
        &self,
        what: &str,
        argv: &[&OsStr],
        net: Network,
    ) -> Result<Output, RootfsError> {
        for dir in ["proc", "sys", "dev"] {
            // A symlink here would point the mount elsewhere (still only in
            // our namespace, but the command would not get its /proc).
            let path = self.root.join(dir);
            match fs_err::symlink_metadata(&path) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => return Err(bad_path(path, "must be a plain directory in the image")),
                Err(_) => fs_err::create_dir(&path)?,
            }
        }
        let mut cmd = Command::new("unshare");
        cmd.args(["--mount", "--pid", "--uts"]);
        if net == Network::Loopback {
            cmd.arg("--net");
        }
        cmd.args(["--fork", "--kill-child", "--propagation", "private"])
            .args(["--", "/bin/sh", "-c", ENTER, "kiln-sandbox"])
            .arg(self.root)
            .arg(self.read_only.unwrap_or(""))
            .arg(if net == Network::Loopback {
                "lo"
            } else {
                "host"
            })
            .args(argv)
            .env_clear()
            .env("PATH", PATH)
            .env("HOME", "/root")
            .env("LC_ALL", "C.UTF-8")
            .env("LANG", "C.UTF-8")
            .env("LANGUAGE", "C.UTF-8")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .env("DEBCONF_NONINTERACTIVE_SEEN", "true")
            .env("SOURCE_DATE_EPOCH", self.env.source_date_epoch.to_string())
            .stdin(Stdio::null());
        let (reader, writer) = std::io::pipe().map_err(spawn_error)?;
        cmd.stdout(writer.try_clone().map_err(spawn_error)?)
            .stderr(writer);
        kiln_deb::child::die_with_parent(&mut cmd);
        let mut child = cmd.spawn().map_err(spawn_error)?;
        // The command holds the pipe's write ends; drop them so reading ends
        // when the child exits.
        drop(cmd);
        let mut text = String::new();
        let mut tail: VecDeque<String> = VecDeque::new();
        for line in BufReader::new(reader).split(b'\n') {
            let line = line?;
            let line = String::from_utf8_lossy(&line);
            self.env.emit(Event::Output(&line));
            text.push_str(&line);
            text.push('\n');
            if tail.len() == TAIL_LINES {
                tail.pop_front();
            }
            tail.push_back(line.into_owned());
        }
        let status = child.wait()?;
        if !status.success() {
            let status = match (status.code(), status.signal()) {
                (Some(code), _) => format!("exit status {code}"),
                (None, Some(sig)) => format!("killed by signal {sig}"),
                _ => status.to_string(),
            };
            return Err(RootfsError::Failed {
                what: what.to_string(),
                status,
                tail: Vec::from(tail).join("\n"),
            });
        }
        Ok(Output { text })
    }
}

fn spawn_error(source: std::io::Error) -> RootfsError {
    RootfsError::Spawn {
        program: "unshare (util-linux)".to_string(),
        source,
    }
}

/// The file that tells invoke-rc.d not to start or stop anything (Debian
/// policy's policy-rc.d interface, exit 101 = "action forbidden").
const POLICY_RC_D: &str = "/usr/sbin/policy-rc.d";

/// Keeps daemons from starting while packages install and steps run: puts
/// `policy-rc.d` in place, and restores what was there when dropped.
pub(crate) struct NoDaemons {
    path: std::path::PathBuf,
    saved: Option<std::path::PathBuf>,
    done: bool,
}

impl NoDaemons {
    pub(crate) fn install(root: &Path) -> Result<NoDaemons, RootfsError> {
        use std::os::unix::fs::PermissionsExt;
        let path = crate::confine::host_path(root, POLICY_RC_D, true)?;
        let saved = if fs_err::symlink_metadata(&path).is_ok() {
            let saved = path.with_file_name("policy-rc.d.kiln-saved");
            fs_err::rename(&path, &saved)?;
            Some(saved)
        } else {
            None
        };
        fs_err::write(&path, "#!/bin/sh\nexit 101\n")?;
        fs_err::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
        Ok(NoDaemons {
            path,
            saved,
            done: false,
        })
    }

    /// Restores the root as it was; errors are reported, unlike on drop.
    pub(crate) fn remove(mut self) -> Result<(), RootfsError> {
        self.restore()
    }

    fn restore(&mut self) -> Result<(), RootfsError> {
        if std::mem::replace(&mut self.done, true) {
            return Ok(());
        }
        if fs_err::symlink_metadata(&self.path).is_ok() {
            fs_err::remove_file(&self.path)?;
        }
        if let Some(saved) = self.saved.take() {
            fs_err::rename(&saved, &self.path)?;
        }
        Ok(())
    }
}

impl Drop for NoDaemons {
    fn drop(&mut self) {
        let _ = self.restore();
    }
}
