//! GENA eventing: SUBSCRIBE / renew / UNSUBSCRIBE, and NOTIFY of evented state variables (an initial
//! event at subscription, then on every change). A callback must point at the subscriber's own address
//! (CallStranger, CVE-2020-12695: otherwise the router could be made to send traffic anywhere), the
//! number of subscriptions is capped per host and in all, with a share only the authorised Command
//! Centers may take, and NOTIFYs are sent side by side (`notifier.rs`), so a dead subscriber costs
//! nothing but its own slot until it expires.

use super::description::Service;
pub use super::notifier::Callback;
use super::notifier::{self, Job};
use super::xml::escape;
use crate::consts::{
    GENA_DEFAULT_TIMEOUT_SECS, GENA_MAX_PER_HOST, GENA_MAX_SUBSCRIPTIONS, GENA_RESERVED,
};
use crate::queue::Queue;
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Reads a CALLBACK header (`<http://192.168.1.10:2869/upnp/eventing/abc>`, possibly several URLs) and
/// keeps the first one that points at the requester itself.
pub fn parse_callback(header: &str, requester: Ipv4Addr) -> Result<Callback, String> {
    let mut seen = Vec::new();
    for part in header.split('<').skip(1) {
        let url = part.split('>').next().unwrap_or("").trim();
        let Some(rest) = url.strip_prefix("http://") else {
            seen.push(format!("{url:.60} (not http)"));
            continue;
        };
        let (hostport, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) => (h, p.parse::<u16>().ok()),
            None => (hostport, Some(80)),
        };
        let (Ok(ip), Some(port)) = (host.parse::<Ipv4Addr>(), port) else {
            seen.push(format!("{url:.60} (not an IPv4 address and port)"));
            continue;
        };
        if ip != requester || port == 0 {
            seen.push(format!("{url:.60} (not the subscriber {requester})"));
            continue;
        }
        if path.len() > 256 || path.bytes().any(|b| b.is_ascii_control() || b == b' ') {
            seen.push(format!("{url:.60} (bad path)"));
            continue;
        }
        return Ok(Callback {
            addr: SocketAddrV4::new(ip, port),
            path: path.to_string(),
        });
    }
    Err(if seen.is_empty() {
        "no <http://…> callback URL".into()
    } else {
        format!("no usable callback: {}", seen.join(", "))
    })
}

/// `Second-1800` / `infinite` -> seconds, bounded to [60, default] so slots are recycled.
pub fn parse_timeout(header: Option<&str>) -> u64 {
    let asked = header
        .and_then(|h| h.trim().strip_prefix("Second-"))
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(GENA_DEFAULT_TIMEOUT_SECS);
    asked.clamp(60, GENA_DEFAULT_TIMEOUT_SECS)
}

/// The event body: an `e:propertyset` of the given variables.
pub fn propertyset(vars: &[(&str, String)]) -> String {
    let mut s = String::from(
        "<?xml version=\"1.0\"?>\n<e:propertyset xmlns:e=\"urn:schemas-upnp-org:event-1-0\">",
    );
    for (name, value) in vars {
        s.push_str(&format!(
            "<e:property><{name}>{}</{name}></e:property>",
            escape(value)
        ));
    }
    s.push_str("</e:propertyset>\n");
    s
}

/// A subscription ID: a version-4 UUID from the kernel's random source.
fn new_sid() -> std::io::Result<String> {
    let mut b = crate::random::bytes::<16>()?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = crate::random::hex(&b);
    Ok(format!(
        "uuid:{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    ))
}

struct Subscription {
    service: Service,
    callback: Callback,
    expires: Instant,
    seq: u32,
}

/// Why a GENA request was refused: the HTTP status to answer with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenaError {
    pub status: u16,
    pub reason: String,
}

fn gena_error(status: u16, reason: impl Into<String>) -> GenaError {
    GenaError {
        status,
        reason: reason.into(),
    }
}

pub struct Subscriptions {
    subs: Mutex<HashMap<String, Subscription>>,
    /// Last evented values per service, sent to new subscribers and compared on change.
    state: Mutex<HashMap<Service, String>>,
    /// The authorised Command Centers' addresses: only they may take the last GENA_RESERVED slots.
    trusted: Mutex<Vec<Ipv4Addr>>,
    jobs: Arc<Queue<Job>>,
}

impl Drop for Subscriptions {
    /// The NOTIFY thread ends with the subscriptions (what is queued is still sent).
    fn drop(&mut self) {
        self.jobs.close();
    }
}

impl Default for Subscriptions {
    fn default() -> Self {
        Self::new()
    }
}

impl Subscriptions {
    pub fn new() -> Self {
        let jobs = Arc::new(Queue::unbounded());
        let queue = Arc::clone(&jobs);
        std::thread::spawn(move || notifier::run(&queue));
        Subscriptions {
            subs: Mutex::new(HashMap::new()),
            state: Mutex::new(HashMap::new()),
            trusted: Mutex::new(Vec::new()),
            jobs,
        }
    }

    /// The addresses the reserved slots are for (replaces the previous ones).
    pub fn set_trusted(&self, ips: Vec<Ipv4Addr>) {
        *self.trusted.lock().unwrap() = ips;
    }

    /// A new subscription; returns (SID, timeout seconds). The initial event follows the response.
    pub fn subscribe(
        &self,
        service: Service,
        callback: Callback,
        timeout: u64,
    ) -> Result<(String, u64), GenaError> {
        let mut subs = self.subs.lock().unwrap();
        let now = Instant::now();
        subs.retain(|_, s| s.expires > now);
        // The callback is the subscriber's own address (checked when it was read): many hosts
        // together can fill what is not reserved, never the Command Centers' share.
        let host = *callback.addr.ip();
        let trusted = self.trusted.lock().unwrap().clone();
        let others = (subs.values())
            .filter(|s| !trusted.contains(s.callback.addr.ip()))
            .count();
        let general_full = others >= GENA_MAX_SUBSCRIPTIONS - GENA_RESERVED;
        if subs.len() >= GENA_MAX_SUBSCRIPTIONS || (!trusted.contains(&host) && general_full) {
            return Err(gena_error(503, "too many subscriptions"));
        }
        if subs
            .values()
            .filter(|s| *s.callback.addr.ip() == host)
            .count()
            >= GENA_MAX_PER_HOST
        {
            return Err(gena_error(503, "too many subscriptions from this host"));
        }
        let sid = new_sid().map_err(|e| gena_error(500, format!("no random source: {e}")))?;
        subs.insert(
            sid.clone(),
            Subscription {
                service,
                callback,
                expires: now + Duration::from_secs(timeout),
                seq: 0,
            },
        );
        Ok((sid, timeout))
    }

    /// Queues the initial event (SEQ 0) of a new subscription.
    pub fn initial_event(&self, sid: &str) {
        let subs = self.subs.lock().unwrap();
        let Some(s) = subs.get(sid) else { return };
        let body = self.state.lock().unwrap().get(&s.service).cloned();
        if let Some(body) = body {
            let _ = self.jobs.push(Job {
                callback: s.callback.clone(),
                sid: sid.to_string(),
                seq: 0,
                body,
            });
        }
    }

    /// Renews `sid` for the host that holds it (another host gets 412, as for an unknown SID).
    pub fn renew(
        &self,
        service: Service,
        sid: &str,
        requester: Ipv4Addr,
        timeout: u64,
    ) -> Result<u64, GenaError> {
        let mut subs = self.subs.lock().unwrap();
        match subs.get_mut(sid) {
            Some(s)
                if s.service == service
                    && *s.callback.addr.ip() == requester
                    && s.expires > Instant::now() =>
            {
                s.expires = Instant::now() + Duration::from_secs(timeout);
                Ok(timeout)
            }
            _ => Err(gena_error(412, "no such subscription")),
        }
    }

    /// Ends `sid` for the host that holds it (another host gets 412).
    pub fn unsubscribe(
        &self,
        service: Service,
        sid: &str,
        requester: Ipv4Addr,
    ) -> Result<(), GenaError> {
        let mut subs = self.subs.lock().unwrap();
        match subs.get(sid) {
            Some(s) if s.service == service && *s.callback.addr.ip() == requester => {
                subs.remove(sid);
                Ok(())
            }
            _ => Err(gena_error(412, "no such subscription")),
        }
    }

    pub fn count(&self) -> usize {
        let now = Instant::now();
        self.subs
            .lock()
            .unwrap()
            .values()
            .filter(|s| s.expires > now)
            .count()
    }

    /// New values of a service's evented variables: remembered, and sent to its subscribers if changed.
    pub fn publish(&self, service: Service, vars: &[(&str, String)]) {
        let body = propertyset(vars);
        {
            let mut state = self.state.lock().unwrap();
            if state.get(&service) == Some(&body) {
                return;
            }
            state.insert(service, body.clone());
        }
        let mut subs = self.subs.lock().unwrap();
        let now = Instant::now();
        subs.retain(|_, s| s.expires > now);
        let jobs = &self.jobs;
        for (sid, s) in subs.iter_mut().filter(|(_, s)| s.service == service) {
            // SEQ wraps to 1, never back to 0 (0 is the initial event only).
            s.seq = s.seq.checked_add(1).unwrap_or(1);
            let _ = jobs.push(Job {
                callback: s.callback.clone(),
                sid: sid.clone(),
                seq: s.seq,
                body: body.clone(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 10);

    #[test]
    fn callbacks_must_point_at_the_subscriber() {
        let c = parse_callback("<http://192.168.1.10:2869/upnp/eventing/abc>", ME).unwrap();
        assert_eq!(c.addr, SocketAddrV4::new(ME, 2869));
        assert_eq!(c.path, "/upnp/eventing/abc");
        let c = parse_callback("<http://192.168.1.10>", ME).unwrap();
        assert_eq!((c.addr.port(), c.path.as_str()), (80, "/"));
        // The first usable URL wins.
        let c = parse_callback("<http://10.0.0.1:80/x><http://192.168.1.10:5000/y>", ME).unwrap();
        assert_eq!(c.path, "/y");
        for bad in [
            "<http://203.0.113.50:80/x>",
            "<http://192.168.1.11:80/x>",
            "<https://192.168.1.10/x>",
            "<http://evil.example/x>",
            "<http://192.168.1.10:0/x>",
            "<http://192.168.1.10:99999/x>",
            "http://192.168.1.10/x",
            "",
        ] {
            assert!(parse_callback(bad, ME).is_err(), "{bad}");
        }
    }

    #[test]
    fn timeouts_are_bounded() {
        assert_eq!(parse_timeout(Some("Second-300")), 300);
        assert_eq!(parse_timeout(Some("Second-5")), 60);
        assert_eq!(parse_timeout(Some("infinite")), GENA_DEFAULT_TIMEOUT_SECS);
        assert_eq!(
            parse_timeout(Some("Second-99999999")),
            GENA_DEFAULT_TIMEOUT_SECS
        );
        assert_eq!(parse_timeout(None), GENA_DEFAULT_TIMEOUT_SECS);
    }

    #[test]
    fn subscriptions_lifecycle_owner_and_caps() {
        let s = Subscriptions::new();
        let cb = |last: u8| Callback {
            addr: SocketAddrV4::new(Ipv4Addr::new(192, 168, 1, last), 9),
            path: "/".into(),
        };
        let me = Ipv4Addr::new(192, 168, 1, 10);
        let other = Ipv4Addr::new(192, 168, 1, 30);
        let (sid, t) = s.subscribe(Service::WanIp, cb(10), 300).unwrap();
        assert_eq!(t, 300);
        assert!(sid.starts_with("uuid:") && sid.len() == 41, "{sid}");
        assert_eq!(s.renew(Service::WanIp, &sid, me, 600).unwrap(), 600);
        assert_eq!(
            s.renew(Service::CommonIf, &sid, me, 600)
                .unwrap_err()
                .status,
            412
        );
        assert_eq!(
            s.renew(Service::WanIp, "uuid:nope", me, 600)
                .unwrap_err()
                .status,
            412
        );
        // Another host can neither renew nor end it.
        assert_eq!(
            s.renew(Service::WanIp, &sid, other, 600)
                .unwrap_err()
                .status,
            412
        );
        assert_eq!(
            s.unsubscribe(Service::WanIp, &sid, other)
                .unwrap_err()
                .status,
            412
        );
        s.unsubscribe(Service::WanIp, &sid, me).unwrap();
        assert_eq!(
            s.unsubscribe(Service::WanIp, &sid, me).unwrap_err().status,
            412
        );
        // SIDs are random: no two alike, nothing in common between consecutive ones.
        let (a, _) = s.subscribe(Service::WanIp, cb(11), 300).unwrap();
        let (b, _) = s.subscribe(Service::WanIp, cb(11), 300).unwrap();
        assert_ne!(a[5..13], b[5..13]);
        // One host holds at most GENA_MAX_PER_HOST; hosts that are no Command Center together
        // GENA_MAX_SUBSCRIPTIONS - GENA_RESERVED.
        for _ in 2..GENA_MAX_PER_HOST {
            s.subscribe(Service::WanIp, cb(11), 300).unwrap();
        }
        assert_eq!(
            s.subscribe(Service::WanIp, cb(11), 300).unwrap_err().status,
            503
        );
        let mut host = 100;
        while s.count() < GENA_MAX_SUBSCRIPTIONS - GENA_RESERVED {
            s.subscribe(Service::WanIp, cb(host), 300).unwrap();
            host += 1;
        }
        assert_eq!(
            s.subscribe(Service::WanIp, cb(12), 300).unwrap_err().status,
            503
        );
    }

    #[test]
    fn many_hosts_cannot_take_the_command_centers_share() {
        let s = Subscriptions::new();
        let cb = |last: u8| Callback {
            addr: SocketAddrV4::new(Ipv4Addr::new(192, 168, 1, last), 9),
            path: "/".into(),
        };
        s.set_trusted(vec![ME]);
        let mut host = 100;
        while s.subscribe(Service::WanIp, cb(host / 4), 300).is_ok() {
            host += 1;
        }
        assert_eq!(s.count(), GENA_MAX_SUBSCRIPTIONS - GENA_RESERVED);
        for _ in 0..GENA_MAX_PER_HOST {
            s.subscribe(Service::WanIp, cb(10), 300).unwrap();
        }
        assert_eq!(
            s.subscribe(Service::WanIp, cb(10), 300).unwrap_err().status,
            503
        );
    }

    #[test]
    fn propertyset_is_escaped_xml() {
        let body = propertyset(&[("ExternalIPAddress", "1.2.3.4".into()), ("X", "<&>".into())]);
        assert!(body
            .contains("<e:property><ExternalIPAddress>1.2.3.4</ExternalIPAddress></e:property>"));
        assert!(body.contains("&lt;&amp;&gt;"));
    }
}
