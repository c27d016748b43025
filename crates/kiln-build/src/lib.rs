//! The one pipeline. Each public function is a command of the CLI, and
//! reads as the list of stages it runs; the stages live in their crates.

mod chain;
mod error;
mod indices;
mod init;
mod lock;
mod progress;

pub use error::Error;
pub use init::init;
pub use lock::{CheckReport, LockOptions, LockReport, PackageChange, check, lock};
pub use progress::{Progress, Quiet};
