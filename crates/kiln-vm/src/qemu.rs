//! The host programs and firmware kiln drives, the overlay that keeps the
//! artefact untouched, and the QEMU command line.

use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use kiln_deb::child::die_with_parent;

use crate::accel::Accelerator;
use crate::error::VmError;

pub const QEMU: &str = "qemu-system-x86_64";
pub const QEMU_IMG: &str = "qemu-img";
pub const OVMF_CODE: &str = "/usr/share/OVMF/OVMF_CODE_4M.fd";
pub const OVMF_VARS: &str = "/usr/share/OVMF/OVMF_VARS_4M.fd";

/// A program on `PATH`, or the error that names the Debian package to install.
pub fn find_program(program: &'static str, package: &'static str) -> Result<PathBuf, VmError> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
        .ok_or(VmError::MissingTool { program, package })
}

/// The UEFI firmware a machine boots with: OVMF's code, mapped read-only,
/// and the template of its variable store, copied for each machine so every
/// boot starts as a new machine's first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Firmware {
    pub code: PathBuf,
    pub vars: PathBuf,
    /// Where it came from, as reports name it: `host` for this machine's
    /// `ovmf` package, or the package and release it was read from.
    pub source: String,
}

impl Firmware {
    /// This machine's OVMF (Debian's `ovmf` package).
    pub fn host() -> Result<Firmware, VmError> {
        let file = |p: &str| {
            let path = PathBuf::from(p);
            if path.is_file() {
                Ok(path)
            } else {
                Err(VmError::MissingFirmware { path })
            }
        };
        Ok(Firmware {
            code: file(OVMF_CODE)?,
            vars: file(OVMF_VARS)?,
            source: "host".into(),
        })
    }
}

/// QEMU and the firmware, found once per machine.
#[derive(Debug, Clone)]
pub struct Tools {
    pub qemu: PathBuf,
    pub qemu_img: PathBuf,
    pub firmware: Firmware,
}

impl Tools {
    /// QEMU from `PATH`, and `firmware`, or this machine's when `None`.
    pub fn find(firmware: Option<&Firmware>) -> Result<Tools, VmError> {
        let qemu = find_program(QEMU, "qemu-system-x86")?;
        let qemu_img = find_program(QEMU_IMG, "qemu-utils")?;
        let firmware = match firmware {
            Some(f) => f.clone(),
            None => Firmware::host()?,
        };
        Ok(Tools {
            qemu,
            qemu_img,
            firmware,
        })
    }

    /// A private, writable copy of the firmware's variable store.
    pub fn vars_copy(&self, dir: &Path) -> Result<PathBuf, VmError> {
        let vars = dir.join("OVMF_VARS.fd");
        fs_err::copy(&self.firmware.vars, &vars)?;
        Ok(vars)
    }
}

/// A disk image's format, as QEMU names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskFormat {
    Raw,
    Qcow2,
}

impl DiskFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            DiskFormat::Raw => "raw",
            DiskFormat::Qcow2 => "qcow2",
        }
    }

    /// Reads the magic number; anything that is not qcow2 is taken as raw.
    pub fn detect(image: &Path) -> Result<DiskFormat, VmError> {
        let mut file = fs_err::File::open(image)?;
        let meta = file.metadata()?;
        if !meta.is_file() {
            return Err(VmError::Image {
                path: image.to_path_buf(),
                reason: "not a regular file".into(),
            });
        }
        if meta.len() < 512 {
            return Err(VmError::Image {
                path: image.to_path_buf(),
                reason: format!("{} bytes is too small to be a disk", meta.len()),
            });
        }
        let mut magic = [0u8; 4];
        file.read_exact(&mut magic)?;
        Ok(if &magic == b"QFI\xfb" {
            DiskFormat::Qcow2
        } else {
            DiskFormat::Raw
        })
    }
}

/// Creates `dir/overlay.qcow2` backed by `image`: every write of the guest
/// lands in the overlay, and the image is only ever opened read-only.
pub fn create_overlay(tools: &Tools, image: &Path, dir: &Path) -> Result<PathBuf, VmError> {
    let format = DiskFormat::detect(image)?;
    let backing = fs_err::canonicalize(image)?;
    let overlay = dir.join("overlay.qcow2");
    let mut cmd = Command::new(&tools.qemu_img);
    cmd.arg("create")
        .arg("-q")
        .args(["-f", "qcow2", "-F", format.as_str()])
        .arg("-b")
        .arg(&backing)
        .arg(&overlay);
    run_quiet(&mut cmd, QEMU_IMG)?;
    Ok(overlay)
}

/// Runs a short helper to completion, turning a failure into an error that
/// carries its stderr.
pub fn run_quiet(cmd: &mut Command, program: &str) -> Result<(), VmError> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|source| VmError::Spawn {
            program: program.to_string(),
            source,
        })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(VmError::Command {
            program: program.to_string(),
            status: out.status,
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }
}

/// A path inside a QEMU `key=value,…` option: commas are doubled.
fn opt_path(path: &Path) -> String {
    path.display().to_string().replace(',', ",,")
}

/// Where the serial console goes.
pub enum Serial<'a> {
    /// Appended to a file.
    File(&'a Path),
    /// The terminal, multiplexed with the QEMU monitor (Ctrl-a x quits).
    Stdio,
}

/// A kernel QEMU loads itself (`-kernel`), with no UEFI firmware and no
/// boot loader: the floor a disk's boot is measured against (`bench/launch`).
#[derive(Debug, Clone)]
pub struct DirectKernel {
    pub kernel: PathBuf,
    pub initrd: Option<PathBuf>,
    /// The kernel command line, `root=` included.
    pub append: String,
}

/// What to put in the machine besides firmware and the boot disk.
pub struct Machine<'a> {
    pub accel: Accelerator,
    pub memory_mib: u32,
    pub cpus: u32,
    pub vars: &'a Path,
    /// The boot disk (an overlay, qcow2); none for the KVM probe.
    pub disk: Option<&'a Path>,
    /// User-mode networking with a virtio NIC.
    pub network: bool,
    pub seed: Option<&'a Path>,
    /// The Unix socket QEMU listens on for the check port.
    pub check_socket: Option<&'a Path>,
    pub serial: Serial<'a>,
    /// Boot this kernel directly instead of the disk through OVMF.
    pub direct: Option<&'a DirectKernel>,
}

/// A drive QEMU attaches to no bus of its own (`if=none`), given to the guest
/// as a virtio block device: `drive` and `device` are the rest of each option.
fn virtio_blk(a: &mut Vec<String>, drive: String, device: &str) {
    a.extend([
        "-drive".into(),
        format!("if=none,{drive}"),
        "-device".into(),
        format!("virtio-blk-pci,{device}"),
    ]);
}

/// The QEMU arguments for `machine`: q35, OVMF from pflash, virtio disks,
/// user-mode networking, no display.
pub fn args(tools: &Tools, m: &Machine<'_>) -> Vec<OsString> {
    let mut a: Vec<String> = vec![
        "-nodefaults".into(),
        "-no-user-config".into(),
        "-machine".into(),
        "q35".into(),
        "-accel".into(),
        m.accel.as_str().into(),
        "-cpu".into(),
        match m.accel {
            Accelerator::Kvm => "host".into(),
            Accelerator::Tcg => "max".into(),
        },
        "-m".into(),
        m.memory_mib.to_string(),
        "-smp".into(),
        m.cpus.to_string(),
        "-display".into(),
        "none".into(),
    ];
    match m.direct {
        None => a.extend([
            "-drive".into(),
            format!(
                "if=pflash,format=raw,unit=0,readonly=on,file={}",
                opt_path(&tools.firmware.code)
            ),
            "-drive".into(),
            format!("if=pflash,format=raw,unit=1,file={}", opt_path(m.vars)),
        ]),
        Some(d) => {
            a.extend(["-kernel".into(), d.kernel.display().to_string()]);
            if let Some(initrd) = &d.initrd {
                a.extend(["-initrd".into(), initrd.display().to_string()]);
            }
            a.extend(["-append".into(), d.append.clone()]);
        }
    }
    if let Some(disk) = m.disk {
        let drive = format!(
            "id=disk0,format=qcow2,discard=unmap,file={}",
            opt_path(disk)
        );
        virtio_blk(&mut a, drive, "drive=disk0,bootindex=1");
    }
    if m.network {
        // No option ROM: OVMF would load iPXE and offer network boot, which
        // costs seconds under TCG and boots nothing kiln makes.
        a.push("-netdev".into());
        a.push("user,id=net0".into());
        a.push("-device".into());
        a.push("virtio-net-pci,netdev=net0,romfile=".into());
    }
    if let Some(seed) = m.seed {
        let drive = format!("id=seed,format=raw,readonly=on,file={}", opt_path(seed));
        virtio_blk(&mut a, drive, "drive=seed");
    }
    if let Some(socket) = m.check_socket {
        a.push("-device".into());
        a.push("virtio-serial-pci".into());
        a.push("-chardev".into());
        a.push(format!(
            "socket,id=kc,path={},server=on,wait=off",
            opt_path(socket)
        ));
        a.push("-device".into());
        a.push(format!(
            "virtserialport,chardev=kc,name={}",
            crate::agent::AGENT_PORT
        ));
    }
    match m.serial {
        Serial::File(log) => {
            a.push("-chardev".into());
            a.push(format!("file,id=con,path={}", opt_path(log)));
            a.push("-serial".into());
            a.push("chardev:con".into());
        }
        Serial::Stdio => {
            a.push("-serial".into());
            a.push("mon:stdio".into());
        }
    }
    a.into_iter().map(OsString::from).collect()
}

/// A running QEMU that is killed when dropped, so no error path leaves a
/// machine behind.
pub struct Running {
    child: Child,
    stderr: PathBuf,
}

impl Running {
    /// Starts QEMU with stdin/stdout closed and stderr in `stderr`.
    pub fn spawn(tools: &Tools, args: &[OsString], stderr: &Path) -> Result<Running, VmError> {
        let err = fs_err::File::create(stderr)?;
        let child = die_with_parent(&mut Command::new(&tools.qemu))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err.into_parts().0)
            .spawn()
            .map_err(|source| VmError::Spawn {
                program: QEMU.into(),
                source,
            })?;
        Ok(Running {
            child,
            stderr: stderr.to_path_buf(),
        })
    }

    /// `Some(description)` once QEMU has exited.
    pub fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => {
                let stderr = fs_err::read_to_string(&self.stderr).unwrap_or_default();
                let stderr = stderr.trim();
                Some(if stderr.is_empty() {
                    format!("QEMU exited ({status})")
                } else {
                    format!("QEMU exited ({status}): {stderr}")
                })
            }
            Ok(None) => None,
            Err(e) => Some(format!("waiting for QEMU: {e}")),
        }
    }

    pub fn stop(mut self) {
        self.kill();
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machine<'a>(
        vars: &'a Path,
        disk: &'a Path,
        direct: Option<&'a DirectKernel>,
    ) -> Machine<'a> {
        Machine {
            accel: Accelerator::Tcg,
            memory_mib: 512,
            cpus: 1,
            vars,
            disk: Some(disk),
            network: true,
            seed: None,
            check_socket: None,
            serial: Serial::Stdio,
            direct,
        }
    }

    fn tools() -> Tools {
        Tools {
            qemu: "/q".into(),
            qemu_img: "/qi".into(),
            firmware: Firmware {
                code: "/code.fd".into(),
                vars: "/vars.fd".into(),
                source: "host".into(),
            },
        }
    }

    #[test]
    fn a_disk_boots_through_ovmf_with_nothing_to_probe() {
        let (vars, disk) = (Path::new("/v.fd"), Path::new("/d.qcow2"));
        let a: Vec<String> = args(&tools(), &machine(vars, disk, None))
            .into_iter()
            .map(|s| s.into_string().unwrap())
            .collect();
        let line = a.join(" ");
        assert!(line.starts_with("-nodefaults "), "{line}");
        assert!(line.contains("if=pflash,format=raw,unit=0,readonly=on,file=/code.fd"));
        assert!(line.contains("virtio-blk-pci,drive=disk0,bootindex=1"));
        assert!(
            line.contains("virtio-net-pci,netdev=net0,romfile= "),
            "{line}"
        );
        assert!(!a.iter().any(|x| x == "-kernel"), "{line}");
    }

    #[test]
    fn a_direct_kernel_replaces_the_firmware() {
        let (vars, disk) = (Path::new("/v.fd"), Path::new("/d.qcow2"));
        let direct = DirectKernel {
            kernel: "/b/vmlinuz".into(),
            initrd: Some("/b/initrd.img".into()),
            append: "root=/dev/vda2 ro".into(),
        };
        let a: Vec<String> = args(&tools(), &machine(vars, disk, Some(&direct)))
            .into_iter()
            .map(|s| s.into_string().unwrap())
            .collect();
        let line = a.join(" ");
        assert!(!line.contains("pflash"), "{line}");
        assert!(
            line.contains("-kernel /b/vmlinuz -initrd /b/initrd.img -append root=/dev/vda2 ro"),
            "{line}"
        );
    }

    #[test]
    fn commas_in_paths_are_doubled() {
        assert_eq!(opt_path(Path::new("/tmp/a,b/c")), "/tmp/a,,b/c");
    }

    #[test]
    fn qcow2_magic_is_detected_and_tiny_files_refused() {
        let dir = tempfile::tempdir().unwrap();
        let raw = dir.path().join("raw.img");
        fs_err::write(&raw, vec![0u8; 4096]).unwrap();
        assert_eq!(DiskFormat::detect(&raw).unwrap(), DiskFormat::Raw);
        let qcow = dir.path().join("q.qcow2");
        let mut bytes = b"QFI\xfb".to_vec();
        bytes.resize(4096, 0);
        fs_err::write(&qcow, bytes).unwrap();
        assert_eq!(DiskFormat::detect(&qcow).unwrap(), DiskFormat::Qcow2);
        let tiny = dir.path().join("tiny");
        fs_err::write(&tiny, b"x").unwrap();
        let err = DiskFormat::detect(&tiny).unwrap_err().to_string();
        assert!(err.contains("too small"), "{err}");
    }

    #[test]
    fn a_missing_program_names_its_package() {
        let err = find_program("kiln-no-such-program", "kiln-pkg").unwrap_err();
        assert_eq!(
            err.to_string(),
            "kiln-no-such-program was not found on PATH\nhint: install it with `apt-get install kiln-pkg`"
        );
    }
}
