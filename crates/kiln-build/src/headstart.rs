//! A child's copy of its parent's tree, started while the parent's last
//! dpkg run goes on, and finished once the parent is done by copying again
//! only what changed after the copy began.
//!
//! On a cold build the parent's last dpkg run is mostly the kernel's
//! initramfs: one core's work for seconds, while the copy (13,000 files,
//! 350 MB) would otherwise sit between the parent's last step and the
//! child's first.
//!
//! What changed is told by each entry's ctime: the kernel sets it on every
//! change of content, owner, mode, xattrs or links, and no program can set
//! it back. When the wall clock itself was set back meanwhile, the copy is
//! made again whole.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rustix::fs::Timespec;

use crate::error::Error;
use crate::fsutil;
use crate::treecopy::{self, SyncOptions};

/// File times come from a clock that lags the precise one by up to a tick
/// (10 ms at the coarsest kernels): [`HeadStart::start`] returns only this
/// long after taking its start, so every later change is dated after it.
const TICKS: Duration = Duration::from_millis(25);

/// How far the wall clock may drift from the monotonic one before the copy
/// is no longer trusted.
const DRIFT: Duration = Duration::from_secs(1);

/// A copy that may be started once, from the parent's build events.
#[derive(Default)]
pub(crate) struct HeadStart {
    job: Mutex<Option<Job>>,
    stop: Arc<AtomicBool>,
}

struct Job {
    thread: JoinHandle<()>,
    copied: Copied,
}

/// A copy made while its source changed; [`Copied::finish`] makes it exact.
/// Dropped unfinished (a build that failed on the way), it is removed.
pub(crate) struct Copied {
    pub dir: PathBuf,
    /// When the copy ran, for the stage's note: "while it built".
    pub during: &'static str,
    wall: SystemTime,
    started: Instant,
    finished: bool,
}

impl HeadStart {
    /// Starts copying `from` into `to` (made afresh) on a background
    /// thread, leaving out `skip` (relative to `from`). Only the first call
    /// does anything. Call it while nothing else changes `from`: what
    /// changed before is kept as copied, what changes after its return is
    /// copied again.
    pub(crate) fn start(&self, from: &Path, to: &Path, skip: &str, during: &'static str) {
        let mut job = self.job.lock().unwrap_or_else(|e| e.into_inner());
        if job.is_some() {
            return;
        }
        // Taken before the first read: what changes after it is copied again.
        let copied = Copied {
            dir: to.to_path_buf(),
            during,
            wall: SystemTime::now(),
            started: Instant::now(),
            finished: false,
        };
        let (from, to, skip, stop) = (
            from.to_path_buf(),
            to.to_path_buf(),
            skip.to_string(),
            self.stop.clone(),
        );
        let thread = std::thread::spawn(move || {
            kiln_deb::par::background_priority();
            if fsutil::remove_tree(&to).is_err() {
                return;
            }
            let skip = [skip.as_str()];
            // Whatever this leaves wrong, the finishing sync repairs.
            let _ = treecopy::sync_tree(
                &from,
                &to,
                &SyncOptions {
                    since: None,
                    parallel: false,
                    best_effort: true,
                    stop: Some(&stop),
                    skip: &skip,
                },
            );
        });
        *job = Some(Job { thread, copied });
        drop(job);
        std::thread::sleep(TICKS);
    }

    /// Stops the copy where it got to and hands it over, if it started.
    pub(crate) fn stop(&self) -> Option<Copied> {
        self.stop.store(true, Ordering::Relaxed);
        let job = self.job.lock().unwrap_or_else(|e| e.into_inner()).take()?;
        let _ = job.thread.join();
        Some(job.copied)
    }
}

/// A copy nobody took over (its build failed on the way) stops and goes.
impl Drop for HeadStart {
    fn drop(&mut self) {
        drop(self.stop());
    }
}

impl Copied {
    /// Makes the copy exactly what `from`, its source now final, is.
    pub(crate) fn finish(mut self, from: &Path) -> Result<(), Error> {
        let since = match self.trusted_start() {
            Some(start) => Some(timespec(start)),
            None => {
                fsutil::remove_tree(&self.dir)?;
                None
            }
        };
        treecopy::sync_tree(
            from,
            &self.dir,
            &SyncOptions {
                since,
                parallel: true,
                best_effort: false,
                stop: None,
                skip: &[],
            },
        )
        .map_err(fsutil::io(&self.dir))?;
        self.finished = true;
        Ok(())
    }

    /// Removes the copy.
    pub(crate) fn discard(mut self) -> Result<(), Error> {
        self.finished = true;
        let removed = fsutil::remove_tree(&self.dir);
        fsutil::release_tmp(&self.dir);
        removed
    }

    /// The start, unless the wall clock went back since.
    fn trusted_start(&self) -> Option<SystemTime> {
        let passed = SystemTime::now().duration_since(self.wall).ok()?;
        (passed + DRIFT >= self.started.elapsed()).then_some(self.wall)
    }
}

impl Drop for Copied {
    fn drop(&mut self) {
        if !self.finished {
            let _ = fsutil::remove_tree(&self.dir);
            fsutil::release_tmp(&self.dir);
        }
    }
}

fn timespec(t: SystemTime) -> Timespec {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    Timespec {
        tv_sec: d.as_secs() as i64,
        tv_nsec: i64::from(d.subsec_nanos()),
    }
}
