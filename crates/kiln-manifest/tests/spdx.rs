//! The SPDX document's shape. `net_spdx_validates` checks it with a real
//! validator; these check what a validator cannot: that it says what kiln
//! means, and says it the same way every time.

mod common;

use std::collections::{BTreeSet, HashSet};

use kiln_manifest::Manifest;
use kiln_manifest::spdx::{self, SbomInput};

fn input() -> SbomInput<'static> {
    SbomInput {
        name: "web",
        version: "1.0.0",
        namespace: spdx::namespace("0123abcd"),
        created: 1_700_000_000,
        tool: "kiln-0.1.0",
        distro: "debian-12",
    }
}

fn manifest() -> (tempfile::TempDir, Manifest) {
    let dir = tempfile::tempdir().unwrap();
    let mut m = Manifest::from_rootfs(&common::tree(dir.path())).unwrap();
    m.packages[0].sha256 = Some("AB".repeat(32));
    (dir, m)
}

#[test]
fn document_snapshot() {
    let (_dir, m) = manifest();
    insta::assert_json_snapshot!(spdx::document(&m, &input()));
}

#[test]
fn document_is_self_consistent() {
    let (_dir, m) = manifest();
    let doc = spdx::document(&m, &input());
    assert_eq!(doc["spdxVersion"], "SPDX-2.3");
    assert_eq!(doc["dataLicense"], "CC0-1.0");
    assert_eq!(doc["documentNamespace"], "urn:kiln:sbom:0123abcd");
    assert_eq!(doc["creationInfo"]["created"], "2023-11-14T22:13:20Z");
    assert_eq!(doc["creationInfo"]["creators"][0], "Tool: kiln-0.1.0");

    let packages = doc["packages"].as_array().unwrap();
    assert_eq!(packages.len(), m.packages.len() + 1);
    let ids: Vec<&str> = packages
        .iter()
        .map(|p| p["SPDXID"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids.iter().collect::<HashSet<_>>().len(),
        ids.len(),
        "unique: {ids:?}"
    );
    for id in &ids {
        let rest = id.strip_prefix("SPDXRef-").unwrap();
        assert!(
            rest.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-'),
            "{id}"
        );
    }
    assert_eq!(packages[0]["primaryPackagePurpose"], "OPERATING-SYSTEM");

    let rels = doc["relationships"].as_array().unwrap();
    let describes: Vec<_> = rels
        .iter()
        .filter(|r| r["relationshipType"] == "DESCRIBES")
        .collect();
    assert_eq!(describes.len(), 1);
    assert_eq!(describes[0]["relatedSpdxElement"], ids[0]);
    let contained: BTreeSet<&str> = rels
        .iter()
        .filter(|r| r["relationshipType"] == "CONTAINS" && r["spdxElementId"] == ids[0])
        .map(|r| r["relatedSpdxElement"].as_str().unwrap())
        .collect();
    assert_eq!(contained, ids[1..].iter().copied().collect());

    let hello = &packages[1];
    assert_eq!(hello["name"], "hello");
    assert_eq!(
        hello["licenseDeclared"],
        "GFDL-1.3-no-invariants-or-later AND GPL-3.0-or-later AND LicenseRef-other AND MIT"
    );
    assert_eq!(hello["checksums"][0]["algorithm"], "SHA256");
    assert_eq!(hello["checksums"][0]["checksumValue"], "ab".repeat(32));
    assert_eq!(
        hello["externalRefs"][0]["referenceLocator"],
        "pkg:deb/debian/hello@2.10-3?arch=amd64&distro=debian-12"
    );
    let foo = &packages[3];
    assert_eq!(foo["SPDXID"], "SPDXRef-deb-libfoo1-amd64");
    assert_eq!(
        foo["externalRefs"][0]["referenceLocator"],
        "pkg:deb/debian/libfoo1@1%3A1.2~rc1-1%2Bb1?arch=amd64&distro=debian-12"
    );
    assert!(foo.get("checksums").is_none());
    assert_eq!(packages[5]["licenseDeclared"], "NOASSERTION");

    // Every LicenseRef used is declared, with a text.
    let declared: BTreeSet<&str> = doc["hasExtractedLicensingInfos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            assert!(!e["extractedText"].as_str().unwrap().is_empty());
            e["licenseId"].as_str().unwrap()
        })
        .collect();
    let used: BTreeSet<&str> = packages
        .iter()
        .flat_map(|p| p["licenseDeclared"].as_str().unwrap().split(' '))
        .filter(|w| w.starts_with("LicenseRef-"))
        .collect();
    assert_eq!(declared, used);
}

#[test]
fn same_input_same_document_whatever_the_package_order() {
    let (_dir, m) = manifest();
    let mut shuffled = m.clone();
    shuffled.packages.reverse();
    let a = serde_json::to_vec(&spdx::document(&m, &input())).unwrap();
    let b = serde_json::to_vec(&spdx::document(&shuffled, &input())).unwrap();
    assert_eq!(a, b);
}

#[test]
fn an_undeclared_license_ref_still_gets_declared() {
    // A manifest made by hand (or by an older kiln) may lack the texts.
    let (_dir, mut m) = manifest();
    m.extracted_licenses.clear();
    let doc = spdx::document(&m, &input());
    let infos = doc["hasExtractedLicensingInfos"].as_array().unwrap();
    assert_eq!(infos.len(), 1);
    assert_eq!(infos[0]["licenseId"], "LicenseRef-other");
    assert!(
        infos[0]["extractedText"]
            .as_str()
            .unwrap()
            .contains("\"other\"")
    );
}

#[test]
fn packages_not_from_debian_name_their_origin() {
    let (_dir, mut m) = manifest();
    m.packages[0].origin = Some("vendor".into());
    let doc = spdx::document(&m, &input());
    let name = m.packages[0].name.clone();
    let p = doc["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name.as_str())
        .unwrap();
    assert_eq!(p["supplier"], "NOASSERTION", "not Debian's: {p}");
    assert_eq!(p["comment"], "origin: vendor");
    let purl = p["externalRefs"][0]["referenceLocator"].as_str().unwrap();
    assert!(purl.starts_with("pkg:deb/vendor/"), "{purl}");
    assert!(
        p["sourceInfo"]
            .as_str()
            .unwrap()
            .contains("repository vendor")
    );
    // The others are still Debian's.
    let other = doc["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["name"] != name.as_str() && q["SPDXID"] != "SPDXRef-image")
        .expect("the fixture has more than one package");
    assert_eq!(other["supplier"], "Organization: Debian");
}
