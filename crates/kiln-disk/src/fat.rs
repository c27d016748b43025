//! The EFI system partition: FAT32 made with mtools into a file, never
//! mounted. mtools stamps every entry with SOURCE_DATE_EPOCH (kiln never
//! passes `-m`, which would copy the host files' times) and takes the volume
//! serial from `-N`, so its output is a function of its inputs.

use std::path::{Path, PathBuf};

use crate::error::DiskError;
use crate::ids::FatSerial;
use crate::tool::{MCOPY, MFORMAT, MMD};

/// 2 KiB clusters: for 256 MiB that is ~130k clusters, well inside FAT32's
/// range, and pinned so a newer mformat's heuristics cannot change it.
const SECTORS_PER_CLUSTER: &str = "4";

pub(crate) struct Fat<'a> {
    pub size: u64,
    pub serial: FatSerial,
    pub label: &'a str,
    /// The partition's first sector, recorded in the boot sector.
    pub hidden_sectors: u64,
    pub epoch: i64,
    /// Directories to make, parents first (`EFI`, `EFI/BOOT`).
    pub dirs: &'a [&'a str],
    /// `(path on the ESP, file to copy)`.
    pub files: &'a [(String, PathBuf)],
}

impl Fat<'_> {
    pub fn make(&self, out: &Path) -> Result<(), DiskError> {
        let file = fs_err::File::create(out)?;
        file.set_len(self.size)?;
        drop(file);
        let total = (self.size / 512).to_string();
        MFORMAT.run_args(
            self.epoch,
            [
                "-i".as_ref(),
                out.as_os_str(),
                "-F".as_ref(),
                "-T".as_ref(),
                total.as_ref(),
                "-c".as_ref(),
                SECTORS_PER_CLUSTER.as_ref(),
                "-H".as_ref(),
                self.hidden_sectors.to_string().as_ref(),
                "-N".as_ref(),
                self.serial.hex().as_ref(),
                "-v".as_ref(),
                self.label.as_ref(),
                "::".as_ref(),
            ],
            out,
        )?;
        if !self.dirs.is_empty() {
            let mut cmd = MMD.command(self.epoch)?;
            cmd.arg("-i").arg(out);
            cmd.args(self.dirs.iter().map(|d| format!("::/{d}")));
            MMD.run(&mut cmd, out)?;
        }
        for (dest, src) in self.files {
            let mut cmd = MCOPY.command(self.epoch)?;
            // -D o: overwrite rather than ask (there is no one to ask).
            cmd.args(["-D", "o", "-i"])
                .arg(out)
                .arg(src)
                .arg(format!("::/{dest}"));
            let o = cmd
                .output()
                .map_err(|e| DiskError::io_at(out, MCOPY.name, e))?;
            if !o.status.success() {
                let said = format!(
                    "{}{}",
                    String::from_utf8_lossy(&o.stdout),
                    String::from_utf8_lossy(&o.stderr)
                );
                if said.contains("Disk full") || said.contains("No free") {
                    return Err(DiskError::EspFull {
                        path: src.clone(),
                        size: self.size,
                        output: crate::tool::tail(&said, 10),
                    });
                }
                return Err(DiskError::ToolFailed {
                    tool: MCOPY.name,
                    path: src.clone(),
                    status: o.status.to_string(),
                    output: crate::tool::tail(&said, 40),
                });
            }
        }
        Ok(())
    }
}
