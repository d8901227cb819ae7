//! SSDP (UPnP discovery), pure part: reading M-SEARCH requests, choosing what to answer, and writing
//! answers and NOTIFY announcements.

use super::description::{device_types, service_types, Identity};

pub use crate::consts::{SSDP_GROUP as GROUP, SSDP_PORT as PORT};
/// A datagram bigger than this is not an M-SEARCH we care about.
pub const MAX_DATAGRAM: usize = 2048;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Search {
    pub st: String,
    /// Seconds the answer may be delayed (multicast searches); `None` for unicast ones.
    pub mx: Option<u32>,
    pub user_agent: Option<String>,
}

/// Reads an M-SEARCH. Anything else (NOTIFY from other devices, answers, junk) is `Err` with a reason.
pub fn parse_search(datagram: &[u8]) -> Result<Search, &'static str> {
    if datagram.len() > MAX_DATAGRAM {
        return Err("datagram too large");
    }
    let text = std::str::from_utf8(datagram).map_err(|_| "not UTF-8")?;
    let mut lines = text.split("\r\n").flat_map(|l| l.split('\n'));
    let start = lines.next().unwrap_or("");
    if !start.trim_end().eq_ignore_ascii_case("M-SEARCH * HTTP/1.1") {
        return Err("not an M-SEARCH");
    }
    let (mut st, mut man, mut mx, mut ua) = (None, None, None, None);
    for line in lines.take(32) {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let v = v.trim().to_string();
        match k.trim().to_ascii_uppercase().as_str() {
            "ST" => st = Some(v),
            "MAN" => man = Some(v),
            "MX" => mx = Some(v),
            "USER-AGENT" => ua = Some(v),
            _ => {}
        }
    }
    if man.as_deref().map(|m| m.trim_matches('"')) != Some("ssdp:discover") {
        return Err("MAN is not \"ssdp:discover\"");
    }
    let st = st.filter(|s| !s.is_empty()).ok_or("no ST")?;
    let mx = match mx {
        None => None,
        Some(v) => Some(v.parse::<u32>().map_err(|_| "MX is not a number")?),
    };
    Ok(Search {
        st,
        mx,
        user_agent: ua,
    })
}

/// Every (NT, USN) pair the device advertises at an IGD version.
pub fn advertisements(id: &Identity, version: u8) -> Vec<(String, String)> {
    let root = format!("uuid:{}", id.uuid);
    let mut v = vec![(
        "upnp:rootdevice".to_string(),
        format!("{root}::upnp:rootdevice"),
    )];
    for (kind, uuid) in device_types(id, version) {
        v.push((format!("uuid:{uuid}"), format!("uuid:{uuid}")));
        v.push((kind.clone(), format!("uuid:{uuid}::{kind}")));
    }
    for (kind, uuid) in service_types(id, version) {
        v.push((kind.to_string(), format!("uuid:{uuid}::{kind}")));
    }
    v
}

/// Splits `urn:schemas-upnp-org:device:WANDevice:2` into (`urn:schemas-upnp-org:device:WANDevice:`, 2).
fn versioned(urn: &str) -> Option<(&str, u32)> {
    let (base, v) = urn.rsplit_once(':')?;
    Some((&urn[..base.len() + 1], v.parse().ok()?))
}

/// The (ST, USN) answers to a search. Types are answered at the version searched for when we support
/// it (UDA 1.1: a device answers searches for older versions of its types with the version searched).
pub fn answers(id: &Identity, st: &str, v1_client: bool) -> Vec<(String, String)> {
    let native = if v1_client { 1 } else { 2 };
    if st == "ssdp:all" {
        return advertisements(id, native);
    }
    let all = advertisements(id, 2);
    if st == "upnp:rootdevice" || st.starts_with("uuid:") {
        return all.into_iter().filter(|(nt, _)| nt == st).collect();
    }
    let Some((base, wanted)) = versioned(st) else {
        return Vec::new();
    };
    all.into_iter()
        .filter_map(|(nt, usn)| {
            let (b, ours) = versioned(&nt)?;
            (b == base && (1..=ours).contains(&wanted)).then(|| {
                let uuid = usn.split("::").next().unwrap_or("").to_string();
                (st.to_string(), format!("{uuid}::{st}"))
            })
        })
        .collect()
}

pub fn server_header() -> String {
    format!("Linux UPnP/1.1 wilife-agent/{}", env!("CARGO_PKG_VERSION"))
}

/// The unicast answer to an M-SEARCH.
pub fn response(st: &str, usn: &str, location: &str, id: &Identity, max_age: u32) -> String {
    format!(
        "HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age={max_age}\r\nEXT:\r\nLOCATION: {location}\r\n\
SERVER: {}\r\nST: {st}\r\nUSN: {usn}\r\nBOOTID.UPNP.ORG: {}\r\nCONFIGID.UPNP.ORG: {}\r\n\r\n",
        server_header(),
        id.boot_id,
        id.config_id
    )
}

/// A NOTIFY announcement: `ssdp:alive` with a location, or `ssdp:byebye`.
pub fn notify(nt: &str, usn: &str, alive: Option<(&str, u32)>, id: &Identity) -> String {
    let mut s = format!("NOTIFY * HTTP/1.1\r\nHOST: {GROUP}:{PORT}\r\n");
    match alive {
        Some((location, max_age)) => s.push_str(&format!(
            "CACHE-CONTROL: max-age={max_age}\r\nLOCATION: {location}\r\nNT: {nt}\r\nNTS: ssdp:alive\r\nSERVER: {}\r\n",
            server_header()
        )),
        None => s.push_str(&format!("NT: {nt}\r\nNTS: ssdp:byebye\r\n")),
    }
    s.push_str(&format!(
        "USN: {usn}\r\nBOOTID.UPNP.ORG: {}\r\nCONFIGID.UPNP.ORG: {}\r\n\r\n",
        id.boot_id, id.config_id
    ));
    s
}

/// Token buckets for SSDP answers. A source's address is forgeable at will on a LAN (raw sockets), so
/// per-source buckets alone bound nothing: whoever cycles through addresses gets a fresh bucket each
/// time. So every source that is not an authorised Command Center also draws on one shared bucket,
/// which bounds what the router sends (and the neighbour resolutions it starts for absent hosts) in
/// all; the Command Centers' own buckets do not draw on it, so a flood of forged searches cannot
/// silence discovery for them. The table of buckets is bounded; when full, the one unused longest goes.
pub struct RateLimit {
    buckets: std::collections::HashMap<std::net::Ipv4Addr, Bucket>,
    shared: Bucket,
    per_source: (f64, f64),
    shared_rate: (f64, f64),
}

#[derive(Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: std::time::Instant,
}

impl Bucket {
    fn full(burst: f64, now: std::time::Instant) -> Bucket {
        Bucket {
            tokens: burst,
            at: now,
        }
    }

    /// Refilled to `now`, then `cost` taken if there is that much.
    fn take(&mut self, (burst, per_sec): (f64, f64), cost: f64, now: std::time::Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * per_sec).min(burst);
        self.at = now;
        if self.tokens >= cost {
            self.tokens -= cost;
            true
        } else {
            false
        }
    }
}

/// Buckets kept at most (sources seen recently).
const MAX_BUCKETS: usize = 256;

impl RateLimit {
    /// Each source: `burst` datagrams, refilled at `per_sec`; all but the Command Centers together:
    /// `shared_burst`, refilled at `shared_per_sec`.
    pub fn new(burst: f64, per_sec: f64, shared_burst: f64, shared_per_sec: f64) -> Self {
        let now = std::time::Instant::now();
        RateLimit {
            buckets: Default::default(),
            shared: Bucket::full(shared_burst, now),
            per_source: (burst, per_sec),
            shared_rate: (shared_burst, shared_per_sec),
        }
    }

    /// May `src` be sent `cost` more datagrams now (`trusted`: an authorised Command Center)? Takes
    /// them if so.
    pub fn take(
        &mut self,
        src: std::net::Ipv4Addr,
        cost: f64,
        now: std::time::Instant,
        trusted: bool,
    ) -> bool {
        if self.buckets.len() >= MAX_BUCKETS && !self.buckets.contains_key(&src) {
            if let Some(oldest) = (self.buckets.iter())
                .min_by_key(|(_, b)| b.at)
                .map(|(ip, _)| *ip)
            {
                self.buckets.remove(&oldest);
            }
        }
        let per_source = self.per_source;
        let mine = (self.buckets)
            .entry(src)
            .or_insert_with(|| Bucket::full(per_source.0, now));
        // Looked at before anything is taken: a refusal costs neither bucket.
        let mut probe = *mine;
        if !probe.take(per_source, cost, now) {
            *mine = probe;
            return false;
        }
        if !trusted && !self.shared.take(self.shared_rate, cost, now) {
            return false;
        }
        *mine = probe;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn id() -> Identity {
        Identity {
            uuid: "4c1f3a52-9b1e-8d4a-a1b2-0123456789ab".into(),
            friendly_name: "x".into(),
            boot_id: 7,
            config_id: 1,
        }
    }

    fn search(st: &str, mx: &str) -> Vec<u8> {
        format!("M-SEARCH * HTTP/1.1\r\nHOST: {GROUP}:{PORT}\r\nMAN: \"ssdp:discover\"\r\nMX: {mx}\r\nST: {st}\r\n\r\n").into_bytes()
    }

    #[test]
    fn reads_searches_and_refuses_the_rest() {
        let s = parse_search(&search("upnp:rootdevice", "2")).unwrap();
        assert_eq!((s.st.as_str(), s.mx), ("upnp:rootdevice", Some(2)));
        let unicast = b"M-SEARCH * HTTP/1.1\r\nMAN: ssdp:discover\r\nST: ssdp:all\r\n\r\n";
        assert_eq!(parse_search(unicast).unwrap().mx, None);
        assert!(parse_search(b"NOTIFY * HTTP/1.1\r\nNT: x\r\n\r\n").is_err());
        assert!(parse_search(&search("ssdp:all", "x")).is_err());
        assert!(parse_search(b"M-SEARCH * HTTP/1.1\r\nST: ssdp:all\r\n\r\n").is_err());
        assert!(parse_search(b"M-SEARCH * HTTP/1.1\r\nMAN: \"ssdp:discover\"\r\n\r\n").is_err());
        assert!(parse_search(&[0xff, 0xfe]).is_err());
        assert!(parse_search(&vec![b'a'; 5000]).is_err());
    }

    #[test]
    fn answers_follow_the_search_target() {
        let id = id();
        let root = "uuid:4c1f3a52-9b1e-8d4a-a1b2-0123456789ab";
        let a = answers(&id, "upnp:rootdevice", false);
        assert_eq!(
            a,
            vec![(
                "upnp:rootdevice".to_string(),
                format!("{root}::upnp:rootdevice")
            )]
        );
        assert_eq!(
            answers(&id, root, false),
            vec![(root.to_string(), root.to_string())]
        );
        let igd1 = "urn:schemas-upnp-org:device:InternetGatewayDevice:1";
        assert_eq!(
            answers(&id, igd1, false),
            vec![(igd1.to_string(), format!("{root}::{igd1}"))]
        );
        let ip1 = "urn:schemas-upnp-org:service:WANIPConnection:1";
        let a = answers(&id, ip1, false);
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].0, ip1);
        assert!(a[0].1.ends_with(&format!("::{ip1}")) && !a[0].1.starts_with(root));
        assert_eq!(
            answers(&id, "urn:schemas-upnp-org:service:WANIPConnection:2", false).len(),
            1
        );
        assert!(answers(&id, "urn:schemas-upnp-org:service:WANIPConnection:3", false).is_empty());
        assert!(answers(
            &id,
            "urn:schemas-upnp-org:service:WANCommonInterfaceConfig:2",
            false
        )
        .is_empty());
        assert!(answers(&id, "urn:schemas-upnp-org:device:MediaServer:1", false).is_empty());
        assert!(answers(&id, "uuid:00000000-0000-0000-0000-000000000000", false).is_empty());
        // ssdp:all: 1 root + 3 uuids + 3 device types + 2 service types.
        let all = answers(&id, "ssdp:all", false);
        assert_eq!(all.len(), 9);
        assert!(all
            .iter()
            .any(|(st, _)| st.ends_with("InternetGatewayDevice:2")));
        let all_v1 = answers(&id, "ssdp:all", true);
        assert!(all_v1.iter().all(|(st, _)| !st.ends_with(":2")));
    }

    #[test]
    fn messages_carry_the_required_headers() {
        let r = response(
            "upnp:rootdevice",
            "uuid:x::upnp:rootdevice",
            "http://192.168.1.1:5431/rootDesc.xml",
            &id(),
            900,
        );
        for h in [
            "HTTP/1.1 200 OK\r\n",
            "CACHE-CONTROL: max-age=900",
            "\r\nEXT:\r\n",
            "LOCATION: http://192.168.1.1:5431/rootDesc.xml",
            "SERVER: Linux UPnP/1.1 wilife-agent/",
            "ST: upnp:rootdevice",
            "USN: uuid:x::upnp:rootdevice",
            "BOOTID.UPNP.ORG: 7",
            "CONFIGID.UPNP.ORG: 1",
        ] {
            assert!(r.contains(h), "{h} missing in {r}");
        }
        assert!(r.ends_with("\r\n\r\n"));
        let alive = notify(
            "upnp:rootdevice",
            "uuid:x::upnp:rootdevice",
            Some(("http://l/", 900)),
            &id(),
        );
        assert!(alive.contains("NTS: ssdp:alive") && alive.contains("LOCATION: http://l/"));
        let bye = notify("upnp:rootdevice", "uuid:x::upnp:rootdevice", None, &id());
        assert!(bye.contains("NTS: ssdp:byebye") && !bye.contains("LOCATION"));
    }

    #[test]
    fn rate_limit_per_source() {
        let mut rl = RateLimit::new(10.0, 5.0, 10_000.0, 1000.0);
        let t = Instant::now();
        let a = "192.168.1.10".parse().unwrap();
        let b = "192.168.1.11".parse().unwrap();
        assert!(rl.take(a, 9.0, t, false));
        assert!(!rl.take(a, 9.0, t, false), "bucket empty");
        assert!(rl.take(b, 9.0, t, false), "another source is not affected");
        assert!(
            rl.take(a, 9.0, t + Duration::from_secs(2), false),
            "refilled"
        );
        // The table stays bounded, and a newcomer is never refused for it.
        for i in 0..1000u32 {
            assert!(rl.take(std::net::Ipv4Addr::from(0x0a00_0000 + i), 1.0, t, false));
        }
        assert!(rl.buckets.len() <= MAX_BUCKETS);
    }

    #[test]
    fn forged_sources_share_one_bucket_and_the_command_center_keeps_its_own() {
        let mut rl = RateLimit::new(10.0, 5.0, 50.0, 20.0);
        let t = Instant::now();
        // Every forged address has a fresh bucket of its own, but together they get the shared one.
        let sent = (0..1000u32)
            .filter(|i| rl.take(std::net::Ipv4Addr::from(0x0a00_0000 + i), 9.0, t, false))
            .count();
        assert_eq!(sent, 5);
        let cc = "192.168.1.10".parse().unwrap();
        assert!(!rl.take(cc, 9.0, t, false));
        assert!(
            rl.take(cc, 9.0, t, true),
            "the Command Center is answered all the same"
        );
        assert!(!rl.take(cc, 9.0, t, true), "within its own bucket");
        // The shared bucket refills.
        let later = t + Duration::from_secs(1);
        assert!(rl.take("192.168.1.99".parse().unwrap(), 9.0, later, false));
    }
}
