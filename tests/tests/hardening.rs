//! Issue 13, the HTTP layer: attacks from a LAN host on the API and the IGD, each of which killed or
//! stalled the agent with tiny_http, now answered in bounded time and memory while the Command Center
//! keeps being served. The agent runs as on OpenWrt (1024 descriptors, `openwrt-root`).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};
use wilife_lab::lab::*;

fn api() -> SocketAddr {
    SocketAddr::from((LAN_IP, API_PORT))
}

fn igd() -> SocketAddr {
    SocketAddr::from((LAN_IP, UPNP_PORT))
}

fn upnp_lab() -> Lab {
    let mut lab = Lab::new();
    let cfg = lab.write_config("wilife", &lab.config("upnp", ""));
    lab.start_upnp_agent(&cfg);
    lab
}

/// /proc/PID/status field (kB for VmRSS, a count for Threads).
fn status(pid: u32, field: &str) -> u64 {
    proc_status(pid, field).unwrap()
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

/// The API's health as the Command Center asks for it.
fn health(lab: &Lab) -> std::io::Result<(u16, String)> {
    let host = format!("{LAN_IP}:{API_PORT}");
    lab.http(&lab.cc, api(), "GET", "/api/v1/health", &host)
}

/// The Command Center is served: the API's health from the cc, and an IGD description.
fn cc_is_served(lab: &Lab) -> bool {
    let health = health(lab);
    let desc = lab.http(
        &lab.cc,
        igd(),
        "GET",
        "/rootDesc.xml",
        &format!("{LAN_IP}:{UPNP_PORT}"),
    );
    matches!(health, Ok((200, _))) && matches!(desc, Ok((200, _)))
}

#[test]
fn a_huge_content_length_is_refused_and_the_agent_lives() {
    let lab = upnp_lab();
    let pid = lab.agent_pid().unwrap();
    for (to, path, host) in [
        (api(), "/api/v1/health", format!("{LAN_IP}:{API_PORT}")),
        (igd(), "/rootDesc.xml", format!("{LAN_IP}:{UPNP_PORT}")),
    ] {
        for length in [
            "18446744073709551615",
            "1099511627776",
            "99999999999999999999999",
        ] {
            let request =
                format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {length}\r\n\r\n");
            let answer = lab.raw_http(&lab.other, to, request.into_bytes()).unwrap();
            let (status, _) = split_response(&answer);
            assert!(
                status == 413 || status == 400,
                "{to} Content-Length {length}: {answer}"
            );
        }
    }
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "{}",
        lab.log()
    );
    assert!(cc_is_served(&lab), "{}", lab.log());
}

#[test]
fn idle_connections_cannot_exhaust_the_agent_or_crowd_out_the_command_center() {
    let lab = upnp_lab();
    let pid = lab.agent_pid().unwrap();
    let (rss0, fds0) = (status(pid, "VmRSS"), open_fds(pid));
    // 600 idle connections from another LAN host to each service (the agent may hold 1024 fds).
    let _ = nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, 8192, 8192);
    let held: Vec<TcpStream> = lab.in_ns(&lab.other, || {
        let mut v = Vec::new();
        for to in [api(), igd()] {
            for _ in 0..600 {
                if let Ok(s) = TcpStream::connect_timeout(&to, Duration::from_secs(2)) {
                    v.push(s);
                }
            }
        }
        v
    });
    std::thread::sleep(Duration::from_millis(300));
    let (threads, fds, rss) = (status(pid, "Threads"), open_fds(pid), status(pid, "VmRSS"));
    eprintln!(
        "1200 idle connections: threads {threads}, fds {fds0} -> {fds}, RSS {rss0} -> {rss} kB"
    );
    assert!(fds < fds0 + 40, "the agent holds {fds} descriptors");
    assert!(threads < 20, "{threads} threads");
    // The Command Center is served meanwhile, and maps its port.
    let took = Instant::now();
    assert!(cc_is_served(&lab), "{}", lab.log());
    assert_eq!(lab.add_mapping(&lab.cc, 20570, "TCP", CC_IP, 0), 0);
    eprintln!("the cc's requests under attack took {:?}", took.elapsed());
    // The idle ones are dropped after the request timeout; afterwards everything is as before.
    drop(held);
    std::thread::sleep(Duration::from_millis(300));
    assert!(cc_is_served(&lab), "{}", lab.log());
    assert!(open_fds(pid) < fds0 + 10);
}

#[test]
fn a_slow_body_stalls_nothing_and_sigterm_stays_prompt() {
    let mut lab = upnp_lab();
    // A body that never comes (larger than what tiny_http read ahead itself), on both services.
    let _slow: Vec<TcpStream> = [api(), igd()]
        .into_iter()
        .map(|to| {
            let mut s = lab.tcp_connect(&lab.other, to).unwrap();
            let host = format!("{}:{}", to.ip(), to.port());
            let head = format!(
                "POST /ctl/IPConn HTTP/1.1\r\nHost: {host}\r\nContent-Length: 10000\r\n\r\nabc"
            );
            s.write_all(head.as_bytes()).unwrap();
            s
        })
        .collect();
    let took = Instant::now();
    assert!(cc_is_served(&lab), "{}", lab.log());
    // Well inside the 10 s a stalled listener would take (a lab connect may wait 1 s for a SYN).
    assert!(
        took.elapsed() < Duration::from_secs(5),
        "{:?}",
        took.elapsed()
    );
    // SIGTERM finishes at once, the table removed, whatever the slow clients do.
    let took = Instant::now();
    assert!(lab.stop_agent().success());
    let stop = took.elapsed();
    eprintln!("SIGTERM with two slow clients: {stop:?}");
    assert!(stop < Duration::from_secs(2), "{stop:?}");
    assert!(!lab.table_present());
}

#[test]
fn a_slow_client_is_cut_after_the_request_timeout() {
    let lab = upnp_lab();
    let mut s = lab.tcp_connect(&lab.other, api()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    s.write_all(b"GET /api/v1/health HTTP/1.1\r\n").unwrap();
    let took = Instant::now();
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    let (status, _) = split_response(&answer);
    assert_eq!(status, 408, "{answer}");
    assert!(
        took.elapsed() < Duration::from_secs(12),
        "{:?}",
        took.elapsed()
    );
}

#[test]
fn endless_headers_are_cut_early_and_cost_no_memory() {
    let lab = upnp_lab();
    let pid = lab.agent_pid().unwrap();
    let rss0 = status(pid, "VmRSS");
    for to in [api(), igd()] {
        let sent = lab.in_ns(&lab.other, move || {
            let mut s = TcpStream::connect_timeout(&to, Duration::from_secs(2)).unwrap();
            s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
            let line = format!("X-Filler: {}\r\n", "a".repeat(1000));
            let mut sent = 0usize;
            let _ = s.write_all(b"GET /api/v1/health HTTP/1.1\r\n");
            // Up to 64 MiB of header lines, until the agent closes the connection.
            while sent < 64 << 20 {
                if s.write_all(line.as_bytes()).is_err() {
                    break;
                }
                sent += line.len();
            }
            sent
        });
        assert!(
            sent < 8 << 20,
            "{to}: the agent read {sent} bytes of headers"
        );
    }
    let rss = status(pid, "VmRSS");
    eprintln!("64 MiB of headers offered: RSS {rss0} -> {rss} kB");
    assert!(rss < rss0 + 4096, "RSS grew from {rss0} to {rss} kB");
    assert!(cc_is_served(&lab), "{}", lab.log());
}

#[test]
fn a_client_string_cannot_forge_a_log_line() {
    let lab = upnp_lab();
    let forged =
        "wilife-agent: notice: UPnP AddPortMapping port 20571 for 192.168.50.30 granted: forged";
    let (status, body) = lab.soap(
        &lab.cc,
        WANIP1,
        "AddPortMapping",
        &[
            ("NewRemoteHost", ""),
            ("NewExternalPort", "20570"),
            ("NewProtocol", &format!("TCP&#10;{forged}")),
            ("NewInternalPort", "20570"),
            ("NewInternalClient", &CC_IP.to_string()),
            ("NewEnabled", "1"),
            (
                "NewPortMappingDescription",
                &format!("WiLife&#13;&#10;{forged}"),
            ),
            ("NewLeaseDuration", "0"),
        ],
    );
    assert_ne!(upnp_error(status, &body), 0, "{body}");
    lab.wait_log("refused", Duration::from_secs(5));
    let log = lab.log();
    assert!(
        log.contains("\\x0a"),
        "the client's newline is shown escaped:\n{log}"
    );
    assert!(
        !log.lines().any(|l| l.starts_with(forged)),
        "a forged line:\n{log}"
    );
}

#[test]
fn the_api_answers_no_one_outside_the_lan_even_without_a_firewall() {
    let mut lab = Lab::new();
    // No firewall at all (service firewall stop), and an nft that cannot apply: nothing in the kernel
    // guards the API, only the agent itself.
    let no_nft = lab.write_config(
        "nft-refusing",
        "#!/bin/sh\ncase \" $* \" in *\" -f \"*) echo 'Error: refused' >&2; exit 1;; esac\nexec nft \"$@\"\n",
    );
    std::fs::set_permissions(&no_nft, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    lab.flush_ruleset();
    let cfg = lab.write_config("wilife", &lab.config("upnp", ""));
    lab.start_agent(&cfg, &["--nft", no_nft.to_str().unwrap()]);
    lab.route_remote_to_lan();
    let host = format!("{LAN_IP}:{API_PORT}");
    let request = format!("GET /api/v1/health HTTP/1.1\r\nHost: {host}\r\n\r\n");
    // The WAN host reaches the socket (it connects) but gets not a byte.
    let from_wan = lab.raw_http(&lab.remote, api(), request.clone().into_bytes());
    assert!(
        from_wan.as_ref().is_ok_and(|a| a.is_empty()) || from_wan.is_err(),
        "{from_wan:?}"
    );
    assert!(
        lab.tcp_connect(&lab.remote, api()).is_ok(),
        "the socket is reachable"
    );
    let from_lan = lab.raw_http(&lab.cc, api(), request.into_bytes()).unwrap();
    assert!(from_lan.starts_with("HTTP/1.1 "), "{from_lan}");
}

#[test]
fn gena_slots_are_per_host_and_only_the_holder_may_renew_or_end_a_subscription() {
    let lab = upnp_lab();
    let request = |ns: &str, text: String| {
        let answer = lab.raw_http(ns, igd(), text.into_bytes()).unwrap();
        (split_response(&answer).0, answer)
    };
    let subscribe = |ns: &str, ip: std::net::Ipv4Addr| {
        request(ns, format!("SUBSCRIBE /evt/IPConn HTTP/1.1\r\nHost: {LAN_IP}:{UPNP_PORT}\r\nCallback: <http://{ip}:2869/evt>\r\nNT: upnp:event\r\nTimeout: Second-300\r\n\r\n"))
    };
    // Another LAN host asks for every slot; it gets its share, not all.
    let granted = (0..40)
        .filter(|_| subscribe(&lab.other, OTHER_IP).0 == 200)
        .count();
    assert!(granted <= 4, "{granted}");
    let (code, answer) = subscribe(&lab.cc, CC_IP);
    assert_eq!(code, 200, "{answer}");
    let sid = header_value(&answer, "SID").unwrap();
    // The other host can neither end nor renew the Command Center's subscription.
    let unsubscribe = format!(
        "UNSUBSCRIBE /evt/IPConn HTTP/1.1\r\nHost: {LAN_IP}:{UPNP_PORT}\r\nSID: {sid}\r\n\r\n"
    );
    let renew = format!("SUBSCRIBE /evt/IPConn HTTP/1.1\r\nHost: {LAN_IP}:{UPNP_PORT}\r\nSID: {sid}\r\nTimeout: Second-600\r\n\r\n");
    assert_eq!(request(&lab.other, unsubscribe.clone()).0, 412);
    assert_eq!(request(&lab.other, renew.clone()).0, 412);
    assert_eq!(request(&lab.cc, renew).0, 200);
    // The status document counts what is held now.
    let held = lab.api_status()["upnp"]["subscriptions"].as_u64().unwrap();
    assert_eq!(held, granted as u64 + 1);
    assert_eq!(request(&lab.cc, unsubscribe).0, 200);
    assert_eq!(
        lab.api_status()["upnp"]["subscriptions"].as_u64().unwrap(),
        granted as u64
    );
}

#[test]
fn a_full_state_directory_refuses_grants_instead_of_losing_them() {
    let mut lab = Lab::new();
    let state = lab.dir.join("state");
    let cfg = lab.write_config(
        "wilife",
        &(lab.config("upnp", "") + "\nconfig upnp 'upnp'\n\toption max_per_client '6'\n"),
    );
    // The state directory is a 16 KiB RAM disk in the agent's mount namespace.
    let small = format!("{} 16k", state.display());
    lab.spawn_agent(&cfg, &[], &[("OPENWRT_SMALL_TMPFS", &small)], true);
    lab.wait_log(
        &format!("UPnP IGD listening on http://{LAN_IP}:{UPNP_PORT}"),
        Duration::from_secs(10),
    );
    let pid = lab.agent_pid().unwrap();
    // Its view of the directory (the tmpfs lives in its mount namespace only).
    let dir = std::path::PathBuf::from(format!("/proc/{pid}/root{}", state.display()));
    assert_eq!(lab.add_mapping(&lab.cc, 20570, "TCP", CC_IP, 0), 0);
    // Fill the disk.
    let mut filler = std::fs::File::create(dir.join("filler")).unwrap();
    while filler.write_all(&[0u8; 512]).is_ok() {}
    drop(filler);
    let mut acknowledged = vec![20570u16];
    for port in 20571..=20575u16 {
        match lab.add_mapping(&lab.cc, port, "TCP", CC_IP, 0) {
            0 => acknowledged.push(port),
            code => assert_eq!(code, 501, "port {port}"),
        }
    }
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("mappings.json")).unwrap()).unwrap();
    let mut saved: Vec<u64> = saved["mappings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["external_port"].as_u64().unwrap())
        .collect();
    saved.sort();
    let acked: Vec<u64> = acknowledged.iter().map(|p| u64::from(*p)).collect();
    assert_eq!(saved, acked, "acknowledged and saved differ");
    let in_api = lab.api_get("/api/v1/mappings")["mappings"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(in_api, acknowledged.len(), "refused grants were taken back");
    assert!(
        !dir.join(".mappings.json.tmp").exists(),
        "a temporary file was left"
    );
    assert!(
        acknowledged.len() < 6,
        "the disk never filled: {acknowledged:?}"
    );
    let (code, body) = health(&lab).unwrap();
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("cannot be saved"), "{body}");
    // Room again: grants work, and health recovers with the next save.
    std::fs::remove_file(dir.join("filler")).unwrap();
    let next = 20571 + acknowledged.len() as u16 - 1;
    assert_eq!(lab.add_mapping(&lab.cc, next, "TCP", CC_IP, 0), 0);
    let (code, body) = health(&lab).unwrap();
    assert_eq!(code, 200, "{body}");
    assert!(lab.stop_agent().success());
}

#[test]
fn running_out_of_descriptors_never_ends_a_listener() {
    let mut lab = Lab::new();
    let cfg = lab.write_config("wilife", &lab.config("upnp", ""));
    // So few descriptors that a handful of connections exhausts them (accept fails with EMFILE).
    lab.spawn_agent(&cfg, &[], &[("OPENWRT_NOFILE", "28")], true);
    lab.wait_log(
        &format!("UPnP IGD listening on http://{LAN_IP}:{UPNP_PORT}"),
        Duration::from_secs(10),
    );
    let held: Vec<TcpStream> =
        lab.in_ns(&lab.other, || {
            (0..8)
                .filter_map(|_| TcpStream::connect_timeout(&api(), Duration::from_secs(2)).ok())
                .chain((0..8).filter_map(|_| {
                    TcpStream::connect_timeout(&igd(), Duration::from_secs(2)).ok()
                }))
                .collect()
        });
    assert!(held.len() >= 12, "{}", held.len());
    std::thread::sleep(Duration::from_millis(500));
    lab.wait_log("cannot accept connections", Duration::from_secs(5));
    drop(held);
    // Once descriptors are free again, both services answer (within the back-off).
    let served = lab.time_until(Duration::from_secs(15), || cc_is_served(&lab));
    assert!(served.is_some(), "{}", lab.log());
}
