//! The SSDP relay on the wire (what it carries: `relay.rs`). One socket bound to the group address on
//! port 1900 hears the group on the LAN and the camera networks (bound to the group, not to any
//! address, so unicast searches to the router stay with the IGD's own SSDP socket); one socket bound
//! to each of the router's addresses on both sides, at port 1901 (SSDP_RELAY_PORT), sends to the group
//! there (the kernel sends multicast out of the device of the bound address) and hears the answers to
//! relayed searches.
//! Every source is rate-limited, the Command Centers from their own buckets.

use super::discovery::LanIf;
use super::relay::{message, Action, Relay, Sides};
use super::ssdp::{self, RateLimit, GROUP, PORT};
use super::ssdp_socket;
use crate::consts::{
    SSDP_BURST, SSDP_RATE_PER_SEC, SSDP_RELAY_PORT, SSDP_SHARED_BURST, SSDP_SHARED_RATE_PER_SEC,
};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::MsgFlags;
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

/// The running relay thread.
pub struct SsdpRelay {
    stop: Arc<AtomicBool>,
    sides: Arc<Mutex<Sides>>,
    handle: Option<JoinHandle<()>>,
}

impl SsdpRelay {
    pub fn start(sides: Sides) -> std::io::Result<SsdpRelay> {
        let group = ssdp_socket::port_socket(GROUP)?;
        let stop = Arc::new(AtomicBool::new(false));
        let sides = Arc::new(Mutex::new(sides));
        let (s, sd) = (stop.clone(), sides.clone());
        let handle = std::thread::Builder::new()
            .name("ssdp-relay".into())
            .spawn(move || Worker::new(group).run(&s, &sd))?;
        Ok(SsdpRelay {
            stop,
            sides,
            handle: Some(handle),
        })
    }

    pub fn update(&self, sides: Sides) {
        *self.sides.lock().unwrap() = sides;
    }

    pub fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

struct Worker {
    group: UdpSocket,
    /// (device, address) where the group socket has joined.
    joined: Vec<(u32, Ipv4Addr)>,
    senders: HashMap<Ipv4Addr, UdpSocket>,
    relay: Relay,
    limit: RateLimit,
}

impl Worker {
    fn new(group: UdpSocket) -> Worker {
        Worker {
            group,
            joined: Vec::new(),
            senders: HashMap::new(),
            relay: Relay::default(),
            limit: RateLimit::new(
                SSDP_BURST,
                SSDP_RATE_PER_SEC,
                SSDP_SHARED_BURST,
                SSDP_SHARED_RATE_PER_SEC,
            ),
        }
    }

    fn run(mut self, stop: &AtomicBool, shared: &Mutex<Sides>) {
        let mut sides = Sides::default();
        let mut buf = [0u8; ssdp::MAX_DATAGRAM + 1];
        while !stop.load(Ordering::SeqCst) {
            let latest = shared.lock().unwrap().clone();
            if latest != sides {
                sides = latest;
                self.refresh(&sides);
            }
            let ready: Vec<bool> = {
                let mut fds = vec![PollFd::new(self.group.as_fd(), PollFlags::POLLIN)];
                let senders: Vec<&UdpSocket> = self.senders.values().collect();
                fds.extend(
                    senders
                        .iter()
                        .map(|s| PollFd::new(s.as_fd(), PollFlags::POLLIN)),
                );
                let _ = poll(&mut fds, PollTimeout::from(200u16));
                let revents = |f: &PollFd| f.revents().is_some_and(|r| !r.is_empty());
                fds.iter().map(revents).collect()
            };
            if ready[0] {
                self.heard_on_group(&sides, &mut buf);
            }
            let readable: Vec<Ipv4Addr> = (self.senders.keys().copied())
                .zip(&ready[1..])
                .filter(|(_, r)| **r)
                .map(|(ip, _)| ip)
                .collect();
            for ip in readable {
                self.answer(&sides, ip, &mut buf);
            }
        }
    }

    /// Joins the group on both sides' addresses and keeps one sender per address.
    fn refresh(&mut self, sides: &Sides) {
        let all: Vec<&LanIf> = sides.lan.iter().chain(&sides.camera_nets).collect();
        let addrs: Vec<(u32, Ipv4Addr)> = (all.iter())
            .flat_map(|d| d.addrs.iter().map(|(ip, _)| (d.index, *ip)))
            .collect();
        ssdp_socket::join(&self.group, &mut self.joined, &addrs, "SSDP relay");
        let ips: Vec<Ipv4Addr> = addrs.iter().map(|a| a.1).collect();
        // One hop: the group on the other side, no further.
        ssdp_socket::senders(&mut self.senders, &ips, SSDP_RELAY_PORT, 1, "SSDP relay");
    }

    fn heard_on_group(&mut self, sides: &Sides, buf: &mut [u8]) {
        let Some(heard) = ssdp_socket::receive(&self.group, buf, MsgFlags::MSG_DONTWAIT) else {
            return;
        };
        let (src, ifindex, n) = (heard.from, heard.ifindex, heard.len);
        let datagram = &buf[..n];
        let Some(m) = message(datagram) else { return };
        let now = Instant::now();
        let action = self.relay.from_group(sides, ifindex, src, m, now);
        self.carry(sides, src, action, datagram, now);
    }

    fn answer(&mut self, sides: &Sides, local: Ipv4Addr, buf: &mut [u8]) {
        let Some(sock) = self.senders.get(&local) else {
            return;
        };
        let Ok((n, std::net::SocketAddr::V4(src))) = sock.recv_from(buf) else {
            return;
        };
        let datagram = &buf[..n];
        let Some(m) = message(datagram) else { return };
        let now = Instant::now();
        let action = self.relay.answer(sides, src, m, now);
        self.carry(sides, src, action, datagram, now);
    }

    fn carry(
        &mut self,
        sides: &Sides,
        src: SocketAddrV4,
        action: Action,
        datagram: &[u8],
        now: Instant,
    ) {
        let sends: Vec<(Ipv4Addr, SocketAddrV4)> = match action {
            Action::Drop(why) => {
                debug!("SSDP relay: {src} dropped: {why}");
                return;
            }
            Action::ToGroup(side) => (sides.devices(side).iter())
                .flat_map(|d| &d.addrs)
                .map(|(ip, _)| (*ip, SocketAddrV4::new(GROUP, PORT)))
                .collect(),
            Action::ToSearchers(searchers) => (searchers.into_iter())
                .filter_map(|to| Some((local_for(sides, *to.ip())?, to)))
                .collect(),
        };
        let trusted = sides.command_centers.contains(src.ip());
        if !self.limit.take(*src.ip(), sends.len() as f64, now, trusted) {
            debug!("SSDP relay: rate limit reached for {}", src.ip());
            return;
        }
        for (from, to) in sends {
            if let Some(sock) = self.senders.get(&from) {
                if let Err(e) = sock.send_to(datagram, to) {
                    debug!("SSDP relay: to {to} from {from}: {e}");
                }
            }
        }
    }
}

/// The router's address in `ip`'s subnet, on either side.
fn local_for(sides: &Sides, ip: Ipv4Addr) -> Option<Ipv4Addr> {
    (sides.lan.iter().chain(&sides.camera_nets))
        .flat_map(|d| &d.addrs)
        .find(|&&(a, len)| {
            crate::net::subnet::network(a, len) == crate::net::subnet::network(ip, len)
        })
        .map(|(a, _)| *a)
}
