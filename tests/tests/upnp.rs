//! Issue 4: the UPnP IGD scoped to WiLife, with real clients (miniupnpc's `upnpc`, Python's
//! async-upnp-client), real packets and the real fw4 ruleset, in the lab.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::process::Command;
use std::time::{Duration, Instant};
use wilife_lab::lab::*;

fn wan(port: u16) -> SocketAddr {
    SocketAddr::from((WAN_IP, port))
}

fn lan(port: u16) -> SocketAddr {
    SocketAddr::from((LAN_IP, port))
}

const TOKEN: &str = "lab-token-0123456789";

/// A upnp-mode lab: the cc is the authorised Command Center; `extra` adds config lines.
fn upnp_lab(extra: &str) -> Lab {
    upnp_lab_with(extra, |_| Vec::new())
}

/// `upnp_lab`, the agent started with the arguments `args` gives for the new lab.
fn upnp_lab_with(extra: &str, args: impl FnOnce(&Lab) -> Vec<String>) -> Lab {
    let mut lab = Lab::new();
    let cfg = lab.config("upnp", extra);
    lab.set_token(TOKEN);
    let cfg = lab.write_config("wilife", &cfg);
    let args = args(&lab);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    lab.start_upnp_agent_with(&cfg, &args);
    lab
}

fn restart(lab: &mut Lab) {
    let cfg = lab.dir.join("wilife");
    lab.start_upnp_agent(&cfg);
}

/// How many mappings of `port` the kernel holds (one element of map `upnp_addr`, or none).
fn mapped(lab: &Lab, port: u16) -> usize {
    lab.mappings_in_force()
        .iter()
        .filter(|(p, _)| *p == port)
        .count()
}

fn api(lab: &Lab, method: &str, path: &str, token: Option<&str>) -> (u16, serde_json::Value) {
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{API_PORT}\r\n{auth}Connection: close\r\n\r\n"
    );
    let raw = lab
        .raw_http(
            &lab.router,
            SocketAddr::from((Ipv4Addr::LOCALHOST, API_PORT)),
            request.into_bytes(),
        )
        .expect("API answers");
    let (code, body) = split_response(&raw);
    (
        code,
        serde_json::from_str(&body).unwrap_or(serde_json::Value::Null),
    )
}

#[test]
fn upnpc_discovers_maps_lists_and_unmaps_and_the_forward_follows() {
    let lab = upnp_lab("");
    let _echo = lab.echo_server(&lab.cc.clone(), 20570, "cc");
    let (ok, out) = lab.upnpc(&lab.cc, &["-s"]);
    assert!(ok, "{out}");
    assert!(
        out.contains(&format!("ExternalIPAddress = {WAN_IP}")),
        "{out}"
    );
    assert!(
        out.contains(&format!("http://{LAN_IP}:{UPNP_PORT}/rootDesc.xml")),
        "{out}"
    );
    // Before the mapping, the internet cannot reach the cc.
    assert!(lab.tcp_exchange(&lab.remote, wan(20570), "x").is_err());
    let (ok, out) = lab.upnpc(
        &lab.cc,
        &["-a", &CC_IP.to_string(), "20570", "20570", "TCP"],
    );
    assert!(ok && out.contains("is redirected to internal"), "{out}");
    assert_eq!(
        lab.tcp_exchange(&lab.remote, wan(20570), "hi").unwrap(),
        "cc:hi"
    );
    let (_, out) = lab.upnpc(&lab.cc, &["-l"]);
    assert!(out.contains(&format!("TCP 20570->{CC_IP}:20570")), "{out}");
    let (ok, out) = lab.upnpc(&lab.cc, &["-d", "20570", "TCP"]);
    assert!(ok, "{out}");
    let err = lab.tcp_exchange(&lab.remote, wan(20570), "x").unwrap_err();
    assert!(
        matches!(
            err.kind(),
            std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::TimedOut
        ),
        "{err}"
    );
    assert_eq!(mapped(&lab, 20570), 0);
    // Every decision is in the log and the API.
    lab.wait_log(
        "UPnP AddPortMapping port 20570 for 192.168.50.10 granted",
        Duration::from_secs(1),
    );
    let (_, m) = api(&lab, "GET", "/api/v1/mappings", None);
    let results: Vec<&str> = m["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["result"].as_str().unwrap())
        .collect();
    assert_eq!(results, ["granted", "removed"], "{m}");
}

#[test]
fn refusals_carry_the_right_upnp_error_and_install_nothing() {
    // The camera host is a second authorised Command Center here, so "another client" can be shown.
    let lab = upnp_lab(&format!(
        "config command_center\n\toption name 'den'\n\toption ip '{CAMERA_IP}'\nconfig upnp 'upnp'\n\toption max_per_client '6'\n"
    ));
    assert_eq!(
        lab.add_mapping(&lab.cc, 8080, "TCP", CC_IP, 0),
        606,
        "port outside the range"
    );
    assert_eq!(lab.add_mapping(&lab.cc, 20570, "UDP", CC_IP, 0), 606, "UDP");
    assert_eq!(
        lab.add_mapping(&lab.cc, 20570, "TCP", CAMERA_IP, 0),
        606,
        "internal client != requester"
    );
    assert_eq!(
        lab.add_mapping(&lab.cc, 20570, "ICMP", CC_IP, 0),
        402,
        "not a protocol"
    );
    assert_eq!(
        lab.mappings_in_force(),
        [],
        "nothing installed:\n{}",
        lab.table_text()
    );
    // Fill the range, then a seventh mapping and AddAnyPortMapping from the other Command Center.
    for port in 20570..=20575 {
        assert_eq!(lab.add_mapping(&lab.cc, port, "TCP", CC_IP, 0), 0, "{port}");
    }
    assert_eq!(
        lab.add_mapping(&lab.camera, 20573, "TCP", CAMERA_IP, 0),
        718,
        "held by another client"
    );
    assert_eq!(
        lab.add_mapping(&lab.camera, 20576, "TCP", CAMERA_IP, 0),
        606,
        "seventh port"
    );
    let any = |ns: &str, client: Ipv4Addr| {
        let c = client.to_string();
        let (s, b) = lab.soap(
            ns,
            WANIP2,
            "AddAnyPortMapping",
            &[
                ("NewRemoteHost", ""),
                ("NewExternalPort", "20570"),
                ("NewProtocol", "TCP"),
                ("NewInternalPort", "20570"),
                ("NewInternalClient", &c),
                ("NewEnabled", "1"),
                ("NewPortMappingDescription", "any"),
                ("NewLeaseDuration", "0"),
            ],
        );
        (upnp_error(s, &b), b)
    };
    assert_eq!(any(&lab.camera, CAMERA_IP).0, 728, "range full");
    let (_, m) = api(&lab, "GET", "/api/v1/mappings", None);
    assert_eq!(m["mappings"].as_array().unwrap().len(), 6);
    assert_eq!(
        lab.mappings_in_force(),
        (20570..=20575)
            .map(|p| (p, CC_IP.to_string()))
            .collect::<Vec<_>>(),
        "6 mappings"
    );
    let refused: Vec<i64> = m["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["result"] == "refused")
        .map(|d| d["error_code"].as_i64().unwrap())
        .collect();
    assert_eq!(refused, [606, 606, 606, 402, 718, 606, 728], "{m}");
    assert!(m["decisions"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("outside WiLife's direct-mode ports"));
    // Freed by the other client, AddAny hands out the next free port.
    assert_eq!(lab.delete_mapping(&lab.cc, 20572), 0);
    let (code, body) = any(&lab.camera, CAMERA_IP);
    assert_eq!(code, 0, "{body}");
    assert!(
        body.contains("<NewReservedPort>20572</NewReservedPort>"),
        "{body}"
    );
}

#[test]
fn an_unauthorised_lan_host_is_refused() {
    let lab = upnp_lab("");
    assert_eq!(
        lab.add_mapping(&lab.camera, 20570, "TCP", CAMERA_IP, 0),
        606
    );
    lab.wait_log(
        "192.168.50.20 is not an authorised Command Center",
        Duration::from_secs(1),
    );
    assert_eq!(mapped(&lab, 20570), 0);
    // Reads are fine for any LAN host.
    let (status, body) = lab.soap(&lab.camera, WANIP1, "GetExternalIPAddress", &[]);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(&format!(
        "<NewExternalIPAddress>{WAN_IP}</NewExternalIPAddress>"
    )));
}

#[test]
fn nothing_answers_from_the_wan_side_even_without_fw4() {
    let lab = upnp_lab("");
    // Positive control: the cc gets answers to the same searches.
    let ok = lab.m_search(
        &lab.cc,
        lan(1900),
        "upnp:rootdevice",
        None,
        Duration::from_millis(800),
    );
    assert_eq!(ok.len(), 1, "{ok:?}");
    let ok = lab.m_search(
        &lab.cc,
        SocketAddr::from(([239, 255, 255, 250], 1900)),
        "upnp:rootdevice",
        Some(1),
        Duration::from_millis(1500),
    );
    assert_eq!(ok.len(), 1, "{ok:?}");
    // Without fw4 only our own guard stands between the WAN and the IGD; the remote routes to the LAN
    // address through the router (a weak-host-model attack) and to the multicast group on the WAN link.
    lab.nft(&["delete", "table", "inet", "fw4"]);
    lab.route_remote_to_lan();
    lab.ip(&lab.remote, &["route", "add", "239.0.0.0/8", "dev", "eth0"]);
    for to in [
        wan(1900),
        lan(1900),
        SocketAddr::from(([239, 255, 255, 250], 1900)),
    ] {
        let got = lab.m_search(
            &lab.remote,
            to,
            "ssdp:all",
            Some(1),
            Duration::from_millis(1500),
        );
        assert!(got.is_empty(), "answer to {to}: {got:?}");
    }
    for to in [wan(UPNP_PORT), lan(UPNP_PORT), lan(API_PORT)] {
        let r = lab.raw_http(
            &lab.remote,
            to,
            b"GET /rootDesc.xml HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        );
        assert!(r.as_ref().map_or(true, |a| a.is_empty()), "{to}: {r:?}");
    }
    // And the LAN still works.
    let (s, _) = lab.soap(&lab.cc, WANIP1, "GetExternalIPAddress", &[]);
    assert_eq!(s, 200);
}

#[test]
fn hostile_soap_gets_faults_and_the_daemon_keeps_serving() {
    let lab = upnp_lab("");
    let action = format!("\"{WANIP1}#AddPortMapping\"");
    let env = |inner: &str| {
        format!("<?xml version=\"1.0\"?><s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body>{inner}</s:Body></s:Envelope>").into_bytes()
    };
    let add = |port: &str, lease: &str| {
        format!("<u:AddPortMapping xmlns:u=\"{WANIP1}\"><NewRemoteHost/><NewExternalPort>{port}</NewExternalPort><NewProtocol>TCP</NewProtocol><NewInternalPort>20570</NewInternalPort><NewInternalClient>{CC_IP}</NewInternalClient><NewEnabled>1</NewEnabled><NewPortMappingDescription>x</NewPortMappingDescription><NewLeaseDuration>{lease}</NewLeaseDuration></u:AddPortMapping>")
    };
    let good = env(&add("20570", "0"));
    let deep = env(&format!("{}{}", "<a>".repeat(1000), "</a>".repeat(1000)));
    let mut huge = env(&add("20570", "0"));
    huge.extend(std::iter::repeat_n(b' ', 1 << 20));
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("truncated", good[..good.len() / 2].to_vec(), 401),
        ("huge", huge, 413),
        ("deeply nested", deep, 401),
        ("wrong namespace", env(&add("20570", "0").replace(WANIP1, "urn:evil:service:X:1")), 401),
        ("not SOAP", b"{\"json\": true}".to_vec(), 401),
        ("missing arguments", env(&format!("<u:AddPortMapping xmlns:u=\"{WANIP1}\"><NewExternalPort>20570</NewExternalPort></u:AddPortMapping>")), 402),
        ("bad integer", env(&add("20570x", "0")), 402),
        ("negative lease", env(&add("20570", "-5")), 402),
        ("port overflow", env(&add("65536", "0")), 402),
        ("entity expansion", b"<?xml version=\"1.0\"?><!DOCTYPE l [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;\">]><s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body>&b;</s:Body></s:Envelope>".to_vec(), 401),
        ("external entity", b"<?xml version=\"1.0\"?><!DOCTYPE s [<!ENTITY x SYSTEM \"file:///etc/shadow\">]><s>&x;</s>".to_vec(), 401),
        ("not UTF-8", vec![0xff, 0xfe, b'<', 0x00], 401),
    ];
    for (what, body, want) in cases {
        let (status, answer) = lab.soap_raw(&lab.cc, &action, body);
        assert_eq!(
            upnp_error(status, &answer),
            want,
            "{what}: HTTP {status} {answer:.300}"
        );
    }
    // A request with too many headers, and garbage instead of HTTP.
    let mut many = String::from("GET /rootDesc.xml HTTP/1.1\r\nHost: 192.168.50.1:5431\r\n");
    for i in 0..100 {
        many.push_str(&format!("X-{i}: y\r\n"));
    }
    many.push_str("Connection: close\r\n\r\n");
    let (code, _) = split_response(
        &lab.raw_http(&lab.cc, lan(UPNP_PORT), many.into_bytes())
            .unwrap(),
    );
    assert_eq!(code, 431);
    let _ = lab.raw_http(&lab.cc, lan(UPNP_PORT), vec![0u8; 10_000]);
    // Still alive and serving, with nothing installed.
    assert!(lab
        .agent_pid()
        .is_some_and(|p| std::path::Path::new(&format!("/proc/{p}")).exists()));
    let (status, body) = lab.soap(&lab.cc, WANIP1, "GetExternalIPAddress", &[]);
    assert_eq!(status, 200, "{body}");
    assert_eq!(lab.mappings_in_force(), []);
}

#[test]
fn descriptions_windows_gets_igd1_others_igd2_and_the_host_is_checked() {
    let lab = upnp_lab("");
    let get = |ua: &str, path: &str, host: &str| {
        let r = format!(
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {ua}\r\nConnection: close\r\n\r\n"
        );
        split_response(
            &lab.raw_http(&lab.cc, lan(UPNP_PORT), r.into_bytes())
                .unwrap(),
        )
    };
    let host = format!("{LAN_IP}:{UPNP_PORT}");
    let (code, win) = get("Microsoft-Windows/6.1 UPnP/1.0", "/rootDesc.xml", &host);
    assert_eq!(code, 200);
    assert!(
        win.contains("InternetGatewayDevice:1") && win.contains("WANIPConnection:1"),
        "{win}"
    );
    assert!(
        !win.contains(":2<"),
        "Windows must see no IGD:2 type: {win}"
    );
    let (_, scpd) = get("FDSSDP", "/WANIPCn.xml", &host);
    assert!(scpd.contains("AddPortMapping") && !scpd.contains("AddAnyPortMapping"));
    let (_, other) = get("Linux UPnP/1.1 MiniUPnPc/2.2.4", "/rootDesc.xml", &host);
    assert!(other.contains("InternetGatewayDevice:2") && other.contains("WANIPConnection:2"));
    let (_, scpd2) = get("curl", "/WANIPCn.xml", &host);
    assert!(scpd2.contains("AddAnyPortMapping") && scpd2.contains("GetListOfPortMappings"));
    assert_eq!(get("curl", "/WANCfg.xml", &host).0, 200);
    // DNS rebinding: a name in Host is refused; so is an address that is not the router's.
    assert_eq!(get("curl", "/rootDesc.xml", "evil.example:5431").0, 403);
    assert_eq!(get("curl", "/rootDesc.xml", "192.168.50.99:5431").0, 403);
    assert_eq!(get("curl", "/nope", &host).0, 404);
}

#[test]
fn ssdp_answers_every_type_with_the_required_headers_and_a_stable_uuid() {
    let mut lab = upnp_lab("");
    let group = SocketAddr::from(([239, 255, 255, 250], 1900));
    let all = lab.m_search(
        &lab.cc,
        group,
        "ssdp:all",
        Some(1),
        Duration::from_millis(1800),
    );
    assert_eq!(all.len(), 9, "{all:#?}");
    for a in &all {
        for h in [
            "CACHE-CONTROL",
            "EXT",
            "LOCATION",
            "SERVER",
            "ST",
            "USN",
            "BOOTID.UPNP.ORG",
            "CONFIGID.UPNP.ORG",
        ] {
            assert!(header_value(a, h).is_some(), "{h} missing: {a}");
        }
        assert_eq!(
            header_value(a, "LOCATION").unwrap(),
            format!("http://{LAN_IP}:{UPNP_PORT}/rootDesc.xml")
        );
    }
    for st in [
        "upnp:rootdevice",
        "urn:schemas-upnp-org:device:InternetGatewayDevice:1",
        "urn:schemas-upnp-org:device:InternetGatewayDevice:2",
        "urn:schemas-upnp-org:device:WANDevice:1",
        "urn:schemas-upnp-org:device:WANConnectionDevice:1",
        "urn:schemas-upnp-org:service:WANIPConnection:1",
        "urn:schemas-upnp-org:service:WANIPConnection:2",
        "urn:schemas-upnp-org:service:WANCommonInterfaceConfig:1",
    ] {
        let got = lab.m_search(&lab.cc, lan(1900), st, None, Duration::from_millis(500));
        assert_eq!(got.len(), 1, "{st}: {got:?}");
        assert_eq!(header_value(&got[0], "ST").as_deref(), Some(st));
    }
    assert!(lab
        .m_search(
            &lab.cc,
            lan(1900),
            "urn:schemas-upnp-org:device:MediaServer:1",
            None,
            Duration::from_millis(500)
        )
        .is_empty());
    // MX is honoured: answers to MX 2 searches spread within the 2 s, never later.
    let start = Instant::now();
    let got = lab.m_search(
        &lab.cc,
        group,
        "upnp:rootdevice",
        Some(2),
        Duration::from_millis(2600),
    );
    assert_eq!(got.len(), 1);
    assert!(start.elapsed() >= Duration::from_millis(2600));
    let usn = header_value(&got[0], "USN").unwrap();
    let uuid = lab.api_status()["upnp"]["uuid"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(usn, format!("uuid:{uuid}::upnp:rootdevice"));
    // A listener on the LAN hears ssdp:byebye at stop and ssdp:alive at start; the UUID stays.
    let listener = lab.in_ns(&lab.cc, || {
        let s = UdpSocket::bind("0.0.0.0:1900").unwrap();
        s.join_multicast_v4(&Ipv4Addr::new(239, 255, 255, 250), &CC_IP)
            .unwrap();
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        s
    });
    assert!(lab.stop_agent().success());
    restart(&mut lab);
    let mut seen = String::new();
    let mut buf = [0u8; 2048];
    while let Ok(n) = listener.recv(&mut buf) {
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        if seen.contains("ssdp:alive") {
            break;
        }
    }
    assert!(seen.contains("NTS: ssdp:byebye"), "{seen}");
    assert!(seen.contains("NTS: ssdp:alive"), "{seen}");
    assert_eq!(
        lab.api_status()["upnp"]["uuid"].as_str().unwrap(),
        uuid,
        "stable UUID"
    );
}

#[test]
fn leases_expire_mappings_survive_kill_9_and_fw4_reload() {
    let mut lab = upnp_lab("");
    let _echo = lab.echo_server(&lab.cc.clone(), 20570, "cc");
    assert_eq!(lab.add_mapping(&lab.cc, 20570, "TCP", CC_IP, 0), 0);
    assert_eq!(lab.add_mapping(&lab.cc, 20571, "TCP", CC_IP, 2), 0);
    assert_eq!(mapped(&lab, 20571), 1);
    // The 2 s lease ends and takes its rule along; the other stays.
    lab.wait_log(
        "UPnP lease port 20571 for 192.168.50.10 expired",
        Duration::from_secs(5),
    );
    assert_eq!(mapped(&lab, 20571), 0);
    assert_eq!(mapped(&lab, 20570), 1);
    // A renewal by re-adding keeps one entry.
    assert_eq!(lab.add_mapping(&lab.cc, 20570, "TCP", CC_IP, 0), 0);
    assert_eq!(mapped(&lab, 20570), 1);
    // kill -9: the kernel keeps the table, the restart restores the same mapping without a duplicate.
    let before = api(&lab, "GET", "/api/v1/mappings", None).1["mappings"].clone();
    lab.kill_agent();
    assert_eq!(
        lab.tcp_exchange(&lab.remote, wan(20570), "alone").unwrap(),
        "cc:alone"
    );
    restart(&mut lab);
    lab.wait_log("restored 1 of 1 saved mapping(s)", Duration::from_secs(1));
    let after = api(&lab, "GET", "/api/v1/mappings", None).1["mappings"].clone();
    for key in [
        "external_port",
        "internal_client",
        "internal_port",
        "description",
        "owner",
        "lease_left_s",
    ] {
        assert_eq!(before[0][key], after[0][key], "{key}");
    }
    assert_eq!(mapped(&lab, 20570), 1, "{}", lab.table_text());
    assert_eq!(
        lab.tcp_exchange(&lab.remote, wan(20570), "back").unwrap(),
        "cc:back"
    );
    // fw4 reload: fw4 replaces its own table; ours and the mapping are untouched.
    lab.load_fw4();
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(
        lab.tcp_exchange(&lab.remote, wan(20570), "reload").unwrap(),
        "cc:reload"
    );
    // A clean stop and start restores it too.
    assert!(lab.stop_agent().success());
    restart(&mut lab);
    assert_eq!(
        lab.tcp_exchange(&lab.remote, wan(20570), "again").unwrap(),
        "cc:again"
    );
}

#[test]
fn api_lists_mappings_and_delete_needs_the_token_and_cuts_live_sessions() {
    let lab = upnp_lab("");
    let _echo = lab.echo_server(&lab.cc.clone(), 20570, "cc");
    assert_eq!(lab.add_mapping(&lab.cc, 20570, "TCP", CC_IP, 0), 0);
    // A viewer connected from the internet.
    let mut viewer = lab.tcp_connect(&lab.remote, wan(20570)).unwrap();
    viewer.write_all(b"frame\n").unwrap();
    let mut buf = [0u8; 64];
    let n = viewer.read(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"cc:frame\n");
    let (code, m) = api(&lab, "GET", "/api/v1/mappings", None);
    assert_eq!(code, 200);
    let entry = &m["mappings"][0];
    assert_eq!(entry["external_port"], 20570);
    assert_eq!(entry["owner"], "office-pc");
    assert_eq!(entry["description"], "WiLife test");
    assert!(entry["lease_left_s"].is_null());
    assert!(
        entry["bytes"].as_u64().unwrap() > 0 && entry["packets"].as_u64().unwrap() >= 4,
        "{entry}"
    );
    assert!(entry["age_s"].is_u64());
    // Without or with a wrong token: refused, nothing changes.
    assert_eq!(
        api(&lab, "DELETE", "/api/v1/mappings/tcp/20570", None).0,
        401
    );
    assert_eq!(
        api(
            &lab,
            "DELETE",
            "/api/v1/mappings/tcp/20570",
            Some("wrong-token-wrong-token")
        )
        .0,
        401
    );
    assert_eq!(
        api(&lab, "DELETE", "/api/v1/mappings/tcp/20571", Some(TOKEN)).0,
        404
    );
    assert_eq!(
        api(&lab, "DELETE", "/api/v1/mappings/sctp/20570", Some(TOKEN)).0,
        400
    );
    assert_eq!(
        api(&lab, "GET", "/api/v1/mappings/tcp/20570", Some(TOKEN)).0,
        405
    );
    // The viewer's flow only: the router's own probes (after the mapping was granted) are flows to
    // port 20570 too, from the router.
    let viewer_ip = REMOTE_IP.to_string();
    let conntrack = || {
        let out = lab.exec(
            &lab.router,
            &[
                "conntrack",
                "-L",
                "-p",
                "tcp",
                "--orig-src",
                &viewer_ip,
                "--orig-port-dst",
                "20570",
            ],
        );
        String::from_utf8_lossy(&out.stdout).lines().count()
    };
    assert_eq!(conntrack(), 1, "the viewer's flow is tracked");
    let (code, r) = api(&lab, "DELETE", "/api/v1/mappings/tcp/20570", Some(TOKEN));
    assert_eq!(code, 200, "{r}");
    assert_eq!(r["sessions_ended"], 1, "{r}");
    assert_eq!(conntrack(), 0, "the conntrack entry is gone");
    // The viewer is cut off: its next packet meets no forward any more.
    let cut = viewer
        .write_all(b"more\n")
        .and_then(|_| viewer.read(&mut buf));
    assert!(matches!(cut, Err(_) | Ok(0)), "{cut:?}");
    assert_eq!(mapped(&lab, 20570), 0);
    let (_, m) = api(&lab, "GET", "/api/v1/mappings", None);
    assert!(m["mappings"].as_array().unwrap().is_empty());
}

#[test]
fn gena_subscribers_get_events_and_callbacks_elsewhere_are_refused() {
    let lab = upnp_lab("");
    let listener = lab.in_ns(&lab.cc, || TcpListener::bind("0.0.0.0:2869").unwrap());
    let subscribe = |ns: &str, callback: &str| {
        let r = format!("SUBSCRIBE /evt/IPConn HTTP/1.1\r\nHost: {LAN_IP}:{UPNP_PORT}\r\nCallback: <{callback}>\r\nNT: upnp:event\r\nTimeout: Second-300\r\nConnection: close\r\n\r\n");
        lab.raw_http(ns, lan(UPNP_PORT), r.into_bytes()).unwrap()
    };
    // CallStranger: a callback to another host (on the LAN or the internet) is refused.
    for cb in ["http://192.168.50.20:2869/evt", "http://203.0.113.100:80/x"] {
        let (code, _) = split_response(&subscribe(&lab.cc, cb));
        assert_eq!(code, 412, "{cb}");
    }
    let answer = subscribe(&lab.cc, "http://192.168.50.10:2869/evt");
    assert_eq!(split_response(&answer).0, 200, "{answer}");
    let sid = header_value(&answer, "SID").unwrap();
    assert_eq!(
        header_value(&answer, "TIMEOUT").as_deref(),
        Some("Second-300")
    );
    let first = notify_within(&listener, Duration::from_secs(10)).expect("the initial event");
    assert!(first.starts_with("NOTIFY /evt HTTP/1.1"), "{first}");
    assert_eq!(header_value(&first, "SID").as_deref(), Some(sid.as_str()));
    assert_eq!(header_value(&first, "SEQ").as_deref(), Some("0"));
    assert!(
        first.contains("<PortMappingNumberOfEntries>0</PortMappingNumberOfEntries>"),
        "{first}"
    );
    assert!(first.contains(&format!("<ExternalIPAddress>{WAN_IP}</ExternalIPAddress>")));
    assert_eq!(lab.add_mapping(&lab.cc, 20570, "TCP", CC_IP, 0), 0);
    let change = notify_within(&listener, Duration::from_secs(10)).expect("the change's event");
    assert_eq!(header_value(&change, "SEQ").as_deref(), Some("1"));
    assert!(
        change.contains("<PortMappingNumberOfEntries>1</PortMappingNumberOfEntries>"),
        "{change}"
    );
    // Renew, unsubscribe, and a second unsubscribe fails.
    let renew = format!("SUBSCRIBE /evt/IPConn HTTP/1.1\r\nHost: {LAN_IP}:{UPNP_PORT}\r\nSID: {sid}\r\nTimeout: Second-600\r\nConnection: close\r\n\r\n");
    let r = lab
        .raw_http(&lab.cc, lan(UPNP_PORT), renew.into_bytes())
        .unwrap();
    assert_eq!(
        header_value(&r, "TIMEOUT").as_deref(),
        Some("Second-600"),
        "{r}"
    );
    let unsub = format!("UNSUBSCRIBE /evt/IPConn HTTP/1.1\r\nHost: {LAN_IP}:{UPNP_PORT}\r\nSID: {sid}\r\nConnection: close\r\n\r\n");
    assert_eq!(
        split_response(
            &lab.raw_http(&lab.cc, lan(UPNP_PORT), unsub.clone().into_bytes())
                .unwrap()
        )
        .0,
        200
    );
    assert_eq!(
        split_response(
            &lab.raw_http(&lab.cc, lan(UPNP_PORT), unsub.into_bytes())
                .unwrap()
        )
        .0,
        412
    );
}

#[test]
fn async_upnp_client_discovers_reads_adds_deletes_and_enumerates_to_713() {
    let lab = upnp_lab("");
    let script = repo_root().join("tests/clients/async_upnp_client_check.py");
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            &lab.cc,
            "python3",
            script.to_str().unwrap(),
            &CC_IP.to_string(),
        ])
        .output()
        .expect("python3");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    for line in [
        "discovered urn:schemas-upnp-org:device:InternetGatewayDevice:2",
        &format!("external ip {WAN_IP}"),
        "added 20574",
        "entry 0: 20574 TCP",
        "entry 1: error 713",
        "deleted 20574",
        "after delete: error 713",
    ] {
        assert!(text.contains(line), "missing '{line}' in:\n{text}");
    }
    lab.wait_log(
        "UPnP AddPortMapping port 20574 for 192.168.50.10 granted",
        Duration::from_secs(1),
    );
}

/// Issue 15: a mapping change is an element change committed over netlink. No nft process runs for
/// it, the kernel holds it when the IGD answers, its counters survive a full re-apply (and a mapping
/// made again counts from zero), and an element someone else removes is put back.
#[test]
fn mapping_changes_are_element_changes_without_a_process() {
    let mut nft = None;
    let lab = upnp_lab_with("", |lab| {
        let counting = lab.counting_nft();
        let args = vec!["--nft".into(), counting.wrapper.display().to_string()];
        nft = Some(counting);
        args
    });
    let nft = nft.unwrap();
    let _echo = lab.echo_server(&lab.cc.clone(), 20570, "cc");
    // The startup's own apply and its events settle.
    std::thread::sleep(Duration::from_secs(1));
    let settled = nft.runs().len();
    for round in 0..3 {
        assert_eq!(lab.add_mapping(&lab.cc, 20570, "TCP", CC_IP, 0), 0);
        assert_eq!(lab.add_mapping(&lab.cc, 20571, "TCP", CC_IP, 3600), 0);
        // In force when answered.
        assert_eq!(
            lab.mappings_in_force(),
            [(20570, CC_IP.to_string()), (20571, CC_IP.to_string())],
            "round {round}"
        );
        if round < 2 {
            assert_eq!(lab.delete_mapping(&lab.cc, 20570), 0);
            assert_eq!(lab.delete_mapping(&lab.cc, 20571), 0);
            assert_eq!(lab.mappings_in_force(), [], "round {round}");
        }
    }
    let line = lab.tcp_exchange(&lab.remote, wan(20570), "one").unwrap();
    assert_eq!(line, "cc:one");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        nft.runs().len(),
        settled,
        "mapping changes ran nft: {:?}",
        &nft.runs()[settled..]
    );
    // The elements count: one connection, its packets both ways.
    let counts = |lab: &Lab| {
        let m = &api(lab, "GET", "/api/v1/mappings", None).1["mappings"][0];
        assert_eq!(m["external_port"], 20570);
        (
            m["connections"].as_u64().unwrap(),
            m["packets"].as_u64().unwrap(),
            m["bytes"].as_u64().unwrap(),
        )
    };
    let (conns, packets, bytes) = counts(&lab);
    assert_eq!(conns, 1);
    assert!(
        packets >= 6 && bytes > 0,
        "{packets} packets, {bytes} bytes"
    );
    // A full re-apply makes the elements anew; what they counted is carried.
    lab.signal_agent(nix::sys::signal::Signal::SIGHUP);
    lab.wait_log("applied (reload)", Duration::from_secs(5));
    assert_eq!(counts(&lab), (conns, packets, bytes));
    // Someone else deletes a mapping's element: the event brings the mapping back.
    lab.nft(&[
        "delete",
        "element",
        "inet",
        "wilife",
        "upnp_addr",
        "{ 20570 }",
    ]);
    lab.wait_log("was changed by someone else", Duration::from_secs(5));
    lab.time_until(Duration::from_secs(5), || {
        lab.mappings_in_force().len() == 2
    })
    .expect("the element restored");
    assert_eq!(
        lab.tcp_exchange(&lab.remote, wan(20570), "two").unwrap(),
        "cc:two"
    );
    // A mapping deleted and made again counts from zero.
    assert_eq!(lab.delete_mapping(&lab.cc, 20570), 0);
    assert_eq!(lab.add_mapping(&lab.cc, 20570, "TCP", CC_IP, 0), 0);
    // (The API keeps the counters it read for 1 s.)
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(counts(&lab), (0, 0, 0));
    // Someone else's element in the way (asked before the agent looks at that change, 150 ms after
    // it): the kernel refuses the element change, and the whole table is applied instead.
    assert_eq!(lab.delete_mapping(&lab.cc, 20571), 0);
    std::thread::sleep(Duration::from_millis(300));
    let stranger = "{ 20571 : 192.168.50.99 }";
    lab.nft(&["add", "element", "inet", "wilife", "upnp_addr", stranger]);
    assert_eq!(lab.add_mapping(&lab.cc, 20571, "TCP", CC_IP, 0), 0);
    lab.wait_log(
        "the kernel refused the mapping change, nothing was changed: EEXIST",
        Duration::from_secs(1),
    );
    assert!(lab
        .mappings_in_force()
        .contains(&(20571, CC_IP.to_string())));
    assert_eq!(
        lab.tcp_exchange(&lab.remote, wan(20570), "three").unwrap(),
        "cc:three"
    );
}
