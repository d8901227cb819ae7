//! The thread contract: how the threads that take requests (the API, the IGD) hand mapping changes to
//! the one thread that owns the state (`daemon::Owner`), and the state they share with it. Below everything
//! that uses it: the daemon drives it, the protocol modules only ask.

use crate::consts::DECISIONS_KEPT;
use crate::firewall::apply::Nft;
use crate::probe::{Report, Trigger, ANSWER_WAIT};
use crate::queue::Queue;
use crate::status::{Decision, Snapshot};
use crate::upnp::error::Refusal;
use crate::upnp::leases::Mapping;
use crate::upnp::policy::Change;
use nix::sys::signal::Signal;
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

/// How long a request thread waits for the state owner.
const OWNER_TIMEOUT: Duration = Duration::from_secs(10);
/// Probe asks that may wait for the probe thread (the API's and rpcd's callers beyond get no run).
const PROBES_WAITING: usize = 4;

/// What the state owner acts on.
pub enum Event {
    Reload,
    Stop(Signal),
    RulesetChanged,
    /// Links, addresses or neighbours changed (rtnetlink).
    NetworkChanged,
    /// A change of the UPnP mappings, answered once the firewall holds it.
    Upnp(Change, Arc<Queue<Result<Outcome, Refusal>>>),
}

/// What a mapping change did.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// The mapping(s) granted or removed.
    pub mappings: Vec<Mapping>,
    /// Live sessions cut (conntrack entries deleted).
    pub sessions_ended: usize,
}

/// A probe run's answer: the report, or how long until one is allowed.
pub type ProbeAnswer = Result<Report, Duration>;
/// A probe asked of the probe thread, and where to answer (none: after a mapping change).
pub type ProbeAsk = (Trigger, Option<Arc<Queue<ProbeAnswer>>>);

/// State shared with the API and IGD threads: the snapshot (written only by the owner, and the probe
/// and upstream threads' parts by them), the nft runner, the decision log, the way to the owner and
/// to the probe thread.
pub struct Shared {
    pub snapshot: Mutex<Snapshot>,
    pub nft: Nft,
    pub decisions: Mutex<VecDeque<Decision>>,
    pub owner: Arc<Queue<Event>>,
    pub probes: Queue<ProbeAsk>,
}

/// Why the state owner could not be asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AskError {
    Stopping,
    NoAnswer,
}

impl Shared {
    pub fn new(snapshot: Snapshot, nft: Nft, owner: Arc<Queue<Event>>) -> Shared {
        Shared {
            snapshot: Mutex::new(snapshot),
            nft,
            decisions: Mutex::new(VecDeque::new()),
            owner,
            probes: Queue::new(PROBES_WAITING),
        }
    }

    /// Runs the end-to-end probe now and waits for it; `None` when the probe thread is busy with
    /// other asks or gone.
    pub fn probe(&self) -> Option<ProbeAnswer> {
        let reply = Arc::new(Queue::new(1));
        self.probes
            .push((Trigger::OnDemand, Some(reply.clone())))
            .ok()?;
        // A run waits for its slowest SYN; asks ahead of this one may each run too.
        reply.pop_timeout(ANSWER_WAIT * (PROBES_WAITING as u32 + 1))
    }

    /// A probe once the rate limit allows, after the forwards changed.
    pub fn probe_later(&self) {
        let _ = self.probes.push((Trigger::MappingChange, None));
    }

    /// Hands a mapping change to the state owner and waits for its answer (an nft apply takes tens of
    /// milliseconds; `OWNER_TIMEOUT` bounds a stuck owner).
    pub fn ask(&self, change: Change) -> Result<Result<Outcome, Refusal>, AskError> {
        let reply = Arc::new(Queue::new(1));
        (self.owner)
            .push(Event::Upnp(change, reply.clone()))
            .map_err(|_| AskError::Stopping)?;
        reply.pop_timeout(OWNER_TIMEOUT).ok_or(AskError::NoAnswer)
    }

    /// Logs an IGD decision and keeps it for the API.
    pub fn record(&self, d: Decision) {
        let port = d
            .external_port
            .map_or(String::new(), |p| format!(" port {p}"));
        match d.error_code {
            Some(code) => notice!(
                "UPnP {}{port} from {} refused ({code}): {}",
                d.action,
                d.client,
                d.reason
            ),
            None => notice!(
                "UPnP {}{port} for {} {}: {}",
                d.action,
                d.client,
                d.result,
                d.reason
            ),
        }
        let mut log = self.decisions.lock().unwrap();
        if log.len() >= DECISIONS_KEPT {
            log.pop_front();
        }
        log.push_back(d);
    }
}
