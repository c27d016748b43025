//! Boot a disk image under QEMU with UEFI firmware and judge it.
//!
//! `kiln test` is [`test`]: it boots the exact image through a throwaway
//! copy-on-write overlay (the artefact is never written), delivers the
//! runtime configuration on a CIDATA seed disk, lets the guest agent run the
//! checks once the machine reaches multi-user, and reads their results back
//! over a virtio-serial port. `kiln run` is [`run_interactive`].
//!
//! The outcome is `Result<Result<Report, CheckFailure>, VmError>`: a failed
//! check is a verdict on the image (exit 1), a machine that could not be run
//! at all is an error (exit 2). A runtime configuration that lacks a required
//! key is refused before anything boots, by [`RuntimeConfig::load`].
//!
//! The guest half lives in the image: [`agent_files`] and [`agent_links`]
//! list what the disk stage adds (two small shell scripts and two units).

mod accel;
mod agent;
mod console;
mod error;
mod phases;
mod qemu;
mod report;
mod runtime;
mod seed;
mod session;

pub use accel::{Accel, AccelChoice, AccelReason, Accelerator};
pub use agent::{AGENT_PORT, AgentFile, AgentLink, agent_files, agent_links};
pub use console::ConsoleTail;
pub use error::VmError;
pub use phases::{BootPhases, SLOWEST, UnitTime};
pub use qemu::{DirectKernel, Firmware};
pub use report::{CheckFailure, CheckResult, Late, Report, Run};
pub use runtime::{RuntimeConfig, RuntimeConfigError};
pub use session::{RunOptions, TestOptions, run_interactive, test};
