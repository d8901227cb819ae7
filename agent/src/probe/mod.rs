//! The end-to-end self-check: the router itself opens a TCP connection to the Command Center's port
//! of each forward in force, so a PC firewall that drops it (the manual's warning: every firewall on
//! the path must agree) or a Command Center that is not running is named, instead of a verdict that
//! stops at the router. Pure: what to try, the verdicts, the sentence, the rate limit. The I/O is in
//! `worker.rs`.

pub mod worker;

use crate::firewall::Forward;
use serde::Serialize;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

/// How long a SYN waits for its answer.
pub const ANSWER_WAIT: Duration = Duration::from_secs(2);
/// At most one run in this time, whoever asks (on demand, or after a mapping change).
pub const MIN_INTERVAL: Duration = Duration::from_secs(10);
/// SYNs per run at most (a static range forward has up to six ports).
pub const MAX_TARGETS: usize = 8;

/// What the router tries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Hop {
    /// The Command Center's own address and port, from the router's LAN side: what every
    /// forwarded connection reaches last.
    CommandCenter,
}

/// What came back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// SYN-ACK: something listens and the path lets it through.
    Answered,
    /// RST: the host is there, nothing listens on the port (the Command Center is not running).
    Refused,
    /// No answer in time, or the host unreachable: a firewall drops it (or the PC is off).
    Dropped,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub hop: Hop,
    pub address: SocketAddrV4,
    /// The forward's external port (what the internet connects to).
    pub external_port: u16,
}

/// A target and what came back (flat, as the API shows it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tried {
    pub hop: Hop,
    pub address: SocketAddrV4,
    pub external_port: u16,
    pub verdict: Verdict,
    /// Milliseconds until the answer (or until given up).
    pub ms: u64,
}

/// Why a run was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    OnDemand,
    MappingChange,
}

/// One run's results.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Unix seconds.
    pub at: u64,
    pub trigger: Trigger,
    pub tried: Vec<Tried>,
    /// The forwards of more ports than a run tries: those left out.
    pub not_tried: Vec<u16>,
    /// One sentence naming the broken hop; null when the Command Center answered on each forward.
    pub problem: Option<String>,
}

/// The targets for the forwards in force: each port of each forward, at its Command Center (the
/// Command Center listens on one port of a range: the one that answers is the one in use).
pub fn targets(forwards: &[Forward]) -> (Vec<Target>, Vec<u16>) {
    let mut all = Vec::new();
    for f in forwards {
        for port in f.external.first..=f.external.last {
            all.push(Target {
                hop: Hop::CommandCenter,
                address: SocketAddrV4::new(f.target, f.target_port.unwrap_or(port)),
                external_port: port,
            });
        }
    }
    let not_tried = all
        .iter()
        .skip(MAX_TARGETS)
        .map(|t| t.external_port)
        .collect();
    all.truncate(MAX_TARGETS);
    (all, not_tried)
}

/// The sentence for a person: the first Command Center none of whose ports answered.
pub fn problem(tried: &[Tried]) -> Option<String> {
    let mut hosts: Vec<Ipv4Addr> = tried.iter().map(|t| *t.address.ip()).collect();
    hosts.dedup();
    hosts.into_iter().find_map(|host| {
        let own: Vec<&Tried> = (tried.iter())
            .filter(|t| *t.address.ip() == host)
            .collect();
        if own.iter().any(|t| t.verdict == Verdict::Answered) {
            return None;
        }
        let ports = (own.iter().map(|t| t.address.port().to_string()))
            .collect::<Vec<_>>()
            .join(", ");
        let dropped = own.iter().any(|t| t.verdict == Verdict::Dropped);
        Some(if dropped {
            format!(
                "the Command Center at {host} does not answer on TCP {ports} (no reply in {} s): check the Windows firewall",
                ANSWER_WAIT.as_secs()
            )
        } else {
            format!(
                "the Command Center at {host} refuses TCP {ports} (nothing listens there): is the Command Center running, with remote viewing on?"
            )
        })
    })
}

/// At most one run per `MIN_INTERVAL`.
#[derive(Debug, Default)]
pub struct Limiter {
    last: Option<Instant>,
}

impl Limiter {
    /// Takes a run at `now`, or says how long until one is allowed.
    pub fn take(&mut self, now: Instant) -> Result<(), Duration> {
        if let Some(last) = self.last {
            let next = last + MIN_INTERVAL;
            if now < next {
                return Err(next - now);
            }
        }
        self.last = Some(now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PortRange;
    use crate::firewall::Origin;

    const CC: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 10);

    fn forward(first: u16, last: u16, target_port: Option<u16>) -> Forward {
        Forward {
            external: PortRange { first, last },
            target: CC,
            target_port,
            origin: Origin::Static,
        }
    }

    fn tried(port: u16, verdict: Verdict) -> Tried {
        Tried {
            hop: Hop::CommandCenter,
            address: SocketAddrV4::new(CC, port),
            external_port: port,
            verdict,
            ms: 2000,
        }
    }

    #[test]
    fn every_port_of_a_forward_is_tried_at_its_internal_port_within_the_bound() {
        let (t, left) = targets(&[
            forward(20570, 20575, None),
            forward(8443, 8443, Some(20570)),
        ]);
        assert_eq!(t.len(), 7);
        assert_eq!(t[0].address, SocketAddrV4::new(CC, 20570));
        assert_eq!(t[6].address, SocketAddrV4::new(CC, 20570));
        assert_eq!(t[6].external_port, 8443);
        assert!(left.is_empty());
        let (t, left) = targets(&[forward(20000, 20009, None)]);
        assert_eq!(t.len(), MAX_TARGETS);
        assert_eq!(left, [20008, 20009]);
    }

    #[test]
    fn the_sentence_names_the_host_the_ports_and_what_to_check() {
        assert_eq!(problem(&[tried(20570, Verdict::Answered)]), None);
        // One port of a range answering is the Command Center's port: no problem.
        assert_eq!(
            problem(&[
                tried(20570, Verdict::Refused),
                tried(20571, Verdict::Answered)
            ]),
            None
        );
        assert_eq!(
            problem(&[tried(20570, Verdict::Dropped)]).unwrap(),
            "the Command Center at 192.168.1.10 does not answer on TCP 20570 (no reply in 2 s): check the Windows firewall"
        );
        let refused = problem(&[
            tried(20570, Verdict::Refused),
            tried(20571, Verdict::Refused),
        ]);
        assert!(refused.unwrap().starts_with(
            "the Command Center at 192.168.1.10 refuses TCP 20570, 20571 (nothing listens there)"
        ));
    }

    #[test]
    fn one_run_per_interval() {
        let mut l = Limiter::default();
        let t0 = Instant::now();
        assert_eq!(l.take(t0), Ok(()));
        assert_eq!(
            l.take(t0 + Duration::from_secs(3)),
            Err(MIN_INTERVAL - Duration::from_secs(3))
        );
        assert_eq!(l.take(t0 + MIN_INTERVAL), Ok(()));
    }
}
