//! Every parser of bytes that come from an archive (Release,
//! Packages, deb822 control paragraphs, relation fields) meets arbitrary and
//! mutated input (InRelease: in `signature`'s own tests): it returns a value or an error that says something, and
//! never panics. Inputs are bounded (a few KiB), so a parser that allocated
//! by what the input claims rather than what it holds would show here as a
//! test that runs out of memory or time.

use kiln_deb::control::paragraphs;
use kiln_deb::packages::parse_packages;
use kiln_deb::relation::parse_relations;
use kiln_deb::release::parse_release;
use proptest::prelude::*;

const RELEASE: &str = "Origin: Debian\nSuite: stable\nCodename: bookworm\nDate: Sat, 10 May 2025 08:52:37 UTC\nValid-Until: Sat, 17 May 2025 08:52:37 UTC\nArchitectures: amd64\nComponents: main\nSHA256:\n 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef 1234 main/binary-amd64/Packages.xz\n";

const PACKAGES: &str = "Package: libc6\nVersion: 2.36-9\nArchitecture: amd64\nMulti-Arch: same\nPriority: required\nDepends: libgcc-s1, foo (>= 1.0) | bar:any\nFilename: pool/main/g/glibc/libc6_2.36-9_amd64.deb\nSize: 2757936\nSHA256: 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\nDescription: x\n more\n\nPackage: zlib1g\nVersion: 1:1.2.13\nArchitecture: amd64\nFilename: pool/z.deb\nSize: 1\nSHA256: 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n";

/// `base` with bytes replaced, and (one time in four) cut at a point: a
/// damaged file.
fn mutated(base: &'static str) -> impl Strategy<Value = String> {
    (
        prop::collection::vec((any::<usize>(), any::<u8>()), 0..12),
        any::<usize>(),
    )
        .prop_map(move |(flips, cut)| {
            let mut bytes = base.as_bytes().to_vec();
            for (at, b) in flips {
                let at = at % bytes.len();
                bytes[at] = b;
            }
            if cut % 4 == 0 {
                bytes.truncate(bytes.len() - cut / 4 % (bytes.len() / 4 + 1));
            }
            String::from_utf8_lossy(&bytes).into_owned()
        })
}

/// Text made of the characters these formats give meaning to.
fn fieldish() -> impl Strategy<Value = String> {
    prop::string::string_regex("([A-Za-z0-9:|,()<>=. \n\t-]|\u{0}|é){0,2048}").unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn release_never_panics(text in prop_oneof![mutated(RELEASE), fieldish()]) {
        if let Err(e) = parse_release(&text) {
            prop_assert!(!e.to_string().is_empty());
        }
    }

    #[test]
    fn packages_never_panic(text in prop_oneof![mutated(PACKAGES), fieldish()]) {
        if let Err(e) = parse_packages(&text, "main/binary-amd64/Packages", "amd64") {
            prop_assert!(e.to_string().contains("Packages"), "{e}");
        }
    }

    #[test]
    fn control_paragraphs_never_panic(text in prop_oneof![mutated(PACKAGES), fieldish()]) {
        for p in paragraphs(&text) {
            let _ = p.get("Package");
        }
    }

    #[test]
    fn relations_never_panic(text in prop_oneof![
        mutated("libgcc-s1 (>= 3.0), foo [amd64] | bar:any (<< 2:1.0~rc1) <!nocheck>"),
        fieldish(),
    ]) {
        if let Err(e) = parse_relations(&text, "amd64") {
            prop_assert!(!e.to_string().is_empty());
        }
    }
}
