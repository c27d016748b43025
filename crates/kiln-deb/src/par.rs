//! The one pool for CPU-bound work (decompressing, hashing, parsing,
//! copying trees): rayon's global pool, sized and prioritised here, in the
//! lowest crate that has such work, so every stage above shares its threads.
//!
//! Its threads run at a lower priority: while a build's critical path is
//! dpkg and the maintainer scripts it runs (other processes), the pool takes
//! only what they leave idle; with nothing else running it costs nothing.
//!
//! Not for waiting: jobs that mostly wait (downloads, whole builds waiting
//! on dpkg) run through [`bounded`], each on a thread of its own, so a
//! blocked download never holds a pool thread; a thread that overlaps two
//! stages (a tar feeding gzip, a copy running while the next image builds)
//! stays its own thread.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, Once};

use rayon::prelude::*;

static INIT: Once = Once::new();

/// Builds the global pool the first time any of this module runs. A pool
/// someone built before (a program embedding kiln) is kept as it is.
fn init() {
    INIT.call_once(|| {
        let _already_built = rayon::ThreadPoolBuilder::new()
            .thread_name(|i| format!("kiln-pool-{i}"))
            .start_handler(|_| background_priority())
            .build_global();
    });
}

/// How many jobs run at once: the pool's threads (one per core).
pub fn cores() -> usize {
    init();
    rayon::current_num_threads()
}

/// Runs `job` on every item; the first error is returned and the items not
/// yet started are skipped. Callers put the largest items first, so no big
/// one finishes alone at the end.
pub fn for_each<T: Sync, E: Send>(
    items: &[T],
    job: impl Fn(&T) -> Result<(), E> + Sync + Send,
) -> Result<(), E> {
    init();
    items.par_iter().try_for_each(job)
}

/// [`for_each`] that keeps each job's result, in the order of `items`.
pub fn map<T: Sync, R: Send, E: Send>(
    items: &[T],
    job: impl Fn(&T) -> Result<R, E> + Sync + Send,
) -> Result<Vec<R>, E> {
    init();
    items.par_iter().map(job).collect()
}

/// [`map`] with a scratch value per thread (a read buffer), made by `init`.
pub fn map_with<T: Sync, R: Send, E: Send, S>(
    items: &[T],
    scratch: impl Fn() -> S + Sync + Send,
    job: impl Fn(&mut S, &T) -> Result<R, E> + Sync + Send,
) -> Result<Vec<R>, E> {
    init();
    items.par_iter().map_init(scratch, job).collect()
}

/// Runs `a` and `b` at once and returns both results.
pub fn join<A: Send, B: Send>(
    a: impl FnOnce() -> A + Send,
    b: impl FnOnce() -> B + Send,
) -> (A, B) {
    init();
    rayon::join(a, b)
}

/// Runs `job` on every item, at most `at_once` at a time, each on a thread
/// of its own (see the module's note), and returns every result in the
/// order of `items`: nothing is skipped, since callers report each one.
pub fn bounded<T: Sync, R: Send>(
    items: &[T],
    at_once: usize,
    job: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let next = AtomicUsize::new(0);
    let slots: Vec<Mutex<Option<R>>> = items.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for _ in 0..at_once.clamp(1, items.len().max(1)) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    let r = job(item);
                    *slots[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
                }
            });
        }
    });
    slots
        .into_iter()
        .map(|s| s.into_inner().unwrap_or_else(|e| e.into_inner()))
        // A job that panicked re-raised its panic when the scope ended.
        .map(|r| r.expect("every item ran"))
        .collect()
}

/// Runs `body` on the calling thread (at its own priority) while jobs it
/// spawns on the scope run on the pool; returns once all of them finished.
pub fn scope<'s, R>(body: impl FnOnce(&rayon::Scope<'s>) -> R) -> R {
    init();
    rayon::in_place_scope(body)
}

/// Makes the calling thread yield to the build's critical path. Best effort:
/// a system that refuses leaves the priority as it was.
pub fn background_priority() {
    let _ = rustix::process::setpriority_process(Some(rustix::thread::gettid()), 10);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_keep_their_order_and_the_first_error_wins() {
        let items: Vec<u32> = (0..1000).collect();
        let doubled = map(&items, |&i| Ok::<_, String>(i * 2)).unwrap();
        assert_eq!(doubled, items.iter().map(|i| i * 2).collect::<Vec<_>>());
        let e = for_each(&items, |&i| if i == 500 { Err(i) } else { Ok(()) }).unwrap_err();
        assert_eq!(e, 500);
        let sums = map_with(&items, Vec::new, |seen: &mut Vec<u32>, &i| {
            seen.push(i);
            Ok::<_, ()>(i + 1)
        })
        .unwrap();
        assert_eq!(sums[999], 1000);
    }

    #[test]
    fn bounded_runs_at_most_so_many_at_once_and_keeps_the_order() {
        let running = AtomicUsize::new(0);
        let most = AtomicUsize::new(0);
        let items: Vec<u32> = (0..12).collect();
        let out = bounded(&items, 3, |&i| {
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(now, Ordering::SeqCst);
            std::thread::sleep(std::time::Duration::from_millis(20));
            running.fetch_sub(1, Ordering::SeqCst);
            if i % 5 == 0 { Err(i) } else { Ok(i * 10) }
        });
        assert_eq!(out.len(), 12);
        assert_eq!(out[1], Ok(10));
        assert_eq!(out[5], Err(5));
        assert_eq!(most.load(Ordering::SeqCst), 3);
        assert!(bounded(&[] as &[u8], 4, |_| ()).is_empty());
    }

    #[test]
    fn the_pool_threads_yield_and_the_caller_does_not() {
        let caller = rustix::process::getpriority_process(Some(rustix::thread::gettid())).unwrap();
        let items = [0u8; 4];
        let inside = map(&items, |_| {
            rustix::process::getpriority_process(Some(rustix::thread::gettid()))
        })
        .unwrap();
        assert!(inside.iter().all(|&p| p >= 10), "{inside:?}");
        let on_caller = scope(|_| {
            rustix::process::getpriority_process(Some(rustix::thread::gettid())).unwrap()
        });
        assert_eq!(on_caller, caller);
        assert!(cores() >= 1);
    }
}
