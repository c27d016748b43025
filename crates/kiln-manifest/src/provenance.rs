//! SLSA v1 provenance as an in-toto v1 Statement: which outputs a build
//! made, from which definition, lock and packages, by which builder.
//! Unsigned; signing is the caller's business.

use serde_json::{Map, Value, json};

use crate::model::Package;
use crate::purl;

pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
pub const PREDICATE_TYPE: &str = "https://slsa.dev/provenance/v1";
/// Ours, so a URN: names how to read `externalParameters`. Bump the version
/// when their meaning changes.
pub const BUILD_TYPE: &str = "urn:kiln:buildtype:image:v1";

pub struct ProvenanceInput {
    /// The outputs: (file name, SHA-256 as hex or `sha256:hex`).
    pub subjects: Vec<(String, String)>,
    /// The definition file: (path as the user gave it, SHA-256).
    pub definition: (String, String),
    /// The lockfile: (path, SHA-256).
    pub lock: (String, String),
    /// What else the user chose: image name, version, output formats.
    pub parameters: Value,
    /// A URI naming the build platform, e.g. `urn:kiln:builder:ci`.
    pub builder_id: String,
    pub kiln_version: String,
    /// Each `.deb` the image was built from.
    pub materials: Vec<Material>,
    pub source_date_epoch: i64,
    /// The definition repository's commit, when it is in git.
    pub git_commit: Option<String>,
    pub invocation_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Material {
    /// A purl: `pkg:deb/debian/NAME@VERSION?arch=…`.
    pub uri: String,
    /// Of the `.deb`, hex or `sha256:hex`.
    pub sha256: String,
}

impl Material {
    /// A package as a material; `None` until its `.deb` digest is known.
    pub fn of_package(p: &Package, distro: &str) -> Option<Material> {
        Some(Material {
            uri: purl::purl(&p.name, &p.version, &p.architecture, distro),
            sha256: p.sha256.clone()?,
        })
    }
}

/// The statement. It has no timestamps (`startedOn`, `finishedOn`), so the
/// same build gives the same bytes; `internalParameters.sourceDateEpoch`
/// says what time the build claims. Lists are sorted.
pub fn statement(p: &ProvenanceInput) -> Value {
    let mut subjects: Vec<Value> = p
        .subjects
        .iter()
        .map(|(name, digest)| json!({ "name": name, "digest": { "sha256": hex(digest) } }))
        .collect();
    subjects.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));

    let mut resolved = vec![
        json!({ "name": p.definition.0, "digest": { "sha256": hex(&p.definition.1) } }),
        json!({ "name": p.lock.0, "digest": { "sha256": hex(&p.lock.1) } }),
    ];
    if let Some(commit) = &p.git_commit {
        resolved.push(
            json!({ "name": "source", "digest": { "gitCommit": commit.to_ascii_lowercase() } }),
        );
    }
    let mut materials: Vec<&Material> = p.materials.iter().collect();
    materials.sort_by(|a, b| (&a.uri, &a.sha256).cmp(&(&b.uri, &b.sha256)));
    materials.dedup();
    resolved.extend(
        materials
            .into_iter()
            .map(|m| json!({ "uri": m.uri, "digest": { "sha256": hex(&m.sha256) } })),
    );

    let mut run_details = json!({
        "builder": { "id": p.builder_id, "version": { "kiln": p.kiln_version } },
    });
    if let Some(id) = &p.invocation_id {
        let mut metadata = Map::new();
        metadata.insert("invocationId".into(), id.clone().into());
        run_details["metadata"] = metadata.into();
    }

    json!({
        "_type": STATEMENT_TYPE,
        "subject": subjects,
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": {
                    "definition": p.definition.0,
                    "lock": p.lock.0,
                    "parameters": p.parameters,
                },
                "internalParameters": { "sourceDateEpoch": p.source_date_epoch },
                "resolvedDependencies": resolved,
            },
            "runDetails": run_details,
        },
    })
}

/// in-toto digests are bare lower-case hex.
fn hex(digest: &str) -> String {
    digest
        .strip_prefix("sha256:")
        .unwrap_or(digest)
        .to_ascii_lowercase()
}
