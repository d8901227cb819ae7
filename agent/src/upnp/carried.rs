//! Behind a NAT upstream, a port granted here is only worth having if the gateway forwards it too. A
//! new grant's answer waits (briefly) for the gateway's word: a port the gateway gives to another
//! host is taken back and refused as ConflictInMappingEntry, what the internet would show, so the
//! Command Center moves on to its next port at once instead of holding one nobody can reach.
//! AddAnyPortMapping moves on by itself.

use super::error::{Refusal, UpnpError};
use super::leases::Mapping;
use super::policy::Change;
use crate::upstream::worker::Word;
use std::time::{Duration, Instant};

/// How long a new grant's answer waits for the gateway: PCP and NAT-PMP answer within milliseconds,
/// a gateway's IGD within about 100 ms; a silent gateway is not waited for longer than this.
pub const WORD_WAIT: Duration = Duration::from_secs(3);
const POLL: Duration = Duration::from_millis(10);
/// Ports AddAnyPortMapping tries past those the gateway gives to others.
const ANY_PORT_TRIES: usize = 6;

/// Runs `change` through `ask` (the state owner); for an add, also waits for `word` (the gateway's
/// standing on a port) on each port it newly granted. `held` are the ports granted before it: a
/// renewal is not waited for.
pub fn change(
    change: Change,
    held: &[u16],
    ask: impl Fn(Change) -> Result<Vec<Mapping>, Refusal>,
    word: impl Fn(u16) -> Word,
) -> Result<Vec<Mapping>, Refusal> {
    let Change::Add(request) = &change else {
        return ask(change);
    };
    let tries = if request.any_port { ANY_PORT_TRIES } else { 1 };
    let mut refusal = None;
    for _ in 0..tries {
        let granted = ask(change.clone())?;
        let new: Vec<u16> = (granted.iter().map(|m| m.external_port))
            .filter(|p| !held.contains(p))
            .collect();
        let Some(port) = taken(&new, &word) else {
            return Ok(granted);
        };
        ask(Change::TakeBack { port })?;
        refusal = Some(Refusal::new(
            UpnpError::ConflictInMappingEntry,
            format!(
                "the gateway upstream gives TCP {port} to another host: the internet would not reach it here"
            ),
        ));
    }
    Err(refusal.expect("at least one try"))
}

/// The first of `ports` the gateway gives to someone else, once it has a word on each (or
/// `WORD_WAIT` is over).
fn taken(ports: &[u16], word: &impl Fn(u16) -> Word) -> Option<u16> {
    let deadline = Instant::now() + WORD_WAIT;
    loop {
        let words: Vec<(u16, Word)> = ports.iter().map(|&p| (p, word(p))).collect();
        if let Some(&(port, _)) = words.iter().find(|(_, w)| *w == Word::Taken) {
            return Some(port);
        }
        if words.iter().all(|(_, w)| *w != Word::Pending) || Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(POLL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upnp::policy::AddRequest;
    use std::cell::RefCell;
    use std::net::Ipv4Addr;

    const CC: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 10);

    fn add(port: u16, any_port: bool) -> Change {
        Change::Add(AddRequest {
            requester: CC,
            remote_host: String::new(),
            external_port: port,
            protocol: "TCP".into(),
            internal_port: port,
            internal_client: CC.to_string(),
            enabled: true,
            description: "wilife".into(),
            lease: 0,
            any_port,
            version: 2,
        })
    }

    fn mapping(port: u16) -> Mapping {
        Mapping {
            external_port: port,
            internal_client: CC,
            internal_port: port,
            description: String::new(),
            enabled: true,
            created: 0,
            expires: None,
            lease_requested: 0,
            igd_version: 2,
            owner: "office-pc".into(),
        }
    }

    /// An owner that grants the asked port, or for AddAnyPortMapping the first not taken back yet.
    struct Owner {
        asked: RefCell<Vec<String>>,
        taken_back: RefCell<Vec<u16>>,
    }

    impl Owner {
        fn new() -> Owner {
            Owner {
                asked: RefCell::new(Vec::new()),
                taken_back: RefCell::new(Vec::new()),
            }
        }
        fn ask(&self, c: Change) -> Result<Vec<Mapping>, Refusal> {
            self.asked.borrow_mut().push(c.action().to_string());
            match c {
                Change::Add(r) => {
                    let mut port = r.external_port;
                    while r.any_port && self.taken_back.borrow().contains(&port) {
                        port += 1;
                    }
                    Ok(vec![mapping(port)])
                }
                Change::TakeBack { port } => {
                    self.taken_back.borrow_mut().push(port);
                    Ok(vec![mapping(port)])
                }
                _ => Ok(Vec::new()),
            }
        }
    }

    #[test]
    fn a_port_the_gateway_forwards_is_granted_and_a_taken_one_refused_as_a_conflict() {
        let owner = Owner::new();
        let ok = change(
            add(20570, false),
            &[],
            |c| owner.ask(c),
            |_| Word::Forwarded,
        );
        assert_eq!(ok.unwrap()[0].external_port, 20570);
        let refused = change(
            add(20570, false),
            &[],
            |c| owner.ask(c),
            |p| {
                if p == 20570 {
                    Word::Taken
                } else {
                    Word::Forwarded
                }
            },
        )
        .unwrap_err();
        assert_eq!(refused.error, UpnpError::ConflictInMappingEntry);
        assert!(refused.reason.contains("TCP 20570"), "{}", refused.reason);
        assert_eq!(
            *owner.asked.borrow(),
            ["AddPortMapping", "AddPortMapping", "taken upstream"]
        );
        assert_eq!(*owner.taken_back.borrow(), [20570]);
    }

    #[test]
    fn add_any_port_moves_past_ports_the_gateway_gives_to_others() {
        let owner = Owner::new();
        let word = |p: u16| {
            if p < 20572 {
                Word::Taken
            } else {
                Word::Forwarded
            }
        };
        let got = change(add(20570, true), &[], |c| owner.ask(c), word).unwrap();
        assert_eq!(got[0].external_port, 20572);
        assert_eq!(*owner.taken_back.borrow(), [20570, 20571]);
        // Every port taken: refused after its tries, each taken back.
        let owner = Owner::new();
        let err = change(add(20570, true), &[], |c| owner.ask(c), |_| Word::Taken).unwrap_err();
        assert_eq!(err.error, UpnpError::ConflictInMappingEntry);
        assert_eq!(owner.taken_back.borrow().len(), ANY_PORT_TRIES);
    }

    #[test]
    fn renewals_removals_and_no_nat_upstream_are_not_waited_for() {
        let owner = Owner::new();
        let pending = |_| Word::Pending;
        let started = Instant::now();
        // A renewal of a port held before: answered at once, whatever the gateway.
        change(add(20570, false), &[20570], |c| owner.ask(c), pending).unwrap();
        change(
            Change::Remove { port: 20570 },
            &[20570],
            |c| owner.ask(c),
            pending,
        )
        .unwrap();
        change(add(20571, false), &[], |c| owner.ask(c), |_| Word::NotAsked).unwrap();
        assert!(
            started.elapsed() < WORD_WAIT / 10,
            "{:?}",
            started.elapsed()
        );
        // A gateway with no word yet: answered (granted) when the wait is over.
        change(add(20572, false), &[], |c| owner.ask(c), pending).unwrap();
        assert!(started.elapsed() >= WORD_WAIT);
    }
}
