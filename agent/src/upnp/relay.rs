//! What the SSDP relay carries between a camera network and the LAN, so that cameras moved to a
//! network of their own and the Command Center still find each other (the vendor lists SSDP, UDP
//! 1900, both ways between them). Multicast does not cross a router, and nothing else may: pure, one
//! datagram and what is known of the two sides in, what to do with it out.
//!
//! - A NOTIFY or M-SEARCH a camera sends to the group, on a camera network, goes to the group on the
//!   LAN; one a Command Center sends on the LAN goes to the group on the camera networks. Nothing
//!   else is carried: not other hosts' datagrams, not answers to the group.
//! - The datagram is carried as it is: its LOCATION names the camera (or the Command Center) itself,
//!   which the other side then reaches across the router, as the camera rules allow.
//! - A relayed search is answered to the relay (the sender the other side sees): answers from the
//!   searched side go back to the searcher while the search's MX lasts (at most 5 s, and a second).

use super::discovery::LanIf;
use super::ssdp;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

/// Searches awaiting answers at most (the oldest goes when a new one comes).
const MAX_PENDING: usize = 32;

/// The two sides and who may speak on them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sides {
    pub lan: Vec<LanIf>,
    pub camera_nets: Vec<LanIf>,
    /// The cameras' addresses (configured, or learned for their MACs).
    pub cameras: Vec<Ipv4Addr>,
    pub command_centers: Vec<Ipv4Addr>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Lan,
    Cameras,
}

impl Side {
    fn other(self) -> Side {
        match self {
            Side::Lan => Side::Cameras,
            Side::Cameras => Side::Lan,
        }
    }
}

impl Sides {
    pub fn devices(&self, side: Side) -> &[LanIf] {
        match side {
            Side::Lan => &self.lan,
            Side::Cameras => &self.camera_nets,
        }
    }

    /// The side a host at `ip` may speak for: a camera or a Command Center, in its side's subnets.
    fn speaker(&self, ip: Ipv4Addr) -> Option<Side> {
        let on = |side: Side| {
            (self.devices(side).iter())
                .flat_map(|d| &d.addrs)
                .any(|&(a, len)| same_net(a, ip, len))
        };
        if self.cameras.contains(&ip) && on(Side::Cameras) {
            Some(Side::Cameras)
        } else if self.command_centers.contains(&ip) && on(Side::Lan) {
            Some(Side::Lan)
        } else {
            None
        }
    }

    /// The side device `ifindex` is on.
    fn side_of(&self, ifindex: u32) -> Option<Side> {
        [Side::Lan, Side::Cameras]
            .into_iter()
            .find(|&s| self.devices(s).iter().any(|d| d.index == ifindex))
    }
}

fn same_net(a: Ipv4Addr, b: Ipv4Addr, len: u8) -> bool {
    crate::net::subnet::network(a, len) == crate::net::subnet::network(b, len)
}

/// The SSDP messages the relay knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message {
    Notify,
    Search { mx: u32 },
    Answer,
}

/// What a datagram is, from its start line (a search also by its headers); `None` for anything else.
pub fn message(datagram: &[u8]) -> Option<Message> {
    if datagram.len() > ssdp::MAX_DATAGRAM {
        return None;
    }
    let end = datagram.iter().position(|&b| b == b'\n')?;
    let start = std::str::from_utf8(&datagram[..end]).ok()?.trim_end();
    if start.eq_ignore_ascii_case("NOTIFY * HTTP/1.1") {
        Some(Message::Notify)
    } else if start.eq_ignore_ascii_case("HTTP/1.1 200 OK") {
        Some(Message::Answer)
    } else {
        let search = ssdp::parse_search(datagram).ok()?;
        Some(Message::Search {
            mx: search.mx.unwrap_or(1).clamp(1, 5),
        })
    }
}

/// What to do with a datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send it to the group on every device of this side.
    ToGroup(Side),
    /// Send it to these searchers.
    ToSearchers(Vec<SocketAddrV4>),
    Drop(&'static str),
}

struct Pending {
    until: Instant,
    searcher: SocketAddrV4,
    side: Side,
}

/// The relay's memory: the searches it carried, until their answers are due.
#[derive(Default)]
pub struct Relay {
    pending: Vec<Pending>,
}

impl Relay {
    /// A datagram to the group, received on device `ifindex` from `src`.
    pub fn from_group(
        &mut self,
        sides: &Sides,
        ifindex: u32,
        src: SocketAddrV4,
        msg: Message,
        now: Instant,
    ) -> Action {
        let Some(side) = sides.side_of(ifindex) else {
            return Action::Drop("not a relayed device");
        };
        if sides.speaker(*src.ip()) != Some(side) {
            return Action::Drop("neither a camera nor a Command Center on its side");
        }
        match msg {
            Message::Notify => Action::ToGroup(side.other()),
            Message::Search { mx } => {
                self.pending.retain(|p| p.until > now);
                if self.pending.len() >= MAX_PENDING {
                    self.pending.remove(0);
                }
                self.pending.push(Pending {
                    until: now + Duration::from_secs(u64::from(mx) + 1),
                    searcher: src,
                    side,
                });
                Action::ToGroup(side.other())
            }
            Message::Answer => Action::Drop("an answer to the group"),
        }
    }

    /// A datagram to the relay's own address: an answer to a search it carried.
    pub fn answer(
        &mut self,
        sides: &Sides,
        src: SocketAddrV4,
        msg: Message,
        now: Instant,
    ) -> Action {
        if msg != Message::Answer {
            return Action::Drop("not an answer");
        }
        let Some(side) = sides.speaker(*src.ip()) else {
            return Action::Drop("neither a camera nor a Command Center");
        };
        self.pending.retain(|p| p.until > now);
        let searchers: Vec<SocketAddrV4> = (self.pending.iter())
            .filter(|p| p.side == side.other())
            .map(|p| p.searcher)
            .collect();
        if searchers.is_empty() {
            return Action::Drop("no search awaits it");
        }
        Action::ToSearchers(searchers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAN: u32 = 3;
    const CAMS: u32 = 7;
    const CC: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 10);
    const CAM: Ipv4Addr = Ipv4Addr::new(192, 168, 60, 50);

    fn sides() -> Sides {
        Sides {
            lan: vec![LanIf {
                index: LAN,
                addrs: vec![(Ipv4Addr::new(192, 168, 1, 1), 24)],
            }],
            camera_nets: vec![LanIf {
                index: CAMS,
                addrs: vec![(Ipv4Addr::new(192, 168, 60, 1), 24)],
            }],
            cameras: vec![CAM],
            command_centers: vec![CC],
        }
    }

    fn at(ip: Ipv4Addr, port: u16) -> SocketAddrV4 {
        SocketAddrV4::new(ip, port)
    }

    #[test]
    fn messages_are_told_by_their_start_line() {
        let search = b"M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: \"ssdp:discover\"\r\nMX: 9\r\nST: ssdp:all\r\n\r\n";
        assert_eq!(message(search), Some(Message::Search { mx: 5 }));
        assert_eq!(
            message(b"NOTIFY * HTTP/1.1\r\nNT: x\r\n\r\n"),
            Some(Message::Notify)
        );
        assert_eq!(
            message(b"HTTP/1.1 200 OK\r\nST: x\r\n\r\n"),
            Some(Message::Answer)
        );
        assert_eq!(message(b"GET / HTTP/1.1\r\n\r\n"), None);
        assert_eq!(message(b"NOTIFY * HTTP/1.1"), None);
        assert_eq!(message(&[b'x'; 4000]), None);
    }

    #[test]
    fn cameras_and_command_centers_only_each_to_the_other_side() {
        let (s, now) = (sides(), Instant::now());
        let mut r = Relay::default();
        let notify = Message::Notify;
        assert_eq!(
            r.from_group(&s, CAMS, at(CAM, 1900), notify, now),
            Action::ToGroup(Side::Lan)
        );
        assert_eq!(
            r.from_group(&s, LAN, at(CC, 1900), notify, now),
            Action::ToGroup(Side::Cameras)
        );
        // Another LAN host, a camera's address on the LAN side, a Command Center's on the camera
        // side, an unknown device: nothing crosses.
        let other = Ipv4Addr::new(192, 168, 1, 20);
        for (dev, src) in [(LAN, other), (LAN, CAM), (CAMS, CC), (9, CC)] {
            let a = r.from_group(&s, dev, at(src, 1900), notify, now);
            assert!(matches!(a, Action::Drop(_)), "{dev} {src}: {a:?}");
        }
        // Answers are never sent to the group.
        let a = r.from_group(&s, CAMS, at(CAM, 1900), Message::Answer, now);
        assert!(matches!(a, Action::Drop(_)));
    }

    #[test]
    fn answers_go_back_to_the_searcher_while_the_search_lasts() {
        let (s, now) = (sides(), Instant::now());
        let mut r = Relay::default();
        let searcher = at(CC, 50123);
        let search = Message::Search { mx: 2 };
        assert_eq!(
            r.from_group(&s, LAN, searcher, search, now),
            Action::ToGroup(Side::Cameras)
        );
        let answer = Message::Answer;
        assert_eq!(
            r.answer(&s, at(CAM, 1900), answer, now),
            Action::ToSearchers(vec![searcher])
        );
        // Not from the searcher's own side, not a search, not after MX and a second.
        assert!(matches!(
            r.answer(&s, at(CC, 1900), answer, now),
            Action::Drop(_)
        ));
        assert!(matches!(
            r.answer(&s, at(CAM, 1900), Message::Notify, now),
            Action::Drop(_)
        ));
        let late = now + Duration::from_secs(3);
        assert!(matches!(
            r.answer(&s, at(CAM, 1900), answer, late),
            Action::Drop(_)
        ));
        // The memory is bounded: a flood of searches keeps the newest.
        for port in 0..100 {
            r.from_group(&s, LAN, at(CC, 40000 + port), search, now);
        }
        match r.answer(&s, at(CAM, 1900), answer, now) {
            Action::ToSearchers(v) => {
                assert_eq!(v.len(), MAX_PENDING);
                assert_eq!(v.last(), Some(&at(CC, 40099)));
            }
            a => panic!("{a:?}"),
        }
    }
}
