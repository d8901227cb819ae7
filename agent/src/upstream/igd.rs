//! The gateway's own UPnP IGD, as a client sees it, as text: no socket here. A unicast M-SEARCH to
//! the gateway (its unicast answer passes fw4 as the reply it is; a multicast search's answers would
//! not), the LOCATION of its description, the WANIPConnection (or WANPPPConnection) control URL in it,
//! and SOAP requests and answers.
//!
//! Everything comes from the WAN side, so nothing is followed anywhere but the gateway: a LOCATION or
//! control URL naming another host is refused, and documents are read within hard limits.

use crate::upnp::xml::{self, Element, Limits};
use std::net::Ipv4Addr;

/// The largest description or SOAP answer read.
pub const MAX_DOCUMENT: usize = 64 * 1024;
const LIMITS: Limits = Limits {
    bytes: MAX_DOCUMENT,
    depth: 24,
    elements: 2048,
    attributes: crate::consts::XML_MAX_ATTRIBUTES,
};

/// Where the gateway's control requests go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Control {
    /// The service type, the namespace of its actions.
    pub service: String,
    pub port: u16,
    pub path: String,
}

/// A unicast M-SEARCH for an Internet Gateway Device (UDA 1.1 §1.3.3).
pub fn search(gateway: Ipv4Addr) -> String {
    format!(
        "M-SEARCH * HTTP/1.1\r\nHOST: {gateway}:1900\r\nMAN: \"ssdp:discover\"\r\n\
         ST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\n\r\n"
    )
}

/// The description's port and path from the gateway's answer to the search.
pub fn location(answer: &[u8], gateway: Ipv4Addr) -> Result<(u16, String), String> {
    let text = std::str::from_utf8(answer).map_err(|_| "an answer that is not text")?;
    let mut lines = text.split("\r\n");
    let status = lines.next().unwrap_or_default();
    if !status.starts_with("HTTP/1.1 200") && !status.starts_with("HTTP/1.0 200") {
        return Err(format!("a search answer '{:.40}'", status));
    }
    let url = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("location"))
        .map(|(_, value)| value.trim())
        .ok_or("a search answer without LOCATION")?;
    on_gateway(url, gateway)
}

/// `http://GATEWAY[:port]/path` → (port, path); any other host is refused.
fn on_gateway(url: &str, gateway: Ipv4Addr) -> Result<(u16, String), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("'{url:.80}' is not an http URL"))?;
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (h, p.parse::<u16>().map_err(|_| format!("port '{p:.10}'"))?),
        None => (authority, 80),
    };
    if host.parse::<Ipv4Addr>() != Ok(gateway) {
        return Err(format!("'{url:.80}' is not on the gateway {gateway}"));
    }
    Ok((port, format!("/{path}")))
}

/// The control URL of the first WANIPConnection or WANPPPConnection service in the description.
pub fn control(description: &str, gateway: Ipv4Addr, port: u16) -> Result<Control, String> {
    let root = xml::parse_with(description, LIMITS).map_err(|e| e.to_string())?;
    let service = find_service(&root).ok_or("no WANIPConnection service in the description")?;
    let kind = service
        .child("serviceType")
        .map(|t| t.text.trim().to_string());
    let url = service.child("controlURL").map(|u| u.text.trim());
    let (Some(kind), Some(url)) = (kind, url) else {
        return Err("a service without serviceType or controlURL".into());
    };
    let (port, path) = if url.starts_with("http://") {
        on_gateway(url, gateway)?
    } else {
        (port, format!("/{}", url.trim_start_matches('/')))
    };
    Ok(Control {
        service: kind,
        port,
        path,
    })
}

fn find_service(e: &Element) -> Option<&Element> {
    let wanted = |t: &str| {
        t.starts_with("urn:schemas-upnp-org:service:WANIPConnection:")
            || t.starts_with("urn:schemas-upnp-org:service:WANPPPConnection:")
    };
    if e.name == "service"
        && e.child("serviceType")
            .is_some_and(|t| wanted(t.text.trim()))
    {
        return Some(e);
    }
    e.children.iter().find_map(find_service)
}

/// The SOAP body of `action` with `args` (values escaped).
pub fn envelope(service: &str, action: &str, args: &[(&str, String)]) -> String {
    let args: String = args
        .iter()
        .map(|(name, value)| format!("<{name}>{}</{name}>", xml::escape(value)))
        .collect();
    format!(
        "<?xml version=\"1.0\"?>\r\n<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\" \
         s:encodingStyle=\"http://schemas.xmlsoap.org/soap/encoding/\"><s:Body>\
         <u:{action} xmlns:u=\"{}\">{args}</u:{action}></s:Body></s:Envelope>\r\n",
        xml::escape(service)
    )
}

/// A UPnP error the gateway answered with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub code: u16,
    pub description: String,
}

/// The output arguments of a SOAP answer, or its UPnP error.
pub fn answer(body: &str) -> Result<Vec<(String, String)>, Fault> {
    let unreadable = |m: String| Fault {
        code: 0,
        description: m,
    };
    let root = xml::parse_with(body, LIMITS).map_err(|e| unreadable(e.to_string()))?;
    let inner = (root.child("Body"))
        .and_then(|b| b.children.first())
        .ok_or_else(|| unreadable("an answer without a SOAP Body".into()))?;
    if inner.name == "Fault" {
        let error = (inner.child("detail")).and_then(|d| d.child("UPnPError"));
        let field = |name: &str| {
            (error.and_then(|e| e.child(name)))
                .map(|c| c.text.trim().to_string())
                .unwrap_or_default()
        };
        return Err(Fault {
            code: field("errorCode").parse().unwrap_or(0),
            description: field("errorDescription"),
        });
    }
    Ok(inner
        .children
        .iter()
        .map(|c| (c.name.clone(), c.text.trim().to_string()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GW: Ipv4Addr = Ipv4Addr::new(192, 168, 0, 1);

    #[test]
    fn the_search_answer_points_at_the_gateway_only() {
        let answer = |loc: &str| {
            format!("HTTP/1.1 200 OK\r\nST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\nLocation: {loc}\r\n\r\n")
        };
        assert!(search(GW).starts_with("M-SEARCH * HTTP/1.1\r\nHOST: 192.168.0.1:1900\r\n"));
        assert_eq!(
            location(
                answer("http://192.168.0.1:5000/rootDesc.xml").as_bytes(),
                GW
            ),
            Ok((5000, "/rootDesc.xml".to_string()))
        );
        assert_eq!(
            location(answer("http://192.168.0.1/d.xml").as_bytes(), GW),
            Ok((80, "/d.xml".to_string()))
        );
        for bad in [
            "http://192.168.0.9:5000/rootDesc.xml",
            "http://example.com/x",
            "https://192.168.0.1/x",
            "http://192.168.0.1:99999/x",
        ] {
            assert!(location(answer(bad).as_bytes(), GW).is_err(), "{bad}");
        }
        assert!(location(b"HTTP/1.1 404 Not Found\r\n\r\n", GW).is_err());
        assert!(
            location(b"HTTP/1.1 200 OK\r\n\r\n", GW).is_err(),
            "no LOCATION"
        );
        assert!(location(&[0xff, 0xfe], GW).is_err());
    }

    #[test]
    fn the_control_url_is_found_in_nested_devices() {
        let desc = "<?xml version=\"1.0\"?><root xmlns=\"urn:schemas-upnp-org:device-1-0\"><device>\
            <serviceList><service><serviceType>urn:schemas-upnp-org:service:Layer3Forwarding:1</serviceType>\
            <controlURL>/ctl/L3F</controlURL></service></serviceList><deviceList><device><deviceList><device>\
            <serviceList><service><serviceType>urn:schemas-upnp-org:service:WANIPConnection:2</serviceType>\
            <controlURL>/ctl/IPConn</controlURL></service></serviceList></device></deviceList></device>\
            </deviceList></device></root>";
        assert_eq!(
            control(desc, GW, 5000),
            Ok(Control {
                service: "urn:schemas-upnp-org:service:WANIPConnection:2".into(),
                port: 5000,
                path: "/ctl/IPConn".into()
            })
        );
        let absolute = desc.replace("/ctl/IPConn", "http://192.168.0.1:49000/upnp/control");
        assert_eq!(control(&absolute, GW, 5000).unwrap().port, 49000);
        let elsewhere = desc.replace("/ctl/IPConn", "http://10.0.0.1/upnp/control");
        assert!(control(&elsewhere, GW, 5000).is_err(), "another host");
        let none = desc.replace("WANIPConnection", "WANEthernetLinkConfig");
        assert!(control(&none, GW, 5000).is_err());
        assert!(control("<root>", GW, 5000).is_err(), "malformed");
        let deep = "<a>".repeat(100) + &"</a>".repeat(100);
        assert!(control(&deep, GW, 5000).is_err(), "too deep");
    }

    #[test]
    fn requests_are_escaped_and_answers_or_faults_read() {
        let body = envelope(
            "urn:schemas-upnp-org:service:WANIPConnection:1",
            "AddPortMapping",
            &[("NewPortMappingDescription", "a<b&c".into())],
        );
        assert!(body.contains("<u:AddPortMapping xmlns:u=\"urn:schemas-upnp-org:service:WANIPConnection:1\"><NewPortMappingDescription>a&lt;b&amp;c</NewPortMappingDescription></u:AddPortMapping>"), "{body}");
        let ok = "<?xml version=\"1.0\"?><s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body>\
            <u:GetExternalIPAddressResponse xmlns:u=\"urn:schemas-upnp-org:service:WANIPConnection:1\">\
            <NewExternalIPAddress>198.51.100.7</NewExternalIPAddress></u:GetExternalIPAddressResponse></s:Body></s:Envelope>";
        assert_eq!(
            answer(ok),
            Ok(vec![("NewExternalIPAddress".into(), "198.51.100.7".into())])
        );
        let fault = "<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body><s:Fault>\
            <faultcode>s:Client</faultcode><faultstring>UPnPError</faultstring><detail>\
            <UPnPError xmlns=\"urn:schemas-upnp-org:control-1-0\"><errorCode>718</errorCode>\
            <errorDescription>ConflictInMappingEntry</errorDescription></UPnPError></detail></s:Fault></s:Body></s:Envelope>";
        assert_eq!(
            answer(fault),
            Err(Fault {
                code: 718,
                description: "ConflictInMappingEntry".into()
            })
        );
        assert_eq!(answer("garbage").unwrap_err().code, 0);
        assert_eq!(answer("<a/>").unwrap_err().code, 0, "no body");
    }
}
