//! `wilife-agent selftest`: runs the pure core on fixed inputs and compares with known answers, on the
//! router's own CPU. Made for qemu-user runs of the cross builds: byte order (MIPS is big-endian),
//! word size and soft-float bugs show up here as a failed check, without a kernel or a network.
//! Touches nothing: no files, no sockets.

use crate::config::{self, parse_mac, Overrides};
use crate::firewall::{render, text, NetFacts};
use crate::netlink;
use crate::upnp::description::{uuid_from_mac, Service};
use crate::upnp::policy::{self, AddRequest, Change, Scope};
use crate::upnp::{soap, ssdp};
use std::net::Ipv4Addr;
use std::path::Path;

/// The golden test's "cameras" case: config, facts, and the text the renderer must produce.
const CONFIG: &str = "config agent 'main'\n\toption wan_device 'eth1'\n\tlist lan_device 'br-lan'\n\tlist lan_device 'br-guest'\n\toption direct_access 'off'\n\
config command_center\n\toption mac '00:11:22:33:44:55'\n\
config camera\n\toption name 'porch'\n\toption mac '00:11:22:33:44:66'\n\toption ip '192.168.1.30'\n\
config camera\n\toption name 'yard'\n\toption mac '00:11:22:33:44:67'\n\
config camera_rules 'cameras'\n\toption video_port '22210'\n\toption dns '1'\n\
config outbound 'outbound'\n\toption smtp_port '465'\n\toption remote_client '1'\n";
const GOLDEN: &str = include_str!("../tests/golden/cameras.nft");

const SOAP_ADD: &str = r#"<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body><u:AddPortMapping xmlns:u="urn:schemas-upnp-org:service:WANIPConnection:1"><NewRemoteHost></NewRemoteHost><NewExternalPort>20571</NewExternalPort><NewProtocol>TCP</NewProtocol><NewInternalPort>20571</NewInternalPort><NewInternalClient>192.168.1.10</NewInternalClient><NewEnabled>1</NewEnabled><NewPortMappingDescription>WiLife</NewPortMappingDescription><NewLeaseDuration>3600</NewLeaseDuration></u:AddPortMapping></s:Body></s:Envelope>"#;

fn facts() -> NetFacts {
    let mac = |s: &str| parse_mac(s).expect("mac");
    NetFacts {
        wan_ipv4: vec![Ipv4Addr::new(203, 0, 113, 1)],
        lan_ipv4_nets: vec![(Ipv4Addr::new(192, 168, 1, 0), 24)],
        lan_ipv4: vec![Ipv4Addr::new(192, 168, 1, 1)],
        learned: vec![
            (mac("00:11:22:33:44:55"), Ipv4Addr::new(192, 168, 1, 10)),
            (mac("00:11:22:33:44:67"), Ipv4Addr::new(192, 168, 1, 31)),
            (mac("00:11:22:33:44:67"), Ipv4Addr::new(192, 168, 1, 32)),
        ],
    }
}

/// Runs every check; the failures, in words (empty: all passed), and how many checks ran.
pub fn run() -> (usize, Vec<String>) {
    let mut checks = 0;
    let mut failures = Vec::new();
    let mut check = |name: &str, ok: Result<(), String>| {
        checks += 1;
        if let Err(e) = ok {
            failures.push(format!("{name}: {e}"));
        }
    };
    let cfg = config::parse(CONFIG, Path::new("selftest"), &Overrides::default());
    check(
        "UCI parse",
        match &cfg {
            Ok(c) if c.cameras.len() == 2 && c.camera_rules.video_port == 22210 => Ok(()),
            Ok(c) => Err(format!(
                "parsed wrongly: {} cameras, video port {}",
                c.cameras.len(),
                c.camera_rules.video_port
            )),
            Err(e) => Err(e.to_string()),
        },
    );
    let Ok(cfg) = cfg else {
        return (checks, failures);
    };
    let batch = render::render(&render::Desired {
        config: &cfg,
        forwards: &[],
        facts: &facts(),
    })
    .batch();
    let got = text::to_text(&batch);
    check(
        "render",
        if got == GOLDEN {
            Ok(())
        } else {
            let line = got
                .lines()
                .zip(GOLDEN.lines())
                .position(|(a, b)| a != b)
                .unwrap_or(0);
            Err(format!(
                "the rendered table differs from the golden file at line {}",
                line + 1
            ))
        },
    );
    check("SOAP + policy", soap_and_policy());
    check("SSDP", {
        let s = ssdp::parse_search(b"M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: \"ssdp:discover\"\r\nMX: 2\r\nST: upnp:rootdevice\r\n\r\n");
        match s {
            Ok(s) if s.st == "upnp:rootdevice" && s.mx == Some(2) => Ok(()),
            Ok(s) => Err(format!("ST {}, MX {}", s.st, s.mx.unwrap_or(0))),
            Err(e) => Err(e.to_string()),
        }
    });
    check("UUID", {
        let u = uuid_from_mac([0x0a, 0, 0, 0, 0, 0x20]);
        // Pinned: the same MAC must give the same UUID on every CPU (it is the device's identity).
        if u == uuid_from_mac([0x0a, 0, 0, 0, 0, 0x20]) && u.len() == 36 && u == UUID_0A20 {
            Ok(())
        } else {
            Err(format!("uuid_from_mac gave {u}"))
        }
    });
    check("netlink framing", {
        let m = netlink::message(
            0x101,
            netlink::NLM_F_REQUEST,
            7,
            &[2, 0, 0, 0],
            &[(8, &[1, 2, 3])],
        );
        let parsed: Vec<_> = netlink::messages(&m).collect();
        let attrs: Vec<_> = parsed
            .first()
            .map(|p| netlink::attributes(&p.2[4..]).collect())
            .unwrap_or_default();
        if parsed.len() == 1
            && parsed[0].0 == 0x101
            && parsed[0].1 == 7
            && attrs == vec![(8, &[1u8, 2, 3][..])]
        {
            Ok(())
        } else {
            Err(format!("round trip gave {} messages", parsed.len()))
        }
    });
    (checks, failures)
}

/// The UUID `uuid_from_mac` gives for 0a:00:00:00:00:20 (x86_64, pinned).
const UUID_0A20: &str = "cefcc5e6-74ab-81e9-a8d6-aaff33cb2d70";

fn soap_and_policy() -> Result<(), String> {
    let call = soap::parse_call(
        SOAP_ADD,
        "\"urn:schemas-upnp-org:service:WANIPConnection:1#AddPortMapping\"",
        Service::WanIp,
    )
    .map_err(|e| e.reason)?;
    let port = call.ui2("NewExternalPort").map_err(|e| e.reason)?;
    let lease = call.ui4("NewLeaseDuration").map_err(|e| e.reason)?;
    if (port, lease) != (20571, 3600) {
        return Err(format!("arguments read as port {port}, lease {lease}"));
    }
    let cfg = config::parse(
        "config agent 'main'\n\toption wan_device 'eth1'\n\tlist lan_device 'br-lan'\n\
         config command_center\n\toption ip '192.168.1.10'\n",
        Path::new("selftest"),
        &Overrides::default(),
    )
    .map_err(|e| e.to_string())?;
    let nets = [(Ipv4Addr::new(192, 168, 1, 0), 24)];
    let scope = Scope {
        config: &cfg,
        lan_nets: &nets,
        net: &crate::net::NetState::default(),
        taken_upstream: &[],
    };
    let req = |protocol: &str| {
        Change::Add(AddRequest {
            requester: Ipv4Addr::new(192, 168, 1, 10),
            remote_host: String::new(),
            external_port: port,
            protocol: protocol.into(),
            internal_port: port,
            internal_client: "192.168.1.10".into(),
            enabled: true,
            description: call.arg("NewPortMappingDescription").into(),
            lease,
            any_port: false,
            version: 1,
        })
    };
    let granted = policy::decide(&scope, &[], &req("TCP"), 1_000_000).map_err(|e| e.reason)?;
    if granted.table.len() != 1 || granted.affected[0].external_port != 20571 {
        return Err(format!("granted {} mappings", granted.table.len()));
    }
    match policy::decide(&scope, &[], &req("UDP"), 1_000_000) {
        Err(r) if r.error.code() == 606 => Ok(()),
        Err(r) => Err(format!(
            "UDP must be refused with 606, got {}",
            r.error.code()
        )),
        Ok(_) => Err("UDP must be refused with 606, got a grant".to_string()),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn selftest_passes_here() {
        let (checks, failures) = super::run();
        assert!(failures.is_empty(), "{failures:?}");
        assert_eq!(checks, 6);
    }
}
