//! Issue 3: static direct-mode forwards through a real fw4 ruleset, with real packets, in the lab.

use nix::sys::signal::Signal;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};
use wilife_lab::lab::*;

fn wan(port: u16) -> SocketAddr {
    SocketAddr::from((WAN_IP, port))
}

/// A static-mode lab with echo servers on the cc for 20570, 20575 and 20576.
fn static_lab() -> (Lab, Vec<EchoServer>) {
    let mut lab = Lab::new();
    let servers = [20570, 20575, 20576]
        .iter()
        .map(|p| lab.echo_server(&lab.cc.clone(), *p, "cc"))
        .collect();
    let cfg = lab.write_config("wilife", &lab.config("static", ""));
    lab.start_agent(&cfg, &[]);
    lab.wait_log("applied (startup)", Duration::from_secs(5));
    (lab, servers)
}

#[test]
fn static_forward_carries_data_from_the_internet_to_the_command_center_and_nothing_else() {
    let (lab, _servers) = static_lab();
    assert_eq!(
        lab.tcp_exchange(&lab.remote, wan(20570), "hello").unwrap(),
        "cc:hello"
    );
    assert_eq!(
        lab.tcp_exchange(&lab.remote, wan(20575), "bye").unwrap(),
        "cc:bye"
    );
    // 20576 is outside the range: fw4 rejects it at the router (no listener on the router either).
    let err = lab.tcp_exchange(&lab.remote, wan(20576), "x").unwrap_err();
    assert!(
        matches!(
            err.kind(),
            std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::TimedOut
        ),
        "{err}"
    );

    // UDP to 20570 never reaches a UDP socket on the cc.
    let cc_udp = lab.udp_socket(&lab.cc, 20570);
    cc_udp
        .set_read_timeout(Some(Duration::from_millis(800)))
        .unwrap();
    lab.in_ns(&lab.remote, || {
        let s = UdpSocket::bind("0.0.0.0:0").unwrap();
        for _ in 0..5 {
            s.send_to(b"udp", wan(20570)).unwrap();
        }
    });
    let mut buf = [0u8; 16];
    assert!(
        cc_udp.recv_from(&mut buf).is_err(),
        "a UDP packet to 20570 got through"
    );

    // The status reports the forwards with their counters.
    let st = lab.api_status();
    assert_eq!(st["mode"], "static");
    assert_eq!(st["firewall"]["table_present"], true);
    assert_eq!(st["firewall"]["fw4_include"]["in_fw4_ruleset"], true);
    assert_eq!(st["firewall"]["fw4_include"]["matches_connmark"], true);
    assert_eq!(st["firewall"]["last_reconcile"]["result"], "ok");
    let f = &st["forwards"][0];
    assert_eq!(f["external"]["first"], 20570);
    assert_eq!(f["target"], CC_IP.to_string());
    assert_eq!(f["connections"], 2, "{st}");
    assert!(f["bytes"].as_u64().unwrap() > 0, "{st}");
}

#[test]
fn without_the_agent_or_in_mode_off_fw4_refuses_the_same_connection() {
    let mut lab = Lab::new();
    let _s = lab.echo_server(&lab.cc.clone(), 20570, "cc");
    let err = lab.tcp_exchange(&lab.remote, wan(20570), "x").unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused, "{err}");

    let cfg = lab.write_config("wilife", &lab.config("off", ""));
    lab.start_agent(&cfg, &[]);
    lab.wait_log("applied (startup)", Duration::from_secs(5));
    assert!(lab.table_present());
    let err = lab.tcp_exchange(&lab.remote, wan(20570), "x").unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused, "{err}");

    // Switching to static by SIGHUP opens it; it really is the agent's grant that fw4 accepts.
    std::fs::write(&cfg, lab.config("static", "")).unwrap();
    lab.signal_agent(Signal::SIGHUP);
    lab.wait_log("applied (reload)", Duration::from_secs(5));
    assert_eq!(
        lab.tcp_exchange(&lab.remote, wan(20570), "on").unwrap(),
        "cc:on"
    );
}

#[test]
fn the_forward_needs_the_fw4_include() {
    // Without the include's accept, fw4 drops the DNAT'ed flow: the handshake is what grants it.
    let (lab, _s) = static_lab();
    let no_include = lab
        .fw4_ruleset()
        .replace("ct mark & 0x10000000 == 0x10000000 counter accept", "");
    assert!(lab.nft_stdin(&no_include).status.success());
    assert!(lab.tcp_exchange(&lab.remote, wan(20570), "x").is_err());
    lab.load_fw4();
    assert_eq!(
        lab.tcp_exchange(&lab.remote, wan(20570), "y").unwrap(),
        "cc:y"
    );
}

#[test]
fn fw4_reload_keeps_the_forward_and_firewall_stop_start_is_repaired_within_2s() {
    let (lab, _s) = static_lab();
    assert_eq!(
        lab.tcp_exchange(&lab.remote, wan(20570), "a").unwrap(),
        "cc:a"
    );

    // fw4 reload: only fw4's table is rebuilt; the forward works with no action by the agent.
    lab.load_fw4();
    assert_eq!(
        lab.tcp_exchange(&lab.remote, wan(20570), "b").unwrap(),
        "cc:b"
    );
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        !lab.log().contains("restoring"),
        "the agent acted on an fw4 reload:\n{}",
        lab.log()
    );

    // firewall stop + start: every table is flushed, fw4 comes back, the agent restores its own.
    let t0 = Instant::now();
    lab.flush_ruleset();
    lab.load_fw4();
    loop {
        if lab
            .tcp_exchange(&lab.remote, wan(20570), "c")
            .is_ok_and(|a| a == "cc:c")
        {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(2),
            "not repaired within 2 s:\n{}",
            lab.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!("repaired after {:?}", t0.elapsed());
    lab.wait_log("was removed by someone else", Duration::from_secs(1));
    assert_eq!(lab.api_status()["firewall"]["restores"], 1);
}

#[test]
fn a_deleted_or_altered_table_is_restored_and_counters_survive_reapply() {
    let (lab, _s) = static_lab();
    for i in 0..3 {
        lab.tcp_exchange(&lab.remote, wan(20570), &format!("n{i}"))
            .unwrap();
    }
    let conns = |lab: &Lab| {
        lab.api_status()["forwards"][0]["connections"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(conns(&lab), 3);

    // Someone deletes one of our rules: the changed table is put back.
    let listing = String::from_utf8_lossy(
        &lab.nft(&["-a", "list", "chain", "inet", "wilife", "dstnat"])
            .stdout,
    )
    .to_string();
    let handle = listing
        .lines()
        .find(|l| l.contains("direct static"))
        .and_then(|l| l.rsplit("handle ").next())
        .unwrap()
        .trim()
        .to_string();
    assert!(lab
        .nft(&["delete", "rule", "inet", "wilife", "dstnat", "handle", &handle])
        .status
        .success());
    lab.wait_log("was changed by someone else", Duration::from_secs(2));
    lab.wait_log("applied (restore)", Duration::from_secs(2));
    assert!(lab.table_text().contains("direct static"));
    assert_eq!(conns(&lab), 3, "counters were lost by the re-apply");

    // Someone deletes the table: back within 2 s.
    let t0 = Instant::now();
    assert!(lab
        .nft(&["delete", "table", "inet", "wilife"])
        .status
        .success());
    while !lab.table_present() {
        assert!(t0.elapsed() < Duration::from_secs(2), "{}", lab.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    lab.wait_log("was removed by someone else", Duration::from_secs(1));
    assert_eq!(
        lab.tcp_exchange(&lab.remote, wan(20570), "back").unwrap(),
        "cc:back"
    );
}

#[test]
fn reflection_lets_the_command_center_reach_itself_through_the_wan_address() {
    let (lab, _s) = static_lab();
    assert_eq!(
        lab.tcp_exchange(&lab.cc, wan(20570), "me").unwrap(),
        "cc:me"
    );
    // And another LAN host (the camera) reaches the cc through the WAN address too.
    assert_eq!(
        lab.tcp_exchange(&lab.camera, wan(20575), "cam").unwrap(),
        "cc:cam"
    );
}

#[test]
fn sighup_with_a_bad_config_keeps_the_old_state_and_a_revoke_cuts_open_sessions() {
    let (mut lab, _s) = static_lab();
    let cfg = lab.dir.join("wilife");
    // An open session from the internet.
    let mut open = lab.tcp_connect(&lab.remote, wan(20570)).unwrap();
    open.write_all(b"first\n").unwrap();
    let mut reader = BufReader::new(open.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "cc:first");

    std::fs::write(
        &cfg,
        lab.config("static", "")
            .replace("20570-20575", "20575-20570"),
    )
    .unwrap();
    lab.signal_agent(Signal::SIGHUP);
    lab.wait_log("reload refused", Duration::from_secs(3));
    assert!(
        lab.log().contains("'20575-20570' is reversed"),
        "{}",
        lab.log()
    );
    assert!(lab.api_status()["config"]["reload_error"]
        .as_str()
        .unwrap()
        .contains("reversed"));
    assert_eq!(
        lab.tcp_exchange(&lab.remote, wan(20570), "still").unwrap(),
        "cc:still"
    );

    // A valid config that revokes the forward: new connections fail and the open session stops.
    std::fs::write(&cfg, lab.config("off", "")).unwrap();
    lab.signal_agent(Signal::SIGHUP);
    lab.wait_log("applied (reload)", Duration::from_secs(3));
    assert!(lab.tcp_exchange(&lab.remote, wan(20570), "new").is_err());
    open.write_all(b"second\n").unwrap();
    line.clear();
    let r = reader.read_line(&mut line);
    assert!(
        r.is_err() || line.is_empty(),
        "the revoked session still carried data: {line:?}"
    );

    // SIGTERM removes the table and exits 0.
    let status = lab.stop_agent();
    assert!(status.success(), "{status:?}\n{}", lab.log());
    assert!(!lab.table_present());
}

#[test]
fn run_with_a_bad_config_exits_non_zero_with_the_error_and_touches_nothing() {
    let lab = Lab::new();
    let cfg = lab.write_config(
        "bad",
        &lab.config("static", "")
            .replace("option ip '192.168.50.10'", "option ip '192.168.50.300'"),
    );
    let out = lab.run_agent(&["run", "--config", cfg.to_str().unwrap(), "--foreground"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            ":14: command_center #1, option 'ip': '192.168.50.300' is not an IPv4 address"
        ),
        "{err}"
    );
    assert!(!lab.table_present());
    let check = lab.run_agent(&["check", "--config", cfg.to_str().unwrap()]);
    assert_eq!(check.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&check.stderr).contains("is not an IPv4 address"));
}

#[test]
fn when_nft_is_missing_the_error_is_logged_and_in_the_status() {
    let mut lab = Lab::new();
    let cfg = lab.write_config("wilife", &lab.config("static", ""));
    lab.start_agent(&cfg, &["--nft", "/nonexistent/nft"]);
    lab.wait_log(
        "could not apply table inet wilife (startup): cannot run /nonexistent/nft",
        Duration::from_secs(3),
    );
    let st = lab.api_status();
    let rec = &st["firewall"]["last_reconcile"];
    assert_eq!(rec["result"], "error");
    assert!(
        rec["error"]
            .as_str()
            .unwrap()
            .contains("is the nftables-json package installed?"),
        "{st}"
    );
    assert!(!lab.table_present());
    let to = SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, API_PORT));
    let (code, body) = lab
        .http(&lab.router, to, "GET", "/api/v1/health", "127.0.0.1")
        .unwrap();
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("the last firewall update failed"), "{body}");
}

#[test]
fn a_ruleset_the_kernel_rejects_leaves_nothing_half_applied() {
    let mut lab = Lab::new();
    let _s = lab.echo_server(&lab.cc.clone(), 20570, "cc");
    // A real nft that is handed one extra rule the kernel refuses (dnat in a filter chain): the
    // transaction fails in the kernel, for real.
    let wrapper = lab.dir.join("nft-rejecting");
    let flag = lab.dir.join("reject");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nif [ -e {flag} ] && [ \"$1\" = -j ] && [ \"$2\" = -f ]; then\n  python3 -c 'import json,sys; b=json.load(sys.stdin); b[\"nftables\"].append({{\"add\":{{\"rule\":{{\"family\":\"inet\",\"table\":\"wilife\",\"chain\":\"forward\",\"expr\":[{{\"dnat\":{{\"family\":\"ip\",\"addr\":\"10.9.9.9\"}}}}]}}}}}}); print(json.dumps(b))' | nft \"$@\"\n  exit $?\nfi\nexec nft \"$@\"\n",
            flag = flag.display()
        ),
    )
    .unwrap();
    std::process::Command::new("chmod")
        .args(["+x", wrapper.to_str().unwrap()])
        .status()
        .unwrap();

    // First: a good table is in force.
    let cfg = lab.write_config("wilife", &lab.config("static", ""));
    lab.start_agent(&cfg, &["--nft", wrapper.to_str().unwrap()]);
    lab.wait_log("applied (startup)", Duration::from_secs(5));
    assert_eq!(
        lab.tcp_exchange(&lab.remote, wan(20570), "ok").unwrap(),
        "cc:ok"
    );
    let before = lab.table_text();

    // Then a reload whose batch the kernel rejects: the old table stays exactly, the error is reported.
    std::fs::write(&flag, "").unwrap();
    let with_custom = lab.config("static", "").replace(
        "option ports '20570-20575'",
        "option ports '20570-20575'\n\toption custom_port '8443'",
    );
    std::fs::write(&cfg, with_custom).unwrap();
    lab.signal_agent(Signal::SIGHUP);
    lab.wait_log(
        "could not apply table inet wilife (reload): nft refused the ruleset, nothing was changed",
        Duration::from_secs(3),
    );
    assert_eq!(
        lab.table_text(),
        before,
        "a rejected batch changed the table"
    );
    assert!(!lab.table_text().contains("8443"));
    let st = lab.api_status();
    assert_eq!(st["firewall"]["last_reconcile"]["result"], "error");
    assert!(
        st["firewall"]["last_reconcile"]["error"]
            .as_str()
            .unwrap()
            .contains("nft refused"),
        "{st}"
    );
    assert_eq!(
        lab.tcp_exchange(&lab.remote, wan(20570), "still").unwrap(),
        "cc:still"
    );

    // Once nft accepts again, the retry applies the new config.
    std::fs::remove_file(&flag).unwrap();
    lab.wait_log("applied (retry)", Duration::from_secs(5));
    assert!(lab.table_text().contains("8443"));
}

#[test]
fn the_api_refuses_foreign_hosts_unknown_paths_and_wrong_methods() {
    let (lab, _s) = static_lab();
    let api = SocketAddr::from((LAN_IP, API_PORT));
    let host = format!("{LAN_IP}:{API_PORT}");
    let (code, body) = lab
        .http(&lab.cc, api, "GET", "/api/v1/status", &host)
        .unwrap();
    assert_eq!(code, 200, "{body}");
    let (code, body) = lab
        .http(&lab.cc, api, "GET", "/api/v1/health", &host)
        .unwrap();
    assert_eq!((code, body.trim()), (200, r#"{"status":"ok"}"#));

    let (code, body) = lab
        .http(&lab.cc, api, "GET", "/api/v1/status", "evil.example:8780")
        .unwrap();
    assert_eq!(code, 403);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"]["status"], 403);
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("DNS rebinding"));

    let (code, body) = lab
        .http(&lab.cc, api, "GET", "/api/v1/nope", &host)
        .unwrap();
    assert_eq!(code, 404);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["error"]["status"],
        404
    );

    let (code, body) = lab
        .http(&lab.cc, api, "DELETE", "/api/v1/status", &host)
        .unwrap();
    assert_eq!(code, 405);
    assert!(body.contains("method DELETE is not allowed"), "{body}");

    // Not on the WAN: the API is bound to LAN addresses and loopback only.
    assert!(lab
        .http(
            &lab.remote,
            wan(API_PORT),
            "GET",
            "/api/v1/status",
            &WAN_IP.to_string()
        )
        .is_err());

    // `wilife-agent status` talks to the API from the router itself.
    let out = lab.run_agent(&[
        "status",
        "--config",
        lab.dir.join("wilife").to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("direct access: static") && text.contains("in force"),
        "{text}"
    );
}

#[test]
fn the_daemon_logs_to_syslog_with_its_ident() {
    let mut lab = Lab::new();
    let sock_path = lab.dir.join("log.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let cfg = lab.write_config("wilife", &lab.config("static", ""));
    lab.spawn_agent(
        &cfg,
        &[],
        &[("WILIFE_SYSLOG_SOCKET", sock_path.to_str().unwrap())],
        false,
    );
    let mut buf = [0u8; 2048];
    let n = sock.recv(&mut buf).expect("a syslog message");
    let msg = String::from_utf8_lossy(&buf[..n]).to_string();
    let pid = lab.agent_pid().unwrap();
    assert!(
        msg.starts_with(&format!("<30>wilife-agent[{pid}]: starting ")),
        "{msg}"
    );
    assert!(lab.stop_agent().success());
}

#[test]
fn print_ruleset_text_is_exactly_what_the_kernel_lists() {
    let lab = Lab::new();
    let cfg = lab.write_config(
        "wilife",
        &lab.config(
            "static",
            &format!(
                "config camera\n\toption mac '{CAMERA_MAC}'\n\toption ip '{CAMERA_IP}'\n\
                 config camera\n\toption mac '{OTHER_MAC}'\n\
                 config camera_rules 'cameras'\n\toption dns '1'\n\
                 config outbound 'outbound'\n\toption remote_client '1'\n"
            ),
        )
        .replace(
            "option ports '20570-20575'",
            "option ports '20570-20575'\n\toption custom_port '8443'",
        ),
    );
    let json = lab.run_agent(&["print-ruleset", "--config", cfg.to_str().unwrap(), "--json"]);
    assert!(json.status.success());
    let text = lab.run_agent(&["print-ruleset", "--config", cfg.to_str().unwrap(), "--text"]);
    let text = String::from_utf8_lossy(&text.stdout).to_string();
    // print-ruleset touched nothing.
    assert!(!lab.table_present());
    let applied = lab.exec_with_stdin(&lab.router, &["nft", "-j", "-f", "-"], &json.stdout);
    assert!(applied.status.success());
    assert_eq!(lab.table_text(), text);
    assert!(
        text.contains(&format!("elements = {{ {WAN_IP} }}")),
        "reflection set filled from the WAN device:\n{text}"
    );
    assert!(
        text.contains("table bridge wilife"),
        "camera rules for the bridge:\n{text}"
    );
    assert!(text.contains("vmap"), "per-camera counting:\n{text}");
    // UPnP mode: the mappings' maps and sets, their DNAT and the granted flows' chain.
    for family in ["inet", "bridge"] {
        lab.nft(&["delete", "table", family, "wilife"]);
    }
    let cfg = lab.write_config(
        "wilife-upnp",
        &lab.config(
            "upnp",
            &format!("config camera\n\toption mac '{CAMERA_MAC}'\n\toption ip '{CAMERA_IP}'\n"),
        ),
    );
    let json = lab.run_agent(&["print-ruleset", "--config", cfg.to_str().unwrap(), "--json"]);
    let text = lab.run_agent(&["print-ruleset", "--config", cfg.to_str().unwrap(), "--text"]);
    let text = String::from_utf8_lossy(&text.stdout).to_string();
    let applied = lab.exec_with_stdin(&lab.router, &["nft", "-j", "-f", "-"], &json.stdout);
    assert!(applied.status.success());
    assert_eq!(lab.table_text(), text);
    assert!(text.contains("map upnp_addr"), "{text}");
}

/// Issue 15: an idle agent runs no nft at all (drift is seen through nftables events, and the events
/// of its own applies are no news), yet a table someone else removes is still restored at once.
#[test]
fn an_idle_agent_runs_no_nft_and_still_restores_what_others_remove() {
    let mut lab = Lab::new();
    let nft = lab.counting_nft();
    let runs = || nft.runs().len();
    let cfg = lab.write_config("wilife", &lab.config("static", ""));
    lab.start_agent(&cfg, &["--nft", nft.wrapper.to_str().unwrap()]);
    lab.wait_log("applied (startup)", Duration::from_secs(5));
    // nft runs only to apply; our tables are read back over netlink. Each apply also asks fw4's forward
    // chain once whether it accepts our bit, and so does every drift check that finds our tables
    // intact: the events of the agent's own applies must cause none.
    let checks_and_applies = || {
        let log = nft.runs();
        let tables = log.iter().filter(|l| l.contains("list table")).count();
        assert_eq!(tables, 0, "our tables are read over netlink: {log:?}");
        let checks = log.iter().filter(|l| l.contains("list chain")).count();
        let applies = log.iter().filter(|l| l.contains("-f ")).count();
        (checks, applies)
    };
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(checks_and_applies(), (1, 1), "startup");
    lab.signal_agent(nix::sys::signal::Signal::SIGHUP);
    lab.wait_log("applied (reload)", Duration::from_secs(5));
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(checks_and_applies(), (2, 2), "after our own reload");
    let at_start = runs();
    // Two periodic checks (10 s each) pass.
    std::thread::sleep(Duration::from_secs(21));
    assert_eq!(runs(), at_start, "an idle agent ran nft: {:?}", nft.runs());
    // Someone else removes the table: the event alone brings it back.
    lab.nft(&["delete", "table", "inet", "wilife"]);
    lab.wait_log("was removed by someone else", Duration::from_secs(5));
    lab.time_until(Duration::from_secs(5), || lab.table_present())
        .expect("restored");
    // The restore: one apply and its fw4 question.
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(checks_and_applies(), (3, 3), "after someone else's change");
    assert!(runs() > at_start);
}
