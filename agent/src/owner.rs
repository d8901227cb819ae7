//! The thread contract: how the threads that take requests (the API, the IGD) hand mapping changes to
//! the one thread that owns the state (`daemon::Owner`), and the state they share with it. Below everything
//! that uses it: the daemon drives it, the protocol modules only ask.

use crate::consts::DECISIONS_KEPT;
use crate::firewall::apply::Nft;
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

/// State shared with the API and IGD threads: the snapshot (written only by the owner), the nft runner,
/// the decision log and the way to the owner.
pub struct Shared {
    pub snapshot: Mutex<Snapshot>,
    pub nft: Nft,
    pub decisions: Mutex<VecDeque<Decision>>,
    pub owner: Arc<Queue<Event>>,
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
        }
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
