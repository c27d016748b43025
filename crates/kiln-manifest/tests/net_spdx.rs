//! The SBOM checked by a real SPDX validator, the SPDX project's own
//! `pyspdxtools`, on this host's packages and licences: real copyright files
//! hold licence names no hand-written fixture thinks of.
//!
//! Needs the package registry for Python (once; the venv is kept under the
//! target directory) and `python3` with its venv module.

mod common;
#[path = "support/spdx_validator.rs"]
mod spdx_validator;

use std::path::{Path, PathBuf};
use std::process::Command;

use kiln_manifest::Manifest;
use kiln_manifest::spdx::{self, SbomInput};

/// Every Debian spelling the mapping table knows, so each SPDX id kiln can
/// emit is put before the validator at least once.
const NAMES: &[&str] = &[
    "GPL-1+",
    "GPL-2",
    "GPL-2+",
    "GPL-3",
    "GPL-3+",
    "GPL",
    "LGPL-2",
    "LGPL-2+",
    "LGPL-2.1",
    "LGPL-2.1+",
    "LGPL-3",
    "LGPL-3+",
    "LGPL",
    "AGPL-3",
    "AGPL-3+",
    "GFDL-1.1",
    "GFDL-1.2+",
    "GFDL-1.3",
    "GFDL-1.3+",
    "GFDL",
    "GFDL-NIV-1.2",
    "GFDL-NIV-1.3+",
    "Expat",
    "BSD-2-clause",
    "BSD-3-clause",
    "BSD-4-clause",
    "Artistic",
    "Artistic-2.0",
    "Perl",
    "Apache-2.0",
    "Python",
    "PSF-2",
    "CC0",
    "MPL-1.1",
    "MPL-2",
    "OpenLDAP-2.8",
    "Zlib",
    "ISC",
    "curl",
    "BSL-1.0",
    "public-domain",
    "other",
    "GPL-2+ with Autoconf exception",
    "GPL-3+ with Autoconf exception",
    "GPL-3+ with Bison exception",
    "GPL-2+ with Libtool exception",
    "GPL-2 with Linux-syscall-note exception",
    "Apache-2.0 with LLVM exception",
    "GPL-3+ with GCC-exception-3.1",
    "GPL-3+ with GCC-runtime-3.1 exception",
    "GPL-3+ with Bison-2.2 exception",
    "Artistic-1",
    "ISC License",
    "Apache-2.0 and/or Expat",
    "GPL-2+ with GCC exception",
    "GPL-2+ with Classpath exception",
    "GPL-2+ with Font exception",
    "GPL-2+ with OpenSSL exception",
];

#[test]
fn net_spdx_document_of_host_packages_is_valid() {
    let dir = tempfile::tempdir().unwrap();
    let (root, real) = if Path::new("/var/lib/dpkg/status").is_file() {
        (host_like_root(dir.path()), true)
    } else {
        (common::tree(dir.path()), false)
    };
    add_licence_zoo(&root);
    let mut m = Manifest::from_rootfs(&root).unwrap();
    if real {
        assert!(m.packages.len() > 50, "only {} packages", m.packages.len());
    }
    // Some packages with a .deb digest, as the build fills them in.
    for p in m.packages.iter_mut().step_by(3) {
        p.sha256 = Some(common::sha256(p.name.as_bytes()));
    }
    let doc = spdx::document(
        &m,
        &SbomInput {
            name: "host-like",
            version: "1.0.0",
            namespace: spdx::namespace(&common::sha256(b"net_spdx")),
            created: 1_700_000_000,
            tool: "kiln-0.1.0",
            distro: "debian-12",
        },
    );
    let file = dir.path().join("sbom.spdx.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();

    let tool = spdx_validator::validator();
    let out = Command::new(&tool).arg("-i").arg(&file).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let report = format!("{stdout}{stderr}");
    let kept = dir.keep().join("sbom.spdx.json");
    assert!(
        out.status.success(),
        "pyspdxtools rejected {} ({}):\n{report}",
        kept.display(),
        out.status
    );
    assert!(
        !report.to_lowercase().contains("invalid") && !report.contains("issues"),
        "pyspdxtools reported problems with {}:\n{report}",
        kept.display()
    );
    let _ = std::fs::remove_dir_all(kept.parent().unwrap());
}

/// The host's dpkg status and every copyright file, plus a few ordinary
/// files: real package data without copying the whole filesystem.
fn host_like_root(dir: &Path) -> PathBuf {
    let root = dir.join("root");
    common::write(
        &root.join("var/lib/dpkg/status"),
        &String::from_utf8_lossy(&std::fs::read("/var/lib/dpkg/status").unwrap()),
    );
    for entry in std::fs::read_dir("/usr/share/doc").unwrap() {
        let entry = entry.unwrap();
        // Read through the host's symlinks: the copy holds plain files.
        let Ok(text) = std::fs::read(entry.path().join("copyright")) else {
            continue;
        };
        let to = root
            .join("usr/share/doc")
            .join(entry.file_name())
            .join("copyright");
        common::mkdir(to.parent().unwrap());
        std::fs::write(to, text).unwrap();
    }
    for f in ["/etc/os-release", "/etc/debian_version", "/etc/hostname"] {
        if let Ok(text) = std::fs::read(f) {
            let to = root.join(f.trim_start_matches('/'));
            common::mkdir(to.parent().unwrap());
            std::fs::write(to, text).unwrap();
        }
    }
    root
}

/// A package whose copyright file names every licence in [`NAMES`].
fn add_licence_zoo(root: &Path) {
    let status = root.join("var/lib/dpkg/status");
    let mut text = std::fs::read_to_string(&status).unwrap_or_default();
    text.push_str(
        "\nPackage: kiln-licence-zoo\nStatus: install ok installed\nArchitecture: all\n\
         Version: 1:1.0~rc1+dfsg-1\nInstalled-Size: 1\n",
    );
    std::fs::write(&status, text).unwrap();
    let mut copyright = String::from("Format: copyright-format/1.0\n\n");
    for (i, name) in NAMES.iter().enumerate() {
        copyright.push_str(&format!(
            "Files: f{i}\nCopyright: 2024 Someone\nLicense: {name}\n\n"
        ));
    }
    copyright.push_str("License: other\n Anything goes.\n");
    common::write(
        &root.join("usr/share/doc/kiln-licence-zoo/copyright"),
        &copyright,
    );
}
