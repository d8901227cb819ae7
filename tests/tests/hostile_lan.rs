//! Issue 27, a hostile LAN, round two: nobody on the LAN can lie to the agent, starve the Command
//! Center, or act in its name. Each test sends what an attacker on the LAN would, with real packets
//! from the lab's hosts, and shows the Command Center's mapping (or service) unharmed.

use std::net::SocketAddr;
use wilife_lab::lab::*;

const TOKEN: &str = "hostile-lan-token-0123456789";

/// A lab in upnp mode whose Command Center is bound by address and MAC (secure mode), with an API
/// token, the Command Center holding port `port`.
fn lab_with_mapping(port: u16) -> Lab {
    let mut lab = Lab::new();
    let cfg = lab
        .config("upnp", "")
        .replace(
            "option api_port",
            &format!("option api_token '{TOKEN}'\n\toption api_port"),
        )
        .replace(
            &format!("\toption ip '{CC_IP}'\n"),
            &format!("\toption ip '{CC_IP}'\n\toption mac '{CC_MAC}'\n"),
        );
    let cfg = lab.write_config("wilife", &cfg);
    lab.start_upnp_agent(&cfg);
    assert_eq!(lab.add_mapping(&lab.cc, port, "TCP", CC_IP, 0), 0);
    assert_eq!(mappings(&lab), vec![port]);
    lab
}

fn mappings(lab: &Lab) -> Vec<u16> {
    lab.api_get("/api/v1/mappings")["mappings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["external_port"].as_u64().unwrap() as u16)
        .collect()
}

/// A DeletePortMapping body for `port`.
fn delete_body(port: u16) -> String {
    format!(
        "<?xml version=\"1.0\"?><s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\" \
         s:encodingStyle=\"http://schemas.xmlsoap.org/soap/encoding/\"><s:Body>\
         <u:DeletePortMapping xmlns:u=\"{WANIP1}\"><NewRemoteHost></NewRemoteHost>\
         <NewExternalPort>{port}</NewExternalPort><NewProtocol>TCP</NewProtocol>\
         </u:DeletePortMapping></s:Body></s:Envelope>"
    )
}

/// POSTs `body` to the IGD's control URL from `ns` with `headers` (Host and Content-Length added):
/// the HTTP status.
fn post(lab: &Lab, ns: &str, headers: &str, body: &str) -> u16 {
    let to = SocketAddr::from((LAN_IP, UPNP_PORT));
    let request = format!(
        "POST /ctl/IPConn HTTP/1.1\r\nHost: {LAN_IP}:{UPNP_PORT}\r\n{headers}Content-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    let raw = lab.raw_http(ns, to, request.into_bytes()).unwrap();
    split_response(&raw).0
}

/// The API's DELETE of a mapping with the token, from the Command Center, with `headers`: the status.
fn api_delete(lab: &Lab, port: u16, headers: &str) -> u16 {
    let to = SocketAddr::from((LAN_IP, API_PORT));
    let request = format!(
        "DELETE /api/v1/mappings/TCP/{port} HTTP/1.1\r\nHost: {LAN_IP}:{API_PORT}\r\n\
         Authorization: Bearer {TOKEN}\r\n{headers}Connection: close\r\n\r\n"
    );
    split_response(&lab.raw_http(&lab.cc, to, request.into_bytes()).unwrap()).0
}

/// Point 5: a page the Command Center's user opens posts to the IGD and the API from the user's own
/// browser, on the Command Center's own address. What a browser sends without asking first (a
/// simple request: text/plain, no custom header) or from another site's page is refused; the UPnP
/// client's own request still works.
#[test]
fn a_web_page_the_user_opens_cannot_act_in_the_command_centers_name() {
    let lab = lab_with_mapping(20571);
    let body = delete_body(20571);
    let action = format!("SOAPAction: \"{WANIP1}#DeletePortMapping\"\r\n");
    let browser_like = [
        // A form or a no-cors fetch: text/plain, no SOAPAction.
        "Content-Type: text/plain\r\nOrigin: http://evil.example\r\n".to_string(),
        "Content-Type: text/plain\r\n".to_string(),
        // Without an origin header too: the content type and the action alone are checked.
        "Content-Type: application/x-www-form-urlencoded\r\n".to_string(),
        format!("Content-Type: text/plain\r\n{action}"),
        "Content-Type: text/xml\r\n".to_string(),
        // What a page could send only after a CORS preflight, which is never granted; refused all
        // the same when a browser says where it comes from.
        format!("Content-Type: text/xml\r\n{action}Origin: http://evil.example\r\n"),
        format!("Content-Type: text/xml\r\n{action}Origin: null\r\n"),
        format!("Content-Type: text/xml\r\n{action}Sec-Fetch-Site: cross-site\r\n"),
        format!("Content-Type: text/xml\r\n{action}Origin: http://{LAN_IP}\r\n"),
    ];
    for headers in &browser_like {
        let status = post(&lab, &lab.cc, headers, &body);
        assert!(
            [400, 403, 415].contains(&status),
            "{headers:?}: {status}\n{}",
            lab.log()
        );
        assert_eq!(mappings(&lab), vec![20571], "{headers:?} deleted it");
    }
    // The API: a page cannot use a token it read elsewhere from the user's browser either.
    for headers in [
        "Origin: http://evil.example\r\n",
        "Sec-Fetch-Site: cross-site\r\n",
        "Sec-Fetch-Site: same-site\r\n",
    ] {
        assert_eq!(api_delete(&lab, 20571, headers), 403, "{headers:?}");
        assert_eq!(mappings(&lab), vec![20571]);
    }
    // UPnP clients send XML with the action named (and no browser headers): served.
    let own = format!("Content-Type: text/xml; charset=\"utf-8\"\r\n{action}");
    assert_eq!(post(&lab, &lab.cc, &own, &body), 200);
    assert!(mappings(&lab).is_empty());
    // The API from a script (no browser headers), and from the router's own page, still works.
    assert_eq!(lab.add_mapping(&lab.cc, 20572, "TCP", CC_IP, 0), 0);
    let same_origin =
        format!("Origin: http://{LAN_IP}:{API_PORT}\r\nSec-Fetch-Site: same-origin\r\n");
    assert_eq!(api_delete(&lab, 20572, &same_origin), 200);
    assert_eq!(lab.add_mapping(&lab.cc, 20573, "TCP", CC_IP, 0), 0);
    assert_eq!(api_delete(&lab, 20573, ""), 200);
}

/// Point 4: the Command Center's address moves to another LAN host (its lease moved, or the host took
/// the address): that host is not the Command Center, whose config binds its MAC. It can remove the
/// mapping neither one by one nor by range; the Command Center, back on its address, can.
#[test]
fn another_host_on_the_command_centers_address_cannot_remove_its_mapping() {
    let lab = lab_with_mapping(20574);
    let cidr = format!("{CC_IP}/24");
    let move_address = |from: &str, to: &str| {
        lab.ip(from, &["addr", "del", &cidr, "dev", "eth0"]);
        lab.ip(to, &["addr", "add", &cidr, "dev", "eth0"]);
        // The router learns the new owner as it would once the old entry aged out.
        lab.ip(&lab.router, &["neigh", "flush", "to", &CC_IP.to_string()]);
    };
    move_address(&lab.cc.clone(), &lab.other.clone());
    assert_eq!(lab.delete_mapping(&lab.other, 20574), 606, "{}", lab.log());
    let (status, body) = lab.soap(
        &lab.other,
        WANIP2,
        "DeletePortMappingRange",
        &[
            ("NewStartPort", "20570"),
            ("NewEndPort", "20575"),
            ("NewProtocol", "TCP"),
            ("NewManage", "0"),
        ],
    );
    assert_eq!(upnp_error(status, &body), 606, "{body}");
    assert_eq!(mappings(&lab), vec![20574]);
    // Not a neighbour entry stale by a moment either: the owner reads the requester's MAC afresh.
    move_address(&lab.other.clone(), &lab.cc.clone());
    assert_eq!(lab.delete_mapping(&lab.cc, 20574), 0, "{}", lab.log());
    assert!(mappings(&lab).is_empty());
}
