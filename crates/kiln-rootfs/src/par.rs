//! Running one fallible job per item on a few threads: kiln's one pool,
//! used by the root filesystem's unpacking and by the fleet's waves.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Runs `job` on every item on up to `threads` threads, in the order given
/// (callers put the largest first, so no big one finishes alone at the end).
/// The first error stops the jobs not yet started and is returned.
/// A worker that panicked is reported as an I/O error.
pub fn for_each<T: Sync, E: Send + From<std::io::Error>>(
    items: &[T],
    threads: usize,
    job: impl Fn(&T) -> Result<(), E> + Sync,
) -> Result<(), E> {
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads.clamp(1, items.len().max(1)))
            .map(|_| {
                scope.spawn(|| -> Result<(), E> {
                    while let Some(item) = items.get(next.fetch_add(1, Ordering::Relaxed)) {
                        if let Err(e) = job(item) {
                            next.store(items.len(), Ordering::Relaxed);
                            return Err(e);
                        }
                    }
                    Ok(())
                })
            })
            .collect();
        let mut first = Ok(());
        for w in workers {
            let result = w
                .join()
                .unwrap_or_else(|_| Err(std::io::Error::other("a worker thread panicked").into()));
            if first.is_ok() {
                first = result;
            }
        }
        first
    })
}

/// [`for_each`] that keeps each job's result, in the order of `items`.
pub fn map<T: Sync, R: Send, E: Send + From<std::io::Error>>(
    items: &[T],
    threads: usize,
    job: impl Fn(&T) -> Result<R, E> + Sync,
) -> Result<Vec<R>, E> {
    let slots: Vec<std::sync::Mutex<Option<R>>> =
        items.iter().map(|_| std::sync::Mutex::new(None)).collect();
    let indexes: Vec<usize> = (0..items.len()).collect();
    for_each(&indexes, threads, |&i| -> Result<(), E> {
        let r = job(&items[i])?;
        *slots[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
        Ok(())
    })?;
    slots
        .into_iter()
        .map(|s| {
            s.into_inner()
                .unwrap_or_else(|e| e.into_inner())
                .ok_or_else(|| std::io::Error::other("a job left no result").into())
        })
        .collect()
}

/// Makes the calling thread yield to the build's critical path (dpkg and the
/// scripts it runs, the thread waiting for them): work done in the
/// background only takes what they leave idle. Best effort.
pub fn background_priority() {
    let _ = rustix::process::setpriority_process(Some(rustix::thread::gettid()), 10);
}

/// The threads to use for CPU-bound work.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}
