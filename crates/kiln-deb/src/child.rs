//! Child processes that end with kiln. A kiln stopped by SIGKILL (a CI
//! job's timeout, the OOM killer, `kill -9`) runs no destructor, so a child
//! it started would live on: a QEMU using every core, a `mke2fs` writing a
//! disk nobody will read, a test's registry holding its port.

use std::os::unix::process::CommandExt;
use std::process::Command;

use rustix::process::{Signal, getpid, getppid, set_parent_process_death_signal};

/// Makes the kernel send SIGKILL to `cmd`'s process when its parent ends.
///
/// The kernel ties the signal to the *thread* that spawns, not to the
/// process: spawn from the thread that waits for the child (as every caller
/// in kiln does), never from a short-lived helper thread. A change of user
/// clears the setting; `Command::uid` switches before this hook runs, so
/// the two combine.
pub fn die_with_parent(cmd: &mut Command) -> &mut Command {
    let parent = getpid();
    // SAFETY: between fork and exec this runs only prctl(2) and getppid(2),
    // both async-signal-safe, and allocates nothing on success.
    unsafe {
        cmd.pre_exec(move || {
            set_parent_process_death_signal(Some(Signal::KILL))?;
            // A parent that died between fork and prctl sent no signal.
            if getppid() != Some(parent) {
                return Err(std::io::Error::from(std::io::ErrorKind::BrokenPipe));
            }
            Ok(())
        })
    }
}

/// Whether process `pid` still runs: not gone, and not a zombie waiting for
/// whoever adopted it to reap it.
pub fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        // The state follows the command name, which may hold anything.
        s.rsplit(')')
            .next()
            .and_then(|rest| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    use std::time::{Duration, Instant};

    const ROLE: &str = "KILN_TEST_CHILD_PARENT";

    /// In the parent role (this same test, run again by the test below):
    /// starts one `sleep` tied to it and one not, prints their pids, and
    /// waits for them, to be killed first.
    fn act_as_parent() {
        let sleep = || {
            let mut c = Command::new("sleep");
            c.arg("300").stdout(Stdio::null());
            c
        };
        let mut tied = die_with_parent(&mut sleep()).spawn().expect("sleep");
        let mut free = sleep().spawn().expect("sleep");
        println!("pids {} {}", tied.id(), free.id());
        // Killed long before either ends.
        let _ = (tied.wait(), free.wait());
    }

    #[test]
    fn a_child_dies_with_its_parent_killed_by_sigkill() {
        if std::env::var_os(ROLE).is_some() {
            return act_as_parent();
        }
        let mut parent = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "child::tests::a_child_dies_with_its_parent_killed_by_sigkill",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(ROLE, "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let out = BufReader::new(parent.stdout.take().unwrap());
        // libtest writes "test NAME ... " before the test's own output.
        let line = out
            .lines()
            .map(Result::unwrap)
            .find_map(|l| Some(l.split_once("pids ")?.1.to_string()))
            .expect("the parent printed its children");
        let pids: Vec<u32> = line.split(' ').map(|p| p.parse().unwrap()).collect();
        let (tied, free) = (pids[0], pids[1]);
        assert!(running(tied) && running(free), "both started: {line}");

        parent.kill().unwrap();
        parent.wait().unwrap();
        let started = Instant::now();
        while running(tied) && started.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(20));
        }
        let free_survived = running(free);
        let _ = Command::new("kill")
            .args(["-9", &free.to_string()])
            .status();
        assert!(!running(tied), "the tied child {tied} outlived its parent");
        assert!(
            free_survived,
            "an untied child {free} died too: the test proves nothing"
        );
    }
}
