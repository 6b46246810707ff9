//! Stops native graph calls at their deadline: one thread per process sleeps until the earliest
//! deadline of the calls in flight and cancels those past it. A call registers on start and
//! leaves when it ends (a lock and a map insert each: no thread, no timer per call).

use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError};
use std::time::Instant;

/// Something a deadline can stop.
pub(crate) trait Cancel: Send + Sync {
    fn cancel(&self);
}

#[derive(Default)]
struct Calls {
    next: u64,
    by_deadline: BTreeMap<(Instant, u64), Arc<dyn Cancel>>,
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
    let earliest = calls.by_deadline.keys().next().is_none_or(|k| key < *k);
    calls.by_deadline.insert(key, call);
    if earliest {
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
            calls = match calls.by_deadline.keys().next() {
                None => self
                    .wake
                    .wait(calls)
                    .unwrap_or_else(PoisonError::into_inner),
                Some(&(deadline, _)) => {
                    self.wake
                        .wait_timeout(calls, deadline.saturating_duration_since(now))
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
            };
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
}
