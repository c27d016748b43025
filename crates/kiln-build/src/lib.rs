//! The one pipeline. Each public function is a command of the CLI, and
//! reads as the list of stages it runs; the stages live in their crates.

mod bootfiles;
mod build;
mod catalog;
mod chain;
mod error;
mod fetch;
mod firmware;
mod fsutil;
mod gc;
mod graph;
mod headstart;
mod indices;
mod init;
mod keys;
mod lock;
mod needs;
mod origins;
mod outdated;
mod plan;
mod progress;
mod pull;
mod push;
mod remote;
mod stages;
mod trace;
mod treecopy;
mod uploads;
mod vmtest;

pub use bootfiles::find as boot_files;
pub use build::unix_now;
pub use build::{BuildOptions, BuildReport, FetchReport, PackageRecord, build, fetch, inspect};
pub use catalog::{open as open_catalog, who};
pub use error::Error;
pub use firmware::{FirmwareChoice, FirmwareSource};
pub use gc::{GcOptions, GcReport, Removed, gc, parse_keep};
pub use graph::{IGNORE_FILE, definition_dirs};
pub use init::init;
pub use kiln_catalog::{
    Build, BuildFilter, Catalog, Deployment, NewRollout, Promotion, PromotionKind, Rollout,
    RolloutImage, TestRecord,
};
pub use kiln_manifest::{Diff, rfc3339};
pub use kiln_registry::interrupt as interrupt_uploads;
pub use kiln_spec::{Architecture, Format};
pub use kiln_vm::{Accel, AccelChoice, CheckFailure, DirectKernel, Report as TestReport};
pub use lock::{CheckReport, LockOptions, LockReport, PackageChange, check, lock};
pub use outdated::{Freshness, OutdatedOptions, Pending, Running, outdated, outdated_running};
pub use plan::{Node as PlanNode, PlanTarget, PlannedJob, plan};
pub use progress::{Progress, Quiet};
pub use pull::{PullReport, pull};
pub use push::{PushReport, PushedArtifact, RegistryOptions, push};
pub use remote::{ARTIFACT_TYPE as CACHE_ARTIFACT_TYPE, CacheMode, RemoteCache, RemoteReport};
pub use stages::{LayerRecord, OutputRecord, StageRecord};
pub use trace::{DiffReport, ShowReport, diff, promote, rollback, show};
pub use vmtest::{TestOptions, run as run_vm, test};
