//! The seed disk: a small FAT filesystem labelled `CIDATA` (the NoCloud
//! convention), attached read-only as a second virtio disk.
//!
//! ```text
//! meta-data        instance-id, so an image with cloud-init accepts it
//! user-data        "#cloud-config" and nothing else
//! kiln/env         the runtime configuration, byte for byte      (kiln-runtime)
//! kiln/env-path    where the guest writes it: [runtime].env_file (kiln-runtime)
//! kiln/checks      "INDEX TIMEOUT_SECS BASE64(COMMAND)" lines    (kiln-check)
//! kiln/runs        how many boots to check: 1, or 2 to reboot    (kiln-check)
//! ```
//!
//! Built with mtools, so no mount and no root is needed.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::VmError;
use crate::qemu::{find_program, run_quiet};

pub const LABEL: &str = "CIDATA";

/// One file on the seed: a path relative to its root, and its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedFile {
    pub path: String,
    pub contents: Vec<u8>,
}

impl SeedFile {
    pub fn new(path: &str, contents: impl Into<Vec<u8>>) -> SeedFile {
        SeedFile {
            path: path.to_string(),
            contents: contents.into(),
        }
    }
}

/// Writes a FAT image holding `files` (plus `meta-data` and `user-data`) to `out`.
pub fn write(out: &Path, instance_id: &str, files: &[SeedFile]) -> Result<(), VmError> {
    let mformat = find_program("mformat", "mtools")?;
    let mmd = find_program("mmd", "mtools")?;
    let mcopy = find_program("mcopy", "mtools")?;

    let mut all = vec![
        SeedFile::new("meta-data", format!("instance-id: {instance_id}\n")),
        SeedFile::new("user-data", "#cloud-config\n"),
    ];
    all.extend_from_slice(files);

    // Twice the payload and 1 MiB of room; 2 heads × 32 sectors a track.
    let payload: u64 = all.iter().map(|f| f.contents.len() as u64).sum();
    let sectors = (payload * 2 / 512 + 2048).div_ceil(64) * 64;
    let _ = fs_err::remove_file(out);
    run_quiet(
        mtools(&mformat, out)
            .args([
                "-C",
                "-T",
                &sectors.to_string(),
                "-h",
                "2",
                "-s",
                "32",
                "-v",
                LABEL,
            ])
            .arg("::"),
        "mformat",
    )?;

    // Stage each file on the host, then copy it in; directories first.
    let staging = out.with_extension("staging");
    let _ = fs_err::remove_dir_all(&staging);
    fs_err::create_dir_all(&staging)?;
    let mut made: Vec<String> = Vec::new();
    for (i, file) in all.iter().enumerate() {
        let mut parent = String::new();
        let parts: Vec<&str> = file.path.split('/').collect();
        for dir in &parts[..parts.len() - 1] {
            parent = if parent.is_empty() {
                dir.to_string()
            } else {
                format!("{parent}/{dir}")
            };
            if !made.contains(&parent) {
                run_quiet(mtools(&mmd, out).arg(format!("::/{parent}")), "mmd")?;
                made.push(parent.clone());
            }
        }
        let local = staging.join(i.to_string());
        fs_err::write(&local, &file.contents)?;
        run_quiet(
            mtools(&mcopy, out)
                .arg(&local)
                .arg(format!("::/{}", file.path)),
            "mcopy",
        )?;
    }
    fs_err::remove_dir_all(&staging)?;
    Ok(())
}

/// An mtools command on image `img`, without reading the user's `~/.mtoolsrc`
/// geometry checks.
fn mtools(program: &PathBuf, img: &Path) -> Command {
    let mut cmd = Command::new(program);
    cmd.env("MTOOLS_SKIP_CHECK", "1").arg("-i").arg(img);
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mtools_out(program: &str, img: &Path, args: &[&str]) -> String {
        let out = Command::new(program)
            .env("MTOOLS_SKIP_CHECK", "1")
            .arg("-i")
            .arg(img)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{program}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    #[test]
    fn the_seed_reads_back_with_mtools() {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("seed.img");
        let env = b"DATABASE_URL=postgres://x\nMODE=\"a b\"\n".to_vec();
        write(
            &img,
            "kiln-test",
            &[
                SeedFile::new("kiln/env", env.clone()),
                SeedFile::new("kiln/env-path", "/etc/default/web"),
                SeedFile::new("kiln/runs", "2\n"),
            ],
        )
        .unwrap();

        let label = mtools_out("mlabel", &img, &["-s", "::"]);
        assert!(label.contains("Volume label is CIDATA"), "{label}");
        let root = mtools_out("mdir", &img, &["-b", "::/"]);
        assert!(
            root.contains("::/meta-data") && root.contains("::/user-data"),
            "{root}"
        );
        let listing = mtools_out("mdir", &img, &["-b", "::/kiln"]);
        let mut names: Vec<&str> = listing.lines().collect();
        names.sort();
        assert_eq!(names, ["::/kiln/env", "::/kiln/env-path", "::/kiln/runs"]);
        assert_eq!(mtools_out("mtype", &img, &["::/kiln/env"]).as_bytes(), env);
        assert_eq!(
            mtools_out("mtype", &img, &["::/kiln/env-path"]),
            "/etc/default/web"
        );
        assert_eq!(
            mtools_out("mtype", &img, &["::/meta-data"]),
            "instance-id: kiln-test\n"
        );
        assert!(!dir.path().join("seed.staging").exists());
    }

    #[test]
    fn a_large_payload_gets_a_large_enough_filesystem() {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("seed.img");
        let big = vec![b'x'; 3 * 1024 * 1024];
        write(&img, "i", &[SeedFile::new("kiln/env", big.clone())]).unwrap();
        assert_eq!(mtools_out("mtype", &img, &["::/kiln/env"]).len(), big.len());
    }
}
