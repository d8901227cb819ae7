//! Double NAT (issue 16): our router behind an ISP router that runs Debian's miniupnpd. The Command
//! Center maps a port over UPnP on our router; the agent carries it to the ISP router over PCP or
//! NAT-PMP, and a host on the internet reaches the Command Center through both NATs.

use serde_json::Value;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use wilife_lab::lab::*;

const PORT: u16 = 20570;

fn public(port: u16) -> SocketAddr {
    SocketAddr::from((WAN_IP, port))
}

fn upstream(lab: &Lab) -> Value {
    lab.api_status()["upstream"].clone()
}

/// Waits until the API's upstream status satisfies `ok`; the last status seen.
fn wait_upstream(lab: &Lab, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let u = upstream(lab);
        if ok(&u) {
            return u;
        }
        assert!(Instant::now() < deadline, "{what}: {u:#}\n{}", lab.log());
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn start(lab: &mut Lab, upstream_section: &str) {
    let text = lab.config("upnp", upstream_section);
    let cfg = lab.write_config("wilife", &text);
    lab.start_upnp_agent(&cfg);
}

/// Maps PORT for the Command Center on our router and returns how long until the internet host's
/// connection to the ISP's public address reached it.
fn map_and_reach(lab: &Lab) -> Duration {
    let started = Instant::now();
    assert_eq!(lab.add_mapping(&lab.cc, PORT, "TCP", CC_IP, 0), 0);
    let internet = lab.internet.clone();
    lab.time_until(Duration::from_secs(15), || {
        lab.reaches(&internet, public(PORT))
    })
    .unwrap_or_else(|| panic!("never reached through both NATs\n{}", lab.log()));
    started.elapsed()
}

#[test]
fn pcp_carries_a_mapping_through_both_nats_and_removes_it_with_ours() {
    let mut lab = Lab::new();
    let _isp = lab.behind_isp(&["natpmp", "upnp"]);
    let _cc = lab.echo_server(&lab.cc, PORT, "cc");
    start(&mut lab, "");
    let idle = upstream(&lab);
    assert_eq!(idle["idle"], "nothing_to_carry", "{idle:#}");
    assert!(
        !lab.reaches(&lab.internet, public(PORT)),
        "nothing forwarded yet"
    );
    let before = lab.api_get("/api/v1/diagnosis");
    assert_eq!(before["mode"], "relay_only", "{before:#}");
    assert_eq!(before["reasons"][0]["code"], "wan_private");
    // Every state the API shows in this test, checked against the OpenAPI document at the end.
    let mut answers = vec![
        lab.api_answer("/api/v1/status"),
        lab.api_answer("/api/v1/diagnosis"),
    ];

    let took = map_and_reach(&lab);
    eprintln!("AddPortMapping -> reachable through both NATs: {took:?}");
    assert_eq!(
        lab.tcp_exchange(&lab.internet, public(PORT), "hello")
            .unwrap(),
        "cc:hello"
    );
    let u = wait_upstream(&lab, "the PCP mapping in the status", |u| {
        u["mappings"].as_array().is_some_and(|m| m.len() == 1)
    });
    assert_eq!(u["mappings"][0]["port"], PORT);
    assert_eq!(u["mappings"][0]["external_port"], PORT);
    assert_eq!(u["mappings"][0]["protocol"], "pcp");
    assert_eq!(u["standing"]["state"], "mapping");
    assert_eq!(u["standing"]["protocol"], "pcp");
    // The external address is what the gateway says (miniupnpd's configured one), not a guess.
    assert_eq!(
        u["standing"]["external_address"],
        ISP_REPORTED_IP.to_string()
    );
    assert_eq!(u["gateway"], ISP_LAN_IP.to_string());
    assert_eq!(u["wan_address"], PRIVATE_WAN_IP.to_string());
    assert_eq!(u["missing"], serde_json::json!([]));
    assert_eq!(lab.isp_forwards(), [PORT]);
    lab.wait_log(
        "the gateway 192.168.0.1 forwards TCP",
        Duration::from_secs(1),
    );
    // The Command Center is told the address the internet sees.
    let (status, body) = lab.soap(&lab.cc, WANIP1, "GetExternalIPAddress", &[]);
    assert_eq!(status, 200, "{body}");
    let told = format!("<NewExternalIPAddress>{ISP_REPORTED_IP}</NewExternalIPAddress>");
    assert!(body.contains(&told), "{body}");
    // The verdict: direct, through the gateway.
    let d = lab.api_get("/api/v1/diagnosis");
    assert_eq!(d["mode"], "direct", "{d:#}");
    assert_eq!(d["external"]["via"]["gateway"], ISP_LAN_IP.to_string());
    assert_eq!(d["external"]["via"]["protocol"], "pcp");
    answers.extend([
        lab.api_answer("/api/v1/status"),
        lab.api_answer("/api/v1/diagnosis"),
    ]);

    // Deleted here: gone there too.
    assert_eq!(lab.delete_mapping(&lab.cc, PORT), 0);
    let internet = lab.internet.clone();
    lab.time_until(Duration::from_secs(10), || lab.isp_forwards().is_empty())
        .unwrap_or_else(|| {
            panic!(
                "the ISP still forwards {:?}\n{}",
                lab.isp_forwards(),
                lab.log()
            )
        });
    assert!(!lab.reaches(&internet, public(PORT)));
    let u = wait_upstream(&lab, "nothing held after the delete", |u| {
        u["mappings"].as_array().is_some_and(|m| m.is_empty())
    });
    assert_eq!(u["idle"], "nothing_to_carry");
    let (_, body) = lab.soap(&lab.cc, WANIP1, "GetExternalIPAddress", &[]);
    assert!(body.contains(&PRIVATE_WAN_IP.to_string()), "{body}");

    // A clean stop removes what is held upstream.
    map_and_reach(&lab);
    assert_eq!(lab.isp_forwards(), [PORT]);
    assert!(lab.stop_agent().success());
    assert!(
        lab.isp_forwards().is_empty(),
        "left at the ISP: {:?}",
        lab.isp_forwards()
    );
    lab.check_openapi(&answers, true);
}

#[test]
fn nat_pmp_alone_is_used_when_it_is_the_only_protocol_listed() {
    let mut lab = Lab::new();
    let _isp = lab.behind_isp(&["natpmp"]);
    let _cc = lab.echo_server(&lab.cc, PORT, "cc");
    start(
        &mut lab,
        "config upstream 'upstream'\n\tlist protocol 'natpmp'\n",
    );
    map_and_reach(&lab);
    let u = wait_upstream(&lab, "the NAT-PMP mapping", |u| {
        u["mappings"].as_array().is_some_and(|m| m.len() == 1)
    });
    assert_eq!(u["mappings"][0]["protocol"], "natpmp");
    assert_eq!(u["standing"]["protocol"], "natpmp");
    assert_eq!(
        u["standing"]["external_address"],
        ISP_REPORTED_IP.to_string()
    );
    assert_eq!(lab.delete_mapping(&lab.cc, PORT), 0);
    lab.time_until(Duration::from_secs(10), || lab.isp_forwards().is_empty())
        .expect("the NAT-PMP mapping removed upstream");
}

#[test]
fn without_a_service_upstream_the_status_says_so_and_off_sends_nothing() {
    let mut lab = Lab::new();
    // No miniupnpd: nothing answers on the ISP router (ICMP port unreachable).
    let _isp = lab.behind_isp(&[]);
    // Count every packet our router sends to the ISP router itself (not what it forwards for others).
    let count = "table inet probe {\n counter asked { }\n chain input {\n  type filter hook input priority -300;\n  \
                 ip saddr 192.168.0.2 counter name asked\n }\n}\n";
    let out = lab.exec_with_stdin(&lab.remote, &["nft", "-f", "-"], count.as_bytes());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let asked = |lab: &Lab| -> u64 {
        let out = lab.exec(
            &lab.remote,
            &["nft", "-j", "list", "counter", "inet", "probe", "asked"],
        );
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        v["nftables"][1]["counter"]["packets"].as_u64().unwrap()
    };
    start(
        &mut lab,
        "config upstream 'upstream'\n\tlist protocol 'pcp'\n\tlist protocol 'natpmp'\n",
    );
    assert_eq!(lab.add_mapping(&lab.cc, PORT, "TCP", CC_IP, 0), 0);
    let u = wait_upstream(&lab, "no service upstream", |u| {
        u["standing"]["state"] == "no_service"
    });
    assert_eq!(u["missing"], serde_json::json!([PORT]), "{u:#}");
    assert!(asked(&lab) >= 2, "PCP and NAT-PMP were tried");
    let d = lab.api_get("/api/v1/diagnosis");
    assert_eq!(d["mode"], "relay_only");
    assert_eq!(d["reasons"][0]["code"], "upstream_no_service", "{d:#}");
    let mut answers = vec![
        lab.api_answer("/api/v1/status"),
        lab.api_answer("/api/v1/diagnosis"),
    ];
    lab.stop_agent();

    // Mode off: the same mapping, and not one packet to the ISP router.
    let before = asked(&lab);
    start(
        &mut lab,
        "config upstream 'upstream'\n\toption mode 'off'\n",
    );
    assert_eq!(lab.add_mapping(&lab.cc, PORT, "TCP", CC_IP, 0), 0);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(upstream(&lab)["idle"], "off");
    assert_eq!(asked(&lab), before, "mode off sent something upstream");
    let d = lab.api_get("/api/v1/diagnosis");
    assert_eq!(d["reasons"][0]["code"], "wan_private", "{d:#}");
    answers.extend([
        lab.api_answer("/api/v1/status"),
        lab.api_answer("/api/v1/diagnosis"),
    ]);
    lab.check_openapi(&answers, true);
}

#[test]
fn the_gateways_own_upnp_igd_is_used_when_it_speaks_neither_pcp_nor_nat_pmp() {
    let mut lab = Lab::new();
    // miniupnpd with UPnP only: PCP and NAT-PMP are refused at once (port unreachable).
    let _isp = lab.behind_isp(&["upnp"]);
    let _cc = lab.echo_server(&lab.cc, PORT, "cc");
    start(&mut lab, "");
    let took = map_and_reach(&lab);
    eprintln!("AddPortMapping -> reachable through both NATs over the gateway's IGD: {took:?}");
    let u = wait_upstream(&lab, "the UPnP mapping", |u| {
        u["mappings"].as_array().is_some_and(|m| m.len() == 1)
    });
    assert_eq!(u["mappings"][0]["protocol"], "upnp", "{u:#}");
    assert_eq!(u["standing"]["protocol"], "upnp");
    assert_eq!(
        u["standing"]["external_address"],
        ISP_REPORTED_IP.to_string()
    );
    assert_eq!(lab.isp_forwards(), [PORT]);
    let d = lab.api_get("/api/v1/diagnosis");
    assert_eq!(d["external"]["via"]["protocol"], "upnp", "{d:#}");
    let answers = vec![
        lab.api_answer("/api/v1/status"),
        lab.api_answer("/api/v1/diagnosis"),
    ];
    assert_eq!(lab.delete_mapping(&lab.cc, PORT), 0);
    lab.time_until(Duration::from_secs(10), || lab.isp_forwards().is_empty())
        .expect("the IGD mapping removed upstream");
    map_and_reach(&lab);
    assert!(lab.stop_agent().success());
    assert!(lab.isp_forwards().is_empty(), "a clean stop removes it");
    lab.check_openapi(&answers, true);
}

#[test]
fn a_new_wan_address_is_carried_again_and_a_port_taken_there_moves_the_command_center_on() {
    let mut lab = Lab::new();
    let _isp = lab.behind_isp(&["natpmp", "upnp"]);
    let _cc = lab.echo_server(&lab.cc, PORT, "cc");
    let _cc_next = lab.echo_server(&lab.cc, PORT + 1, "cc");
    start(&mut lab, "");
    map_and_reach(&lab);
    // The ISP router hands out another address: its forward of PORT still points at the old one
    // (until its lease runs out), so PORT is taken there; PCP says so (CANNOT_PROVIDE_EXTERNAL).
    let new_wan = "192.168.0.3";
    lab.ip(&lab.router, &["addr", "flush", "dev", WAN_DEV]);
    lab.ip(
        &lab.router,
        &["addr", "add", &format!("{new_wan}/24"), "dev", WAN_DEV],
    );
    lab.ip(
        &lab.router,
        &[
            "route",
            "replace",
            "default",
            "via",
            &ISP_LAN_IP.to_string(),
        ],
    );
    let u = wait_upstream(&lab, "the port taken at the gateway", |u| {
        u["taken"] == serde_json::json!([PORT])
    });
    assert_eq!(u["wan_address"], new_wan, "{u:#}");
    let d = lab.api_get("/api/v1/diagnosis");
    assert_eq!(d["reasons"][0]["code"], "upstream_port_taken", "{d:#}");
    lab.wait_log(
        "does not give TCP 20570 to this router",
        Duration::from_secs(1),
    );
    // The Command Center's next AddPortMapping of PORT is refused as a conflict (what the internet
    // would see), so it moves on to the next port of the range: carried at once, and reachable.
    assert_eq!(lab.delete_mapping(&lab.cc, PORT), 0);
    assert_eq!(lab.add_mapping(&lab.cc, PORT, "TCP", CC_IP, 0), 718);
    let started = Instant::now();
    assert_eq!(lab.add_mapping(&lab.cc, PORT + 1, "TCP", CC_IP, 0), 0);
    let internet = lab.internet.clone();
    lab.time_until(Duration::from_secs(15), || {
        lab.reaches(&internet, public(PORT + 1))
    })
    .unwrap_or_else(|| panic!("the next port never reached\n{}", lab.log()));
    eprintln!(
        "next port reachable through both NATs {:?} after its AddPortMapping",
        started.elapsed()
    );
    let u = wait_upstream(&lab, "the next port carried", |u| {
        u["mappings"].as_array().is_some_and(|m| m.len() == 1)
            && u["missing"] == serde_json::json!([])
    });
    assert_eq!(u["mappings"][0]["port"], PORT + 1);
    assert_eq!(lab.api_get("/api/v1/diagnosis")["mode"], "direct");
    lab.check_openapi(
        &[
            lab.api_answer("/api/v1/status"),
            lab.api_answer("/api/v1/diagnosis"),
        ],
        true,
    );
}

/// Another host on the ISP's LAN (192.168.0.3) maps `port` at the ISP router over NAT-PMP, as a
/// game console would, before our router asks for it.
fn another_host_holds_upstream(lab: &Lab, port: u16) {
    let other = "192.168.0.3";
    let dev = ["dev", WAN_DEV];
    lab.ip(
        &lab.router,
        &[&["addr", "add", "192.168.0.3/24"][..], &dev].concat(),
    );
    // fw4 masquerades whatever leaves by the WAN, the router's own datagrams too: a NAT binding of
    // the request's own source first keeps it the other host's.
    let keep_source = "table ip other_host {\n chain post {\n  type nat hook postrouting priority srcnat - 5;\n  \
                       ip saddr 192.168.0.3 snat ip to 192.168.0.3\n }\n}\n";
    let out = lab.exec_with_stdin(&lab.router, &["nft", "-f", "-"], keep_source.as_bytes());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answer = lab.in_ns(&lab.router, move || {
        let s = std::net::UdpSocket::bind((other, 0)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let p = port.to_be_bytes();
        // Version 0, opcode 2 (TCP), reserved, internal port, suggested external port, lifetime.
        let request = [0, 2, 0, 0, p[0], p[1], p[0], p[1], 0, 0, 0x0e, 0x10];
        s.send_to(&request, (ISP_LAN_IP, 5351)).unwrap();
        let mut buf = [0u8; 16];
        let n = s.recv(&mut buf).expect("NAT-PMP answer");
        buf[..n].to_vec()
    });
    assert_eq!(answer.len(), 16, "{answer:?}");
    assert_eq!(&answer[2..4], &[0, 0], "result code: {answer:?}");
    assert_eq!(&answer[10..12], &port.to_be_bytes(), "external port");
    lab.nft(&["delete", "table", "ip", "other_host"]);
    lab.ip(
        &lab.router,
        &[&["addr", "del", "192.168.0.3/24"][..], &dev].concat(),
    );
    assert_eq!(
        lab.isp_forwards(),
        [port],
        "held at the ISP router, for 192.168.0.3"
    );
}

#[test]
fn a_port_held_upstream_by_another_host_is_refused_at_once_and_the_next_one_reaches_the_cc() {
    let mut lab = Lab::new();
    let _isp = lab.behind_isp(&["natpmp", "upnp"]);
    let _cc = lab.echo_server(&lab.cc, PORT, "cc");
    let _cc_next = lab.echo_server(&lab.cc, PORT + 1, "cc");
    another_host_holds_upstream(&lab, PORT);
    start(&mut lab, "");
    // The Command Center asks for its first port with a real client: refused as a conflict, what the
    // internet would show, once the gateway said so (not granted here while nobody can reach it).
    // (Given the description's URL, upnpc skips its 2 s of discovery: the times are the IGD's.)
    let (cc, desc) = (
        CC_IP.to_string(),
        format!("http://{LAN_IP}:{UPNP_PORT}/rootDesc.xml"),
    );
    let started = Instant::now();
    let (ok, out) = lab.upnpc(&lab.cc, &["-u", &desc, "-a", &cc, "20570", "20570", "TCP"]);
    let refused_after = started.elapsed();
    assert!(!ok || out.contains("failed"), "{out}\n{}", lab.log());
    assert!(out.contains("718"), "{out}\n{}", lab.log());
    assert!(refused_after < Duration::from_secs(2), "{refused_after:?}");
    // It moves on to the next port: granted, carried, and the internet reaches it.
    let started = Instant::now();
    let (ok, out) = lab.upnpc(&lab.cc, &["-u", &desc, "-a", &cc, "20571", "20571", "TCP"]);
    assert!(ok && out.contains("is redirected to internal"), "{out}");
    let internet = lab.internet.clone();
    lab.time_until(Duration::from_secs(5), || {
        lab.reaches(&internet, public(PORT + 1))
    })
    .unwrap_or_else(|| panic!("the next port never reached\n{}", lab.log()));
    eprintln!(
        "first port refused (718) {refused_after:?} after the AddPortMapping; the next one reachable \
         through both NATs {:?} after its own",
        started.elapsed()
    );
    assert!(
        !lab.reaches(&internet, public(PORT)),
        "the other host's port"
    );
    // The IGD tells what the internet sees: the gateway's external address, and only the port that
    // is reachable.
    let (_, out) = lab.upnpc(&lab.cc, &["-l"]);
    assert!(
        out.contains(&format!("ExternalIPAddress = {ISP_REPORTED_IP}")),
        "{out}"
    );
    assert!(out.contains(&format!("TCP 20571->{CC_IP}:20571")), "{out}");
    assert!(!out.contains("TCP 20570->"), "{out}");
    let m = lab.api_get("/api/v1/mappings");
    let taken_back = (m["decisions"].as_array().unwrap().iter())
        .any(|d| d["action"] == "taken upstream" && d["external_port"] == PORT);
    assert!(taken_back, "{m:#}");
    lab.check_openapi(&[lab.api_answer("/api/v1/mappings")], true);
}

#[test]
fn a_mapping_is_renewed_before_its_lease_runs_out() {
    let mut lab = Lab::new();
    let _isp = lab.behind_isp(&["natpmp"]);
    let _cc = lab.echo_server(&lab.cc, PORT, "cc");
    // The shortest lease, renewed at half its lifetime: after 65 s the gateway's own lease of the port
    // ends about a minute later than it first did.
    start(
        &mut lab,
        "config upstream 'upstream'\n\tlist protocol 'natpmp'\n\toption lease '120'\n",
    );
    map_and_reach(&lab);
    let first = lab
        .isp_lease_expiry(PORT)
        .expect("the gateway's lease of the port");
    std::thread::sleep(Duration::from_secs(65));
    let renewed = lab.isp_lease_expiry(PORT).expect("still leased");
    assert!(renewed >= first + 55, "renewed: {first} -> {renewed}");
    assert!(lab.reaches(&lab.internet, public(PORT)));
    let u = upstream(&lab);
    assert!(
        u["mappings"][0]["expires_in_s"].as_u64().unwrap() > 100,
        "{u:#}"
    );
}

/// A reboot of the ISP router (down 10 s, back without its mappings) while `protocols` speak.
fn gateway_restart(protocols: &[&str]) {
    let mut lab = Lab::new();
    let mut isp = lab.behind_isp(protocols);
    let _cc = lab.echo_server(&lab.cc, PORT, "cc");
    // The default lease (an hour): the probe notices the restart.
    start(&mut lab, "");
    map_and_reach(&lab);
    // Held as far as the agent knows (a first try the gateway did not finish is asked again).
    let deadline = Instant::now() + Duration::from_secs(45);
    while upstream(&lab)["mappings"].as_array().map_or(0, Vec::len) != 1 {
        assert!(Instant::now() < deadline, "never held\n{}", lab.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    isp.crash();
    assert!(
        !lab.reaches(&lab.internet, public(PORT)),
        "the ISP router forgot the mapping"
    );
    std::thread::sleep(Duration::from_secs(10));
    isp.start();
    let internet = lab.internet.clone();
    // The gateway is asked for its epoch (or its mapping) every 20 s: back within half a minute.
    let back = lab
        .time_until(Duration::from_secs(30), || {
            lab.reaches(&internet, public(PORT))
        })
        .unwrap_or_else(|| panic!("not made again within 30 s\n{}", lab.log()));
    eprintln!("{protocols:?}: gateway restart -> reachable again after {back:?}");
    lab.wait_log("restarted and lost its forwards", Duration::from_secs(1));
}

#[test]
fn a_gateway_restart_is_noticed_by_its_epoch_and_the_mapping_made_again() {
    gateway_restart(&["natpmp"]);
}

#[test]
fn a_gateway_restart_is_noticed_by_its_igd_and_the_mapping_made_again() {
    gateway_restart(&["upnp"]);
}

#[test]
fn static_forwards_are_carried_too_and_ports_the_gateway_will_not_give_are_said() {
    let mut lab = Lab::new();
    // The ISP's miniupnpd lets this router have 20570-20574 only: it offers another port for 20575.
    let _isp = lab.behind_isp_allowing(&["natpmp"], "20570-20574");
    let _cc = lab.echo_server(&lab.cc, PORT, "cc");
    let _cc_last = lab.echo_server(&lab.cc, 20574, "cc");
    let text = lab.config(
        "static",
        "config upstream 'upstream'\n\tlist protocol 'pcp'\n",
    );
    let cfg = lab.write_config("wilife", &text);
    lab.start_agent(&cfg, &[]);
    let u = wait_upstream(&lab, "the static forwards carried, one not given", |u| {
        u["mappings"].as_array().is_some_and(|m| m.len() == 5)
            && u["taken"] == serde_json::json!([20575])
    });
    assert_eq!(u["missing"], serde_json::json!([20575]), "{u:#}");
    assert_eq!(
        lab.isp_forwards(),
        [20570, 20571, 20572, 20573, 20574],
        "the other port went back"
    );
    for port in [PORT, 20574] {
        assert_eq!(
            lab.tcp_exchange(&lab.internet, public(port), "hi").unwrap(),
            "cc:hi",
            "static forward {port} through both NATs"
        );
    }
    let d = lab.api_get("/api/v1/diagnosis");
    assert_eq!(d["reasons"][0]["code"], "upstream_port_taken", "{d:#}");
    lab.wait_log(
        "does not give TCP 20575 to this router",
        Duration::from_secs(1),
    );
    lab.check_openapi(
        &[
            lab.api_answer("/api/v1/status"),
            lab.api_answer("/api/v1/diagnosis"),
        ],
        true,
    );
}
