//! The starter definition `kiln init` writes.

/// A commented, valid `kiln.toml` for an image called `name`.
///
/// `name` is usually the directory name, so it is made into a valid image
/// name (lowercase letters, digits and `-`; `image` if nothing is left).
pub fn template(name: &str) -> String {
    TEMPLATE.replace("{name}", &image_name(name))
}

fn image_name(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let out: String = out.trim_matches('-').chars().take(63).collect();
    let out = out.trim_end_matches('-');
    if out.is_empty() {
        "image".to_owned()
    } else {
        out.to_owned()
    }
}

const TEMPLATE: &str = r#"# kiln.toml: what this image is. `kiln lock` pins it, `kiln build` bakes it,
# `kiln test` boots it and runs the checks below.

[image]
name = "{name}"
version = "0.1.0"

[base]
distro = "debian"
suite = "trixie"            # or "bookworm"
variant = "minbase"         # essential | apt | minbase | important | standard
# from = "../base"          # instead of distro/suite: build on another image

# A third-party apt repository, verified with its own key (beside this file).
# [[repository]]
# name = "vendor"
# uri = "https://apt.example.com/debian"
# suite = "stable"
# signed-by = "keys/vendor.asc"
# pin = ["vendor-agent"]    # optional: only these packages may come from it

[packages]
install = ["ca-certificates"]
# install = ["nginx-light=1.26.3-3+deb13u1"]   # pin an exact version
recommends = false
# local = ["dist/app_1.4.2_amd64.deb"]         # your own .deb files, beside this one

# Files copied into the image; `src` is relative to this file.
# [[files]]
# src = "files/motd"
# dst = "/etc/motd"
# mode = "0644"
# owner = "root:root"

# [[users]]
# name = "app"
# system = true

# Run at build time, inside the image.
# [[run]]
# script = "scripts/setup.sh"

# [services]
# enable = ["nginx.service"]

# Delivered at boot (cloud-init, metadata), never baked into the image.
# [runtime]
# env_file = "/etc/default/{name}"
# required = ["DATABASE_URL"]

# A kernel makes the image bootable: the lock adds it, its boot loader and
# an init system, each with reason "disk". SSH host keys and the machine id
# are made on each machine's first boot, never baked.
[disk]
size = "2G"
kernel = "linux-image-cloud-amd64"
# bootloader = "systemd-boot"   # the default
# init = "systemd-sysv"         # the default
# initramfs = "minimal"         # the default; "full" keeps Debian's (every driver)

[outputs]
formats = ["oci", "tar", "raw", "qcow2"]   # also: vmdk, vhd

# Run in the booted machine by `kiln test`.
[[check]]
unit = "multi-user.target"  # must be active

# [[check]]
# name = "nginx answers"
# run = "curl -fsS http://127.0.0.1/"
"#;

#[cfg(test)]
mod tests {
    use super::image_name;

    #[test]
    fn names_are_made_valid() {
        assert_eq!(image_name("web"), "web");
        assert_eq!(image_name("My Web_App"), "my-web-app");
        assert_eq!(image_name("--"), "image");
        assert_eq!(image_name(""), "image");
        assert_eq!(image_name(&"a".repeat(80)).len(), 63);
    }
}
