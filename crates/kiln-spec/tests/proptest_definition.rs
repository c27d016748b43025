//! `kiln.toml` comes from the user: a damaged definition is an error that
//! names the file, never a panic.

use std::path::Path;

use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn a_damaged_definition_is_an_error_not_a_panic(
        flips in prop::collection::vec((any::<usize>(), any::<u8>()), 1..12),
    ) {
        // The starter definition `kiln init` writes, with a networked step.
        let mut bytes = (kiln_spec::template("web") + "\n[[run]]\ncommand = \"true\"\nnetwork = true\n").into_bytes();
        for (at, b) in flips {
            let at = at % bytes.len();
            bytes[at] = b;
        }
        let text = String::from_utf8_lossy(&bytes);
        if let Err(e) = kiln_spec::parse(&text, Path::new("/nonexistent/def/kiln.toml")) {
            prop_assert!(!e.to_string().is_empty());
        }
    }
}
