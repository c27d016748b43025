//! kiln-fleet: every image under a directory as one graph.
//!
//! [`Graph::discover`] finds each `kiln.toml`, links it to its parent by
//! `base.from` and to the fragments it includes, and orders the images in
//! waves (an image's wave is one more than its parent's), which is the order
//! a rebuild must follow. How a stage builds is kiln-build's business.

mod error;
mod graph;
mod outdated;
mod plan;
mod rebuild;
mod rollout;

pub use error::Error;
pub use graph::{Edge, EdgeKind, FragmentNode, Graph, ImageNode};
pub use outdated::{ImageFreshness, Inherited, OutdatedReport, outdated, outdated_built};
pub use plan::{Plan, Planned, Selection, plan};
pub use rebuild::{Outcome, RebuildOptions, RebuildReport, Status, Tested, rebuild};
