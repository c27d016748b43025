//! Turns a request (a variant's seed set, asked-for packages, a parent's
//! fixed packages) and the archive's indices into the exact package set to
//! install. The choices follow apt's `MarkInstall`: candidates are the newest
//! version across suites, dependencies are satisfied depth-first, alternatives
//! in the order written, providers ranked as apt's `CompareProviders` ranks
//! them. Matching apt matters: users compare kiln's image with what
//! `apt-get install` would have given them.

mod error;
mod explain;
mod request;
mod solver;
mod universe;

pub use error::ResolveError;
pub use request::{Reason, Request, Resolution, Resolved, Seed, Variant};
pub use solver::resolve;
pub use universe::{Entry, Universe};
