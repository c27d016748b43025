//! Licences, from Debian's names to SPDX ids.
//!
//! Debian names licences its own way (`GPL-2+`, `Expat`, `BSD-3-clause`,
//! `public-domain`). An SBOM
//! needs SPDX ids, and a validator rejects any id it does not know, so every
//! name either maps to an id from the SPDX list or becomes a `LicenseRef-…`
//! whose text the manifest keeps.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::OnceLock;

use sha2::Digest as _;

use crate::copyright::Found;
use crate::model::ExtractedLicense;

/// The SPDX expression for a package's licences: all of them apply.
pub fn expression(licenses: &[String]) -> String {
    if licenses.is_empty() {
        "NOASSERTION".to_string()
    } else {
        licenses.join(" AND ")
    }
}

/// The SPDX ids a Debian licence name stands for (`Perl` is two licences),
/// or `None` when SPDX has no id for it. An id may carry an exception:
/// `GPL-2.0-only WITH Linux-syscall-note`.
pub fn to_spdx(name: &str) -> Option<Vec<String>> {
    let name = name.trim().trim_end_matches(['.', ',', ';']).trim();
    if let Some((license, exception)) = split_exception(name) {
        let [base] = <[String; 1]>::try_from(to_spdx(license)?).ok()?;
        let exception = exception_id(exception, &base)?;
        return Some(vec![format!("{base} WITH {exception}")]);
    }
    let key = normalise(name);
    // `ISC License`, `Zlib licence`: the word adds nothing.
    let bare = ["-license", "-licence"]
        .iter()
        .find_map(|w| key.strip_suffix(w))
        .unwrap_or(&key);
    [key.as_str(), bare].into_iter().find_map(|key| {
        if let Some(ids) = debian_name(key) {
            return Some(ids.iter().map(|s| s.to_string()).collect());
        }
        if let Some(id) = gnu(key) {
            return Some(vec![id]);
        }
        spdx_list().get(key).map(|id| vec![id.to_string()])
    })
}

/// Lower case, spaces, underscores and parentheses folded into single
/// dashes: `BSD (3 clause)` and `BSD 3-clause` are both `bsd-3-clause`.
fn normalise(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        let c = match c {
            ' ' | '\t' | '_' | '(' | ')' => '-',
            c => c.to_ascii_lowercase(),
        };
        if c == '-' && (out.is_empty() || out.ends_with('-')) {
            continue;
        }
        out.push(c);
    }
    while out.ends_with('-') {
        out.pop();
    }
    out
}

/// Names from the DEP-5 specification and common practice whose SPDX id is
/// not the same word.
fn debian_name(key: &str) -> Option<&'static [&'static str]> {
    Some(match key {
        "expat" | "mit" | "mit/x11" | "x11/mit" => &["MIT"],
        "bsd-2-clause" | "bsd-2" | "bsd2" | "bsd-2-clause-freebsd" => &["BSD-2-Clause"],
        "bsd-3-clause" | "bsd-3" | "bsd3" => &["BSD-3-Clause"],
        "bsd-4-clause" | "bsd-4" | "bsd4" => &["BSD-4-Clause"],
        // Debian's `Artistic` is the one Perl ships.
        "artistic" | "artistic-1-perl" => &["Artistic-1.0-Perl"],
        "artistic-1" => &["Artistic-1.0"],
        "artistic-2" => &["Artistic-2.0"],
        "perl" => &["Artistic-1.0-Perl", "GPL-1.0-or-later"],
        "apache-2" | "apache-2.0" | "apache-v2" | "apache-2.0+" => &["Apache-2.0"],
        "python" => &["Python-2.0"],
        "psf" | "psf-2" => &["PSF-2.0"],
        "cc0" => &["CC0-1.0"],
        "mpl-2" => &["MPL-2.0"],
        "mpl-1" => &["MPL-1.0"],
        "openldap-2.8" => &["OLDAP-2.8"],
        "zlib/libpng" => &["Zlib"],
        "unicode-dfs" => &["Unicode-DFS-2016"],
        _ => return None,
    })
}

/// The GNU licences in Debian's spellings (`GPL-2`, `GPL-2+`, `GPLv3+`,
/// `LGPL-2.1`, `GFDL-NIV-1.3+`) to SPDX's `-only` and `-or-later` ids.
fn gnu(key: &str) -> Option<String> {
    // Longest prefixes first: `lgpl` must not be read as `l` + `gpl`.
    const FAMILIES: [(&str, &str); 6] = [
        ("gfdl-niv", "GFDL"),
        ("agpl", "AGPL"),
        ("lgpl", "LGPL"),
        ("gfdl", "GFDL"),
        ("fdl", "GFDL"),
        ("gpl", "GPL"),
    ];
    let (prefix, family) = FAMILIES.iter().find(|(p, _)| key.starts_with(p))?;
    let rest = &key[prefix.len()..];
    let rest = rest
        .strip_prefix('-')
        .or_else(|| rest.strip_prefix('v'))
        .unwrap_or(rest);
    let digits = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    let (version, suffix) = rest.split_at(digits);
    let version = version.trim_end_matches('.');
    let later = match suffix {
        "" | "-only" => false,
        "+" | "-or-later" | "-or-newer" | "-or-any-later-version" => true,
        _ => return None,
    };
    // Unversioned, the GPL means any version (GNU's own reading, and the
    // DEP-5 one); the LGPL's first version is 2.0.
    let (version, later) = match (*family, version) {
        ("GPL", "") => ("1.0", true),
        ("LGPL", "") => ("2.0", true),
        ("GFDL", "") => ("1.1", true),
        (_, "") => return None,
        ("GPL", "1" | "1.0") => ("1.0", later),
        ("GPL" | "LGPL", "2" | "2.0") => ("2.0", later),
        ("LGPL", "2.1") => ("2.1", later),
        ("GPL" | "LGPL" | "AGPL", "3" | "3.0") => ("3.0", later),
        ("GFDL", v @ ("1.1" | "1.2" | "1.3")) => (v, later),
        _ => return None,
    };
    let variant = if *prefix == "gfdl-niv" {
        "-no-invariants"
    } else {
        ""
    };
    let range = if later { "or-later" } else { "only" };
    Some(format!("{family}-{version}{variant}-{range}"))
}

/// `GPL-2+ with OpenSSL exception` -> (`GPL-2+`, `OpenSSL`).
fn split_exception(name: &str) -> Option<(&str, &str)> {
    let lower = name.to_ascii_lowercase();
    let at = lower.find(" with ")?;
    let exception = name[at + " with ".len()..].trim();
    let exception = exception
        .strip_suffix(" exception")
        .or_else(|| exception.strip_suffix(" Exception"))
        .or_else(|| exception.strip_suffix(" EXCEPTION"))
        .unwrap_or(exception);
    Some((name[..at].trim(), exception.trim()))
}

/// Only exceptions every SPDX tool has known for years: an id that is too
/// new for the validator makes the whole document invalid.
fn exception_id(name: &str, base: &str) -> Option<&'static str> {
    let gpl3 = base.starts_with("GPL-3.0");
    Some(match normalise(name).trim_end_matches("-exception") {
        "autoconf" if gpl3 => "Autoconf-exception-3.0",
        "autoconf" => "Autoconf-exception-2.0",
        "autoconf-exception-2.0" => "Autoconf-exception-2.0",
        "autoconf-exception-3.0" => "Autoconf-exception-3.0",
        "bison" | "bison-2.2" if gpl3 => "Bison-exception-2.2",
        "libtool" => "Libtool-exception",
        "linux-syscall-note" | "linux-syscall" => "Linux-syscall-note",
        "llvm" => "LLVM-exception",
        "gcc-runtime-library" | "gcc-runtime-3.1" | "gcc-3.1" | "gcc-exception-3.1" => {
            "GCC-exception-3.1"
        }
        "gcc" if gpl3 => "GCC-exception-3.1",
        "gcc" => "GCC-exception-2.0",
        "classpath" | "classpath-exception-2.0" => "Classpath-exception-2.0",
        "font" | "font-exception-2.0" => "Font-exception-2.0",
        _ => return None,
    })
}

/// Current SPDX licence ids by lower-case name. Deprecated ids are left
/// out: `GPL-2.0` is ambiguous, and `gnu` gives the precise one.
fn spdx_list() -> &'static HashMap<String, &'static str> {
    static LIST: OnceLock<HashMap<String, &'static str>> = OnceLock::new();
    LIST.get_or_init(|| {
        spdx::identifiers::LICENSES
            .iter()
            .filter(|l| l.flags & spdx::flags::IS_DEPRECATED == 0)
            .map(|l| (l.name.to_ascii_lowercase(), l.name))
            .collect()
    })
}

/// The SPDX ids of each package's licences, sorted, and the text behind each
/// `LicenseRef-…` among them. One name (`other`, say) with different texts
/// in different packages is different licences: each text gets its own id.
pub(crate) fn assign(
    per_package: &[Vec<Found>],
) -> (Vec<Vec<String>>, BTreeMap<String, ExtractedLicense>) {
    let mut ids: Vec<BTreeSet<String>> = vec![BTreeSet::new(); per_package.len()];
    // ref base id -> (package, name, text), in package order.
    let mut refs: BTreeMap<String, Vec<(usize, &Found)>> = BTreeMap::new();
    for (i, found) in per_package.iter().enumerate() {
        for f in found {
            match to_spdx(&f.name) {
                Some(spdx) => ids[i].extend(spdx),
                None => refs.entry(ref_id(&f.name)).or_default().push((i, f)),
            }
        }
    }
    let mut extracted = BTreeMap::new();
    for (base, uses) in refs {
        let texts: BTreeSet<String> = uses
            .iter()
            .filter_map(|(_, f)| f.text.as_deref().map(canonical))
            .collect();
        for (i, f) in uses {
            let text = f.text.as_deref().map(canonical);
            let id = match &text {
                Some(t) if texts.len() > 1 => {
                    let digest = hex::encode(sha2::Sha256::digest(t.as_bytes()));
                    format!("{base}-{}", &digest[..8])
                }
                _ => base.clone(),
            };
            // A package that names the licence without its text shares the
            // text when there is only one to share.
            let text = text.or_else(|| match texts.len() {
                1 => texts.first().cloned(),
                _ => None,
            });
            extracted.entry(id.clone()).or_insert(ExtractedLicense {
                name: f.name.chars().take(200).collect(),
                text,
            });
            ids[i].insert(id);
        }
    }
    (
        ids.into_iter().map(|s| s.into_iter().collect()).collect(),
        extracted,
    )
}

/// Texts that differ only in layout are the same licence.
fn canonical(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_string()
}

/// `LicenseRef-` and the name in the characters SPDX allows there. Lower
/// case, since SPDX compares ids without case.
fn ref_id(name: &str) -> String {
    let key = normalise(name);
    if matches!(key.as_str(), "pd" | "public-domain" | "publicdomain") {
        return "LicenseRef-public-domain".to_string();
    }
    let mut out = String::new();
    for c in key.chars() {
        let c = if c.is_ascii_alphanumeric() || c == '.' {
            c
        } else if c == '+' {
            // `GPL-2+~OpenSSL` and `GPL-2~OpenSSL` are different licences.
            out.push_str("-plus");
            '-'
        } else {
            '-'
        };
        if c == '-' && (out.is_empty() || out.ends_with('-')) {
            continue;
        }
        out.push(c);
        if out.len() >= 64 {
            break;
        }
    }
    let out = out.trim_matches(['-', '.']);
    if out.is_empty() {
        "LicenseRef-unnamed".to_string()
    } else {
        format!("LicenseRef-{out}")
    }
}

#[cfg(test)]
mod tests;
