//! Running the external tools that make file systems and convert images,
//! in an environment of kiln's choosing: no locale, UTC, the image's time
//! as "now", and no user configuration, so the host cannot leak in.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::DiskError;

#[derive(Debug, Clone, Copy)]
pub(crate) struct Tool {
    pub name: &'static str,
    /// The Debian package that ships it, for the error hint.
    pub package: &'static str,
}

pub(crate) const MKE2FS: Tool = Tool {
    name: "mke2fs",
    package: "e2fsprogs",
};
pub(crate) const DEBUGFS: Tool = Tool {
    name: "debugfs",
    package: "e2fsprogs",
};
pub(crate) const DUMPE2FS: Tool = Tool {
    name: "dumpe2fs",
    package: "e2fsprogs",
};
pub(crate) const E2FSCK: Tool = Tool {
    name: "e2fsck",
    package: "e2fsprogs",
};
pub(crate) const MFORMAT: Tool = Tool {
    name: "mformat",
    package: "mtools",
};
pub(crate) const MMD: Tool = Tool {
    name: "mmd",
    package: "mtools",
};
pub(crate) const MCOPY: Tool = Tool {
    name: "mcopy",
    package: "mtools",
};
pub(crate) const QEMU_IMG: Tool = Tool {
    name: "qemu-img",
    package: "qemu-utils",
};

/// The output of a run that exited 0.
pub(crate) struct Ran {
    pub stdout: String,
    pub stderr: String,
}

impl Tool {
    /// The tool's path: PATH first, then the sbin directories that a
    /// non-root PATH often lacks (mke2fs lives in /usr/sbin).
    pub fn locate(&self) -> Result<PathBuf, DiskError> {
        let path = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path)
            .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
            .map(|d| d.join(self.name))
            .find(|p| p.is_file())
            .ok_or(DiskError::MissingTool {
                tool: self.name,
                package: self.package,
            })
    }

    /// A command with a cleared environment: only PATH, `LC_ALL=C`, `TZ=UTC`
    /// and the times `epoch` gives. mtools stamps files with
    /// SOURCE_DATE_EPOCH, e2fsprogs uses E2FSPROGS_FAKE_TIME as "now".
    pub fn command(&self, epoch: i64) -> Result<Command, DiskError> {
        let mut cmd = Command::new(self.locate()?);
        kiln_deb::child::die_with_parent(&mut cmd);
        cmd.env_clear()
            .env(
                "PATH",
                std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into()),
            )
            .env("LC_ALL", "C")
            .env("TZ", "UTC")
            .env("SOURCE_DATE_EPOCH", epoch.to_string())
            .env("E2FSPROGS_FAKE_TIME", epoch.to_string())
            // Neither ~/.mtoolsrc nor a user's e2fsprogs settings apply.
            .env("MTOOLSRC", "/dev/null")
            .env("MKE2FS_CONFIG", "/dev/null")
            .stdin(Stdio::null());
        Ok(cmd)
    }

    /// Runs `cmd` (from [`Tool::command`]) to completion; a non-zero exit
    /// is an error about `about`, carrying what the tool said.
    pub fn run(&self, cmd: &mut Command, about: &Path) -> Result<Ran, DiskError> {
        let out = cmd
            .output()
            .map_err(|e| DiskError::io_at(about, self.name, e))?;
        let ran = Ran {
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        if !out.status.success() {
            return Err(self.failed(about, &out.status.to_string(), &ran));
        }
        Ok(ran)
    }

    pub fn failed(&self, about: &Path, status: &str, ran: &Ran) -> DiskError {
        DiskError::ToolFailed {
            tool: self.name,
            path: about.to_path_buf(),
            status: status.to_string(),
            output: tail(&format!("{}{}", ran.stdout, ran.stderr), 40),
        }
    }

    /// Shorthand: a command with `args`, run.
    pub fn run_args<I, S>(&self, epoch: i64, args: I, about: &Path) -> Result<Ran, DiskError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = self.command(epoch)?;
        cmd.args(args);
        self.run(&mut cmd, about)
    }
}

/// What each tool that writes disk bytes says its version is, found where
/// [`Tool::locate`] finds it for the build itself: the disk stage's cache
/// key holds this, so an upgraded tool never serves a disk an older one
/// made, and a tool the build would use is never keyed as missing.
pub fn versions() -> String {
    let mut out = String::new();
    for (tool, arg) in [
        (MKE2FS, "-V"),
        (MFORMAT, "--version"),
        (QEMU_IMG, "--version"),
    ] {
        let said = tool
            .command(0)
            .ok()
            .and_then(|mut cmd| cmd.arg(arg).output().ok())
            .map(|o| {
                let text = [o.stdout, o.stderr].concat();
                String::from_utf8_lossy(&text)
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_string()
            })
            .filter(|line| !line.is_empty());
        out.push_str(&format!(
            "{}: {}\n",
            tool.name,
            said.as_deref().unwrap_or("missing")
        ));
    }
    out
}

/// The last `n` lines: enough to see why a tool failed, not a whole log.
pub(crate) fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_versions_name_what_the_build_would_run() {
        // mke2fs lives in /usr/sbin: found there even with a PATH without it
        // (the disk stage's key once said "missing" for a tool it then ran).
        // SAFETY: nextest runs each test in its own process.
        unsafe { std::env::set_var("PATH", "/usr/bin:/bin") };
        let v = versions();
        let mke2fs = v.lines().find(|l| l.starts_with("mke2fs: ")).unwrap();
        assert!(mke2fs.contains("mke2fs 1."), "{v}");
        assert_eq!(v.lines().count(), 3, "{v}");
    }

    #[test]
    fn a_missing_tool_names_its_package() {
        let t = Tool {
            name: "kiln-no-such-tool",
            package: "kiln-pkg",
        };
        let e = t.locate().unwrap_err().to_string();
        assert!(
            e.contains("kiln-no-such-tool") && e.contains("`kiln-pkg`"),
            "{e}"
        );
    }
}
