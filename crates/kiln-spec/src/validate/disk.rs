//! `[disk]`

use crate::dom::{At, Result, Table};
use crate::error::ErrorKind;
use crate::model::{
    DEFAULT_BOOTLOADER, DEFAULT_DISK_SIZE, DEFAULT_INIT, Disk, Filesystem, Initramfs, MIB,
    MIN_DISK_SIZE,
};
use crate::names;
use crate::validate::{shape, word};

pub(super) const FIELDS: &[&str] = &[
    "size",
    "kernel",
    "bootloader",
    "init",
    "filesystem",
    "initramfs",
];

pub(super) fn validate(t: Option<&Table<'_>>) -> Result<Disk> {
    let Some(t) = t else {
        return Ok(Disk {
            size: DEFAULT_DISK_SIZE,
            kernel: None,
            bootloader: DEFAULT_BOOTLOADER.to_owned(),
            init: DEFAULT_INIT.to_owned(),
            filesystem: Filesystem::Ext4,
            initramfs: Initramfs::Minimal,
        });
    };
    t.deny_unknown(FIELDS)?;
    let ctx = t.ctx();
    let size = match t.string("size")? {
        Some(s) => size(t, &s)?,
        None => DEFAULT_DISK_SIZE,
    };
    let kernel = t.string("kernel")?;
    if let Some(k) = &kernel {
        shape(ctx, k, "package name", names::package_name)?;
    }
    let implied = |field: &str, default: &str| -> Result<String> {
        Ok(match t.string(field)? {
            Some(p) => {
                shape(ctx, &p, "package name", names::package_name)?;
                p.value.to_owned()
            }
            None => default.to_owned(),
        })
    };
    let bootloader = implied("bootloader", DEFAULT_BOOTLOADER)?;
    let init = implied("init", DEFAULT_INIT)?;
    let filesystem = match t.string("filesystem")? {
        Some(f) => word(
            ctx,
            &f,
            "filesystem",
            &Filesystem::words(),
            Filesystem::from_word,
        )?,
        None => Filesystem::Ext4,
    };
    let initramfs = match t.string("initramfs")? {
        // The kernel's package builds the initramfs: set anywhere else, the
        // choice would silently do nothing.
        Some(i) if kernel.is_none() => {
            return Err(i.error(
                ctx,
                ErrorKind::InvalidValue,
                format!("`{}` without `disk.kernel` does nothing", i.path),
                Some(
                    "the initramfs is built where the kernel is installed: set it in the [disk] that names `kernel`"
                        .to_owned(),
                ),
            ));
        }
        Some(i) => word(
            ctx,
            &i,
            "initramfs kind",
            &Initramfs::words(),
            Initramfs::from_word,
        )?,
        None => Initramfs::Minimal,
    };
    Ok(Disk {
        size,
        kernel: kernel.map(|k| k.value.to_owned()),
        bootloader,
        init,
        filesystem,
        initramfs,
    })
}

/// `"2G"`, `"512M"`, `"1536MiB"`: binary units, whole MiB, so partitions align.
fn size(t: &Table<'_>, s: &At<&str>) -> Result<u64> {
    let bytes = parse_size(s.value).map_err(|hint| {
        s.error(
            t.ctx(),
            ErrorKind::InvalidValue,
            format!("`{}`: `{}` is not a disk size", s.path, s.value),
            Some(hint),
        )
    })?;
    if bytes < MIN_DISK_SIZE {
        return Err(s.error(
            t.ctx(),
            ErrorKind::InvalidValue,
            format!("`{}`: {} is too small for a bootable disk", s.path, s.value),
            Some(format!(
                "the smallest size kiln builds is {}M",
                MIN_DISK_SIZE / MIB
            )),
        ));
    }
    Ok(bytes)
}

pub(crate) fn parse_size(text: &str) -> std::result::Result<u64, String> {
    const UNITS: &str = "write a whole number with a binary unit: `512M`, `2G`, `1T`";
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let shift = match unit {
        "K" | "KiB" => 10,
        "M" | "MiB" => 20,
        "G" | "GiB" => 30,
        "T" | "TiB" => 40,
        "" => return Err(format!("add a unit; {UNITS}")),
        u if u.starts_with('.') => {
            return Err(format!(
                "use a smaller unit instead of a fraction, e.g. `1536M` for 1.5G; {UNITS}"
            ));
        }
        u @ ("KB" | "MB" | "GB" | "TB" | "k" | "m" | "g" | "t") => {
            let unit = u[..1].to_ascii_uppercase();
            return Err(format!(
                "write `{number}{unit}`: sizes use binary units K, M, G and T (KiB, MiB, GiB, TiB)"
            ));
        }
        _ => return Err(UNITS.to_owned()),
    };
    let number: u64 = number.parse().map_err(|_| UNITS.to_owned())?;
    let bytes = number
        .checked_shl(shift)
        .filter(|b| b >> shift == number)
        .ok_or_else(|| "that is more than kiln can address".to_owned())?;
    if bytes % MIB != 0 {
        return Err("disk sizes are whole MiB; write it in `M`".to_owned());
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert_eq!(parse_size("512M"), Ok(512 << 20));
        assert_eq!(parse_size("1536MiB"), Ok(1536 << 20));
        assert_eq!(parse_size("1T"), Ok(1 << 40));
        assert_eq!(parse_size("2048K"), Ok(2 << 20));
        for bad in [
            "",
            "2",
            "1.5G",
            "2GB",
            "2g",
            "G",
            "-1G",
            "2X",
            "99999999999999T",
            "1K",
        ] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }
}
