//! The in-toto statement's shape: what SLSA v1 consumers require of it.

use kiln_manifest::Package;
use kiln_manifest::provenance::{self, Material, ProvenanceInput};
use serde_json::{Value, json};

fn input() -> ProvenanceInput {
    let libc = Package {
        name: "libc6".into(),
        version: "2.36-9+deb12u4".into(),
        architecture: "amd64".into(),
        source: "glibc".into(),
        source_version: "2.36-9+deb12u4".into(),
        installed_size: 0,
        licenses: vec![],
        homepage: None,
        sha256: Some("c".repeat(64)),
        origin: None,
    };
    ProvenanceInput {
        subjects: vec![
            ("web.qcow2".into(), format!("sha256:{}", "A".repeat(64))),
            ("web.oci.tar".into(), "b".repeat(64)),
        ],
        definition: ("images/web/kiln.toml".into(), "d".repeat(64)),
        lock: (
            "images/web/kiln.lock".into(),
            format!("sha256:{}", "e".repeat(64)),
        ),
        parameters: json!({ "image": "web", "version": "1.0.0", "formats": ["oci", "qcow2"] }),
        builder_id: "urn:kiln:builder:test".into(),
        kiln_version: "0.1.0".into(),
        materials: vec![
            Material {
                uri: "pkg:deb/debian/zlib1g@1%3A1.2.13.dfsg-1?arch=amd64&distro=debian-12".into(),
                sha256: "f".repeat(64),
            },
            Material::of_package(&libc, "debian-12").unwrap(),
        ],
        source_date_epoch: 1_700_000_000,
        git_commit: Some("0123456789abcdef0123456789abcdef01234567".into()),
        invocation_id: Some("build-42".into()),
    }
}

fn is_hex64(v: &Value) -> bool {
    v.as_str().is_some_and(|s| {
        s.len() == 64
            && s.chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
    })
}

#[test]
fn statement_has_the_fields_slsa_v1_requires() {
    let s = provenance::statement(&input());
    assert_eq!(s["_type"], "https://in-toto.io/Statement/v1");
    assert_eq!(s["predicateType"], "https://slsa.dev/provenance/v1");

    let subjects = s["subject"].as_array().unwrap();
    assert_eq!(subjects.len(), 2);
    assert_eq!(subjects[0]["name"], "web.oci.tar", "sorted by name");
    for subject in subjects {
        assert!(subject["name"].is_string());
        assert!(is_hex64(&subject["digest"]["sha256"]), "{subject}");
    }

    let def = &s["predicate"]["buildDefinition"];
    assert!(def["buildType"].as_str().unwrap().starts_with("urn:kiln:"));
    assert_eq!(
        def["externalParameters"]["definition"],
        "images/web/kiln.toml"
    );
    assert_eq!(def["externalParameters"]["parameters"]["image"], "web");
    assert_eq!(def["internalParameters"]["sourceDateEpoch"], 1_700_000_000);
    let deps = def["resolvedDependencies"].as_array().unwrap();
    assert_eq!(deps.len(), 5);
    for dep in deps {
        assert!(
            dep.get("uri").is_some() || dep.get("name").is_some(),
            "{dep}"
        );
        let digest = dep["digest"].as_object().unwrap();
        assert!(!digest.is_empty());
        if let Some(sha) = digest.get("sha256") {
            assert!(is_hex64(sha), "{dep}");
        }
    }
    assert_eq!(
        deps[2]["digest"]["gitCommit"],
        "0123456789abcdef0123456789abcdef01234567"
    );
    assert_eq!(
        deps[3]["uri"],
        "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12"
    );

    let run = &s["predicate"]["runDetails"];
    assert_eq!(run["builder"]["id"], "urn:kiln:builder:test");
    assert_eq!(run["builder"]["version"]["kiln"], "0.1.0");
    assert_eq!(run["metadata"]["invocationId"], "build-42");
    assert!(run["metadata"].get("startedOn").is_none(), "no clock time");
    assert!(run["metadata"].get("finishedOn").is_none(), "no clock time");

    insta::assert_json_snapshot!(s);
}

#[test]
fn optional_parts_are_left_out() {
    let mut p = input();
    p.git_commit = None;
    p.invocation_id = None;
    let s = provenance::statement(&p);
    assert!(s["predicate"]["runDetails"].get("metadata").is_none());
    let deps = s["predicate"]["buildDefinition"]["resolvedDependencies"]
        .as_array()
        .unwrap();
    assert!(deps.iter().all(|d| d["digest"].get("gitCommit").is_none()));
}

#[test]
fn a_package_without_a_deb_digest_is_no_material() {
    let mut libc: Package = serde_json::from_value(json!({
        "name": "libc6", "version": "1", "architecture": "amd64", "source": "glibc",
        "source_version": "1", "installed_size": 0, "licenses": []
    }))
    .unwrap();
    assert_eq!(Material::of_package(&libc, "debian-12"), None);
    libc.sha256 = Some("0".repeat(64));
    assert!(Material::of_package(&libc, "debian-12").is_some());
}
