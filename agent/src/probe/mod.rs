//! The end-to-end self-check: the router itself opens TCP connections along the path a viewer's
//! connection takes, so a PC firewall that drops it (the manual's warning: every firewall on the path
//! must agree), a Command Center that is not running, or a forward that leads nowhere is named, instead
//! of a verdict that stops at the router. Three hops, each tried only once the one before answered:
//! the Command Center's own port; the router's public address (through its forward, as a connection
//! from outside would come); behind double NAT, the gateway's external address. Pure: what to try, the
//! verdicts, the sentence, the rate limit. The I/O is in `worker.rs`.

pub mod worker;

use crate::firewall::Forward;
use serde::Serialize;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

/// How long a SYN waits for its answer.
pub const ANSWER_WAIT: Duration = Duration::from_secs(2);
/// At most one run in this time, whoever asks (on demand, or after a mapping change).
pub const MIN_INTERVAL: Duration = Duration::from_secs(10);
/// SYNs per run at most, all hops together (a static range forward has up to six ports).
pub const MAX_TARGETS: usize = 8;

/// What the router tries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Hop {
    /// The Command Center's own address and port, from the router's LAN side: what every
    /// forwarded connection reaches last.
    CommandCenter,
    /// The router's public (WAN) address and the forward's external port: the router's own marked
    /// connection takes the forward as one from the internet does, and reaches the Command Center
    /// from an address outside its subnet.
    PublicAddress,
    /// Behind double NAT: the gateway's external address and the port it forwards for us. Only a
    /// gateway that loops connections from its own LAN back answers this (many do not).
    Gateway,
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
    /// Not tried; `why` says why.
    NotTried,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub hop: Hop,
    pub address: SocketAddrV4,
    /// The forward's external port (what the internet connects to).
    pub external_port: u16,
}

/// One hop of one forward's port and what came back (flat, as the API shows it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tried {
    pub hop: Hop,
    /// Where the SYN went; null when the hop had no address to try.
    pub address: Option<SocketAddrV4>,
    pub external_port: u16,
    pub verdict: Verdict,
    /// Milliseconds until the answer (or until given up); 0 when not tried.
    pub ms: u64,
    /// Why a hop was not tried.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
}

impl Tried {
    fn not_tried(hop: Hop, address: Option<SocketAddrV4>, external_port: u16, why: &str) -> Self {
        Tried {
            hop,
            address,
            external_port,
            verdict: Verdict::NotTried,
            ms: 0,
            why: Some(why.to_string()),
        }
    }
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
    /// Each hop of each port, in the order tried.
    pub hops: Vec<Tried>,
    /// The first hop that failed; null when every hop tried answered (or nothing was tried).
    pub broken_hop: Option<Hop>,
    /// One sentence naming the broken hop and what to check; null with it.
    pub problem: Option<String>,
}

/// What the router knows of the path beyond itself: where the onward hops lead.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outside {
    /// The WAN's own address, where the forwards take connections (none: the WAN has no address).
    pub wan: Option<Ipv4Addr>,
    /// Our table is in force (its probe chain takes the marked connections through the forwards).
    pub table: bool,
    /// Behind double NAT, while the agent carries mappings to the gateway.
    pub upstream: Option<Upstream>,
}

/// The gateway upstream and what it forwards for us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    pub gateway: Option<Ipv4Addr>,
    pub external: Ipv4Addr,
    /// (port here, the gateway's external port for it).
    pub forwarded: Vec<(u16, u16)>,
}

/// What a step of a run tries, and the hops it leaves out (with why).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub targets: Vec<Target>,
    pub not_tried: Vec<Tried>,
}

impl Plan {
    /// Adds `target` within the run's bound of `budget` SYNs, else notes it as not tried.
    fn add(&mut self, target: Target, budget: usize) {
        if self.targets.len() < budget {
            self.targets.push(target);
        } else {
            let why = format!("a run sends at most {MAX_TARGETS} SYNs");
            (self.not_tried).push(Tried::not_tried(
                target.hop,
                Some(target.address),
                target.external_port,
                &why,
            ));
        }
    }
}

/// The first step: each port of each forward at its Command Center (the Command Center listens on
/// one port of a range: the one that answers is the one in use).
pub fn command_centers(forwards: &[Forward]) -> Plan {
    let mut plan = Plan::default();
    for f in forwards {
        for port in f.external.first..=f.external.last {
            let target = Target {
                hop: Hop::CommandCenter,
                address: SocketAddrV4::new(f.target, f.target_port.unwrap_or(port)),
                external_port: port,
            };
            plan.add(target, MAX_TARGETS);
        }
    }
    plan
}

/// The second step, for each port whose Command Center answered: the public address, and behind
/// double NAT the gateway's external address; within what is left of the run's bound.
pub fn onward(first: &[Tried], outside: &Outside) -> Plan {
    let used = first
        .iter()
        .filter(|t| t.verdict != Verdict::NotTried)
        .count();
    let budget = MAX_TARGETS.saturating_sub(used);
    let mut plan = Plan::default();
    let answered = first
        .iter()
        .filter(|t| t.hop == Hop::CommandCenter && t.verdict == Verdict::Answered);
    for cc in answered {
        let port = cc.external_port;
        match (outside.table, outside.wan) {
            (false, _) => (plan.not_tried).push(Tried::not_tried(
                Hop::PublicAddress,
                None,
                port,
                "the agent's firewall table is not in force",
            )),
            (true, None) => (plan.not_tried).push(Tried::not_tried(
                Hop::PublicAddress,
                None,
                port,
                "the WAN has no IPv4 address",
            )),
            (true, Some(wan)) => plan.add(
                Target {
                    hop: Hop::PublicAddress,
                    address: SocketAddrV4::new(wan, port),
                    external_port: port,
                },
                budget,
            ),
        }
        let Some(up) = &outside.upstream else {
            continue;
        };
        match up.forwarded.iter().find(|(here, _)| *here == port) {
            Some((_, external)) => plan.add(
                Target {
                    hop: Hop::Gateway,
                    address: SocketAddrV4::new(up.external, *external),
                    external_port: port,
                },
                budget,
            ),
            None => (plan.not_tried).push(Tried::not_tried(
                Hop::Gateway,
                None,
                port,
                "the gateway does not forward this port (yet)",
            )),
        }
    }
    plan
}

/// The broken hop and the sentence for a person: the first Command Center none of whose ports
/// answered; else the first port whose public address failed; else the first the gateway did not
/// bring back.
pub fn problem(hops: &[Tried], outside: &Outside) -> Option<(Hop, String)> {
    command_center_problem(hops)
        .map(|p| (Hop::CommandCenter, p))
        .or_else(|| public_address_problem(hops).map(|p| (Hop::PublicAddress, p)))
        .or_else(|| gateway_problem(hops, outside).map(|p| (Hop::Gateway, p)))
}

fn failed(t: &Tried) -> bool {
    matches!(t.verdict, Verdict::Refused | Verdict::Dropped)
}

fn command_center_problem(hops: &[Tried]) -> Option<String> {
    let tried =
        || (hops.iter()).filter(|t| t.hop == Hop::CommandCenter && t.verdict != Verdict::NotTried);
    let own = |host: Ipv4Addr| tried().filter(move |t| t.address.is_some_and(|a| *a.ip() == host));
    let mut hosts: Vec<Ipv4Addr> = tried().filter_map(|t| t.address.map(|a| *a.ip())).collect();
    hosts.dedup();
    hosts.into_iter().find_map(|host| {
        if own(host).any(|t| t.verdict == Verdict::Answered) {
            return None;
        }
        let ports = (own(host).filter_map(|t| t.address.map(|a| a.port().to_string())))
            .collect::<Vec<_>>()
            .join(", ");
        Some(if own(host).any(|t| t.verdict == Verdict::Dropped) {
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

/// The Command Center this port's first hop reached.
fn command_center_of(hops: &[Tried], port: u16) -> Option<SocketAddrV4> {
    (hops.iter())
        .find(|t| t.hop == Hop::CommandCenter && t.external_port == port)
        .and_then(|t| t.address)
}

fn public_address_problem(hops: &[Tried]) -> Option<String> {
    let t = (hops.iter()).find(|t| t.hop == Hop::PublicAddress && failed(t))?;
    let (via, cc) = (t.address?, command_center_of(hops, t.external_port)?);
    Some(if t.verdict == Verdict::Dropped {
        format!(
            "the Command Center at {} answers on TCP {} from the LAN, but not a connection from outside its subnet (through {via}, no reply in {} s): check that the Windows firewall allows remote addresses, not only the local subnet",
            cc.ip(),
            cc.port(),
            ANSWER_WAIT.as_secs()
        )
    } else {
        format!(
            "the router's forward of TCP {} does not lead to the Command Center at {cc} (a connection to {via} was refused): see the decision log",
            t.external_port
        )
    })
}

fn gateway_problem(hops: &[Tried], outside: &Outside) -> Option<String> {
    let t = (hops.iter()).find(|t| t.hop == Hop::Gateway && failed(t))?;
    let how = match t.verdict {
        Verdict::Refused => "it was refused".to_string(),
        // An error at once (ICMP unreachable), not a timeout.
        _ if t.ms < ANSWER_WAIT.as_millis() as u64 => "it was unreachable".to_string(),
        _ => format!("no reply in {} s", ANSWER_WAIT.as_secs()),
    };
    let gateway = (outside.upstream.as_ref())
        .and_then(|u| u.gateway)
        .map_or_else(
            || "the gateway".to_string(),
            |g| format!("the gateway at {g}"),
        );
    Some(format!(
        "{gateway} forwards {} to this router, but a connection to it from inside did not come through ({how}); many gateways do not loop such connections back, so only a viewer on the internet can tell",
        t.address?
    ))
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
    const WAN: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);
    const UP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);

    fn forward(first: u16, last: u16, target_port: Option<u16>) -> Forward {
        Forward {
            external: PortRange { first, last },
            target: CC,
            target_port,
            origin: Origin::Static,
        }
    }

    fn at(hop: Hop, address: SocketAddrV4, port: u16, verdict: Verdict) -> Tried {
        Tried {
            hop,
            address: Some(address),
            external_port: port,
            verdict,
            ms: 2000,
            why: None,
        }
    }

    fn tried(port: u16, verdict: Verdict) -> Tried {
        at(
            Hop::CommandCenter,
            SocketAddrV4::new(CC, port),
            port,
            verdict,
        )
    }

    fn outside(upstream: bool) -> Outside {
        Outside {
            wan: Some(WAN),
            table: true,
            upstream: upstream.then(|| Upstream {
                gateway: Some(Ipv4Addr::new(192, 168, 0, 1)),
                external: UP,
                forwarded: vec![(20570, 20570), (20571, 30571)],
            }),
        }
    }

    #[test]
    fn every_port_of_a_forward_is_tried_at_its_internal_port_within_the_bound() {
        let plan = command_centers(&[
            forward(20570, 20575, None),
            forward(8443, 8443, Some(20570)),
        ]);
        let t = &plan.targets;
        assert_eq!(t.len(), 7);
        assert_eq!(t[0].address, SocketAddrV4::new(CC, 20570));
        assert_eq!(t[6].address, SocketAddrV4::new(CC, 20570));
        assert_eq!(t[6].external_port, 8443);
        assert!(plan.not_tried.is_empty());
        let plan = command_centers(&[forward(20000, 20009, None)]);
        assert_eq!(plan.targets.len(), MAX_TARGETS);
        let left: Vec<u16> = plan.not_tried.iter().map(|t| t.external_port).collect();
        assert_eq!(left, [20008, 20009]);
        assert_eq!(plan.not_tried[0].verdict, Verdict::NotTried);
        assert_eq!(
            plan.not_tried[0].why.as_deref(),
            Some("a run sends at most 8 SYNs")
        );
    }

    #[test]
    fn the_onward_hops_follow_only_the_ports_that_answered() {
        let first = [
            tried(20570, Verdict::Refused),
            tried(20571, Verdict::Answered),
        ];
        let plan = onward(&first, &outside(false));
        assert_eq!(
            plan.targets,
            [Target {
                hop: Hop::PublicAddress,
                address: SocketAddrV4::new(WAN, 20571),
                external_port: 20571,
            }]
        );
        assert!(plan.not_tried.is_empty());
        // Behind double NAT: the gateway's external address and its own port for ours.
        let plan = onward(&first, &outside(true));
        assert_eq!(plan.targets[1].hop, Hop::Gateway);
        assert_eq!(plan.targets[1].address, SocketAddrV4::new(UP, 30571));
        // A port the gateway does not forward, no WAN address, no table: not tried, and why.
        let plan = onward(&[tried(20572, Verdict::Answered)], &outside(true));
        assert_eq!(plan.targets.len(), 1);
        assert_eq!(
            plan.not_tried[0].why.as_deref(),
            Some("the gateway does not forward this port (yet)")
        );
        let bare = Outside {
            wan: None,
            ..outside(false)
        };
        let plan = onward(&first, &bare);
        assert_eq!(
            plan.not_tried[0].why.as_deref(),
            Some("the WAN has no IPv4 address")
        );
        let plan = onward(&first, &Outside::default());
        assert_eq!(
            plan.not_tried[0].why.as_deref(),
            Some("the agent's firewall table is not in force")
        );
    }

    #[test]
    fn the_onward_hops_keep_within_the_runs_bound() {
        let first: Vec<Tried> = (20570..20577)
            .map(|p| tried(p, Verdict::Answered))
            .collect();
        let plan = onward(&first, &outside(false));
        assert_eq!(plan.targets.len(), MAX_TARGETS - first.len());
        assert_eq!(plan.not_tried.len(), first.len() - 1);
    }

    #[test]
    fn the_sentence_names_the_host_the_ports_and_what_to_check() {
        let o = outside(true);
        assert_eq!(problem(&[tried(20570, Verdict::Answered)], &o), None);
        // One port of a range answering is the Command Center's port: no problem.
        assert_eq!(
            problem(
                &[
                    tried(20570, Verdict::Refused),
                    tried(20571, Verdict::Answered)
                ],
                &o
            ),
            None
        );
        assert_eq!(
            problem(&[tried(20570, Verdict::Dropped)], &o).unwrap(),
            (Hop::CommandCenter, "the Command Center at 192.168.1.10 does not answer on TCP 20570 (no reply in 2 s): check the Windows firewall".to_string())
        );
        let refused = problem(
            &[
                tried(20570, Verdict::Refused),
                tried(20571, Verdict::Refused),
            ],
            &o,
        );
        assert!(refused.unwrap().1.starts_with(
            "the Command Center at 192.168.1.10 refuses TCP 20570, 20571 (nothing listens there)"
        ));
        // Answered from the LAN, dropped from outside its subnet: the firewall's scope.
        let public = |v| at(Hop::PublicAddress, SocketAddrV4::new(WAN, 20570), 20570, v);
        let hops = [tried(20570, Verdict::Answered), public(Verdict::Dropped)];
        assert_eq!(
            problem(&hops, &o).unwrap(),
            (Hop::PublicAddress, "the Command Center at 192.168.1.10 answers on TCP 20570 from the LAN, but not a connection from outside its subnet (through 203.0.113.1:20570, no reply in 2 s): check that the Windows firewall allows remote addresses, not only the local subnet".to_string())
        );
        let hops = [tried(20570, Verdict::Answered), public(Verdict::Refused)];
        assert!(problem(&hops, &o).unwrap().1.starts_with(
            "the router's forward of TCP 20570 does not lead to the Command Center at 192.168.1.10:20570"
        ));
        // The gateway's loop back failing is named last, and for what it is.
        let gateway = at(
            Hop::Gateway,
            SocketAddrV4::new(UP, 20570),
            20570,
            Verdict::Refused,
        );
        let hops = [
            tried(20570, Verdict::Answered),
            public(Verdict::Answered),
            gateway,
        ];
        let (hop, sentence) = problem(&hops, &o).unwrap();
        assert_eq!(hop, Hop::Gateway);
        assert!(
            sentence.starts_with("the gateway at 192.168.0.1 forwards 198.51.100.7:20570 to this router, but a connection to it from inside did not come through (it was refused)"),
            "{sentence}"
        );
        // An error at once is not a timeout.
        let mut unreachable = at(
            Hop::Gateway,
            SocketAddrV4::new(UP, 20570),
            20570,
            Verdict::Dropped,
        );
        unreachable.ms = 3;
        let hops = [tried(20570, Verdict::Answered), unreachable];
        assert!(problem(&hops, &o)
            .unwrap()
            .1
            .contains("did not come through (it was unreachable)"));
        // Not tried is no failure.
        let skipped = Tried::not_tried(Hop::Gateway, None, 20570, "x");
        let hops = [tried(20570, Verdict::Answered), skipped];
        assert_eq!(problem(&hops, &o), None);
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
