//! Package URLs for Debian packages, as SBOM and provenance tools match them.

/// `pkg:deb/debian/<name>@<version>?arch=<arch>&distro=<distro>`, with each
/// part percent-encoded as the purl specification asks: an epoch's `:` is
/// `%3A` and `+` is `%2B`, while `~` and `.` stay.
pub fn purl(name: &str, version: &str, arch: &str, distro: &str) -> String {
    purl_from("debian", name, version, arch, distro)
}

/// As [`purl`], for a package of another vendor (the purl's namespace):
/// a third-party repository's name, or `local`.
pub fn purl_from(vendor: &str, name: &str, version: &str, arch: &str, distro: &str) -> String {
    format!(
        "pkg:deb/{}/{}@{}?arch={}&distro={}",
        encode(vendor),
        encode(name),
        encode(version),
        encode(arch),
        encode(distro)
    )
}

/// Everything but RFC 3986's unreserved characters is encoded; that is the
/// one form every purl parser reads back unchanged.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::purl;

    #[test]
    fn versions_are_percent_encoded() {
        assert_eq!(
            purl("libc6", "2.36-9+deb12u4", "amd64", "debian-12"),
            "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12"
        );
        assert_eq!(
            purl("libstdc++6", "1:12.2.0~rc1-14", "arm64", "debian-12"),
            "pkg:deb/debian/libstdc%2B%2B6@1%3A12.2.0~rc1-14?arch=arm64&distro=debian-12"
        );
    }
}
