use super::*;
use crate::config::{parse, Overrides};
use crate::upnp::description::{COMMON_IF, SOAP_ENVELOPE_NS, WANIP_V1, WANIP_V2};
use crate::upnp::policy::Scope;
use crate::upnp::soap::parse_call;
use std::cell::RefCell;
use std::path::Path;

const CC: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 10);
const LAN: &[(Ipv4Addr, u8)] = &[(Ipv4Addr::new(192, 168, 1, 0), 24)];

/// An IGD whose writes run the real policy on an in-memory table.
struct Fake {
    config: crate::config::Config,
    table: RefCell<Vec<Mapping>>,
    now: u64,
    /// An empty network reading: the Command Center is configured by address alone.
    net: crate::net::NetState,
    /// The writes refused for their arguments: (action, UPnP error code).
    malformed: RefCell<Vec<(String, u16)>>,
}

impl Fake {
    fn new() -> Self {
        let config = parse(
            "config agent 'main'\n\toption wan_device 'wan0'\n\tlist lan_device 'br-lan'\n\
             config command_center\n\toption ip '192.168.1.10'\n",
            Path::new("x"),
            &Overrides::default(),
        )
        .unwrap();
        Fake {
            config,
            table: RefCell::new(Vec::new()),
            now: 5000,
            net: Default::default(),
            malformed: RefCell::new(Vec::new()),
        }
    }
    fn scope(&self) -> Scope<'_> {
        Scope {
            config: &self.config,
            lan_nets: LAN,
            net: &self.net,
            taken_upstream: &[],
        }
    }
}

impl Igd for Fake {
    fn mappings(&self) -> Vec<Mapping> {
        self.table.borrow().clone()
    }
    fn now(&self) -> u64 {
        self.now
    }
    fn external_ip(&self) -> Option<Ipv4Addr> {
        Some(Ipv4Addr::new(203, 0, 113, 1))
    }
    fn link(&self) -> Link {
        Link {
            up: true,
            speed_bps: 1_000_000_000,
            tx_bytes: (1 << 32) + 5,
            ..Default::default()
        }
    }
    fn uptime(&self) -> u64 {
        42
    }
    fn change(&self, change: Change) -> Result<Vec<Mapping>, Refusal> {
        let decided = policy::decide(&self.scope(), &self.table.borrow(), &change, self.now)?;
        *self.table.borrow_mut() = decided.table;
        Ok(decided.affected)
    }
    fn malformed(&self, call: &Call, refusal: &Refusal) {
        self.malformed
            .borrow_mut()
            .push((call.action.name.to_string(), refusal.error.code()));
    }
}

fn call(igd: &Fake, ns: &str, action: &str, args: &[(&str, &str)]) -> Result<Outputs, Refusal> {
    let inner: String = args
        .iter()
        .map(|(k, v)| format!("<{k}>{}</{k}>", escape(v)))
        .collect();
    let body = format!(
        "<s:Envelope xmlns:s=\"{SOAP_ENVELOPE_NS}\"><s:Body><u:{action} xmlns:u=\"{ns}\">{inner}</u:{action}></s:Body></s:Envelope>"
    );
    let service = if ns == COMMON_IF {
        Service::CommonIf
    } else {
        Service::WanIp
    };
    let c = parse_call(&body, &format!("\"{ns}#{action}\""), service)?;
    handle(igd, &c, CC)
}

fn add_args(port: &str, proto: &str) -> Vec<(&'static str, String)> {
    vec![
        ("NewRemoteHost", String::new()),
        ("NewExternalPort", port.into()),
        ("NewProtocol", proto.into()),
        ("NewInternalPort", port.into()),
        ("NewInternalClient", CC.to_string()),
        ("NewEnabled", "1".into()),
        ("NewPortMappingDescription", "WiLife & co".into()),
        ("NewLeaseDuration", "0".into()),
    ]
}

fn add(igd: &Fake, ns: &str, action: &str, port: &str, proto: &str) -> Result<Outputs, Refusal> {
    let a = add_args(port, proto);
    let refs: Vec<(&str, &str)> = a.iter().map(|(k, v)| (*k, v.as_str())).collect();
    call(igd, ns, action, &refs)
}

fn value<'a>(out: &'a Outputs, name: &str) -> &'a str {
    &out.iter().find(|(n, _)| *n == name).unwrap().1
}

#[test]
fn windows_sequence_enumerate_add_enumerate() {
    let igd = Fake::new();
    // Enumerate an empty table: 713 at once.
    let e = call(
        &igd,
        WANIP_V1,
        "GetGenericPortMappingEntry",
        &[("NewPortMappingIndex", "0")],
    )
    .unwrap_err();
    assert_eq!(e.error.code(), 713);
    add(&igd, WANIP_V1, "AddPortMapping", "20570", "TCP").unwrap();
    let out = call(
        &igd,
        WANIP_V1,
        "GetGenericPortMappingEntry",
        &[("NewPortMappingIndex", "0")],
    )
    .unwrap();
    assert_eq!(value(&out, "NewExternalPort"), "20570");
    assert_eq!(value(&out, "NewInternalClient"), "192.168.1.10");
    assert_eq!(value(&out, "NewPortMappingDescription"), "WiLife & co");
    assert_eq!(value(&out, "NewLeaseDuration"), "0");
    let e = call(
        &igd,
        WANIP_V1,
        "GetGenericPortMappingEntry",
        &[("NewPortMappingIndex", "1")],
    )
    .unwrap_err();
    assert_eq!(e.error.code(), 713);
    let spec = [
        ("NewRemoteHost", ""),
        ("NewExternalPort", "20570"),
        ("NewProtocol", "TCP"),
    ];
    let out = call(&igd, WANIP_V1, "GetSpecificPortMappingEntry", &spec).unwrap();
    assert_eq!(value(&out, "NewInternalPort"), "20570");
    let udp = [
        ("NewRemoteHost", ""),
        ("NewExternalPort", "20570"),
        ("NewProtocol", "UDP"),
    ];
    assert_eq!(
        call(&igd, WANIP_V1, "GetSpecificPortMappingEntry", &udp)
            .unwrap_err()
            .error
            .code(),
        714
    );
    call(&igd, WANIP_V1, "DeletePortMapping", &spec).unwrap();
    assert_eq!(
        call(&igd, WANIP_V1, "DeletePortMapping", &spec)
            .unwrap_err()
            .error
            .code(),
        714
    );
}

#[test]
fn v2_actions() {
    let igd = Fake::new();
    let out = add(&igd, WANIP_V2, "AddAnyPortMapping", "20570", "TCP").unwrap();
    assert_eq!(value(&out, "NewReservedPort"), "20570");
    let m = &igd.mappings()[0];
    assert_eq!(m.expires, Some(5000 + 604_800), "v2 lease 0 is a week");
    let list = [
        ("NewStartPort", "20570"),
        ("NewEndPort", "20575"),
        ("NewProtocol", "TCP"),
        ("NewManage", "0"),
        ("NewNumberOfPorts", "0"),
    ];
    let out = call(&igd, WANIP_V2, "GetListOfPortMappings", &list).unwrap();
    let listing = crate::upnp::xml::parse(value(&out, "NewPortListing")).unwrap();
    assert_eq!(listing.children.len(), 1);
    assert_eq!(
        listing.children[0].child("NewExternalPort").unwrap().text,
        "20570"
    );
    assert_eq!(
        listing.children[0].child("NewLeaseTime").unwrap().text,
        "604800"
    );
    let range = [
        ("NewStartPort", "20570"),
        ("NewEndPort", "20575"),
        ("NewProtocol", "TCP"),
        ("NewManage", "1"),
    ];
    call(&igd, WANIP_V2, "DeletePortMappingRange", &range).unwrap();
    assert_eq!(
        call(&igd, WANIP_V2, "DeletePortMappingRange", &range)
            .unwrap_err()
            .error
            .code(),
        730
    );
    assert_eq!(
        call(&igd, WANIP_V2, "GetListOfPortMappings", &list)
            .unwrap_err()
            .error
            .code(),
        730
    );
    let bad = [
        ("NewStartPort", "20575"),
        ("NewEndPort", "20570"),
        ("NewProtocol", "TCP"),
        ("NewManage", "maybe"),
    ];
    assert_eq!(
        call(&igd, WANIP_V2, "DeletePortMappingRange", &bad)
            .unwrap_err()
            .error
            .code(),
        402
    );
}

#[test]
fn refusals_come_through_with_their_codes() {
    let igd = Fake::new();
    assert_eq!(
        add(&igd, WANIP_V1, "AddPortMapping", "8080", "TCP")
            .unwrap_err()
            .error
            .code(),
        606
    );
    assert_eq!(
        add(&igd, WANIP_V1, "AddPortMapping", "20570", "UDP")
            .unwrap_err()
            .error
            .code(),
        606
    );
    assert_eq!(
        add(&igd, WANIP_V1, "AddPortMapping", "x", "TCP")
            .unwrap_err()
            .error
            .code(),
        402
    );
    assert_eq!(
        add(&igd, WANIP_V1, "AddPortMapping", "99999", "TCP")
            .unwrap_err()
            .error
            .code(),
        402
    );
    for action in ["SetConnectionType", "RequestConnection", "ForceTermination"] {
        let args: &[(&str, &str)] = if action == "SetConnectionType" {
            &[("NewConnectionType", "IP_Routed")]
        } else {
            &[]
        };
        assert_eq!(
            call(&igd, WANIP_V1, action, args).unwrap_err().error.code(),
            606
        );
    }
    assert!(igd.mappings().is_empty());
    // The state owner decides (and records) the policy's refusals; the IGD records only the two writes
    // whose arguments did not decode.
    assert_eq!(
        *igd.malformed.borrow(),
        [
            ("AddPortMapping".to_string(), 402),
            ("AddPortMapping".to_string(), 402)
        ]
    );
    let bad_range = [
        ("NewStartPort", "20570"),
        ("NewEndPort", "x"),
        ("NewProtocol", "TCP"),
        ("NewManage", "1"),
    ];
    assert_eq!(
        call(&igd, WANIP_V2, "DeletePortMappingRange", &bad_range)
            .unwrap_err()
            .error
            .code(),
        402
    );
    assert_eq!(igd.malformed.borrow().len(), 3);
}

#[test]
fn status_and_link_actions() {
    let igd = Fake::new();
    let out = call(&igd, WANIP_V1, "GetExternalIPAddress", &[]).unwrap();
    assert_eq!(value(&out, "NewExternalIPAddress"), "203.0.113.1");
    let out = call(&igd, WANIP_V1, "GetStatusInfo", &[]).unwrap();
    assert_eq!(
        (value(&out, "NewConnectionStatus"), value(&out, "NewUptime")),
        ("Connected", "42")
    );
    assert_eq!(
        value(
            &call(&igd, WANIP_V1, "GetNATRSIPStatus", &[]).unwrap(),
            "NewNATEnabled"
        ),
        "1"
    );
    assert_eq!(
        value(
            &call(&igd, WANIP_V1, "GetConnectionTypeInfo", &[]).unwrap(),
            "NewConnectionType"
        ),
        "IP_Routed"
    );
    let out = call(&igd, COMMON_IF, "GetCommonLinkProperties", &[]).unwrap();
    assert_eq!(value(&out, "NewPhysicalLinkStatus"), "Up");
    assert_eq!(value(&out, "NewLayer1UpstreamMaxBitRate"), "1000000000");
    assert_eq!(
        value(
            &call(&igd, COMMON_IF, "GetTotalBytesSent", &[]).unwrap(),
            "NewTotalBytesSent"
        ),
        "5",
        "ui4 wraps"
    );
    for a in [
        "GetTotalBytesReceived",
        "GetTotalPacketsSent",
        "GetTotalPacketsReceived",
    ] {
        call(&igd, COMMON_IF, a, &[]).unwrap();
    }
}

#[test]
fn every_declared_action_is_implemented() {
    let igd = Fake::new();
    for (service, ns) in [(Service::WanIp, WANIP_V2), (Service::CommonIf, COMMON_IF)] {
        for a in service.actions() {
            let args: Vec<(&str, &str)> = a.inputs.iter().map(|(n, _)| (*n, "0")).collect();
            if let Err(e) = call(&igd, ns, a.name, &args) {
                assert_ne!(e.error.code(), 401, "{}: {e}", a.name);
            }
        }
    }
}
