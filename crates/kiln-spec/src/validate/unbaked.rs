//! Paths a `[[files]]` entry cannot usefully write: the image normalises
//! them (kiln-rootfs's `normalize` empties or rewrites each one, for
//! reproducibility and because they belong to each machine), or the
//! running system mounts over them. A file written there would be silently
//! lost, so the definition is refused with where the content belongs.

/// Why a destination cannot be baked, and what to do instead.
pub(super) struct Unbaked {
    pub why: &'static str,
    pub hint: &'static str,
}

const TMPFILES: &str = "create it at boot instead: a tmpfiles.d rule installed with [[files]] \
     (dst = \"/usr/lib/tmpfiles.d/NAME.conf\", e.g. `d /run/app 0755 root root -`), \
     or deliver its contents with [runtime]";

/// Directories whose contents are gone at boot (tmpfs) or emptied by the build.
const EMPTIED: &[(&str, &str)] = &[
    (
        "/run",
        "/run is a tmpfs at boot, so nothing baked under it survives",
    ),
    (
        "/var/run",
        "/var/run is /run, a tmpfs at boot, so nothing baked under it survives",
    ),
    (
        "/tmp",
        "/tmp is emptied in every image (and is often a tmpfs at boot)",
    ),
    (
        "/var/tmp",
        "/var/tmp is emptied in every image: it holds the build's scratch files",
    ),
];

/// Files that identify one machine, made on its first boot or at run time.
const PER_MACHINE: &[(&str, Unbaked)] = &[
    (
        "/etc/machine-id",
        Unbaked {
            why: "the machine id is made on each machine's first boot: the image ships it empty",
            hint: "leave it to systemd; a machine needing a fixed id gets it at boot \
                   (systemd.machine_id= on the kernel command line, or cloud-init)",
        },
    ),
    (
        "/var/lib/dbus/machine-id",
        Unbaked {
            why: "the machine id is made on each machine's first boot; dbus reads /etc/machine-id",
            hint: "leave it to systemd: every machine makes its own",
        },
    ),
    (
        "/etc/hostname",
        Unbaked {
            why: "the host name is each machine's own: the image ships `localhost`",
            hint: "name machines at boot: cloud-init, DHCP, or `hostnamectl` from [runtime]",
        },
    ),
    (
        "/etc/resolv.conf",
        Unbaked {
            why: "resolv.conf describes the network a machine boots into, so the image carries none",
            hint: "configure DNS at boot (DHCP, systemd-resolved, cloud-init); to fix resolvers \
                   for every machine, install systemd-resolved and ship \
                   /etc/systemd/resolved.conf.d/NAME.conf",
        },
    ),
    (
        "/var/lib/systemd/random-seed",
        Unbaked {
            why: "a random seed shared by every machine is no seed: each machine makes its own",
            hint: "leave it to systemd-random-seed.service",
        },
    ),
    (
        "/var/lib/systemd/credential.secret",
        Unbaked {
            why: "the credential secret is each machine's own",
            hint: "leave it to systemd, which makes it on first use",
        },
    ),
];

const SSH_HOST_KEY: Unbaked = Unbaked {
    why: "SSH host keys are made on each machine's first boot: a key baked into an image \
          is shared by every machine made from it",
    hint: "leave them to kiln's first-boot unit or cloud-init; to give a machine a known \
           key, deliver it at boot (cloud-init `ssh_keys`, or [runtime])",
};

/// `Some` when `dst` (absolute, in plain form) is a path the image cannot keep.
pub(super) fn check(dst: &str) -> Option<Unbaked> {
    for (dir, why) in EMPTIED {
        let inside = dst
            .strip_prefix(dir)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'));
        if inside {
            return Some(Unbaked {
                why,
                hint: TMPFILES,
            });
        }
    }
    if let Some((_, u)) = PER_MACHINE.iter().find(|(p, _)| *p == dst) {
        return Some(Unbaked {
            why: u.why,
            hint: u.hint,
        });
    }
    let key = dst
        .strip_prefix("/etc/ssh/ssh_host_")
        .is_some_and(|rest| !rest.contains('/'));
    key.then_some(SSH_HOST_KEY)
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn what_the_image_normalises_is_refused() {
        for dst in [
            "/run/app.pid",
            "/run",
            "/var/run/app/x",
            "/tmp/seed",
            "/var/tmp/x",
            "/etc/machine-id",
            "/var/lib/dbus/machine-id",
            "/etc/hostname",
            "/etc/resolv.conf",
            "/etc/ssh/ssh_host_ed25519_key",
            "/etc/ssh/ssh_host_rsa_key.pub",
            "/var/lib/systemd/random-seed",
        ] {
            assert!(check(dst).is_some(), "{dst}");
        }
    }

    #[test]
    fn neighbours_are_allowed() {
        for dst in [
            "/runner/x",
            "/etc/tmpfiles.d/app.conf",
            "/usr/lib/tmpfiles.d/app.conf",
            "/tmpx",
            "/etc/hostname.d/x",
            "/etc/ssh/sshd_config.d/kiln.conf",
            "/etc/ssh/ssh_known_hosts",
            "/etc/machine-info",
        ] {
            assert!(check(dst).is_none(), "{dst}");
        }
    }
}
