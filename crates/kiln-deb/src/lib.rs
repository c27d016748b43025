//! Debian's archive formats, parsed and checked: nothing here touches the
//! network or decides which package to install.

pub mod arch;
pub mod child;
pub mod control;
pub mod names;
pub mod packages;
pub mod par;
pub mod pipe;
pub mod relation;
pub mod release;
pub mod scratch;
pub mod signature;
pub mod sources;

pub use arch::Architecture;
pub use debversion::Version;
pub use packages::{Package, Priority};
pub use relation::{Atom, Op, Relation};
