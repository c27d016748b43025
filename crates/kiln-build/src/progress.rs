//! Status lines for long work: shown on a terminal, silent in logs, so the
//! library never decides where output goes.

/// Receives one line per step; the CLI prints them or not.
pub trait Progress: Sync {
    fn step(&self, message: &str);

    /// Work measured in units (bytes, files): `done` of `total` so far.
    fn counter(&self, _label: &str, _done: u64, _total: u64) {}
}

/// Says nothing: for tests and `--json`.
pub struct Quiet;

impl Progress for Quiet {
    fn step(&self, _: &str) {}
}
