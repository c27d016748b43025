//! What the stages need from the lock, checked before any work: for a disk,
//! a kernel, the boot loader and an init system somewhere in the image's
//! chain; for `[services]`, systemctl; for `[[users]]`, useradd. Missing,
//! a stage would fail only after the root filesystem's packages were in.

use std::collections::BTreeSet;

use kiln_lock::Lock;
use kiln_spec::{Architecture, Format};

use crate::chain::{Chain, LOCKFILE};
use crate::error::Error;

/// Fails when the leaf's definition, or `formats`, asks for what the
/// chain's locks (the leaf's being `leaf`) do not install.
pub(crate) fn check(chain: &Chain, leaf: &Lock, formats: &[Format]) -> Result<(), Error> {
    let locked: BTreeSet<&str> = chain
        .ancestors
        .iter()
        .flat_map(|a| &a.lock.packages)
        .chain(&leaf.packages)
        .map(|p| p.name.as_str())
        .collect();
    let def = &chain.def;
    let tools = [
        (
            !def.services.enable.is_empty() || !def.services.disable.is_empty(),
            "[services]",
            "systemd",
            "systemd-sysv",
        ),
        (!def.users.is_empty(), "[[users]]", "passwd", "passwd"),
    ];
    for (wanted, section, package, install) in tools {
        if wanted && !locked.contains(package) {
            return Err(Error::SectionNeeds {
                image: def.image.name.clone(),
                section,
                package,
                install,
            });
        }
    }
    disk(chain, &locked, formats)
}

/// Maintainer scripts run natively while the root filesystem is assembled,
/// so kiln builds only for the machine it runs on (amd64). The definition
/// may still name another, and lock it: it is a value, refused here first.
pub(crate) fn architecture(chain: &Chain) -> Result<(), Error> {
    let arch = chain.distro().architecture;
    if arch == Architecture::Amd64 {
        return Ok(());
    }
    let base = chain.ancestors.last().map(|a| &a.def).unwrap_or(&chain.def);
    Err(Error::ArchitectureNotBuilt {
        arch,
        definition: base.path.clone(),
    })
}

/// A disk in `formats` must be bootable from what the chain installs.
fn disk(chain: &Chain, locked: &BTreeSet<&str>, formats: &[Format]) -> Result<(), Error> {
    let Some(disk) = formats.iter().find(|f| f.is_disk()) else {
        return Ok(());
    };
    // The nearest image that names a kernel decides what the disk boots.
    let owner = std::iter::once(&chain.def)
        .chain(chain.ancestors.iter().map(|a| &a.def))
        .find(|d| d.disk.kernel.is_some());
    let Some(owner) = owner else {
        let base = chain.ancestors.last().map(|a| &a.def).unwrap_or(&chain.def);
        return Err(Error::DiskWithoutKernel {
            image: chain.def.image.name.clone(),
            format: disk.to_string(),
            base: base.path.clone(),
            arch: chain.distro().architecture,
        });
    };
    let missing: Vec<String> = owner
        .disk
        .implied_packages()
        .into_iter()
        .filter(|p| !locked.contains(p))
        .map(str::to_owned)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(Error::DiskNeeds {
        image: chain.def.image.name.clone(),
        format: disk.to_string(),
        lockfile: owner.dir.join(LOCKFILE),
        missing,
    })
}
