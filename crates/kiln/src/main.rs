//! The kiln binary: parse the command line, call the pipeline, print the
//! result or the error chain, and pick the exit code.

mod cli;
mod failure;
mod fleet_cli;
mod fleet_output;
mod output;
mod team;
mod trace;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // Like other Unix tools, end quietly when the reader of our output
    // goes away (`kiln inspect | head`) instead of panicking on the write.
    // SAFETY: called first, before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = cli::Cli::parse();
    match cli::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            output::error(&e);
            ExitCode::from(e.exit_code())
        }
    }
}
