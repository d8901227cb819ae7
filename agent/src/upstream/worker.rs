//! The upstream thread: the I/O shell of the cascade. The state owner tells it what is wanted (the
//! config, the WAN address and gateway, the ports in force) whenever that changes; the thread asks the
//! gateway (`client`), keeps what it holds (`cascade`) and publishes where that stands. Its requests
//! can wait seconds for a silent gateway, so they never hold up the owner or the IGD's answers.

use super::cascade::{self, Cascade, Held, Idle, Outcome, Place, Standing, Step};
use super::client;
use crate::config::{Upstream, UpstreamMode, UpstreamProtocol};
use std::net::Ipv4Addr;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// How long a clean stop waits for the deletions upstream.
const STOP_WAIT: Duration = Duration::from_secs(5);
/// Rounds of planning per wake-up: each round moves on (a mapping made, another protocol, a quiet
/// time), so this only bounds a gateway that keeps answering in circles.
const MAX_ROUNDS: usize = 8;

/// What the owner wants carried upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Want {
    pub config: Upstream,
    /// Where the gateway's answers arrive: its sockets take no datagram that came in elsewhere.
    pub wan_device: Option<String>,
    pub wan_ipv4: Vec<Ipv4Addr>,
    pub gateway: Option<Ipv4Addr>,
    pub ports: Vec<u16>,
}

/// One mapping the gateway holds for us, as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UpstreamMapping {
    pub port: u16,
    /// The port the internet uses at the gateway's external address.
    pub external_port: u16,
    pub protocol: UpstreamProtocol,
    pub lifetime_s: u32,
    pub expires_in_s: u64,
}

/// Where the cascade stands (the API's `upstream`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UpstreamStatus {
    pub mode: UpstreamMode,
    /// Why nothing is asked upstream; absent while the gateway is asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle: Option<Idle>,
    pub gateway: Option<Ipv4Addr>,
    /// This router's WAN address, where the upstream mappings point.
    pub wan_address: Option<Ipv4Addr>,
    pub standing: Standing,
    pub mappings: Vec<UpstreamMapping>,
    /// Ports in force here that the gateway does not forward (yet).
    pub missing: Vec<u16>,
    /// Of those, the ports the gateway does not give this router (another host has them, or they are
    /// not allowed there): the IGD here refuses them to new mappings (ConflictInMappingEntry), so the
    /// Command Center moves on to another port.
    pub taken: Vec<u16>,
}

impl UpstreamStatus {
    /// Before the first word from the worker.
    pub fn initial(mode: UpstreamMode) -> Self {
        let idle = if mode == UpstreamMode::Off {
            Idle::Off
        } else {
            Idle::NothingToCarry
        };
        UpstreamStatus {
            mode,
            idle: Some(idle),
            gateway: None,
            wan_address: None,
            standing: Standing::Unknown,
            mappings: Vec::new(),
            missing: Vec::new(),
            taken: Vec::new(),
        }
    }

    /// Every port in force here is forwarded by the gateway.
    pub fn carries_all(&self) -> bool {
        self.idle.is_none() && !self.mappings.is_empty() && self.missing.is_empty()
    }

    /// The gateway's word on `port`, just granted here.
    pub fn word_on(&self, port: u16) -> Word {
        match self.idle {
            // The first port in force: the worker has not seen it yet.
            Some(Idle::NothingToCarry) => Word::Pending,
            Some(_) => Word::NotAsked,
            None if self.mappings.iter().any(|m| m.port == port) => Word::Forwarded,
            None if self.taken.contains(&port) => Word::Taken,
            None => Word::Pending,
        }
    }
}

/// What the gateway upstream says of a port (`UpstreamStatus::word_on`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Word {
    /// Nothing is carried upstream (no NAT there, mode off, no gateway).
    NotAsked,
    /// Asked, or about to be; no answer yet.
    Pending,
    /// The gateway forwards it to this router.
    Forwarded,
    /// The gateway gives it to someone else.
    Taken,
}

/// What the owner hands the thread: the latest want (a burst of changes leaves only the last), and
/// the stop. A mutex and a condition variable: a channel's code costs the router more flash.
#[derive(Default)]
struct Inbox {
    want: Option<Want>,
    stop: bool,
    /// Set by the thread once the deletions of a stop are done.
    stopped: bool,
}

type Mailbox = Arc<(Mutex<Inbox>, Condvar)>;

/// The handle the owner keeps.
pub struct Worker {
    mailbox: Mailbox,
    last: Option<Want>,
}

impl Worker {
    /// Starts the thread; `publish` receives every new status.
    pub fn start(publish: impl Fn(UpstreamStatus) + Send + 'static) -> Worker {
        let mailbox = Mailbox::default();
        let theirs = mailbox.clone();
        std::thread::spawn(move || serve(&theirs, &publish));
        Worker {
            mailbox,
            last: None,
        }
    }

    /// Tells the thread what is wanted now (nothing is sent when it is unchanged).
    pub fn want(&mut self, want: Want) {
        if self.last.as_ref() != Some(&want) {
            self.last = Some(want.clone());
            let (inbox, wake) = &*self.mailbox;
            inbox.lock().unwrap().want = Some(want);
            wake.notify_all();
        }
    }

    /// A clean stop: the mappings held upstream are removed (waits at most `STOP_WAIT`).
    pub fn stop(&self) {
        let (inbox, wake) = &*self.mailbox;
        let mut inbox = inbox.lock().unwrap();
        inbox.stop = true;
        wake.notify_all();
        let deadline = Instant::now() + STOP_WAIT;
        while !inbox.stopped {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            inbox = wake.wait_timeout(inbox, left).unwrap().0;
        }
    }
}

fn serve(mailbox: &Mailbox, publish: &dyn Fn(UpstreamStatus)) {
    let (inbox, wake) = &**mailbox;
    let mut cascade = Cascade::default();
    let mut session = client::Session::default();
    let mut want: Option<Want> = None;
    loop {
        let wait = (cascade.next_due()).map_or(Duration::from_secs(3600), |t| {
            t.saturating_duration_since(Instant::now())
        });
        let stop = {
            let mut guard = inbox.lock().unwrap();
            if guard.want.is_none() && !guard.stop {
                guard = wake.wait_timeout(guard, wait).unwrap().0;
            }
            if let Some(w) = guard.want.take() {
                session.wan_device = w.wan_device.clone();
                want = Some(w);
            }
            guard.stop
        };
        if stop {
            carry(&mut cascade, &mut session, None, want.as_ref());
            inbox.lock().unwrap().stopped = true;
            wake.notify_all();
            return;
        }
        let place = want
            .as_ref()
            .map(|w| cascade::place(&w.config, &w.wan_ipv4, w.gateway));
        let at = place.as_ref().and_then(|p| p.ok());
        carry(&mut cascade, &mut session, at, want.as_ref());
        if let Some(w) = &want {
            publish(status(&cascade, w, place.and_then(Result::err)));
        }
    }
}

/// Asks the gateway until nothing more is due now.
fn carry(
    cascade: &mut Cascade,
    session: &mut client::Session,
    place: Option<Place>,
    want: Option<&Want>,
) {
    let Some(want) = want else {
        return;
    };
    let protocols = &want.config.protocols;
    for _ in 0..MAX_ROUNDS {
        let steps = cascade.plan(place, &want.ports, protocols, Instant::now());
        let Some(at) = cascade.at() else {
            return;
        };
        if steps.is_empty() {
            return;
        }
        for step in &steps {
            let outcome = client::send(session, at, step, want.config.lease);
            log_outcome(at, step, &outcome);
            let moved_on = !matches!(outcome, Outcome::Mapped { .. } | Outcome::Deleted);
            let held = cascade.held.len();
            cascade.record(step, outcome, protocols, Instant::now());
            if matches!(step, Step::Probe(_)) && cascade.held.len() < held {
                info!(
                    "the gateway {} restarted and lost its forwards: asking for them again",
                    at.1
                );
            }
            if moved_on {
                // Another protocol, or a quiet time: plan again.
                break;
            }
        }
    }
}

fn log_outcome((wan, gateway): Place, step: &Step, outcome: &Outcome) {
    let protocol = |p: &UpstreamProtocol| p.label();
    match (step, outcome) {
        (Step::Map { port, protocol: p, nonce }, Outcome::Mapped {
            external_port,
            external_address,
            lifetime,
            ..
        }) if nonce.is_none() => info!(
            "the gateway {gateway} forwards TCP {external_address}:{external_port} to {wan}:{port} ({}, {lifetime} s)",
            protocol(p)
        ),
        (Step::Map { port, protocol: p, .. }, Outcome::Refused { code, name }) => warning!(
            "the gateway {gateway} refused to forward TCP {port} to {wan} ({} result {code}, {name})",
            protocol(p)
        ),
        (Step::Map { port, .. }, Outcome::Taken) => warning!(
            "the gateway {gateway} does not give TCP {port} to this router (another host has it, or it is not allowed there): the Command Center must use another port"
        ),
        (Step::Map { protocol: p, .. }, Outcome::Silent) => info!(
            "no {} answer from the gateway {gateway}",
            protocol(p)
        ),
        (Step::Delete(Held { port, .. }), _) => {
            info!("removed the forward of TCP {port} at the gateway {gateway}")
        }
        _ => {}
    }
}

fn status(cascade: &Cascade, want: &Want, idle: Option<Idle>) -> UpstreamStatus {
    let now = Instant::now();
    let idle = idle.or(want.ports.is_empty().then_some(Idle::NothingToCarry));
    let mappings: Vec<UpstreamMapping> = (cascade.held.iter())
        .map(|h| UpstreamMapping {
            port: h.port,
            external_port: h.external_port,
            protocol: h.protocol,
            lifetime_s: h.lifetime,
            expires_in_s: h.expires_at.saturating_duration_since(now).as_secs(),
        })
        .collect();
    let missing = if idle.is_some() {
        Vec::new()
    } else {
        (want.ports.iter())
            .filter(|p| !mappings.iter().any(|m| m.port == **p))
            .copied()
            .collect()
    };
    UpstreamStatus {
        mode: want.config.mode,
        idle,
        gateway: want.gateway,
        wan_address: cascade.at().filter(|_| idle.is_none()).map(|(w, _)| w),
        standing: cascade.standing.clone(),
        mappings,
        missing,
        taken: cascade.taken.clone(),
    }
}
