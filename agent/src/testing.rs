//! Builders for the unit tests of the pure parts: a snapshot from UCI text, and network readings.

use crate::config::{parse, parse_mac, Config, Overrides};
use crate::net::{Addr, Link, NetState, Sighting};
use crate::status::{Fw4Include, Snapshot};
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::{Duration, SystemTime};

/// A fixed "now" for presence and ages.
pub fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

/// `agent` options (besides the devices) and further sections, as UCI text.
pub fn config(agent: &str, rest: &str) -> Config {
    let text = format!(
        "config agent 'main'\n\toption wan_device 'wan0'\n\tlist lan_device 'br-lan'\n{agent}{rest}"
    );
    parse(
        &text,
        Path::new("/etc/config/wilife"),
        &Overrides::default(),
    )
    .unwrap()
}

/// A snapshot of a healthy router: our tables and fw4's include in force, wan0 (index 2) up with
/// `wan_ip`, br-lan (index 3) with 192.168.1.1/24, and nobody seen yet.
pub fn snapshot(config: Config, wan_ip: &str) -> Snapshot {
    let include = Fw4Include {
        path: "/usr/share/nftables.d/chain-pre/forward/30-wilife.nft".into(),
        present: true,
        matches_connmark: true,
        in_fw4_ruleset: Some(true),
    };
    let mut snap = Snapshot::new(config, include);
    snap.table_present = true;
    snap.net = NetState {
        links: vec![link(2, "wan0", true), link(3, "br-lan", true)],
        addrs: vec![
            Addr {
                index: 2,
                ip: wan_ip.parse::<Ipv4Addr>().unwrap().into(),
                prefix: 24,
            },
            Addr {
                index: 3,
                ip: Ipv4Addr::new(192, 168, 1, 1).into(),
                prefix: 24,
            },
        ],
        taken_at: Some(now()),
        ..Default::default()
    };
    snap.facts = crate::net::facts(&snap.config, &snap.net, &[]);
    snap
}

pub fn link(index: u32, name: &str, up: bool) -> Link {
    Link {
        index,
        name: name.into(),
        up,
        mac: None,
        port: Default::default(),
    }
}

/// A valid neighbour entry, confirmed `age_s` seconds before the reading.
pub fn neighbour(mac: &str, ip: &str, age_s: u64) -> Sighting {
    Sighting {
        mac: parse_mac(mac).unwrap(),
        ip: Some(ip.parse().unwrap()),
        index: 3,
        valid: true,
        age: Duration::from_secs(age_s),
        vlan: 0,
    }
}

/// `snap` after the neighbour table learned `sighting` (facts follow, as the daemon derives them).
pub fn seen(mut snap: Snapshot, sighting: Sighting) -> Snapshot {
    snap.net.neighbours.push(sighting);
    snap.facts = crate::net::facts(&snap.config, &snap.net, &snap.dhcp_leases);
    snap
}
