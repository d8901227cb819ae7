//! What the device says about itself: the device tree (IGD:1 for Windows, IGD:2 for everyone else), the
//! services' action and state-variable tables (one source for the SCPD documents and for checking SOAP
//! arguments), and the URLs they live at. Pure.

use super::xml::escape;

pub const SOAP_ENVELOPE_NS: &str = "http://schemas.xmlsoap.org/soap/envelope/";
pub const WANIP_V1: &str = "urn:schemas-upnp-org:service:WANIPConnection:1";
pub const WANIP_V2: &str = "urn:schemas-upnp-org:service:WANIPConnection:2";
pub const COMMON_IF: &str = "urn:schemas-upnp-org:service:WANCommonInterfaceConfig:1";

pub const DESC_PATH: &str = "/rootDesc.xml";
pub const WANIP_SCPD_PATH: &str = "/WANIPCn.xml";
pub const COMMON_SCPD_PATH: &str = "/WANCfg.xml";
pub const WANIP_CONTROL_PATH: &str = "/ctl/IPConn";
pub const COMMON_CONTROL_PATH: &str = "/ctl/CmnIfCfg";
pub const WANIP_EVENT_PATH: &str = "/evt/IPConn";
pub const COMMON_EVENT_PATH: &str = "/evt/CmnIfCfg";

/// The two services we implement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    WanIp,
    CommonIf,
}

impl Service {
    /// The service type URN at an IGD version (WANCommonInterfaceConfig exists only as :1).
    pub fn urn(self, version: u8) -> &'static str {
        match (self, version) {
            (Service::WanIp, 1) => WANIP_V1,
            (Service::WanIp, _) => WANIP_V2,
            (Service::CommonIf, _) => COMMON_IF,
        }
    }
    /// Which service and version a namespace URN names.
    pub fn from_urn(urn: &str) -> Option<(Service, u8)> {
        match urn {
            WANIP_V1 => Some((Service::WanIp, 1)),
            WANIP_V2 => Some((Service::WanIp, 2)),
            COMMON_IF => Some((Service::CommonIf, 1)),
            _ => None,
        }
    }
    pub fn control_path(self) -> &'static str {
        match self {
            Service::WanIp => WANIP_CONTROL_PATH,
            Service::CommonIf => COMMON_CONTROL_PATH,
        }
    }
    pub fn event_path(self) -> &'static str {
        match self {
            Service::WanIp => WANIP_EVENT_PATH,
            Service::CommonIf => COMMON_EVENT_PATH,
        }
    }
    pub fn actions(self) -> &'static [Action] {
        match self {
            Service::WanIp => WANIP_ACTIONS,
            Service::CommonIf => COMMON_ACTIONS,
        }
    }
    fn variables(self) -> &'static [Variable] {
        match self {
            Service::WanIp => WANIP_VARIABLES,
            Service::CommonIf => COMMON_VARIABLES,
        }
    }
}

/// One action: its arguments (name, related state variable) and the first IGD version that has it.
#[derive(Debug)]
pub struct Action {
    pub name: &'static str,
    pub since: u8,
    pub inputs: &'static [(&'static str, &'static str)],
    pub outputs: &'static [(&'static str, &'static str)],
}

struct Variable {
    name: &'static str,
    kind: &'static str,
    evented: bool,
    since: u8,
    allowed: &'static [&'static str],
    /// (min, max) for IGD:2 descriptions.
    range_v2: Option<(u32, u32)>,
}

const fn var(name: &'static str, kind: &'static str) -> Variable {
    Variable {
        name,
        kind,
        evented: false,
        since: 1,
        allowed: &[],
        range_v2: None,
    }
}

/// A whole mapping entry: what AddPortMapping takes and GetGenericPortMappingEntry returns.
const ENTRY: &[(&str, &str)] = &[
    ("NewRemoteHost", "RemoteHost"),
    ("NewExternalPort", "ExternalPort"),
    ("NewProtocol", "PortMappingProtocol"),
    ("NewInternalPort", "InternalPort"),
    ("NewInternalClient", "InternalClient"),
    ("NewEnabled", "PortMappingEnabled"),
    ("NewPortMappingDescription", "PortMappingDescription"),
    ("NewLeaseDuration", "PortMappingLeaseDuration"),
];
const ENTRY_KEY: &[(&str, &str)] = &[
    ("NewRemoteHost", "RemoteHost"),
    ("NewExternalPort", "ExternalPort"),
    ("NewProtocol", "PortMappingProtocol"),
];
const ENTRY_VALUE: &[(&str, &str)] = &[
    ("NewInternalPort", "InternalPort"),
    ("NewInternalClient", "InternalClient"),
    ("NewEnabled", "PortMappingEnabled"),
    ("NewPortMappingDescription", "PortMappingDescription"),
    ("NewLeaseDuration", "PortMappingLeaseDuration"),
];

const fn action(
    name: &'static str,
    since: u8,
    inputs: &'static [(&'static str, &'static str)],
    outputs: &'static [(&'static str, &'static str)],
) -> Action {
    Action {
        name,
        since,
        inputs,
        outputs,
    }
}

const WANIP_ACTIONS: &[Action] = &[
    action(
        "SetConnectionType",
        1,
        &[("NewConnectionType", "ConnectionType")],
        &[],
    ),
    action(
        "GetConnectionTypeInfo",
        1,
        &[],
        &[
            ("NewConnectionType", "ConnectionType"),
            ("NewPossibleConnectionTypes", "PossibleConnectionTypes"),
        ],
    ),
    action("RequestConnection", 1, &[], &[]),
    action("ForceTermination", 1, &[], &[]),
    action(
        "GetStatusInfo",
        1,
        &[],
        &[
            ("NewConnectionStatus", "ConnectionStatus"),
            ("NewLastConnectionError", "LastConnectionError"),
            ("NewUptime", "Uptime"),
        ],
    ),
    action(
        "GetNATRSIPStatus",
        1,
        &[],
        &[
            ("NewRSIPAvailable", "RSIPAvailable"),
            ("NewNATEnabled", "NATEnabled"),
        ],
    ),
    action(
        "GetGenericPortMappingEntry",
        1,
        &[("NewPortMappingIndex", "PortMappingNumberOfEntries")],
        ENTRY,
    ),
    action("GetSpecificPortMappingEntry", 1, ENTRY_KEY, ENTRY_VALUE),
    action("AddPortMapping", 1, ENTRY, &[]),
    action("DeletePortMapping", 1, ENTRY_KEY, &[]),
    action(
        "GetExternalIPAddress",
        1,
        &[],
        &[("NewExternalIPAddress", "ExternalIPAddress")],
    ),
    action(
        "DeletePortMappingRange",
        2,
        &[
            ("NewStartPort", "ExternalPort"),
            ("NewEndPort", "ExternalPort"),
            ("NewProtocol", "PortMappingProtocol"),
            ("NewManage", "A_ARG_TYPE_Manage"),
        ],
        &[],
    ),
    action(
        "GetListOfPortMappings",
        2,
        &[
            ("NewStartPort", "ExternalPort"),
            ("NewEndPort", "ExternalPort"),
            ("NewProtocol", "PortMappingProtocol"),
            ("NewManage", "A_ARG_TYPE_Manage"),
            ("NewNumberOfPorts", "PortMappingNumberOfEntries"),
        ],
        &[("NewPortListing", "A_ARG_TYPE_PortListing")],
    ),
    action(
        "AddAnyPortMapping",
        2,
        ENTRY,
        &[("NewReservedPort", "ExternalPort")],
    ),
];

const WANIP_VARIABLES: &[Variable] = &[
    Variable {
        allowed: &["Unconfigured", "IP_Routed", "IP_Bridged"],
        ..var("ConnectionType", "string")
    },
    Variable {
        evented: true,
        allowed: &["Unconfigured", "IP_Routed", "IP_Bridged"],
        ..var("PossibleConnectionTypes", "string")
    },
    Variable {
        evented: true,
        allowed: &[
            "Unconfigured",
            "Connecting",
            "Connected",
            "PendingDisconnect",
            "Disconnecting",
            "Disconnected",
        ],
        ..var("ConnectionStatus", "string")
    },
    var("Uptime", "ui4"),
    Variable {
        allowed: &["ERROR_NONE", "ERROR_UNKNOWN"],
        ..var("LastConnectionError", "string")
    },
    var("RSIPAvailable", "boolean"),
    var("NATEnabled", "boolean"),
    Variable {
        evented: true,
        ..var("ExternalIPAddress", "string")
    },
    Variable {
        evented: true,
        ..var("PortMappingNumberOfEntries", "ui2")
    },
    var("PortMappingEnabled", "boolean"),
    Variable {
        range_v2: Some((0, 604_800)),
        ..var("PortMappingLeaseDuration", "ui4")
    },
    var("RemoteHost", "string"),
    var("ExternalPort", "ui2"),
    Variable {
        range_v2: Some((1, 65535)),
        ..var("InternalPort", "ui2")
    },
    Variable {
        allowed: &["TCP", "UDP"],
        ..var("PortMappingProtocol", "string")
    },
    var("InternalClient", "string"),
    var("PortMappingDescription", "string"),
    Variable {
        evented: true,
        since: 2,
        ..var("SystemUpdateID", "ui4")
    },
    Variable {
        since: 2,
        ..var("A_ARG_TYPE_Manage", "boolean")
    },
    Variable {
        since: 2,
        ..var("A_ARG_TYPE_PortListing", "string")
    },
];

const COMMON_ACTIONS: &[Action] = &[
    action(
        "GetCommonLinkProperties",
        1,
        &[],
        &[
            ("NewWANAccessType", "WANAccessType"),
            ("NewLayer1UpstreamMaxBitRate", "Layer1UpstreamMaxBitRate"),
            (
                "NewLayer1DownstreamMaxBitRate",
                "Layer1DownstreamMaxBitRate",
            ),
            ("NewPhysicalLinkStatus", "PhysicalLinkStatus"),
        ],
    ),
    action(
        "GetTotalBytesSent",
        1,
        &[],
        &[("NewTotalBytesSent", "TotalBytesSent")],
    ),
    action(
        "GetTotalBytesReceived",
        1,
        &[],
        &[("NewTotalBytesReceived", "TotalBytesReceived")],
    ),
    action(
        "GetTotalPacketsSent",
        1,
        &[],
        &[("NewTotalPacketsSent", "TotalPacketsSent")],
    ),
    action(
        "GetTotalPacketsReceived",
        1,
        &[],
        &[("NewTotalPacketsReceived", "TotalPacketsReceived")],
    ),
];

const COMMON_VARIABLES: &[Variable] = &[
    Variable {
        allowed: &["DSL", "POTS", "Cable", "Ethernet"],
        ..var("WANAccessType", "string")
    },
    var("Layer1UpstreamMaxBitRate", "ui4"),
    var("Layer1DownstreamMaxBitRate", "ui4"),
    Variable {
        evented: true,
        allowed: &["Up", "Down"],
        ..var("PhysicalLinkStatus", "string")
    },
    var("TotalBytesSent", "ui4"),
    var("TotalBytesReceived", "ui4"),
    var("TotalPacketsSent", "ui4"),
    var("TotalPacketsReceived", "ui4"),
];

/// The action of a service at a version, if it exists there.
pub fn find_action(service: Service, version: u8, name: &str) -> Option<&'static Action> {
    service
        .actions()
        .iter()
        .find(|a| a.name == name && a.since <= version)
}

/// Does this client get the IGD:1 tree? Windows' UPnP NAT client breaks on IGD:2 / v2 SCPDs; it
/// identifies as "Microsoft-Windows/… UPnP/1.0" or through its SSDP service "FDSSDP".
pub fn wants_v1(user_agent: Option<&str>) -> bool {
    user_agent.is_some_and(|ua| {
        let ua = ua.to_ascii_lowercase();
        ua.contains("microsoft") || ua.contains("fdssdp")
    })
}

/// The device's identity: UUIDs of the three devices and SSDP counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    /// Root device UUID (without "uuid:").
    pub uuid: String,
    pub friendly_name: String,
    pub boot_id: u32,
    pub config_id: u32,
}

impl Identity {
    /// Embedded devices get UUIDs derived from the root's (last group changed), stable with it.
    pub fn sub_uuid(&self, n: u8) -> String {
        let (head, last) = self.uuid.rsplit_once('-').unwrap_or((&self.uuid, ""));
        let tail = u64::from_str_radix(last, 16).unwrap_or(0) ^ u64::from(n);
        format!("{head}-{:012x}", tail & 0xffff_ffff_ffff)
    }
}

/// Derives a stable UUID from a MAC address (a name-based UUID of RFC 9562's custom version 8):
/// the same router gives the same UUID across restarts and reboots without writing to flash.
pub fn uuid_from_mac(mac: [u8; 6]) -> String {
    // Two FNV-1a passes with different offsets give 128 bits; collisions need equal MACs in practice.
    let fnv = |offset: u64| {
        let mut h = offset;
        for b in b"wilife-agent igd".iter().chain(mac.iter()) {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x100_0000_01b3);
        }
        h
    };
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&fnv(0xcbf2_9ce4_8422_2325).to_be_bytes());
    bytes[8..].copy_from_slice(&fnv(0x84222325_cbf29ce4).to_be_bytes());
    bytes[6] = (bytes[6] & 0x0f) | 0x80; // version 8
    bytes[8] = (bytes[8] & 0x3f) | 0x80; // RFC variant
    let h: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Device types (and their UUIDs) advertised at an IGD version: root, WAN device, WAN connection device.
pub fn device_types(id: &Identity, version: u8) -> [(String, String); 3] {
    [
        (
            format!("urn:schemas-upnp-org:device:InternetGatewayDevice:{version}"),
            id.uuid.clone(),
        ),
        (
            format!("urn:schemas-upnp-org:device:WANDevice:{version}"),
            id.sub_uuid(1),
        ),
        (
            format!("urn:schemas-upnp-org:device:WANConnectionDevice:{version}"),
            id.sub_uuid(2),
        ),
    ]
}

/// Service types advertised at an IGD version, with the UUID of the device that holds each.
pub fn service_types(id: &Identity, version: u8) -> [(&'static str, String); 2] {
    [
        (Service::CommonIf.urn(version), id.sub_uuid(1)),
        (Service::WanIp.urn(version), id.sub_uuid(2)),
    ]
}

fn service_xml(service: Service, version: u8, id: &str, scpd: &str) -> String {
    format!(
        "<service><serviceType>{}</serviceType><serviceId>urn:upnp-org:serviceId:{id}</serviceId>\
<SCPDURL>{scpd}</SCPDURL><controlURL>{}</controlURL><eventSubURL>{}</eventSubURL></service>",
        service.urn(version),
        service.control_path(),
        service.event_path()
    )
}

/// The root device description at an IGD version.
pub fn root_description(id: &Identity, version: u8) -> String {
    let [(root_t, root_u), (wan_t, wan_u), (conn_t, conn_u)] = device_types(id, version);
    let spec_minor = if version >= 2 { 1 } else { 0 };
    let device = |kind: &str, uuid: &str, name: &str, inner: &str| {
        format!(
            "<device><deviceType>{kind}</deviceType><friendlyName>{name}</friendlyName>\
<manufacturer>wilife-agent</manufacturer><manufacturerURL>https://openwrt.org/</manufacturerURL>\
<modelDescription>UPnP IGD scoped to the WiLife camera system</modelDescription>\
<modelName>wilife-agent</modelName><modelNumber>{ver}</modelNumber><UDN>uuid:{uuid}</UDN>{inner}</device>",
            ver = env!("CARGO_PKG_VERSION"),
        )
    };
    let conn = device(
        &conn_t,
        &conn_u,
        "WANConnectionDevice",
        &format!(
            "<serviceList>{}</serviceList>",
            service_xml(Service::WanIp, version, "WANIPConn1", WANIP_SCPD_PATH)
        ),
    );
    let wan = device(
        &wan_t,
        &wan_u,
        "WANDevice",
        &format!(
            "<serviceList>{}</serviceList><deviceList>{conn}</deviceList>",
            service_xml(
                Service::CommonIf,
                version,
                "WANCommonIFC1",
                COMMON_SCPD_PATH
            )
        ),
    );
    let root = device(
        &root_t,
        &root_u,
        &escape(&id.friendly_name),
        &format!("<deviceList>{wan}</deviceList>"),
    );
    format!(
        "<?xml version=\"1.0\"?>\n<root xmlns=\"urn:schemas-upnp-org:device-1-0\" configId=\"{}\">\
<specVersion><major>1</major><minor>{spec_minor}</minor></specVersion>{root}</root>\n",
        id.config_id
    )
}

/// The SCPD of a service at an IGD version (v1 lists no v2 action or variable).
pub fn scpd(service: Service, version: u8, config_id: u32) -> String {
    let mut out = format!(
        "<?xml version=\"1.0\"?>\n<scpd xmlns=\"urn:schemas-upnp-org:service-1-0\" configId=\"{config_id}\">\
<specVersion><major>1</major><minor>{}</minor></specVersion><actionList>",
        if version >= 2 { 1 } else { 0 }
    );
    for a in service.actions().iter().filter(|a| a.since <= version) {
        out.push_str(&format!("<action><name>{}</name>", a.name));
        if !a.inputs.is_empty() || !a.outputs.is_empty() {
            out.push_str("<argumentList>");
            for (dir, args) in [("in", a.inputs), ("out", a.outputs)] {
                for (name, related) in args {
                    out.push_str(&format!(
                        "<argument><name>{name}</name><direction>{dir}</direction>\
<relatedStateVariable>{related}</relatedStateVariable></argument>"
                    ));
                }
            }
            out.push_str("</argumentList>");
        }
        out.push_str("</action>");
    }
    out.push_str("</actionList><serviceStateTable>");
    for v in service.variables().iter().filter(|v| v.since <= version) {
        out.push_str(&format!(
            "<stateVariable sendEvents=\"{}\"><name>{}</name><dataType>{}</dataType>",
            if v.evented { "yes" } else { "no" },
            v.name,
            v.kind
        ));
        if !v.allowed.is_empty() {
            out.push_str("<allowedValueList>");
            for a in v.allowed {
                out.push_str(&format!("<allowedValue>{a}</allowedValue>"));
            }
            out.push_str("</allowedValueList>");
        }
        if let (Some((min, max)), true) = (v.range_v2, version >= 2) {
            out.push_str(&format!(
                "<allowedValueRange><minimum>{min}</minimum><maximum>{max}</maximum></allowedValueRange>"
            ));
        }
        out.push_str("</stateVariable>");
    }
    out.push_str("</serviceStateTable></scpd>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::super::xml;
    use super::*;

    /// Our own documents are bigger than any SOAP request.
    fn parse(doc: &str) -> xml::Element {
        let limits = xml::Limits {
            bytes: 1 << 20,
            depth: 32,
            elements: 10_000,
            attributes: 16,
        };
        xml::parse_with(doc, limits).unwrap()
    }

    fn id() -> Identity {
        Identity {
            uuid: uuid_from_mac([0, 0x11, 0x22, 0x33, 0x44, 0x55]),
            friendly_name: "WiLife <gateway>".into(),
            boot_id: 1,
            config_id: 1,
        }
    }

    #[test]
    fn uuid_is_stable_well_formed_and_per_mac() {
        let a = uuid_from_mac([0, 0x11, 0x22, 0x33, 0x44, 0x55]);
        assert_eq!(a, uuid_from_mac([0, 0x11, 0x22, 0x33, 0x44, 0x55]));
        assert_ne!(a, uuid_from_mac([0, 0x11, 0x22, 0x33, 0x44, 0x56]));
        assert!(crate::config::parse_uuid(&a).is_ok(), "{a}");
        assert_eq!(&a[14..15], "8", "version 8: {a}");
        let id = id();
        assert_ne!(id.sub_uuid(1), id.uuid);
        assert_ne!(id.sub_uuid(1), id.sub_uuid(2));
        assert!(crate::config::parse_uuid(&id.sub_uuid(2)).is_ok());
    }

    fn device_types_in(doc: &xml::Element, out: &mut Vec<String>) {
        for c in &doc.children {
            if c.name == "deviceType" || c.name == "serviceType" {
                out.push(c.text.clone());
            }
            device_types_in(c, out);
        }
    }

    #[test]
    fn v1_tree_has_no_v2_anything_and_v2_tree_is_v2() {
        let v1 = parse(&root_description(&id(), 1));
        let mut types = Vec::new();
        device_types_in(&v1, &mut types);
        assert_eq!(
            types,
            [
                "urn:schemas-upnp-org:device:InternetGatewayDevice:1",
                "urn:schemas-upnp-org:device:WANDevice:1",
                "urn:schemas-upnp-org:service:WANCommonInterfaceConfig:1",
                "urn:schemas-upnp-org:device:WANConnectionDevice:1",
                "urn:schemas-upnp-org:service:WANIPConnection:1",
            ]
        );
        let v2 = root_description(&id(), 2);
        assert!(v2.contains("InternetGatewayDevice:2") && v2.contains("WANIPConnection:2"));
        assert!(v2.contains("WiLife &lt;gateway&gt;"));
        let s1 = scpd(Service::WanIp, 1, 1);
        let s2 = scpd(Service::WanIp, 2, 1);
        parse(&s1);
        parse(&s2);
        for v2_only in [
            "AddAnyPortMapping",
            "GetListOfPortMappings",
            "DeletePortMappingRange",
            "SystemUpdateID",
            "allowedValueRange",
        ] {
            assert!(!s1.contains(v2_only), "{v2_only} in v1 SCPD");
            assert!(s2.contains(v2_only), "{v2_only} missing from v2 SCPD");
        }
        parse(&scpd(Service::CommonIf, 1, 1));
    }

    #[test]
    fn every_argument_names_a_declared_state_variable() {
        for service in [Service::WanIp, Service::CommonIf] {
            for a in service.actions() {
                for (_, related) in a.inputs.iter().chain(a.outputs) {
                    let v = service.variables().iter().find(|v| v.name == *related);
                    assert!(
                        v.is_some_and(|v| v.since <= a.since),
                        "{}: {related}",
                        a.name
                    );
                }
            }
        }
    }

    #[test]
    fn windows_user_agents_get_v1() {
        assert!(wants_v1(Some("Microsoft-Windows/10.0 UPnP/1.0")));
        assert!(wants_v1(Some("FDSSDP")));
        assert!(!wants_v1(Some("Linux UPnP/1.1 MiniUPnPc/2.2.4")));
        assert!(!wants_v1(None));
        assert!(find_action(Service::WanIp, 1, "AddAnyPortMapping").is_none());
        assert!(find_action(Service::WanIp, 2, "AddAnyPortMapping").is_some());
        assert!(find_action(Service::WanIp, 2, "AddPortMapping").is_some());
    }
}
