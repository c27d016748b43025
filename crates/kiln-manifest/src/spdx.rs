//! An SPDX 2.3 SBOM of the image, in JSON, made from its manifest alone.

use std::collections::{BTreeSet, HashSet};

use serde_json::{Value, json};

use crate::license;
use crate::model::{ExtractedLicense, Manifest, Package};
use crate::purl;

/// What the manifest does not know about the image.
pub struct SbomInput<'a> {
    /// The image's name and version.
    pub name: &'a str,
    pub version: &'a str,
    /// Unique per build and a valid SPDX `documentNamespace`: an absolute URI
    /// without `#`. [`namespace`] makes one from the build's digest.
    pub namespace: String,
    /// Unix seconds, from SOURCE_DATE_EPOCH, so the same build gives the same
    /// document.
    pub created: i64,
    /// The tool that made the document, e.g. `kiln-0.1.0`.
    pub tool: &'a str,
    /// For the purls' `distro` qualifier, e.g. `debian-12`.
    pub distro: &'a str,
}

/// `urn:kiln:sbom:<digest>`: a URN needs no domain of ours, and a build's
/// digest is unique to it.
pub fn namespace(build_digest: &str) -> String {
    format!("urn:kiln:sbom:{build_digest}")
}

const IMAGE_ID: &str = "SPDXRef-image";

/// The document: one package for the image, which the document DESCRIBES
/// and which CONTAINS each Debian package. Every list is sorted, so equal
/// inputs give equal documents.
pub fn document(m: &Manifest, input: &SbomInput) -> Value {
    let mut used = HashSet::from([IMAGE_ID.to_string(), "SPDXRef-DOCUMENT".to_string()]);
    let mut packages = vec![json!({
        "SPDXID": IMAGE_ID,
        "name": input.name,
        "versionInfo": input.version,
        "primaryPackagePurpose": "OPERATING-SYSTEM",
        "supplier": "NOASSERTION",
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": "NOASSERTION",
        "copyrightText": "NOASSERTION",
    })];
    let mut relationships = vec![json!({
        "spdxElementId": "SPDXRef-DOCUMENT",
        "relationshipType": "DESCRIBES",
        "relatedSpdxElement": IMAGE_ID,
    })];
    let mut sorted: Vec<&Package> = m.packages.iter().collect();
    sorted.sort_by(|a, b| (&a.name, &a.architecture).cmp(&(&b.name, &b.architecture)));
    let mut refs = BTreeSet::new();
    for p in sorted {
        let id = unique_id(&format!("deb-{}-{}", p.name, p.architecture), &mut used);
        refs.extend(
            p.licenses
                .iter()
                .filter(|l| l.starts_with("LicenseRef-"))
                .cloned(),
        );
        packages.push(package(p, &id, input.distro));
        relationships.push(json!({
            "spdxElementId": IMAGE_ID,
            "relationshipType": "CONTAINS",
            "relatedSpdxElement": id,
        }));
    }
    let mut doc = json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": format!("{}-{}", input.name, input.version),
        "documentNamespace": input.namespace,
        "creationInfo": {
            "created": rfc3339(input.created),
            "creators": [format!("Tool: {}", input.tool)],
        },
        "packages": packages,
        "relationships": relationships,
    });
    if !refs.is_empty() {
        doc["hasExtractedLicensingInfos"] = refs
            .iter()
            .map(|id| extracted(id, m.extracted_licenses.get(id)))
            .collect();
    }
    doc
}

fn package(p: &Package, id: &str, distro: &str) -> Value {
    let mut v = json!({
        "SPDXID": id,
        "name": p.name,
        "versionInfo": p.version,
        "supplier": "Organization: Debian",
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": license::expression(&p.licenses),
        "copyrightText": "NOASSERTION",
        "sourceInfo": format!("built from the Debian source package {} {}", p.source, p.source_version),
        "externalRefs": [{
            "referenceCategory": "PACKAGE-MANAGER",
            "referenceType": "purl",
            "referenceLocator": purl::purl(&p.name, &p.version, &p.architecture, distro),
        }],
    });
    if let Some(origin) = &p.origin {
        // Not Debian's: say where it came from instead.
        v["supplier"] = "NOASSERTION".into();
        v["sourceInfo"] = if origin == "local" {
            format!(
                "a local .deb file of the image's definition (source package {} {})",
                p.source, p.source_version
            )
        } else {
            format!(
                "from the third-party repository {origin} (source package {} {})",
                p.source, p.source_version
            )
        }
        .into();
        v["comment"] = format!("origin: {origin}").into();
        v["externalRefs"][0]["referenceLocator"] =
            purl::purl_from(origin, &p.name, &p.version, &p.architecture, distro).into();
    }
    if let Some(homepage) = p.homepage.as_deref().filter(|h| is_url(h)) {
        v["homepage"] = homepage.into();
    }
    if let Some(sha256) = &p.sha256 {
        v["checksums"] =
            json!([{ "algorithm": "SHA256", "checksumValue": sha256.to_ascii_lowercase() }]);
    }
    v
}

/// Some control files carry a homepage with a typo or a bare host name;
/// SPDX wants a URL or nothing, and an invalid field fails the document.
fn is_url(s: &str) -> bool {
    let rest = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"));
    rest.is_some_and(|r| {
        let host = r.split(['/', '?', '#']).next().unwrap_or("");
        host.contains('.')
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'))
            && !s.chars().any(|c| c.is_whitespace() || c.is_control())
    })
}

fn extracted(id: &str, known: Option<&ExtractedLicense>) -> Value {
    let name = known.map_or_else(
        || id.trim_start_matches("LicenseRef-").to_string(),
        |k| k.name.clone(),
    );
    let text = match known.and_then(|k| k.text.clone()) {
        Some(text) if !text.trim().is_empty() => text,
        // SPDX requires a text; say where the name came from instead.
        _ => format!(
            "The package's Debian copyright file names the licence \"{name}\" without giving its text."
        ),
    };
    json!({ "licenseId": id, "name": name, "extractedText": text })
}

/// `SPDXRef-` and the name in the characters SPDX allows (letters, digits,
/// `.` and `-`); `+`, common in Debian names, is spelt out so `libstdc++6`
/// stays readable. A clash gets a numeric suffix.
fn unique_id(name: &str, used: &mut HashSet<String>) -> String {
    let mut s = String::from("SPDXRef-");
    for c in name.chars() {
        match c {
            c if c.is_ascii_alphanumeric() || c == '.' || c == '-' => s.push(c),
            '+' => s.push_str("plus"),
            _ => s.push('-'),
        }
    }
    let mut id = s.clone();
    let mut n = 2;
    while !used.insert(id.clone()) {
        id = format!("{s}-{n}");
        n += 1;
    }
    id
}

/// RFC 3339 in UTC, seconds precision, as SPDX's `created` requires. A
/// time outside jiff's range (years -9999 to 9999) is clamped to it.
pub fn rfc3339(unix: i64) -> String {
    let ts = jiff::Timestamp::from_second(unix).unwrap_or(if unix < 0 {
        jiff::Timestamp::MIN
    } else {
        jiff::Timestamp::MAX
    });
    format!("{ts:.0}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn spdx_ids_are_sanitised_and_unique() {
        let mut used = HashSet::new();
        assert_eq!(
            unique_id("deb-libstdc++6-amd64", &mut used),
            "SPDXRef-deb-libstdcplusplus6-amd64"
        );
        assert_eq!(
            unique_id("deb-a_b-amd64", &mut used),
            "SPDXRef-deb-a-b-amd64"
        );
        assert_eq!(
            unique_id("deb-a-b-amd64", &mut used),
            "SPDXRef-deb-a-b-amd64-2"
        );
    }

    #[test]
    fn homepages_must_be_urls() {
        assert!(is_url("https://example.invalid/x?y=1"));
        assert!(!is_url("example.invalid"));
        assert!(!is_url("https://example invalid/"));
        assert!(!is_url("ftp://example.invalid/"));
    }
}
