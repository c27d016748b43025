//! kiln's own failures to run a machine: exit 2. A check that fails is not
//! one of these; it is a [`crate::CheckFailure`].

use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

use crate::console::ConsoleTail;

#[derive(Debug, thiserror::Error)]
pub enum VmError {
    #[error("{program} was not found on PATH\nhint: install it with `apt-get install {package}`")]
    MissingTool {
        program: &'static str,
        package: &'static str,
    },

    #[error("the UEFI firmware {} is missing\nhint: install it with `apt-get install ovmf`", path.display())]
    MissingFirmware { path: PathBuf },

    #[error(
        "KILN_ACCEL={value:?} is not an accelerator\nhint: set it to auto, kvm or tcg, or unset it"
    )]
    BadAccelEnv { value: String },

    #[error(
        "KVM was asked for, but {reason}\nhint: use --accel tcg (slower), or --accel auto to fall back by itself"
    )]
    KvmUnavailable { reason: String },

    #[error("disk image {}: {reason}", path.display())]
    Image { path: PathBuf, reason: String },

    /// An I/O error from `fs-err`, which names the path.
    #[error(transparent)]
    Io(#[from] std::io::Error),

    #[error("{what} {}: {source}", path.display())]
    Path {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("could not start {program}: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },

    #[error("{program} failed ({status}){}", stderr_suffix(stderr))]
    Command {
        program: String,
        status: ExitStatus,
        stderr: String,
    },

    /// The machine did not get far enough to judge: it never booted, QEMU
    /// died, or the guest agent never answered.
    #[error("could not run the image: {reason}\n{console}")]
    CouldNotRun {
        reason: String,
        console: ConsoleTail,
    },

    #[error("the guest agent sent an unreadable message {line:?}: {reason}\n{console}")]
    Protocol {
        line: String,
        reason: String,
        console: ConsoleTail,
    },

    #[error("the guest agent could not run the checks: {message}\n{console}")]
    Agent {
        message: String,
        console: ConsoleTail,
    },
}

fn stderr_suffix(stderr: &str) -> String {
    let stderr = stderr.trim();
    if stderr.is_empty() {
        String::new()
    } else {
        format!(": {stderr}")
    }
}

pub(crate) fn timed_out(what: &str, after: Duration, console: ConsoleTail) -> VmError {
    VmError::CouldNotRun {
        reason: format!("{what} within {}s", after.as_secs()),
        console,
    }
}
