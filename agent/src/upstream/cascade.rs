//! The cascade's pure core: which TCP ports the gateway upstream should forward to this router, what it
//! holds now, and the next requests to send (map, renew, delete). The I/O shell (`client.rs`, the
//! daemon's upstream thread) sends them and hands back what the gateway answered.
//!
//! An upstream mapping keeps the port: the internet's port P on the gateway goes to port P on this
//! router's WAN address, where our own forward takes it on. The gateway's epoch (PCP, NAT-PMP) going
//! backwards, its restart announcement, or a new WAN address or gateway means it holds nothing of
//! ours any more: everything is asked for again.

use crate::config::{Upstream, UpstreamMode, UpstreamProtocol};
use crate::firewall::Forward;
use crate::net::{wan_address_kind, WanAddressKind};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

/// At most this many ports are carried upstream (a static range of thousands would flood the gateway).
pub const MAX_PORTS: usize = 16;
/// After every protocol went unanswered, or the gateway refused: ask again after this, doubling.
const FIRST_BACKOFF: Duration = Duration::from_secs(30);
const MAX_BACKOFF: Duration = Duration::from_secs(900);
/// While mappings are held, the gateway's epoch is asked for this often: a restart (its mappings
/// lost) is seen within it, whatever the lease, so the Command Center is reachable again within
/// half a minute. One datagram (PCP, NAT-PMP) or one SOAP call (UPnP) each time. The gateway's
/// restart announcements would be quicker, but fw4 drops them on the WAN (they answer no request of
/// ours), and admitting them would need a hole in fw4 for a gateway's forged address.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(20);

/// Why nothing is asked upstream now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Idle {
    /// `config upstream` mode `off`.
    Off,
    /// Mode `auto` and the WAN address is public: no NAT upstream.
    WanPublic,
    /// No IPv4 address on the WAN device.
    NoWanAddress,
    /// No default route through the WAN device: nobody to ask.
    NoGateway,
    /// No mapping is in force here.
    NothingToCarry,
}

/// Where upstream mappings would point: this router's WAN address, and the gateway to ask.
pub type Place = (Ipv4Addr, Ipv4Addr);

/// The WAN address and gateway to carry mappings to, or why none.
pub fn place(
    config: &Upstream,
    wan_ipv4: &[Ipv4Addr],
    gateway: Option<Ipv4Addr>,
) -> Result<Place, Idle> {
    if config.mode == UpstreamMode::Off {
        return Err(Idle::Off);
    }
    // The address a NAT upstream would forward to: a private or shared one first.
    let behind_nat = |ip: &&Ipv4Addr| {
        matches!(
            wan_address_kind(**ip),
            WanAddressKind::Private | WanAddressKind::Cgnat
        )
    };
    let wan = match (wan_ipv4.iter().find(behind_nat), config.mode) {
        (Some(ip), _) => *ip,
        (None, UpstreamMode::Auto) if !wan_ipv4.is_empty() => return Err(Idle::WanPublic),
        (None, _) => *wan_ipv4.first().ok_or(Idle::NoWanAddress)?,
    };
    Ok((wan, gateway.ok_or(Idle::NoGateway)?))
}

/// The external TCP ports in force here, sorted, at most `MAX_PORTS`.
pub fn ports(forwards: &[Forward]) -> Vec<u16> {
    let mut ports: Vec<u16> = forwards
        .iter()
        .flat_map(|f| f.external.first..=f.external.last)
        .collect();
    ports.sort_unstable();
    ports.dedup();
    ports.truncate(MAX_PORTS);
    ports
}

/// One mapping the gateway granted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub port: u16,
    /// The port the internet sees (PREFER_FAILURE keeps it equal to `port` with PCP).
    pub external_port: u16,
    pub protocol: UpstreamProtocol,
    /// Ties renewals and the deletion to this mapping (PCP).
    pub nonce: [u8; 12],
    pub lifetime: u32,
    pub renew_at: Instant,
    pub expires_at: Instant,
}

/// A request to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Map (or renew) `port` with `protocol`; `nonce` is the held one for a renewal.
    Map {
        port: u16,
        protocol: UpstreamProtocol,
        nonce: Option<[u8; 12]>,
    },
    /// Remove a mapping no longer in force here.
    Delete(Held),
    /// Is the gateway still holding what it held? PCP and NAT-PMP: its epoch (ANNOUNCE, the address
    /// request); UPnP: this mapping (the first held).
    Probe(Held),
}

/// What the gateway said to a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Mapped {
        external_port: u16,
        external_address: Ipv4Addr,
        lifetime: u32,
        /// The gateway's epoch (PCP, NAT-PMP; a UPnP IGD has none).
        epoch: Option<u32>,
        nonce: [u8; 12],
    },
    /// It answered in another protocol it prefers (a NAT-PMP server to a PCP request).
    Speaks(UpstreamProtocol),
    /// It refused, with its result code and that code's name.
    Refused {
        code: u16,
        name: &'static str,
    },
    /// The port is not ours to have there: another host has it, or it is not allowed (PCP
    /// CANNOT_PROVIDE_EXTERNAL or another port handed out, NAT-PMP another port, UPnP 718): the
    /// internet cannot reach us on it.
    Taken,
    /// No answer (nothing listens, or nothing came back in time).
    Silent,
    Deleted,
    /// The answer to a probe: the gateway's epoch.
    Epoch(u32),
    /// The answer to a probe: the mapping is gone there (the gateway restarted).
    Forgotten,
    /// The answer to a probe: the mapping is still there.
    Kept,
}

/// The gateway's last word, for the verdict.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Standing {
    /// Nothing asked yet.
    Unknown,
    /// It maps for us.
    Mapping {
        protocol: UpstreamProtocol,
        external_address: Ipv4Addr,
    },
    /// It refused (the protocol's own result code and name).
    Refused {
        protocol: UpstreamProtocol,
        code: u16,
        name: &'static str,
    },
    /// No protocol of the list got an answer.
    NoService,
}

/// What the gateway upstream holds for us, as far as we know.
#[derive(Debug, Clone)]
pub struct Cascade {
    /// The WAN address and gateway the held mappings belong to.
    at: Option<(Ipv4Addr, Ipv4Addr)>,
    pub held: Vec<Held>,
    /// Ports the gateway does not give us: not asked for again while they are in force here
    /// (the IGD here refuses them to new mappings, so the Command Center moves on to another).
    pub taken: Vec<u16>,
    /// The protocol being asked: an index into the configured list.
    trying: usize,
    pub standing: Standing,
    /// The gateway's epoch at its last answer, and when that was.
    epoch: Option<(u32, Instant)>,
    /// No request before this (after silence or a refusal).
    quiet_until: Option<Instant>,
    backoff: Duration,
    /// The next probe of the gateway's epoch, while mappings are held.
    probe_at: Option<Instant>,
}

impl Default for Cascade {
    fn default() -> Self {
        Cascade {
            at: None,
            held: Vec::new(),
            taken: Vec::new(),
            trying: 0,
            standing: Standing::Unknown,
            epoch: None,
            quiet_until: None,
            backoff: FIRST_BACKOFF,
            probe_at: None,
        }
    }
}

impl Cascade {
    /// Where the held mappings are (the gateway that deletions go to).
    pub fn at(&self) -> Option<Place> {
        self.at
    }

    /// The requests due now so that the gateway of `place` holds `ports` (`None`: nothing should
    /// be held upstream; what is held is removed where it is).
    pub fn plan(
        &mut self,
        place: Option<Place>,
        ports: &[u16],
        protocols: &[UpstreamProtocol],
        now: Instant,
    ) -> Vec<Step> {
        if place.is_some() && place != self.at {
            // Another WAN address or gateway: what was held points elsewhere or cannot be reached;
            // it runs out by itself.
            *self = Cascade {
                at: place,
                ..Cascade::default()
            };
        }
        let wanted: &[u16] = if place.is_some() { ports } else { &[] };
        // A port that went here may be asked for again once it comes back.
        self.taken.retain(|p| wanted.contains(p));
        let mut steps: Vec<Step> = (self.held.iter())
            .filter(|h| !wanted.contains(&h.port))
            .cloned()
            .map(Step::Delete)
            .collect();
        if self.quiet_until.is_some_and(|t| now < t) {
            return steps;
        }
        let Some(&protocol) = protocols.get(self.trying) else {
            return steps;
        };
        for &port in wanted.iter().filter(|p| !self.taken.contains(p)) {
            match self.held.iter().find(|h| h.port == port) {
                Some(h) if now < h.renew_at => {}
                held => steps.push(Step::Map {
                    port,
                    protocol: held.map_or(protocol, |h| h.protocol),
                    nonce: held.map(|h| h.nonce),
                }),
            }
        }
        let probe_due = self.probe_at.is_some_and(|t| t <= now);
        if steps.is_empty() && probe_due {
            if let Some(h) = self.held.first() {
                steps.push(Step::Probe(h.clone()));
            }
        }
        steps
    }

    /// Takes the gateway's answer to `step`.
    pub fn record(
        &mut self,
        step: &Step,
        outcome: Outcome,
        protocols: &[UpstreamProtocol],
        now: Instant,
    ) {
        let (port, protocol) = match step {
            Step::Delete(h) => {
                self.held.retain(|x| x.port != h.port);
                return;
            }
            Step::Probe(_) => {
                match outcome {
                    Outcome::Epoch(epoch) => {
                        if self.lost_state(epoch, now) {
                            self.held.clear();
                        }
                        self.epoch = Some((epoch, now));
                    }
                    Outcome::Forgotten => self.held.clear(),
                    _ => {}
                }
                self.probe_at = Some(now + PROBE_INTERVAL);
                return;
            }
            Step::Map { port, protocol, .. } => (*port, *protocol),
        };
        match outcome {
            Outcome::Mapped {
                external_port,
                external_address,
                lifetime,
                epoch,
                nonce,
            } => {
                if let Some(epoch) = epoch {
                    if self.lost_state(epoch, now) {
                        // The gateway restarted: the other mappings are gone there too.
                        self.held.clear();
                    }
                    self.epoch = Some((epoch, now));
                }
                self.held.retain(|h| h.port != port);
                let lifetime_d = Duration::from_secs(lifetime.into());
                self.held.push(Held {
                    port,
                    external_port,
                    protocol,
                    nonce,
                    lifetime,
                    renew_at: now + lifetime_d / 2,
                    expires_at: now + lifetime_d,
                });
                self.held.sort_unstable_by_key(|h| h.port);
                self.standing = Standing::Mapping {
                    protocol,
                    external_address,
                };
                self.backoff = FIRST_BACKOFF;
                self.quiet_until = None;
                self.probe_at = Some(now + PROBE_INTERVAL);
            }
            // Only the answer to the protocol being tried moves on to another.
            Outcome::Speaks(other) if protocols.get(self.trying) == Some(&protocol) => {
                match protocols.iter().position(|p| *p == other) {
                    Some(i) => self.trying = i,
                    None => self.next_protocol(protocols, now),
                }
            }
            Outcome::Silent => {
                self.held.retain(|h| h.port != port || now < h.expires_at);
                if protocols.get(self.trying) == Some(&protocol) {
                    self.next_protocol(protocols, now);
                }
            }
            Outcome::Speaks(_) => {}
            Outcome::Refused { code, name } => {
                self.held.retain(|h| h.port != port);
                self.standing = Standing::Refused {
                    protocol,
                    code,
                    name,
                };
                self.quiet(now);
            }
            Outcome::Taken => {
                self.held.retain(|h| h.port != port);
                self.taken.push(port);
            }
            Outcome::Deleted | Outcome::Epoch(_) | Outcome::Forgotten | Outcome::Kept => {}
        }
    }

    /// When the next request is due (a renewal, a probe, the end of a quiet time).
    pub fn next_due(&self) -> Option<Instant> {
        let renewals = self.held.iter().map(|h| h.renew_at);
        let probe = self.probe_at.filter(|_| !self.held.is_empty());
        renewals.chain(self.quiet_until).chain(probe).min()
    }

    /// RFC 6887 §8.5: the server lost its state if its epoch went back, or if it advanced by clearly
    /// less (or more) than our clock did since its last answer (2 s and 1/16 of slack).
    fn lost_state(&self, epoch: u32, now: Instant) -> bool {
        let Some((last, at)) = self.epoch else {
            return false;
        };
        let Some(server) = epoch.checked_sub(last).map(u64::from) else {
            return true;
        };
        let client = now.duration_since(at).as_secs();
        client + 2 < server - server / 16 || server + 2 < client - client / 16
    }

    fn next_protocol(&mut self, protocols: &[UpstreamProtocol], now: Instant) {
        self.trying += 1;
        if self.trying >= protocols.len() {
            self.trying = 0;
            if !matches!(self.standing, Standing::Refused { .. }) {
                self.standing = Standing::NoService;
            }
            self.quiet(now);
        }
    }

    fn quiet(&mut self, now: Instant) {
        self.quiet_until = Some(now + self.backoff);
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PortRange;
    use crate::firewall::Origin;
    use UpstreamProtocol::{Natpmp, Pcp, Upnp};

    const WAN: Ipv4Addr = Ipv4Addr::new(192, 168, 0, 2);
    const GW: Ipv4Addr = Ipv4Addr::new(192, 168, 0, 1);
    const PUBLIC: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);
    const ALL: [UpstreamProtocol; 3] = [Pcp, Natpmp, Upnp];
    /// The probe interval in the gateway's epoch seconds.
    const P: u32 = PROBE_INTERVAL.as_secs() as u32;

    fn config(mode: UpstreamMode) -> Upstream {
        Upstream {
            mode,
            protocols: ALL.to_vec(),
            lease: 3600,
        }
    }

    fn forward(first: u16, last: u16) -> Forward {
        Forward {
            external: PortRange { first, last },
            target: Ipv4Addr::new(192, 168, 50, 10),
            target_port: None,
            origin: Origin::Static,
        }
    }

    const AT: Option<Place> = Some((WAN, GW));

    fn mapped(port: u16, lifetime: u32, epoch: u32) -> Outcome {
        Outcome::Mapped {
            external_port: port,
            external_address: PUBLIC,
            lifetime,
            epoch: Some(epoch),
            nonce: [port as u8; 12],
        }
    }

    /// A gateway that grants every mapping for `lifetime` s at `epoch`.
    fn grant(lifetime: u32, epoch: u32) -> impl Fn(&Step) -> Outcome {
        move |s| match s {
            Step::Map { port, .. } => mapped(*port, lifetime, epoch),
            Step::Delete(_) => Outcome::Deleted,
            Step::Probe(_) => Outcome::Epoch(epoch),
        }
    }

    /// Plans and answers every step with `answer`; the steps sent.
    fn round(
        c: &mut Cascade,
        ports: &[u16],
        now: Instant,
        answer: impl Fn(&Step) -> Outcome,
    ) -> Vec<Step> {
        let steps = c.plan(AT, ports, &ALL, now);
        for s in &steps {
            c.record(s, answer(s), &ALL, now);
        }
        steps
    }

    #[test]
    fn only_a_nat_upstream_is_asked_for_the_ports_in_force() {
        let auto = config(UpstreamMode::Auto);
        assert_eq!(
            place(&config(UpstreamMode::Off), &[WAN], Some(GW)),
            Err(Idle::Off)
        );
        assert_eq!(place(&auto, &[PUBLIC], Some(GW)), Err(Idle::WanPublic));
        assert_eq!(place(&auto, &[], Some(GW)), Err(Idle::NoWanAddress));
        assert_eq!(place(&auto, &[WAN], None), Err(Idle::NoGateway));
        assert_eq!(place(&auto, &[PUBLIC, WAN], Some(GW)), Ok((WAN, GW)));
        let cgnat = Ipv4Addr::new(100, 64, 1, 2);
        assert_eq!(place(&auto, &[cgnat], Some(GW)), Ok((cgnat, GW)));
        let enabled = config(UpstreamMode::Enabled);
        assert_eq!(place(&enabled, &[PUBLIC], Some(GW)), Ok((PUBLIC, GW)));
        let fwd = [forward(20570, 20571), forward(20571, 20571)];
        assert_eq!(ports(&fwd), [20570, 20571]);
        assert_eq!(
            ports(&[forward(1000, 9000)]).len(),
            MAX_PORTS,
            "a wide range is cut"
        );
    }

    #[test]
    fn mappings_are_made_renewed_at_half_life_and_removed_when_they_go() {
        let t0 = Instant::now();
        let mut c = Cascade::default();
        let two = [20570, 20571];
        let sent = round(&mut c, &two, t0, grant(600, 10));
        assert_eq!(sent.len(), 2);
        assert_eq!(c.held.len(), 2);
        assert_eq!(
            c.standing,
            Standing::Mapping {
                protocol: Pcp,
                external_address: PUBLIC
            }
        );
        // The gateway's epoch is asked for every PROBE_INTERVAL; renewals come at half the lifetime.
        assert_eq!(c.next_due(), Some(t0 + PROBE_INTERVAL));
        assert!(
            c.plan(AT, &two, &ALL, t0 + PROBE_INTERVAL - Duration::from_secs(1))
                .is_empty(),
            "nothing due"
        );
        let probe = c.plan(AT, &two, &ALL, t0 + PROBE_INTERVAL);
        assert!(
            matches!(&probe[..], [Step::Probe(h)] if h.protocol == Pcp),
            "{probe:?}"
        );
        c.record(&probe[0], Outcome::Epoch(10 + P), &ALL, t0 + PROBE_INTERVAL);
        assert_eq!(c.held.len(), 2);
        let renew = c.plan(AT, &two, &ALL, t0 + Duration::from_secs(300));
        assert_eq!(
            renew[0],
            Step::Map {
                port: 20570,
                protocol: Pcp,
                nonce: Some([20570u16 as u8; 12])
            },
            "a renewal reuses the nonce"
        );
        let steps = c.plan(AT, &[20571], &ALL, t0 + Duration::from_secs(1));
        assert!(
            matches!(&steps[..], [Step::Delete(h)] if h.port == 20570),
            "{steps:?}"
        );
        c.record(&steps[0], Outcome::Deleted, &ALL, t0);
        assert_eq!(c.held.len(), 1);
        // Mode off (or a public WAN address): what is held goes, at the gateway it is held by.
        let gone = c.plan(None, &[20571], &ALL, t0 + Duration::from_secs(2));
        assert!(
            matches!(&gone[..], [Step::Delete(h)] if h.port == 20571),
            "{gone:?}"
        );
        assert_eq!(c.at(), AT);
        // A new WAN address: the old mappings point elsewhere and run out there.
        let moved = Some((Ipv4Addr::new(192, 168, 0, 3), GW));
        let steps = c.plan(moved, &[20571], &ALL, t0 + Duration::from_secs(3));
        assert!(
            matches!(
                &steps[..],
                [Step::Map {
                    port: 20571,
                    nonce: None,
                    ..
                }]
            ),
            "{steps:?}"
        );
        assert_eq!(c.at(), moved);
    }

    #[test]
    fn silence_tries_the_next_protocol_and_a_nat_pmp_server_is_asked_in_its_own() {
        let t0 = Instant::now();
        let mut c = Cascade::default();
        let n = [20570, 20571];
        // PCP first; the server answers in NAT-PMP: the next steps use NAT-PMP.
        let steps = c.plan(AT, &n, &ALL, t0);
        assert!(matches!(steps[0], Step::Map { protocol: Pcp, .. }));
        c.record(&steps[0], Outcome::Speaks(Natpmp), &ALL, t0);
        c.record(&steps[1], Outcome::Speaks(Natpmp), &ALL, t0);
        let steps = c.plan(AT, &n, &ALL, t0);
        assert!(
            steps.iter().all(|s| matches!(
                s,
                Step::Map {
                    protocol: Natpmp,
                    ..
                }
            )),
            "{steps:?}"
        );
        // Nobody answers NAT-PMP either, nor UPnP: no service, and quiet for a while.
        c.record(&steps[0], Outcome::Silent, &ALL, t0);
        c.record(&steps[1], Outcome::Silent, &ALL, t0);
        let steps = c.plan(AT, &n, &ALL, t0);
        assert!(
            matches!(steps[0], Step::Map { protocol: Upnp, .. }),
            "one protocol down per silence"
        );
        c.record(&steps[0], Outcome::Silent, &ALL, t0);
        assert_eq!(c.standing, Standing::NoService);
        assert!(c
            .plan(AT, &n, &ALL, t0 + Duration::from_secs(29))
            .is_empty());
        let again = c.plan(AT, &n, &ALL, t0 + FIRST_BACKOFF);
        assert!(
            matches!(again[0], Step::Map { protocol: Pcp, .. }),
            "from the first again"
        );
    }

    #[test]
    fn a_port_taken_there_is_not_asked_for_again_while_it_is_in_force_here() {
        let t0 = Instant::now();
        let mut c = Cascade::default();
        let steps = c.plan(AT, &[20570, 20571], &ALL, t0);
        c.record(&steps[0], Outcome::Taken, &ALL, t0);
        c.record(&steps[1], mapped(20571, 600, 5), &ALL, t0);
        assert_eq!(c.taken, [20570]);
        let again = c.plan(AT, &[20570, 20571], &ALL, t0);
        assert!(
            again.is_empty(),
            "not asked again, and no quiet time: {again:?}"
        );
        // The Command Center moved to 20572: that one is asked for, 20570 is forgotten.
        let steps = c.plan(AT, &[20571, 20572], &ALL, t0);
        assert!(
            matches!(&steps[..], [Step::Map { port: 20572, .. }]),
            "{steps:?}"
        );
        assert!(c.taken.is_empty());
    }

    #[test]
    fn a_refusal_is_kept_with_its_code_and_waits() {
        let t0 = Instant::now();
        let mut c = Cascade::default();
        let n = [20570];
        let steps = c.plan(AT, &n, &ALL, t0);
        c.record(
            &steps[0],
            Outcome::Refused {
                code: 2,
                name: "NOT_AUTHORIZED",
            },
            &ALL,
            t0,
        );
        assert_eq!(
            c.standing,
            Standing::Refused {
                protocol: Pcp,
                code: 2,
                name: "NOT_AUTHORIZED"
            }
        );
        assert!(c.plan(AT, &n, &ALL, t0 + Duration::from_secs(1)).is_empty());
        assert_eq!(c.next_due(), Some(t0 + FIRST_BACKOFF));
    }

    #[test]
    fn a_gateway_that_lost_its_state_gets_everything_asked_again() {
        let t0 = Instant::now();
        let mut c = Cascade::default();
        let n = [20570, 20571];
        round(&mut c, &n, t0, grant(600, 1000));
        // At the renewal the epoch is 5 where about 1300 was due: the gateway restarted.
        let t1 = t0 + Duration::from_secs(300);
        let steps = c.plan(AT, &n, &ALL, t1);
        c.record(&steps[0], mapped(20570, 600, 5), &ALL, t1);
        assert_eq!(
            c.held.len(),
            1,
            "the other mapping is gone upstream: {:?}",
            c.held
        );
        assert!(matches!(
            &c.plan(AT, &n, &ALL, t1)[..],
            [Step::Map { port: 20571, .. }]
        ));
        // A probe between renewals sees it too.
        let t2 = t1 + PROBE_INTERVAL;
        let steps = c.plan(AT, &n, &ALL, t2);
        assert!(
            matches!(&steps[..], [Step::Map { port: 20571, .. }]),
            "{steps:?}"
        );
        c.record(&steps[0], mapped(20571, 600, 5 + P), &ALL, t2);
        let t3 = t2 + PROBE_INTERVAL;
        assert_eq!(c.next_due(), Some(t3));
        let probe = c.plan(AT, &n, &ALL, t3);
        assert!(
            matches!(&probe[..], [Step::Probe(h)] if h.protocol == Pcp),
            "{probe:?}"
        );
        c.record(&probe[0], Outcome::Epoch(3), &ALL, t3);
        assert!(
            c.held.is_empty(),
            "the epoch went back: nothing is held any more"
        );
        assert_eq!(c.plan(AT, &n, &ALL, t3).len(), 2);
        // A restart shortly after the last answer (up again for all but 10 s of our interval) is
        // seen too; a clock that went on as ours did, a second either way, is no restart.
        let mut e = Cascade::default();
        round(&mut e, &n, t0, grant(600, 100));
        let t = t0 + PROBE_INTERVAL;
        let probe = e.plan(AT, &n, &ALL, t);
        e.record(&probe[0], Outcome::Epoch(P - 10), &ALL, t);
        assert!(
            e.held.is_empty(),
            "up 10 s less than our interval: it restarted"
        );
        let mut f = Cascade::default();
        round(&mut f, &n, t0, grant(600, 100));
        let probe = f.plan(AT, &n, &ALL, t);
        f.record(&probe[0], Outcome::Epoch(100 + P - 1), &ALL, t);
        assert_eq!(f.held.len(), 2, "a second less than ours is the same clock");
        // An epoch that went on as time did is no restart.
        let mut d = Cascade::default();
        round(&mut d, &n, t0, grant(600, 1000));
        for step in d.plan(AT, &n, &ALL, t1) {
            d.record(&step, grant(600, 1299)(&step), &ALL, t1);
        }
        assert_eq!(d.held.len(), 2);
        let t2 = t1 + PROBE_INTERVAL;
        let probe = d.plan(AT, &n, &ALL, t2);
        d.record(&probe[0], Outcome::Epoch(1299 + P), &ALL, t2);
        assert_eq!(d.held.len(), 2, "a probe whose epoch went on");
        assert_eq!(d.next_due(), Some(t2 + PROBE_INTERVAL));
    }
}
