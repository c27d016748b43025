//! What the catalog records and gives back. Times are unix seconds, given by
//! the caller: the catalog never reads the clock for a record.

use serde::Serialize;

/// A build as the builder reports it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NewBuild {
    /// `sha256:<64 hex>`, computed by the caller from what was built.
    pub id: String,
    pub name: String,
    pub version: String,
    /// The parent image's build id; that build must already be recorded.
    pub parent: Option<String>,
    pub definition_digest: String,
    pub lock_digest: String,
    pub kiln_version: String,
    pub git_commit: Option<String>,
    pub built_at: i64,
    pub source_date_epoch: i64,
    pub outputs: Vec<Output>,
    /// Opaque to the catalog; given back unchanged by `Catalog::manifest`.
    pub manifest: Vec<u8>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Output {
    pub format: String,
    pub path: String,
    /// `sha256:…`
    pub digest: String,
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Build {
    pub id: String,
    pub name: String,
    pub version: String,
    pub parent: Option<String>,
    pub definition_digest: String,
    pub lock_digest: String,
    pub kiln_version: String,
    pub git_commit: Option<String>,
    /// When this build was first recorded.
    pub built_at: i64,
    /// When the same build was last recorded (a rebuild gives the same id).
    pub last_built_at: i64,
    pub source_date_epoch: i64,
    /// In the order the last recording gave them.
    pub outputs: Vec<Output>,
    pub last_test: Option<TestRecord>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct NewTest {
    pub at: i64,
    pub passed: bool,
    pub accel: String,
    pub boot_seconds: Option<f64>,
    /// JSON text, kept as given.
    pub report: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TestRecord {
    pub id: i64,
    pub build: String,
    pub at: i64,
    pub passed: bool,
    pub accel: String,
    pub boot_seconds: Option<f64>,
    pub report: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildFilter {
    pub name: Option<String>,
    pub limit: Option<usize>,
    /// Only builds running in this environment now.
    pub env: Option<String>,
    /// Only builds whose last test passed (`true`) or failed (`false`);
    /// never-tested builds match neither.
    pub passed: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewPromotion {
    /// A build id, as `Catalog::resolve` gives it.
    pub build: String,
    pub env: String,
    pub who: String,
    pub at: i64,
    /// Promote even though the build's last test failed.
    pub force: bool,
    pub note: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PromotionKind {
    Promote,
    /// Back to an older build that ran in the environment before.
    Rollback,
}

impl PromotionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PromotionKind::Promote => "promote",
            PromotionKind::Rollback => "rollback",
        }
    }
}

impl std::fmt::Display for PromotionKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One move of an image in an environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Promotion {
    /// 1, 2, 3… within the environment, in the order the moves happened.
    pub seq: i64,
    pub env: String,
    /// The image name.
    pub name: String,
    pub build: String,
    pub version: String,
    /// The build of this image that ran in the environment before.
    pub previous: Option<String>,
    pub kind: PromotionKind,
    pub who: String,
    pub at: i64,
    /// The build's last test had failed and `force` overrode that.
    pub forced: bool,
    pub note: Option<String>,
}

/// What runs in an environment now, for one image name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Deployment {
    pub env: String,
    pub name: String,
    pub build: String,
    pub version: String,
    pub since: i64,
    pub by: String,
}

/// Where a build was pushed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Push {
    /// `REGISTRY/REPO@sha256:…`, the image manifest.
    pub reference: String,
    pub tags: Vec<String>,
    pub at: i64,
}

/// A `kiln rebuild` about to run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewRollout {
    /// The fleet's directory, as the rebuild was given it (absolute).
    pub dir: String,
    /// What chose the images: `--outdated`, `--changed-since REV`, or
    /// `images NAME…`.
    pub trigger: String,
    /// JSON text, kept as given.
    pub options: String,
    pub who: String,
    pub at: i64,
}

/// One `kiln rebuild`, from its first run to its end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rollout {
    /// 1, 2, 3… in the order rollouts started.
    pub id: i64,
    pub dir: String,
    pub trigger: String,
    /// JSON text, as the last run gave it.
    pub options: String,
    pub who: String,
    pub started_at: i64,
    /// `None`: still running, or killed and not rerun yet.
    pub finished_at: Option<i64>,
    /// `passed` or `failed`, once finished.
    pub outcome: Option<String>,
    /// Runs of the same rollout: 1, plus one per rerun after a kill.
    pub attempts: i64,
    /// In the order they were first recorded (wave by wave).
    pub images: Vec<RolloutImage>,
}

/// What a rollout did with one image; a rerun overwrites it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RolloutImage {
    pub name: String,
    /// 1-based.
    pub wave: i64,
    pub reason: String,
    /// `started`, `passed`, `failed` or `skipped`.
    pub status: String,
    pub build: Option<String>,
    /// Every stage came from the cache.
    pub cached: bool,
    /// `passed`, `reused` or `failed`; `None`: not booted.
    pub tested: Option<String>,
    /// The environment it was promoted to.
    pub promoted: Option<String>,
    /// Why it failed or was skipped.
    pub detail: Option<String>,
    pub at: i64,
}
