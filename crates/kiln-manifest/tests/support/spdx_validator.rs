//! The SPDX project's own validator, `pyspdxtools`, for tests here and in
//! the kiln crate (included there by `#[path]`): a venv under the target
//! directory, made once from the Python package registry.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Pinned, so a new release of the validator cannot fail an unchanged kiln.
const SPDX_TOOLS: &str = "spdx-tools==0.8.5";

/// `pyspdxtools` in a venv under the target directory, made on first use.
/// A lock serialises test processes that get here together; a marker file
/// tells a finished venv from one an interrupted run left half made.
pub fn validator() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    std::fs::create_dir_all(tmp).unwrap();
    let venv = tmp.join("spdx-venv");
    let tool = venv.join("bin/pyspdxtools");
    let ready = venv.join(format!(".kiln-ready-{SPDX_TOOLS}"));
    let lock = File::create(tmp.join("spdx-venv.lock")).unwrap();
    // SAFETY: a valid open file descriptor.
    assert_eq!(unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) }, 0);
    if ready.is_file() && tool.is_file() {
        return tool;
    }
    if venv.exists() {
        std::fs::remove_dir_all(&venv).unwrap();
    }
    run(Command::new("python3").args(["-m", "venv"]).arg(&venv));
    run(Command::new(venv.join("bin/pip")).args([
        "install",
        "--quiet",
        "--disable-pip-version-check",
        SPDX_TOOLS,
    ]));
    std::fs::write(&ready, "").unwrap();
    tool
}

/// Runs `cmd`, fails the test unless it succeeds, and returns its stdout.
pub fn run(cmd: &mut Command) -> String {
    let shown = format!("{cmd:?}");
    let out = cmd.output().unwrap_or_else(|e| {
        panic!("{shown}: {e} (this test needs python3 and python3-venv installed)")
    });
    assert!(
        out.status.success(),
        "{shown} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs the validator on `path` and fails the test on any message.
#[allow(dead_code)]
pub fn validate(path: &Path) {
    let out = Command::new(validator())
        .arg("-i")
        .arg(path)
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "pyspdxtools rejected {}:\n{said}",
        path.display()
    );
    assert!(
        !said.to_lowercase().contains("invalid") && !said.contains("issues"),
        "pyspdxtools reported problems with {}:\n{said}",
        path.display()
    );
}
