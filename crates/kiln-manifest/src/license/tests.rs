use super::*;

fn spdx(name: &str) -> Option<String> {
    to_spdx(name).map(|ids| ids.join(" AND "))
}

#[test]
fn debian_names_map_to_spdx_ids() {
    let cases = [
        ("GPL-2", "GPL-2.0-only"),
        ("GPL-2+", "GPL-2.0-or-later"),
        ("GPL-2.0+", "GPL-2.0-or-later"),
        ("GPL-2.0", "GPL-2.0-only"),
        ("GPLv3+", "GPL-3.0-or-later"),
        ("GPL-3.0-or-later", "GPL-3.0-or-later"),
        ("GPL", "GPL-1.0-or-later"),
        ("GPL-1+", "GPL-1.0-or-later"),
        ("LGPL-2.1+", "LGPL-2.1-or-later"),
        ("LGPLv2.1+", "LGPL-2.1-or-later"),
        ("LGPL-2", "LGPL-2.0-only"),
        ("LGPL-3.0", "LGPL-3.0-only"),
        ("LGPL", "LGPL-2.0-or-later"),
        ("AGPL-3+", "AGPL-3.0-or-later"),
        ("GFDL-1.3+", "GFDL-1.3-or-later"),
        ("GFDL-NIV-1.3+", "GFDL-1.3-no-invariants-or-later"),
        ("Expat", "MIT"),
        ("MIT", "MIT"),
        ("BSD-3-clause", "BSD-3-Clause"),
        ("BSD (3 clause)", "BSD-3-Clause"),
        ("BSD 3-clause", "BSD-3-Clause"),
        ("BSD-2-clause", "BSD-2-Clause"),
        ("BSD-4-clause-UC", "BSD-4-Clause-UC"),
        ("Artistic", "Artistic-1.0-Perl"),
        ("Artistic-2.0", "Artistic-2.0"),
        ("Perl", "Artistic-1.0-Perl AND GPL-1.0-or-later"),
        ("Apache-2", "Apache-2.0"),
        ("Apache-2.0", "Apache-2.0"),
        ("zlib", "Zlib"),
        ("ISC", "ISC"),
        ("ISC License", "ISC"),
        ("Artistic-1", "Artistic-1.0"),
        ("CC0", "CC0-1.0"),
        ("CC-BY-SA-3.0", "CC-BY-SA-3.0"),
        ("OpenLDAP-2.8", "OLDAP-2.8"),
        ("BSL-1.0", "BSL-1.0"),
        ("curl", "curl"),
        ("Python", "Python-2.0"),
        (
            "GPL-2 with Linux-syscall-note exception",
            "GPL-2.0-only WITH Linux-syscall-note",
        ),
        (
            "GPL-2+ with Autoconf exception",
            "GPL-2.0-or-later WITH Autoconf-exception-2.0",
        ),
        (
            "GPL-3+ with Bison exception",
            "GPL-3.0-or-later WITH Bison-exception-2.2",
        ),
        (
            "GPL-2+ with Libtool exception",
            "GPL-2.0-or-later WITH Libtool-exception",
        ),
        (
            "Apache-2.0 with LLVM exception",
            "Apache-2.0 WITH LLVM-exception",
        ),
        (
            "GPL-3+ with GCC-exception-3.1",
            "GPL-3.0-or-later WITH GCC-exception-3.1",
        ),
        (
            "GPL-3+ with GCC-runtime-3.1 exception",
            "GPL-3.0-or-later WITH GCC-exception-3.1",
        ),
        (
            "GPL-3+ with Bison-2.2 exception",
            "GPL-3.0-or-later WITH Bison-exception-2.2",
        ),
    ];
    for (debian, want) in cases {
        assert_eq!(spdx(debian).as_deref(), Some(want), "{debian}");
    }
    for unknown in [
        "public-domain",
        "other",
        "GPL-2+ with OpenSSL exception",
        "BSD",
        "GPL-4+",
        "permissive",
        "",
    ] {
        assert_eq!(spdx(unknown), None, "{unknown}");
    }
}

#[test]
fn license_refs_are_valid_idstrings() {
    assert_eq!(ref_id("public-domain"), "LicenseRef-public-domain");
    assert_eq!(ref_id("PD"), "LicenseRef-public-domain");
    assert_eq!(ref_id("Public Domain"), "LicenseRef-public-domain");
    assert_eq!(ref_id("other"), "LicenseRef-other");
    assert_eq!(
        ref_id("GPL-2+ with OpenSSL exception"),
        "LicenseRef-gpl-2-plus-with-openssl-exception"
    );
    assert_eq!(
        ref_id("LGPL-2.1+~OpenSSL"),
        "LicenseRef-lgpl-2.1-plus-openssl"
    );
    assert_eq!(ref_id("()"), "LicenseRef-unnamed");
    let long = ref_id(&"Permission to use, copy and modify ".repeat(10));
    assert!(long.len() <= "LicenseRef-".len() + 64, "{long}");
    for id in [long, ref_id("äöü x/y:z")] {
        let rest = id.strip_prefix("LicenseRef-").unwrap();
        assert!(
            rest.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-'),
            "{id}"
        );
    }
}

fn found(name: &str, text: Option<&str>) -> Found {
    Found {
        name: name.to_string(),
        text: text.map(str::to_string),
    }
}

#[test]
fn one_name_with_different_texts_gets_one_id_per_text() {
    let (ids, extracted) = assign(&[
        vec![found("GPL-2+", None), found("other", Some("text A"))],
        vec![found("other", Some("text B")), found("public-domain", None)],
        vec![found("other", None), found("PD", None)],
        vec![
            found("permissive", Some("  same\n text ")),
            found("Expat", None),
        ],
        vec![found("permissive", None)],
        vec![found("permissive", Some("same\ntext"))],
    ]);
    let a = format!(
        "LicenseRef-other-{}",
        &hex::encode(sha2::Sha256::digest(b"text A"))[..8]
    );
    let b = format!(
        "LicenseRef-other-{}",
        &hex::encode(sha2::Sha256::digest(b"text B"))[..8]
    );
    assert_eq!(ids[0], vec!["GPL-2.0-or-later".to_string(), a.clone()]);
    assert_eq!(
        ids[1],
        vec![b.clone(), "LicenseRef-public-domain".to_string()]
    );
    assert_eq!(ids[2], ["LicenseRef-other", "LicenseRef-public-domain"]);
    assert_eq!(ids[3], ["LicenseRef-permissive", "MIT"]);
    assert_eq!(ids[4], ["LicenseRef-permissive"]);
    assert_eq!(ids[5], ["LicenseRef-permissive"]);
    assert_eq!(extracted[&a].text.as_deref(), Some("text A"));
    assert_eq!(extracted[&b].text.as_deref(), Some("text B"));
    assert_eq!(extracted["LicenseRef-other"].text, None);
    assert_eq!(extracted["LicenseRef-public-domain"].name, "public-domain");
    assert_eq!(
        extracted["LicenseRef-permissive"].text.as_deref(),
        Some("same\ntext")
    );
    assert_eq!(extracted.len(), 5);
}

#[test]
fn expressions_join_with_and() {
    assert_eq!(expression(&[]), "NOASSERTION");
    assert_eq!(
        expression(&["MIT".into(), "GPL-2.0-only WITH Linux-syscall-note".into()]),
        "MIT AND GPL-2.0-only WITH Linux-syscall-note"
    );
}
