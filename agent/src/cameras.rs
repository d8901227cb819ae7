//! The cameras document of the API: each camera's addresses, presence, traffic with the Command
//! Centers (named counters that survive re-applies), and the rules in force. Pure: snapshot and counter
//! values in.

use crate::diagnosis::command_center_present;
use crate::firewall::apply::Counts;
use crate::firewall::render::cameras::{
    traffic_counters, COUNTER_ISOLATION_BRIDGED, COUNTER_ISOLATION_INPUT, COUNTER_ISOLATION_ROUTED,
};
use crate::firewall::{camera_ips, command_center_ips};
use crate::net::switching::{self, PathReport, PortReport};
use crate::net::{self, dhcp::Lease, Presence};
use crate::status::Snapshot;
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::{Duration, SystemTime};

#[derive(Debug, Clone, Serialize)]
pub struct Traffic {
    /// Camera -> Command Center (video, answers), bridged and routed together.
    pub to_command_center: Counts,
    pub from_command_center: Counts,
}

#[derive(Debug, Clone, Serialize)]
pub struct CameraReport {
    pub name: String,
    pub mac: String,
    /// The configured address, else the first one learned.
    pub ip: Option<Ipv4Addr>,
    /// Every address the rules use for it (configured and learned).
    pub ips: Vec<Ipv4Addr>,
    #[serde(flatten)]
    pub presence: Presence,
    pub lease: Option<Lease>,
    pub traffic: Traffic,
    /// `enforced` (rules in the kernel), `routed_only` (the kernel refused the bridge table),
    /// `not_enforced` (they should be, but are not), `disabled`.
    pub rules: &'static str,
    /// The worst of `paths`: whether the camera rules see all of the camera's traffic.
    pub verdict: switching::Verdict,
    /// That path's sentence.
    pub verdict_message: String,
    /// The port the camera sits behind, and its switch.
    pub port: Option<PortReport>,
    /// For each Command Center and the rest of the LAN: do the rules see the traffic at all?
    pub paths: Vec<PathReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct HostReport {
    pub name: String,
    pub ip: Option<Ipv4Addr>,
    pub mac: Option<String>,
    pub present: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Drops {
    pub bridged: Counts,
    pub routed: Counts,
    pub router: Counts,
}

#[derive(Debug, Clone, Serialize)]
pub struct CamerasDoc {
    pub isolation: bool,
    pub video_port: u16,
    pub dns: bool,
    pub presence_timeout: u32,
    pub cameras: Vec<CameraReport>,
    pub command_centers: Vec<HostReport>,
    /// What isolation dropped so far.
    pub isolation_drops: Drops,
}

/// `live`: table presence and counter values read from the kernel (`None`: could not be read).
pub fn report(
    snap: &Snapshot,
    live: Option<(bool, &BTreeMap<String, Counts>)>,
    now: SystemTime,
) -> CamerasDoc {
    let c = &snap.config;
    let get = |name: &str| -> Counts {
        live.and_then(|l| l.1.get(name).copied())
            .unwrap_or_default()
    };
    let sum = |a: Counts, b: Counts| Counts {
        packets: a.packets + b.packets,
        bytes: a.bytes + b.bytes,
    };
    let timeout = Duration::from_secs(c.presence_timeout.into());
    let present_in_kernel = live.map_or(snap.table_present, |l| l.0);
    let mut places = switching::report(c, &snap.net).into_iter();
    let cameras = c
        .cameras
        .iter()
        .map(|cam| {
            let place = places.next().expect("one per camera");
            let worst = place
                .worst()
                .cloned()
                .expect("a path to the rest of the LAN");
            let ips = camera_ips(cam, &snap.facts);
            let [btx, brx, rtx, rrx] = traffic_counters(&cam.mac);
            CameraReport {
                name: cam.name.clone(),
                mac: cam.mac.to_string(),
                ip: cam.ip.or_else(|| ips.first().copied()),
                ips,
                presence: net::presence(&snap.net, cam.mac, now, timeout),
                lease: snap.dhcp_leases.iter().find(|l| l.mac == cam.mac).cloned(),
                traffic: Traffic {
                    to_command_center: sum(get(&btx), get(&rtx)),
                    from_command_center: sum(get(&brx), get(&rrx)),
                },
                rules: match (c.enabled, present_in_kernel, &snap.bridge_error) {
                    (false, _, _) => "disabled",
                    (true, false, _) => "not_enforced",
                    (true, true, Some(_)) => "routed_only",
                    (true, true, None) => "enforced",
                },
                verdict: worst.verdict,
                verdict_message: worst.message,
                port: place.port,
                paths: place.paths,
            }
        })
        .collect();
    let cc_ips = command_center_ips(c, &snap.facts);
    let command_centers = c
        .command_centers
        .iter()
        .map(|cc| HostReport {
            name: cc.name.clone(),
            ip: cc.ip.or_else(|| {
                cc.mac.and_then(|m| {
                    snap.facts
                        .learned
                        .iter()
                        .find(|(lm, ip)| *lm == m && cc_ips.contains(ip))
                        .map(|(_, ip)| *ip)
                })
            }),
            mac: cc.mac.map(|m| m.to_string()),
            present: command_center_present(snap, cc, now, timeout),
        })
        .collect();
    CamerasDoc {
        isolation: c.camera_rules.isolation,
        video_port: c.camera_rules.video_port,
        dns: c.camera_rules.dns,
        presence_timeout: c.presence_timeout,
        cameras,
        command_centers,
        isolation_drops: Drops {
            bridged: get(COUNTER_ISOLATION_BRIDGED),
            routed: get(COUNTER_ISOLATION_ROUTED),
            router: get(COUNTER_ISOLATION_INPUT),
        },
    }
}

#[cfg(test)]
mod tests;
