//! SSDP on the wire: one UDP socket on port 1900 that has joined 239.255.255.250 on the LAN devices only.
//! IP_PKTINFO tells which device each datagram came in on; anything from a non-LAN device or from a
//! source outside the LAN subnets is dropped unanswered. Answers are rate-limited per source and in all
//! (any source address can be forged; the Command Centers keep their own share), sent without ever
//! waiting, and, for multicast searches, spread over MX seconds as UDA asks. NOTIFY ssdp:alive goes out at start and
//! periodically from a socket bound to each LAN address (the kernel then routes the multicast out of
//! that address's device); ssdp:byebye on a clean stop.

use super::description::{wants_v1, Identity, DESC_PATH};
use super::ssdp::{self, RateLimit, GROUP, PORT};
use super::ssdp_socket;
use crate::consts::{
    SSDP_BURST, SSDP_MX_MARGIN_MS, SSDP_RATE_PER_SEC, SSDP_SHARED_BURST, SSDP_SHARED_RATE_PER_SEC,
};
use crate::net::NetState;
use nix::sys::socket::{sendto, MsgFlags, SockaddrIn};
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What discovery needs to know; the daemon updates it on reload and when the LAN addresses change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub identity: Identity,
    pub http_port: u16,
    pub lan: Vec<LanIf>,
    pub notify_interval: u32,
    /// The authorised Command Centers' addresses: answered from their own rate buckets only.
    pub trusted: Vec<Ipv4Addr>,
}

/// The running SSDP thread.
pub struct Discovery {
    stop: Arc<AtomicBool>,
    settings: Arc<Mutex<Settings>>,
    handle: Option<JoinHandle<()>>,
}

/// A LAN device as discovery sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LanIf {
    pub index: u32,
    pub addrs: Vec<(Ipv4Addr, u8)>,
}

/// The LAN devices that exist now, with their IPv4 addresses.
pub fn lan_interfaces(devices: &[String], net: &NetState) -> Vec<LanIf> {
    devices
        .iter()
        .filter_map(|d| {
            Some(LanIf {
                index: net.index_of(d)?,
                addrs: net.ipv4_of(d),
            })
        })
        .collect()
}

/// A small non-cryptographic generator for answer delays (xorshift; seeded from the clock).
struct Jitter(u64);

impl Jitter {
    fn below_ms(&mut self, max_ms: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        if max_ms == 0 {
            0
        } else {
            self.0 % max_ms
        }
    }
}

impl Discovery {
    pub fn start(settings: Settings) -> std::io::Result<Discovery> {
        let sock = listen_socket()?;
        let stop = Arc::new(AtomicBool::new(false));
        let settings = Arc::new(Mutex::new(settings));
        let (s, st) = (stop.clone(), settings.clone());
        let handle = std::thread::spawn(move || Worker::new(sock, st).run(&s));
        Ok(Discovery {
            stop,
            settings,
            handle: Some(handle),
        })
    }

    pub fn update(&self, settings: Settings) {
        *self.settings.lock().unwrap() = settings;
    }

    /// Says ssdp:byebye and stops.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn listen_socket() -> std::io::Result<UdpSocket> {
    let sock = ssdp_socket::port_socket(Ipv4Addr::UNSPECIFIED)?;
    sock.set_read_timeout(Some(Duration::from_millis(200)))?;
    Ok(sock)
}

struct Worker {
    sock: UdpSocket,
    settings: Arc<Mutex<Settings>>,
    lan: Vec<LanIf>,
    joined: Vec<(u32, Ipv4Addr)>,
    senders: HashMap<Ipv4Addr, UdpSocket>,
    pending: Vec<(Instant, SocketAddr, String)>,
    limit: RateLimit,
    jitter: Jitter,
}

impl Worker {
    fn new(sock: UdpSocket, settings: Arc<Mutex<Settings>>) -> Worker {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
            ^ u64::from(std::process::id());
        Worker {
            sock,
            settings,
            lan: Vec::new(),
            joined: Vec::new(),
            senders: HashMap::new(),
            pending: Vec::new(),
            limit: RateLimit::new(
                SSDP_BURST,
                SSDP_RATE_PER_SEC,
                SSDP_SHARED_BURST,
                SSDP_SHARED_RATE_PER_SEC,
            ),
            jitter: Jitter(seed | 1),
        }
    }

    fn run(mut self, stop: &AtomicBool) {
        let mut settings = self.settings.lock().unwrap().clone();
        self.refresh(&settings);
        // Announce twice at start (UDP is lossy), then every notify_interval.
        let mut next_notify = Instant::now();
        let mut second_notify = Some(Instant::now() + Duration::from_secs(1));
        let mut next_refresh = Instant::now() + Duration::from_secs(5);
        let mut buf = [0u8; ssdp::MAX_DATAGRAM + 1];
        while !stop.load(Ordering::SeqCst) {
            let now = Instant::now();
            let latest = self.settings.lock().unwrap().clone();
            if latest != settings || now >= next_refresh {
                if latest != settings {
                    settings = latest;
                    next_notify = now;
                }
                self.refresh(&settings);
                next_refresh = now + Duration::from_secs(5);
            }
            if now >= next_notify || second_notify.is_some_and(|t| now >= t) {
                if now >= next_notify {
                    next_notify = now + Duration::from_secs(u64::from(settings.notify_interval));
                } else {
                    second_notify = None;
                }
                self.announce(&settings, true);
            }
            self.send_due(now);
            self.receive(&settings, &mut buf);
        }
        self.announce(&settings, false);
    }

    /// Takes the LAN devices as the daemon last saw them and joins the group on any new one (a join
    /// that failed is tried again).
    fn refresh(&mut self, settings: &Settings) {
        self.lan = settings.lan.clone();
        let addrs: Vec<(u32, Ipv4Addr)> = (self.lan.iter())
            .flat_map(|l| l.addrs.iter().map(|a| (l.index, a.0)))
            .collect();
        ssdp_socket::join(&self.sock, &mut self.joined, &addrs, "SSDP");
        let ips: Vec<Ipv4Addr> = addrs.iter().map(|a| a.1).collect();
        ssdp_socket::senders(&mut self.senders, &ips, 0, 2, "SSDP");
    }

    fn location(settings: &Settings, ip: Ipv4Addr) -> String {
        format!("http://{ip}:{}{DESC_PATH}", settings.http_port)
    }

    fn max_age(settings: &Settings) -> u32 {
        settings.notify_interval.saturating_mul(3)
    }

    fn announce(&self, settings: &Settings, alive: bool) {
        let id = &settings.identity;
        let ads = ssdp::advertisements(id, 2);
        for (ip, sock) in &self.senders {
            let location = Self::location(settings, *ip);
            for (nt, usn) in &ads {
                let msg = ssdp::notify(
                    nt,
                    usn,
                    alive.then(|| (location.as_str(), Self::max_age(settings))),
                    id,
                );
                if let Err(e) = sock.send_to(msg.as_bytes(), (GROUP, PORT)) {
                    debug!("SSDP: NOTIFY from {ip} failed: {e}");
                }
            }
        }
    }

    fn send_due(&mut self, now: Instant) {
        let (due, later): (Vec<_>, Vec<_>) =
            self.pending.drain(..).partition(|(t, _, _)| *t <= now);
        self.pending = later;
        for (_, to, msg) in due {
            // Never waits: an answer to an absent host sits in the kernel until its address
            // resolution fails, and a flood of such answers would fill the socket's buffer; then
            // this one is dropped (UDP is lossy; the client searches again), discovery goes on.
            let SocketAddr::V4(to) = to else { continue };
            let flags = MsgFlags::MSG_DONTWAIT;
            let sent = sendto(
                self.sock.as_raw_fd(),
                msg.as_bytes(),
                &SockaddrIn::from(to),
                flags,
            );
            if let Err(e) = sent {
                debug!("SSDP: answer to {to} failed: {e}");
            }
        }
    }

    fn receive(&mut self, settings: &Settings, buf: &mut [u8]) {
        let Some(heard) = ssdp_socket::receive(&self.sock, buf, MsgFlags::empty()) else {
            return; // timeout or EINTR: the loop comes back
        };
        let (n, src, ifindex, to_group) = (heard.len, heard.from, heard.ifindex, heard.to_group);
        // Only the LAN devices, only their subnets.
        let Some(lan) = self.lan.iter().find(|l| l.index == ifindex) else {
            return;
        };
        let Some(&(local, _)) = lan.addrs.iter().find(|(ip, len)| {
            crate::net::subnet::network(*ip, *len) == crate::net::subnet::network(*src.ip(), *len)
        }) else {
            return;
        };
        let Ok(search) = ssdp::parse_search(&buf[..n]) else {
            return;
        };
        let id = &settings.identity;
        let answers = ssdp::answers(id, &search.st, wants_v1(search.user_agent.as_deref()));
        if answers.is_empty() {
            return;
        }
        let now = Instant::now();
        let trusted = settings.trusted.contains(src.ip());
        if !self
            .limit
            .take(*src.ip(), answers.len() as f64, now, trusted)
        {
            debug!("SSDP: rate limit reached for {}", src.ip());
            return;
        }
        // UDA: spread answers to multicast searches over MX (at most 5) seconds; unicast ones at once.
        // The last half second stays free: clients such as async-upnp-client (Home Assistant's) stop
        // listening exactly at MX, and an answer sent at MX - 1 ms would arrive after that.
        let delay_ms = match (to_group, search.mx) {
            (true, Some(mx)) => self
                .jitter
                .below_ms(u64::from(mx.clamp(1, 5)) * 1000 - SSDP_MX_MARGIN_MS),
            _ => 0,
        };
        let location = Self::location(settings, local);
        for (st, usn) in answers {
            let msg = ssdp::response(&st, &usn, &location, id, Self::max_age(settings));
            self.pending.push((
                now + Duration::from_millis(delay_ms),
                SocketAddr::V4(src),
                msg,
            ));
        }
        self.send_due(now);
    }
}
