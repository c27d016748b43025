//! What the fleet tests share.

/// The image names of each wave of a `kiln rebuild --plan --json`.
pub fn waves(plan: &serde_json::Value) -> Vec<Vec<String>> {
    plan["waves"]
        .as_array()
        .expect("waves")
        .iter()
        .map(|w| {
            w.as_array()
                .expect("wave")
                .iter()
                .map(|p| p["name"].as_str().expect("name").to_owned())
                .collect()
        })
        .collect()
}
