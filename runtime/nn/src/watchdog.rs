//! Stops native graph calls at their deadline: one thread per process sleeps until the earliest
//! deadline of the calls in flight and cancels those past it. A call registers on start and
//! leaves when it ends (a lock and a map insert each: no thread, no timer per call).
//!
//! The thread is woken only for a deadline earlier than the time it sleeps until. With nothing
//! in flight it sleeps for [`IDLE`] rather than without end, so that calls arriving one after
//! another with deadlines further off than that never pay for a wake-up (a futex call and a
//! context switch on the hot path of every prediction).

use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

/// How long the thread sleeps with no call in flight.
const IDLE: Duration = Duration::from_millis(250);

/// Something a deadline can stop.
pub(crate) trait Cancel: Send + Sync {
    fn cancel(&self);
}

#[derive(Default)]
struct Calls {
    next: u64,
    by_deadline: BTreeMap<(Instant, u64), Arc<dyn Cancel>>,
    /// When the thread wakes next, if it sleeps (set under the lock it sleeps on).
    sleeping_until: Option<Instant>,
}

pub(crate) struct Watchdog {
    calls: Mutex<Calls>,
    wake: Condvar,
}

/// A registered call; leaving the scope unregisters it.
pub(crate) struct Watch {
    key: (Instant, u64),
}

impl Drop for Watch {
    fn drop(&mut self) {
        watchdog().lock().by_deadline.remove(&self.key);
    }
}

fn watchdog() -> &'static Watchdog {
    static WATCHDOG: OnceLock<&'static Watchdog> = OnceLock::new();
    WATCHDOG.get_or_init(|| {
        let watchdog: &'static Watchdog = Box::leak(Box::new(Watchdog {
            calls: Mutex::new(Calls::default()),
            wake: Condvar::new(),
        }));
        let spawned = std::thread::Builder::new()
            .name("kiln-nn-deadline".into())
            .spawn(move || watchdog.run());
        if let Err(e) = spawned {
            tracing::error!("cannot start the graph deadline thread: {e}");
        }
        watchdog
    })
}

/// Registers `call` to be cancelled at `deadline` unless it ends first.
pub(crate) fn watch(deadline: Instant, call: Arc<dyn Cancel>) -> Watch {
    let dog = watchdog();
    let mut calls = dog.lock();
    calls.next += 1;
    let key = (deadline, calls.next);
    calls.by_deadline.insert(key, call);
    if calls.sleeping_until.is_none_or(|until| deadline < until) {
        dog.wake.notify_one();
    }
    Watch { key }
}

impl Watchdog {
    fn lock(&self) -> std::sync::MutexGuard<'_, Calls> {
        // The map is never left half-updated.
        self.calls.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn run(&self) {
        let mut calls = self.lock();
        loop {
            let now = Instant::now();
            while let Some(entry) = calls.by_deadline.first_entry() {
                if entry.key().0 > now {
                    break;
                }
                entry.remove().cancel();
            }
            let until = calls
                .by_deadline
                .keys()
                .next()
                .map_or(now + IDLE, |&(deadline, _)| deadline);
            calls.sleeping_until = Some(until);
            calls = self
                .wake
                .wait_timeout(calls, until.saturating_duration_since(now))
                .unwrap_or_else(PoisonError::into_inner)
                .0;
            calls.sleeping_until = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    struct Flag(AtomicBool);

    impl Cancel for Flag {
        fn cancel(&self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_call_past_its_deadline_is_cancelled_and_one_that_ends_first_is_not() {
        let late = Arc::new(Flag(AtomicBool::new(false)));
        let quick = Arc::new(Flag(AtomicBool::new(false)));
        let _late = watch(Instant::now() + Duration::from_millis(20), late.clone());
        drop(watch(
            Instant::now() + Duration::from_millis(10),
            quick.clone(),
        ));
        let waited = Instant::now();
        while !late.0.load(Ordering::SeqCst) && waited.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(late.0.load(Ordering::SeqCst));
        assert!(!quick.0.load(Ordering::SeqCst));
    }

    #[test]
    fn an_earlier_deadline_wakes_the_thread_sleeping_until_a_later_one() {
        let far = Arc::new(Flag(AtomicBool::new(false)));
        let _far = watch(Instant::now() + Duration::from_secs(3600), far.clone());
        std::thread::sleep(Duration::from_millis(20));
        let near = Arc::new(Flag(AtomicBool::new(false)));
        let _near = watch(Instant::now() + Duration::from_millis(10), near.clone());
        let waited = Instant::now();
        while !near.0.load(Ordering::SeqCst) && waited.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(near.0.load(Ordering::SeqCst));
        assert!(!far.0.load(Ordering::SeqCst));
    }
}
