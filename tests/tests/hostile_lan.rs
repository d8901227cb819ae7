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
    let cfg = lab.config("upnp", "").replace(
        &format!("\toption ip '{CC_IP}'\n"),
        &format!("\toption ip '{CC_IP}'\n\toption mac '{CC_MAC}'\n"),
    );
    let cfg = lab.write_config("wilife", &cfg);
    lab.set_token(TOKEN);
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
    let port = port.to_string();
    soap_body(
        WANIP1,
        "DeletePortMapping",
        &[
            ("NewRemoteHost", ""),
            ("NewExternalPort", &port),
            ("NewProtocol", "TCP"),
        ],
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

/// A raw socket on `ns` sends, for `seconds`, NAT-PMP answers as if from the gateway (its address and
/// port 5351) to our router's WAN address and `port`: a mapping of `mapped` and the external address
/// `address`, with a high epoch. The forger's program, in Python (raw sockets, IP_HDRINCL).
fn forge_gateway(lab: &Lab, ns: &str, port: u16, mapped: u16, address: &str, seconds: f64) {
    let script = r#"
import socket, struct, sys, time
gw, wan, dport, mapped, addr, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], float(sys.argv[6])
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
s.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
def datagram(payload):
    udp = struct.pack("!HHHH", 5351, dport, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0x4000, 64, 17, 0,
                     socket.inet_aton(gw), socket.inet_aton(wan))
    return ip + udp
epoch = 900000
answers = [datagram(struct.pack("!BBHI4s", 0, 128, 0, epoch, socket.inet_aton(addr))),
           datagram(struct.pack("!BBHIHHI", 0, 130, 0, epoch, mapped, mapped, 86400))]
end = time.time() + seconds
while time.time() < end:
    for a in answers:
        s.sendto(a, (wan, 0))
    time.sleep(0.005)
"#;
    let out = lab.exec(
        ns,
        &[
            "python3",
            "-c",
            script,
            &ISP_LAN_IP.to_string(),
            &PRIVATE_WAN_IP.to_string(),
            &port.to_string(),
            &mapped.to_string(),
            address,
            &seconds.to_string(),
        ],
    );
    assert!(out.status.success(), "{out:?}");
}

/// The local port of the agent's socket towards the gateway's NAT-PMP port, as `ss` shows it in the
/// router (an attacker finds it by trying every port; the test saves the time).
fn agent_port_to_gateway(lab: &Lab) -> Option<u16> {
    let out = lab.exec(&lab.router, &["ss", "-Hun"]);
    String::from_utf8_lossy(&out.stdout).lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        let peer = f.iter().position(|x| *x == format!("{ISP_LAN_IP}:5351"))?;
        f.get(peer - 1)?.rsplit_once(':')?.1.parse().ok()
    })
}

/// Point 1: behind a private WAN (double NAT), a LAN host forges the gateway's NAT-PMP answers from a
/// raw socket while the gateway stays silent. They reach the router (counted), but the agent takes the
/// gateway's answers only from the WAN device: no mapping upstream, no external address of the
/// forger's choosing is reported.
#[test]
fn forged_gateway_answers_from_the_lan_are_not_believed() {
    let mut lab = Lab::new();
    let _isp = lab.behind_isp(&[]);
    // The gateway drops NAT-PMP without a word (no port unreachable to end the agent's wait).
    let quiet = "table inet quiet {\n chain input { type filter hook input priority -300; udp dport 5351 drop; }\n}\n";
    let out = lab.exec_with_stdin(&lab.remote, &["nft", "-f", "-"], quiet.as_bytes());
    assert!(out.status.success(), "{out:?}");
    // What of the forgery reaches our router from the LAN side, for local delivery.
    let count = format!(
        "table inet forged {{\n counter seen {{ }}\n chain input {{ type filter hook input priority -400; \
         iifname \"{LAN_DEV}\" ip saddr {ISP_LAN_IP} udp sport 5351 counter name seen; }}\n}}\n"
    );
    let out = lab.exec_with_stdin(&lab.router, &["nft", "-f", "-"], count.as_bytes());
    assert!(out.status.success(), "{out:?}");
    let cfg = lab.config(
        "upnp",
        "config upstream 'upstream'\n\toption mode 'enabled'\n\tlist protocol 'natpmp'\n",
    );
    let cfg = lab.write_config("wilife", &cfg);
    lab.start_upnp_agent(&cfg);
    assert_eq!(lab.add_mapping(&lab.cc, 20575, "TCP", CC_IP, 0), 0);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let port = loop {
        if let Some(p) = agent_port_to_gateway(&lab) {
            break p;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the agent never asked the gateway\n{}",
            lab.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    forge_gateway(&lab, &lab.other, port, 20575, "198.51.100.66", 3.0);
    let out = lab.exec(
        &lab.router,
        &["nft", "-j", "list", "counter", "inet", "forged", "seen"],
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let seen = v["nftables"][1]["counter"]["packets"].as_u64().unwrap();
    assert!(seen > 100, "the forgery did not reach the router ({seen})");
    let status = lab.api_status();
    let upstream = &status["upstream"];
    assert_eq!(
        upstream["mappings"],
        serde_json::json!([]),
        "{upstream:#}\n{}",
        lab.log()
    );
    assert!(
        !status.to_string().contains("198.51.100.66"),
        "the forger's address is reported: {status:#}"
    );
    assert!(!lab.log().contains("198.51.100.66"), "{}", lab.log());
}

/// Point 6: a LAN host sends frames from ever new source MACs, 100 a second: each is a new bridge FDB
/// entry and an rtnetlink event, so the events never pause for the debounce. Meanwhile the WAN address
/// changes: the agent sees it within a second or so all the same (a burst is read at most 0.5 s after
/// it began).
#[test]
fn a_flood_of_new_macs_does_not_hide_a_wan_address_change() {
    let mut lab = Lab::new();
    let cfg = lab.write_config("wilife", &lab.config("upnp", ""));
    lab.start_upnp_agent(&cfg);
    let flood = r#"
import os, socket, sys, time
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("eth0", 0))
end = time.time() + float(sys.argv[1])
while time.time() < end:
    s.send(b"\xff" * 6 + b"\x02" + os.urandom(5) + b"\x88\xb5" + bytes(46))
    time.sleep(0.01)
"#;
    let mut flooder = std::process::Command::new(ip_program())
        .args(["netns", "exec", &lab.other, "python3", "-c", flood, "6"])
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(1));
    let wan = |lab: &Lab| lab.api_get("/api/v1/diagnosis")["wan"]["ipv4"].clone();
    assert_eq!(wan(&lab), serde_json::json!([WAN_IP.to_string()]));
    let moved = "198.51.100.7";
    lab.move_wan_address(moved);
    let seen = lab.time_until(std::time::Duration::from_secs(4), || {
        wan(&lab) == serde_json::json!([moved])
    });
    let still_flooding = flooder.try_wait().unwrap().is_none();
    let _ = flooder.wait();
    let fdb = lab.exec(&lab.router, &["bridge", "fdb", "show", "br", LAN_DEV]);
    let learned = String::from_utf8_lossy(&fdb.stdout)
        .lines()
        .filter(|l| l.starts_with("02:"))
        .count();
    assert!(learned > 100, "the flood taught the bridge {learned} MACs");
    let took = seen.unwrap_or_else(|| {
        panic!(
            "the new WAN address was not seen: {}\n{}",
            wan(&lab),
            lab.log()
        )
    });
    assert!(
        still_flooding,
        "the flood had ended before the change was seen"
    );
    eprintln!("WAN address change seen {took:?} after it, during a flood of new MACs");
    assert!(took < std::time::Duration::from_secs(2), "{took:?}");
}

/// An AddPortMapping body for `port` to the Command Center.
fn add_body(port: u16) -> String {
    let port = port.to_string();
    soap_body(
        WANIP1,
        "AddPortMapping",
        &[
            ("NewRemoteHost", ""),
            ("NewExternalPort", &port),
            ("NewProtocol", "TCP"),
            ("NewInternalPort", &port),
            ("NewInternalClient", &CC_IP.to_string()),
            ("NewEnabled", "1"),
            ("NewPortMappingDescription", "chunked"),
            ("NewLeaseDuration", "0"),
        ],
    )
}

/// Point 9: UPnP stacks send SOAP bodies chunked. A real client library's chunked POST (Python's
/// http.client, `encode_chunked`) is served like a Content-Length one; so are chunks that trickle in
/// one by one. Two framings at once (the smuggling pattern), a chunked body beyond the cap, endless
/// chunk extensions and a coding nobody can decode are refused, and the agent serves on.
#[test]
fn chunked_soap_bodies_are_served_within_the_same_bounds_and_smuggling_is_refused() {
    let lab = lab_with_mapping(20571);
    let action = format!("{WANIP1}#AddPortMapping");
    let client = format!(
        "import http.client, sys\n\
         body = sys.stdin.buffer.read()\n\
         c = http.client.HTTPConnection('{LAN_IP}', {UPNP_PORT}, timeout=5)\n\
         parts = [body[i:i + 97] for i in range(0, len(body), 97)]\n\
         c.request('POST', '/ctl/IPConn', body=iter(parts), encode_chunked=True,\n\
                   headers={{'Content-Type': 'text/xml; charset=\"utf-8\"', 'SOAPAction': '\"{action}\"'}})\n\
         r = c.getresponse()\n\
         print(r.status, r.read().decode())\n"
    );
    let out = lab.exec_with_stdin(
        &lab.cc,
        &["python3", "-c", &client],
        add_body(20572).as_bytes(),
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.starts_with("200 "), "{said}{}", lab.log());
    assert_eq!(mappings(&lab), vec![20571, 20572]);
    // (Two mappings are all one client may hold by default.)
    assert_eq!(lab.delete_mapping(&lab.cc, 20572), 0);

    // The same, one chunk at a time with pauses (a slow client), and with an extension and a trailer.
    let body = add_body(20573);
    let (a, b) = body.split_at(body.len() / 2);
    let pieces = [
        format!(
            "POST /ctl/IPConn HTTP/1.1\r\nHost: {LAN_IP}:{UPNP_PORT}\r\nContent-Type: text/xml\r\n\
             SOAPAction: \"{action}\"\r\nTransfer-Encoding: chunked\r\n\r\n"
        ),
        format!("{:x};part=1\r\n{a}\r\n", a.len()),
        format!("{:x}\r\n{b}\r\n", b.len()),
        "0\r\nX-Checksum: none\r\n\r\n".to_string(),
    ];
    let to = SocketAddr::from((LAN_IP, UPNP_PORT));
    let answer = lab.in_ns(&lab.cc, move || {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(to).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        for p in &pieces {
            s.write_all(p.as_bytes()).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(150));
        }
        let mut raw = String::new();
        let _ = s.read_to_string(&mut raw);
        raw
    });
    assert_eq!(split_response(&answer).0, 200, "{answer}");
    assert_eq!(mappings(&lab), vec![20571, 20573]);
    assert_eq!(lab.delete_mapping(&lab.cc, 20573), 0);

    // Refused: what a smuggler sends, what exceeds the bounds, what cannot be decoded.
    let head = |framing: &str| {
        format!(
            "POST /ctl/IPConn HTTP/1.1\r\nHost: {LAN_IP}:{UPNP_PORT}\r\nContent-Type: text/xml\r\n\
             SOAPAction: \"{action}\"\r\n{framing}\r\n"
        )
    };
    let small = add_body(20574);
    let chunk = format!("{:x}\r\n{small}\r\n0\r\n\r\n", small.len());
    let cases = [
        (
            format!(
                "{}{chunk}",
                head(&format!(
                    "Content-Length: {}\r\nTransfer-Encoding: chunked\r\n",
                    chunk.len()
                ))
            ),
            400,
        ),
        (
            format!(
                "{}{chunk}",
                head(&format!(
                    "Transfer-Encoding: chunked\r\nContent-Length: {}\r\n",
                    small.len()
                ))
            ),
            400,
        ),
        (
            format!("{}{chunk}", head("Transfer-Encoding: gzip, chunked\r\n")),
            501,
        ),
        (
            format!(
                "{}4001\r\n{}\r\n0\r\n\r\n",
                head("Transfer-Encoding: chunked\r\n"),
                "a".repeat(0x4001)
            ),
            413,
        ),
        (
            format!(
                "{}1;{}\r\n",
                head("Transfer-Encoding: chunked\r\n"),
                "x".repeat(100_000)
            ),
            413,
        ),
    ];
    for (request, status) in cases {
        let raw = lab.raw_http(&lab.cc, to, request.into_bytes()).unwrap();
        assert_eq!(
            split_response(&raw).0,
            status,
            "{raw}\n{request_head}",
            request_head = raw.lines().next().unwrap_or("")
        );
    }
    assert_eq!(mappings(&lab), vec![20571]);
    // A chunked body that stops coming is cut off at the request deadline like any other.
    let stalled = format!("{}5\r\nab", head("Transfer-Encoding: chunked\r\n"));
    let started = std::time::Instant::now();
    let raw = lab
        .raw_http_held(&lab.cc, to, stalled.into_bytes())
        .unwrap();
    assert_eq!(split_response(&raw).0, 408, "{raw}");
    assert!(started.elapsed() < std::time::Duration::from_secs(15));
    assert_eq!(lab.add_mapping(&lab.cc, 20575, "TCP", CC_IP, 0), 0);
}

/// Point 2: eight addresses of one LAN host open eight connections each to the IGD and to the API
/// and send nothing (or a byte now and then), and open them again when closed: every slot a LAN host
/// may take. The Command Center's mapping calls, LuCI's path on loopback, and a newcomer on the LAN
/// are all served all the same.
#[test]
fn many_addresses_holding_connections_starve_neither_the_command_center_nor_luci() {
    let lab = lab_with_mapping(20571);
    let from = lab.aliases(&lab.other, 8);
    let services = [
        SocketAddr::from((LAN_IP, UPNP_PORT)),
        SocketAddr::from((LAN_IP, API_PORT)),
    ];
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = stop.clone();
    let (ready, ready_rx) = std::sync::mpsc::channel();
    // Held open, and opened again as soon as the agent closes one (as an attacker would).
    let attacker = lab.in_ns_thread(&lab.other, move || {
        use std::io::{Read, Write};
        let d = std::time::Duration::from_millis(300);
        let open = |ip, to| tcp_connect_from(ip, to, d).ok();
        // fw4 lets 25 new connections a second through to the router: retried until all are open.
        let patient = |ip, to| (0..50).find_map(|_| open(ip, to));
        let mut held: Vec<(std::net::Ipv4Addr, SocketAddr, std::net::TcpStream)> = Vec::new();
        for &ip in &from {
            for &to in &services {
                held.extend((0..8).filter_map(|_| Some((ip, to, patient(ip, to)?))));
            }
        }
        let opened = held.len();
        let _ = ready.send(());
        while !flag.load(std::sync::atomic::Ordering::SeqCst) {
            // Reopening stays under fw4's limit on new connections to the router (25/s, burst 50,
            // for everyone together): above it any host denies the router's every service, the
            // agent's or not, so that is fw4's to weigh, not what this shows.
            let mut reopen = 1;
            for (n, (ip, to, s)) in held.iter_mut().enumerate() {
                // Half trickle a request line, a byte at a time; half stay silent.
                let alive = if n % 2 == 0 {
                    s.write_all(b"G").is_ok()
                } else {
                    let _ = s.set_nonblocking(true);
                    // Nothing to read yet: still open (an answer or EOF means it was closed).
                    matches!(s.read(&mut [0u8; 64]), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
                };
                if !alive && reopen > 0 {
                    reopen -= 1;
                    if let Some(again) = open(*ip, *to) {
                        *s = again;
                    }
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        opened
    });
    // The attack holds its connections before the Command Center comes.
    ready_rx
        .recv_timeout(std::time::Duration::from_secs(30))
        .expect("the attacker connected");
    let t = std::time::Instant::now();
    for _ in 0..20 {
        assert_eq!(
            lab.add_mapping(&lab.cc, 20572, "TCP", CC_IP, 0),
            0,
            "{}",
            lab.log()
        );
        assert_eq!(lab.delete_mapping(&lab.cc, 20572), 0);
    }
    let took = t.elapsed();
    // LuCI's path: the rpcd plugin asks the API on loopback.
    for _ in 0..10 {
        let _ = lab.api_get("/api/v1/health");
    }
    // A newcomer on the LAN (not a Command Center): an idle connection gives way to it.
    let to = SocketAddr::from((LAN_IP, UPNP_PORT));
    let (status, _) = lab
        .http(
            &lab.camera,
            to,
            "GET",
            "/rootDesc.xml",
            &format!("{LAN_IP}:{UPNP_PORT}"),
        )
        .unwrap();
    assert_eq!(status, 200);
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let opened = attacker.join().unwrap();
    assert_eq!(opened, 128, "the attack opened all its connections");
    assert!(
        took < std::time::Duration::from_secs(10),
        "20 add+delete took {took:?}"
    );
}

/// Point 7: eight addresses of one LAN host take four event subscriptions each, with callbacks that
/// never answer (their packets are dropped). The Command Center still subscribes, and its events
/// (the initial one, and the change its own AddPortMapping makes) arrive at once, not after every
/// dead callback has timed out.
#[test]
fn dead_subscribers_neither_take_the_command_centers_slot_nor_delay_its_events() {
    let lab = lab_with_mapping(20571);
    let from = lab.aliases(&lab.other, 8);
    // The callbacks' packets vanish: every NOTIFY to them waits for its timeout.
    let out = lab.exec(
        &lab.other,
        &[
            "nft",
            "add table inet blackhole; add chain inet blackhole in { type filter hook input priority 0; }; \
             add rule inet blackhole in tcp dport 2869 drop",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let mut taken = 0;
    for &ip in &from {
        for _ in 0..4 {
            let answer = lab.subscribe_from(&lab.other, ip, format!("http://{ip}:2869/evt"));
            taken += usize::from(split_response(&answer).0 == 200);
        }
    }
    assert!(taken >= 24, "the attack took {taken} subscriptions");
    let listener = lab.in_ns(&lab.cc, || {
        std::net::TcpListener::bind("0.0.0.0:2869").unwrap()
    });
    let answer = lab.subscribe_from(&lab.cc, CC_IP, format!("http://{CC_IP}:2869/evt"));
    assert_eq!(split_response(&answer).0, 200, "{answer}");
    let wait = std::time::Duration::from_secs(3);
    let first = notify_within(&listener, wait).expect("the initial event, at once");
    assert_eq!(header_value(&first, "SEQ").as_deref(), Some("0"));
    let t = std::time::Instant::now();
    assert_eq!(lab.add_mapping(&lab.cc, 20572, "TCP", CC_IP, 0), 0);
    let change = notify_within(&listener, wait).expect("the change's event, at once");
    assert_eq!(header_value(&change, "SEQ").as_deref(), Some("1"));
    assert!(
        change.contains("<PortMappingNumberOfEntries>2</PortMappingNumberOfEntries>"),
        "{change}"
    );
    eprintln!(
        "the Command Center's NOTIFY came {:?} after its AddPortMapping",
        t.elapsed()
    );
}

/// A raw socket on `ns` sends, for `seconds`, `per_sec` unicast M-SEARCHes for ssdp:all to the router,
/// each from a different forged LAN address where no host is (192.168.50.100-199).
fn forge_searches(lab: &Lab, ns: &str, per_sec: u32, seconds: f64) {
    let script = r#"
import socket, struct, sys, time
router, per_sec, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
s.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
search = b"M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: \"ssdp:discover\"\r\nST: ssdp:all\r\n\r\n"
n = 0
end = time.time() + seconds
while time.time() < end:
    src = "192.168.50.%d" % (100 + n % 100)
    udp = struct.pack("!HHHH", 40000 + n % 1000, 1900, 8 + len(search), 0) + search
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0x4000, 64, 17, 0,
                     socket.inet_aton(src), socket.inet_aton(router))
    s.sendto(ip + udp, (router, 0))
    n += 1
    time.sleep(1.0 / per_sec)
"#;
    let out = lab.exec(
        ns,
        &[
            "python3",
            "-c",
            script,
            &LAN_IP.to_string(),
            &per_sec.to_string(),
            &seconds.to_string(),
        ],
    );
    assert!(out.status.success(), "{out:?}");
}

/// Point 3: a LAN host floods the router with unicast searches from forged addresses of absent hosts
/// (each answer waits for an address resolution that never succeeds). Discovery goes on for the
/// Command Center during the flood and for everyone right after it; the router's answers to the
/// forged addresses are bounded in all, however many addresses are forged.
#[test]
fn forged_searches_from_absent_hosts_never_stall_discovery() {
    let lab = lab_with_mapping(20571);
    let to = SocketAddr::from((LAN_IP, 1900));
    let other = lab.other.clone();
    let flood = move |lab: &Lab| forge_searches(lab, &other, 50, 10.0);
    // Counted where they leave the router: answers towards the forged addresses.
    let counter = "table inet answers {\n counter sent { }\n chain out { type filter hook output priority 0; \
         udp sport 1900 ip daddr 192.168.50.100-192.168.50.199 counter name sent\n }\n}\n";
    let out = lab.exec_with_stdin(&lab.router, &["nft", "-f", "-"], counter.as_bytes());
    assert!(out.status.success(), "{out:?}");
    std::thread::scope(|scope| {
        let flooding = scope.spawn(|| flood(&lab));
        std::thread::sleep(std::time::Duration::from_secs(4));
        let wait = std::time::Duration::from_secs(2);
        let during = lab.m_search_first(&lab.cc, to, "ssdp:all", wait);
        let during = during.expect("no answer to the Command Center during the flood");
        eprintln!("during the flood, the Command Center's first answer came after {during:?}");
        flooding.join().unwrap();
    });
    let igd = "urn:schemas-upnp-org:device:InternetGatewayDevice:1";
    for host in [lab.cc.clone(), lab.camera.clone()] {
        let after = lab.m_search_first(&host, to, igd, std::time::Duration::from_secs(2));
        let after = after.unwrap_or_else(|| panic!("{host}: no answer right after the flood"));
        eprintln!("{host}: answered after {after:?}, right after the flood");
    }
    let out = lab.exec(
        &lab.router,
        &["nft", "-j", "list", "counter", "inet", "answers", "sent"],
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let sent = v["nftables"][1]["counter"]["packets"].as_u64().unwrap();
    // 500 searches for 9 answers each; the shared bucket lets through 90 + 45/s.
    assert!(sent <= 90 + 45 * 11, "{sent} answers to forged addresses");
    eprintln!("{sent} answers to 500 forged searches");
}

/// Point 6, the second half: a LAN host teaches the bridge 100,000 forged MACs. The agent keeps only
/// the FDB entries of the hosts it watches: its memory does not grow with the table, a mapping and a
/// WAN address change are handled at once, and the camera it watches is still seen on the bridge.
#[test]
fn a_flooded_bridge_fdb_costs_the_agent_neither_memory_nor_time() {
    let mut lab = Lab::new();
    let camera = format!("config camera\n\toption name 'porch'\n\toption mac '{CAMERA_MAC}'\n");
    let cfg = lab.write_config("wilife", &lab.config("upnp", &camera));
    lab.start_upnp_agent(&cfg);
    lab.say_hello_to_router(&lab.camera);
    let pid = lab.agent_pid().unwrap();
    let kb = |field: &str| proc_status(pid, field).unwrap();
    let before = kb("VmHWM");
    lab.flood_fdb("lan-other", 100_000);
    // Something the agent must read while the table is that large: a WAN address change.
    let moved = "198.51.100.7";
    lab.move_wan_address(moved);
    let wan = |lab: &Lab| lab.api_get("/api/v1/diagnosis")["wan"]["ipv4"].clone();
    let seen = lab.time_until(std::time::Duration::from_secs(3), || {
        wan(&lab) == serde_json::json!([moved])
    });
    assert!(seen.is_some(), "the WAN change was not seen: {}", lab.log());
    let t = std::time::Instant::now();
    assert_eq!(lab.add_mapping(&lab.cc, 20570, "TCP", CC_IP, 0), 0);
    assert!(t.elapsed() < std::time::Duration::from_millis(500));
    let peak = kb("VmHWM");
    assert!(
        peak < before + 2048,
        "the agent's peak RSS grew from {before} to {peak} kB"
    );
    let fdb = lab.exec(&lab.router, &["bridge", "fdb", "show", "br", LAN_DEV]);
    assert!(String::from_utf8_lossy(&fdb.stdout).lines().count() > 100_000);
    let cameras = lab.api_get("/api/v1/cameras");
    assert_eq!(cameras["cameras"][0]["present"], true, "{cameras}");
}
