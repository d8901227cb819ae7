//! Issue 29: the end-to-end probe. The router connects to the Command Center's port of each forward
//! itself, then through its public address as a viewer's connection comes (and behind double NAT,
//! through the gateway's), and names what it found: a Command Center listening, nothing listening
//! (not running), a firewall on the PC dropping the connection, or one that admits only its own
//! subnet; after each change of the forwards and on demand, at most once per 10 s.

use serde_json::Value;
use std::time::{Duration, Instant};
use wilife_lab::lab::*;

/// The agent in static mode (forwards 20570-20575 to the Command Center), started once `pc` made
/// the Command Center's side (what it keeps alive is returned with the lab).
fn static_lab<T>(pc: impl FnOnce(&Lab) -> T) -> (Lab, T) {
    let mut lab = Lab::new();
    let kept = pc(&lab);
    let text = lab.config("static", "");
    let cfg = lab.write_config("wilife", &text);
    lab.start_agent(&cfg, &[]);
    (lab, kept)
}

/// The first report, made when the forwards came into force.
fn first_report(lab: &Lab) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let p = lab.api_get("/api/v1/probe")["probe"].clone();
        if !p.is_null() {
            assert_eq!(p["trigger"], "mapping_change", "{p:#}");
            return p;
        }
        assert!(Instant::now() < deadline, "no probe\n{}", lab.log());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// (external port, verdict) of each try of `hop`.
fn hop_verdicts(report: &Value, hop: &str) -> Vec<(u64, String)> {
    (report["hops"].as_array().unwrap().iter())
        .filter(|t| t["hop"] == hop)
        .map(|t| {
            (
                t["external_port"].as_u64().unwrap(),
                t["verdict"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn verdicts(report: &Value) -> Vec<(u64, String)> {
    hop_verdicts(report, "command_center")
}

fn post_probe(lab: &Lab) -> (u16, Value) {
    lab.api_post("/api/v1/probe")
}

fn diagnosis_reason(lab: &Lab) -> Option<Value> {
    reason(lab, "command_center_not_answering")
}

fn reason(lab: &Lab, code: &str) -> Option<Value> {
    let d = lab.api_get("/api/v1/diagnosis");
    (d["reasons"].as_array().unwrap().iter())
        .find(|r| r["code"] == code)
        .cloned()
}

/// A firewall in the Command Center's namespace (the Windows firewall's stand-in).
fn pc_firewall(lab: &Lab, rule: &str) {
    let rules = format!(
        "table inet pc_firewall {{\n chain input {{\n  type filter hook input priority 0;\n  {rule}\n }}\n}}\n"
    );
    let out = lab.exec_with_stdin(&lab.cc, &["nft", "-f", "-"], rules.as_bytes());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_listening_command_center_answers_and_the_verdict_stays_direct() {
    // The Command Center listens on one port of the range, as the real one does.
    let (lab, _cc) = static_lab(|lab| lab.echo_server(&lab.cc, 20571, "cc"));
    let report = first_report(&lab);
    let v = verdicts(&report);
    assert_eq!(v.len(), 6, "{report:#}");
    assert!(v.contains(&(20571, "answered".into())), "{report:#}");
    assert!(v.contains(&(20570, "refused".into())), "{report:#}");
    // Onward only where the Command Center answered: through the router's public address, as a
    // viewer's connection comes (no gateway upstream here: no third hop).
    assert_eq!(
        hop_verdicts(&report, "public_address"),
        [(20571, "answered".to_string())],
        "{report:#}"
    );
    assert_eq!(report["hops"].as_array().unwrap().len(), 7, "{report:#}");
    let public = &report["hops"][6];
    assert_eq!(public["address"], format!("{WAN_IP}:20571"), "{report:#}");
    assert!(report["problem"].is_null(), "{report:#}");
    assert!(report["broken_hop"].is_null(), "{report:#}");
    assert_eq!(diagnosis_reason(&lab), None);
    // Once the router has heard the Command Center (present), nothing stands in the way.
    lab.say_hello_to_router(&lab.cc);
    let direct = lab.time_until(Duration::from_secs(5), || {
        lab.api_get("/api/v1/diagnosis")["direct_possible"] == true
    });
    assert!(direct.is_some(), "{:#}", lab.api_get("/api/v1/diagnosis"));
    lab.check_openapi(&[lab.api_answer("/api/v1/probe")], true);
}

#[test]
fn nothing_listening_is_refused_and_named() {
    let (lab, ()) = static_lab(|_| ());
    let report = first_report(&lab);
    assert!(
        verdicts(&report).iter().all(|(_, v)| v == "refused"),
        "{report:#}"
    );
    let problem = report["problem"].as_str().unwrap();
    assert!(
        problem.starts_with(&format!(
            "the Command Center at {CC_IP} refuses TCP 20570, 20571, 20572, 20573, 20574, 20575 (nothing listens there)"
        )),
        "{problem}"
    );
    let reason = diagnosis_reason(&lab).expect("the verdict names it");
    assert_eq!(reason["severity"], "blocking");
    assert_eq!(lab.api_get("/api/v1/diagnosis")["direct_possible"], false);
    lab.wait_log(
        &format!("end-to-end probe: {problem}"),
        Duration::from_secs(1),
    );
}

#[test]
fn a_firewall_on_the_pc_is_dropped_and_named_with_what_to_check() {
    let (lab, _cc) = static_lab(|lab| {
        let echo = lab.echo_server(&lab.cc, 20570, "cc");
        // The PC's own firewall drops the connection silently.
        pc_firewall(lab, "tcp dport 20570-20575 drop");
        echo
    });
    let report = first_report(&lab);
    // Nothing answered: no onward hop.
    assert_eq!(report["hops"].as_array().unwrap().len(), 6, "{report:#}");
    assert_eq!(report["broken_hop"], "command_center");
    for t in report["hops"].as_array().unwrap() {
        assert_eq!(t["verdict"], "dropped", "{report:#}");
        assert!(t["ms"].as_u64().unwrap() >= 1900, "{report:#}");
    }
    assert_eq!(
        report["problem"],
        format!(
            "the Command Center at {CC_IP} does not answer on TCP 20570, 20571, 20572, 20573, 20574, 20575 (no reply in 2 s): check the Windows firewall"
        )
    );
    let reason = diagnosis_reason(&lab).expect("the verdict names it");
    assert!(
        reason["message"]
            .as_str()
            .unwrap()
            .starts_with("The Command Center at"),
        "{reason:#}"
    );
}

#[test]
fn on_demand_runs_are_rate_limited_and_the_cli_says_what_answered() {
    let (lab, _cc) = static_lab(|lab| lab.echo_server(&lab.cc, 20570, "cc"));
    let first = first_report(&lab);
    // Right after the run the forwards made: refused by the rate limit, the last report unchanged.
    let (code, body) = post_probe(&lab);
    assert_eq!(code, 429, "{body:#}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("ask again in"),
        "{body:#}"
    );
    assert_eq!(lab.api_get("/api/v1/probe")["probe"], first);
    // Ten seconds on, one run: its own report.
    std::thread::sleep(Duration::from_secs(10));
    let (code, body) = post_probe(&lab);
    assert_eq!(code, 200, "{body:#}");
    assert_eq!(body["probe"]["trigger"], "on_demand");
    assert!(body["probe"]["at"].as_u64() >= first["at"].as_u64());
    let (code, _) = post_probe(&lab);
    assert_eq!(code, 429);
    std::thread::sleep(Duration::from_secs(10));
    let out = lab.run_agent(&[
        "probe",
        "--config",
        lab.dir.join("wilife").to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in [
        format!("command center TCP {CC_IP}:20570 (external port 20570): answered"),
        format!("command center TCP {CC_IP}:20571 (external port 20571): refused"),
        format!("public address TCP {WAN_IP}:20570 (external port 20570): answered"),
    ] {
        assert!(text.contains(&line), "{line}\n{text}");
    }
}

#[test]
fn a_pc_firewall_that_admits_only_its_subnet_is_found_through_the_public_address() {
    // The Windows firewall's rule scoped to "local subnet": the router's LAN address gets through,
    // a viewer from the internet does not.
    let (lab, _cc) = static_lab(|lab| {
        let echo = lab.echo_server(&lab.cc, 20570, "cc");
        pc_firewall(
            lab,
            "ip saddr != 192.168.50.0/24 tcp dport 20570-20575 drop",
        );
        echo
    });
    let report = first_report(&lab);
    assert!(
        verdicts(&report).contains(&(20570, "answered".into())),
        "{report:#}"
    );
    assert_eq!(
        hop_verdicts(&report, "public_address"),
        [(20570, "dropped".to_string())],
        "{report:#}"
    );
    assert_eq!(report["broken_hop"], "public_address");
    assert_eq!(
        report["problem"],
        format!(
            "the Command Center at {CC_IP} answers on TCP 20570 from the LAN, but not a connection from outside its subnet (through {WAN_IP}:20570, no reply in 2 s): check that the Windows firewall allows remote addresses, not only the local subnet"
        )
    );
    let r = reason(&lab, "forward_not_answering").expect("the verdict names it");
    assert_eq!(r["severity"], "blocking");
    assert_eq!(lab.api_get("/api/v1/diagnosis")["direct_possible"], false);
    // The same connection from the internet is dropped too: what the probe said is what a viewer meets.
    assert!(lab
        .tcp_exchange(&lab.remote, (WAN_IP, 20570).into(), "hi")
        .is_err());
}

#[test]
fn a_new_upnp_mapping_is_probed_and_a_stopped_command_center_named() {
    let mut lab = Lab::new();
    let text = lab.config("upnp", "");
    let cfg = lab.write_config("wilife", &text);
    lab.start_upnp_agent(&cfg);
    assert!(
        lab.api_get("/api/v1/probe")["probe"].is_null(),
        "no forward yet"
    );
    // The Command Center maps its port but its software is not running.
    assert_eq!(lab.add_mapping(&lab.cc, 20570, "TCP", CC_IP, 0), 0);
    let report = first_report(&lab);
    assert_eq!(verdicts(&report), [(20570, "refused".to_string())]);
    assert!(diagnosis_reason(&lab).is_some());
}

/// Runs the probe on demand as soon as the rate limit allows; its report.
fn probe_now(lab: &Lab) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (code, body) = post_probe(lab);
        if code == 200 {
            return body["probe"].clone();
        }
        assert_eq!(code, 429, "{body:#}");
        assert!(Instant::now() < deadline, "{body:#}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn behind_double_nat_the_gateways_address_is_tried_and_a_gateway_without_loopback_is_said_for_what_it_is(
) {
    let mut lab = Lab::new();
    let _isp = lab.behind_isp(&["natpmp"]);
    let _cc = lab.echo_server(&lab.cc, 20570, "cc");
    let text = lab.config("upnp", "");
    let cfg = lab.write_config("wilife", &text);
    lab.start_upnp_agent(&cfg);
    assert_eq!(lab.add_mapping(&lab.cc, 20570, "TCP", CC_IP, 0), 0);
    let internet = lab.internet.clone();
    lab.time_until(Duration::from_secs(15), || {
        lab.reaches(&internet, (WAN_IP, 20570).into())
    })
    .expect("reachable through both NATs");
    // The gateway (miniupnpd) forwards 20570 from the internet, but does not loop a connection from
    // its own LAN back to it: the router cannot confirm that hop, and says so without blocking.
    let report = probe_now(&lab);
    assert_eq!(
        verdicts(&report),
        [(20570, "answered".to_string())],
        "{report:#}"
    );
    let public = hop_verdicts(&report, "public_address");
    assert_eq!(public, [(20570, "answered".to_string())], "{report:#}");
    let gateway = (report["hops"].as_array().unwrap().iter())
        .find(|t| t["hop"] == "gateway")
        .cloned()
        .unwrap_or_else(|| panic!("{report:#}"));
    // miniupnpd reports the external address it is told (lab: 192.0.3.1, see lab/isp.rs).
    assert_eq!(gateway["address"], "192.0.3.1:20570", "{report:#}");
    assert_ne!(gateway["verdict"], "answered", "{report:#}");
    assert_eq!(report["broken_hop"], "gateway", "{report:#}");
    let problem = report["problem"].as_str().unwrap();
    assert!(
        problem.starts_with("the gateway at 192.168.0.1 forwards 192.0.3.1:20570 to this router, but a connection to it from inside did not come through"),
        "{problem}"
    );
    let r = reason(&lab, "gateway_path_unconfirmed").expect("said");
    assert_eq!(r["severity"], "warning");
    assert_eq!(lab.api_get("/api/v1/diagnosis")["direct_possible"], true);

    // A gateway that loops connections back (NAT reflection on the ISP router): the third hop
    // answers, through both NATs to the Command Center.
    let hairpin = "table ip isp_loopback {\n chain pre { type nat hook prerouting priority -110; \
                   iifname \"eth0\" ip daddr 192.0.3.1 tcp dport 20570 dnat to 192.168.0.2; }\n \
                   chain post { type nat hook postrouting priority 90; oifname \"eth0\" ct status dnat \
                   ip saddr 192.168.0.0/24 masquerade; }\n}\n";
    let out = lab.exec_with_stdin(&lab.remote, &["nft", "-f", "-"], hairpin.as_bytes());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = probe_now(&lab);
    assert_eq!(
        hop_verdicts(&report, "gateway"),
        [(20570, "answered".to_string())],
        "{report:#}"
    );
    assert!(report["problem"].is_null(), "{report:#}");
    assert_eq!(reason(&lab, "gateway_path_unconfirmed"), None);
    lab.check_openapi(&[lab.api_answer("/api/v1/probe")], true);
}
