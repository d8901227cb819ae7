//! The threads that turn inputs into events for the owner: signals (taken synchronously with
//! sigwait), nftables change notifications and rtnetlink changes, each burst coalesced into one event.

use crate::consts::{NET_BURST_MAX_MS, NET_DEBOUNCE_MS, PERIODIC_CHECK_SECS};
use crate::firewall::monitor::{OwnPids, RulesetEvents};
use crate::net::rtnl::NetEvents;
use crate::owner::Event;
use crate::queue::Queue;
use nix::sys::signal::{SigSet, Signal};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the input threads share with the owner.
pub(super) struct Inputs {
    /// A ruleset event is queued (one is enough: the owner reads the whole table).
    pub ruleset_pending: Arc<AtomicBool>,
    /// A network event is queued.
    pub net_pending: Arc<AtomicBool>,
    /// The MACs whose bridge FDB entries are news (the owner keeps it current).
    pub fdb_watched: Arc<std::sync::Mutex<Vec<crate::config::Mac>>>,
    /// A watched MAC's FDB entry changed since the owner last read the FDB.
    pub fdb_changed: Arc<AtomicBool>,
    /// No rtnetlink events (subscription failed): the periodic check reads the network instead.
    pub net_events_missing: bool,
    /// No nftables events (never, or no longer): the periodic check reads our tables back instead.
    pub ruleset_events_missing: Arc<AtomicBool>,
}

/// Blocks the signals in every thread to come; one thread takes them with sigwait.
pub(super) fn block_signals() -> nix::Result<SigSet> {
    let mut signals = SigSet::empty();
    for s in [Signal::SIGHUP, Signal::SIGTERM, Signal::SIGINT] {
        signals.add(s);
    }
    signals.thread_block()?;
    Ok(signals)
}

/// Starts the input threads; `own` names the nft processes whose changes are no news.
pub(super) fn spawn(signals: SigSet, events: &Arc<Queue<Event>>, own: Arc<OwnPids>) -> Inputs {
    spawn_signal_thread(signals, events.clone());
    let ruleset_pending = Arc::new(AtomicBool::new(false));
    let ruleset_events_missing = Arc::new(AtomicBool::new(false));
    let missing = ruleset_events_missing.clone();
    spawn_ruleset_monitor(events.clone(), ruleset_pending.clone(), own, missing);
    let net_pending = Arc::new(AtomicBool::new(false));
    let fdb_watched = Arc::default();
    let fdb_changed = Arc::new(AtomicBool::new(true));
    let net_events_missing = !spawn_network_monitor(
        events.clone(),
        net_pending.clone(),
        Arc::clone(&fdb_watched),
        Arc::clone(&fdb_changed),
    );
    Inputs {
        ruleset_pending,
        net_pending,
        fdb_watched,
        fdb_changed,
        net_events_missing,
        ruleset_events_missing,
    }
}

fn spawn_signal_thread(signals: SigSet, events: Arc<Queue<Event>>) {
    std::thread::spawn(move || loop {
        let ev = match signals.wait() {
            Ok(Signal::SIGHUP) => Event::Reload,
            Ok(sig) => Event::Stop(sig),
            Err(_) => continue,
        };
        if events.push(ev).is_err() {
            return;
        }
    });
}

/// Wakes the owner when someone else changes the ruleset. Without events (the subscription or the
/// socket failed) `missing` is set, and the periodic check reads our tables back instead.
fn spawn_ruleset_monitor(
    owner: Arc<Queue<Event>>,
    pending: Arc<AtomicBool>,
    own: Arc<OwnPids>,
    missing: Arc<AtomicBool>,
) {
    let events = match RulesetEvents::subscribe(own) {
        Ok(e) => e,
        Err(e) => {
            warning!("cannot subscribe to nftables change events ({e}); checking every {PERIODIC_CHECK_SECS} s only");
            missing.store(true, Ordering::SeqCst);
            return;
        }
    };
    std::thread::spawn(move || loop {
        if let Err(e) = events.wait() {
            warning!(
                "nftables change events failed ({e}); checking every {PERIODIC_CHECK_SECS} s only"
            );
            missing.store(true, Ordering::SeqCst);
            return;
        }
        // One queued event is enough: the owner reads the whole table when it gets to it.
        if !pending.swap(true, Ordering::SeqCst) && owner.push(Event::RulesetChanged).is_err() {
            return;
        }
    });
}

/// Wakes the owner on rtnetlink changes, a burst coalesced into one event. `false`: no events (the
/// periodic check then reads the network).
fn spawn_network_monitor(
    owner: Arc<Queue<Event>>,
    pending: Arc<AtomicBool>,
    watched: Arc<std::sync::Mutex<Vec<crate::config::Mac>>>,
    fdb_changed: Arc<AtomicBool>,
) -> bool {
    let mut events = match NetEvents::subscribe(watched, fdb_changed) {
        Ok(e) => e,
        Err(e) => {
            warning!("cannot subscribe to rtnetlink events ({e}); reading the network every {PERIODIC_CHECK_SECS} s");
            return false;
        }
    };
    std::thread::spawn(move || loop {
        if let Err(e) = events.wait() {
            error!(
                "rtnetlink events failed ({e}); network changes are seen at the next check only"
            );
            return;
        }
        let read_by = Instant::now() + Duration::from_millis(NET_BURST_MAX_MS);
        loop {
            let left = read_by.saturating_duration_since(Instant::now());
            let quiet = Duration::from_millis(NET_DEBOUNCE_MS).min(left);
            if left.is_zero() || !events.wait_for(quiet) {
                break;
            }
        }
        if !pending.swap(true, Ordering::SeqCst) && owner.push(Event::NetworkChanged).is_err() {
            return;
        }
    });
    true
}
