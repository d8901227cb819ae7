//! Issue 29: the end-to-end probe. The router connects to the Command Center's port of each forward
//! itself and names what it found: a Command Center listening, nothing listening (not running), or
//! a firewall on the PC dropping the connection; after each change of the forwards and on demand,
//! at most once per 10 s.

use serde_json::Value;
use std::net::{Ipv4Addr, SocketAddr};
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

fn verdicts(report: &Value) -> Vec<(u64, String)> {
    (report["tried"].as_array().unwrap().iter())
        .map(|t| {
            (
                t["external_port"].as_u64().unwrap(),
                t["verdict"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn post_probe(lab: &Lab) -> (u16, Value) {
    let to = SocketAddr::from((Ipv4Addr::LOCALHOST, API_PORT));
    let (code, body) = lab
        .http(&lab.router, to, "POST", "/api/v1/probe", "127.0.0.1:8780")
        .expect("API answers");
    (code, serde_json::from_str(&body).expect("JSON"))
}

fn diagnosis_reason(lab: &Lab) -> Option<Value> {
    let d = lab.api_get("/api/v1/diagnosis");
    (d["reasons"].as_array().unwrap().iter())
        .find(|r| r["code"] == "command_center_not_answering")
        .cloned()
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
    assert!(report["problem"].is_null(), "{report:#}");
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
        // The PC's own firewall (Windows firewall's stand-in) drops the connection silently.
        let rules =
            "table inet pc_firewall {\n chain input {\n  type filter hook input priority 0;\n  \
                     tcp dport 20570-20575 drop\n }\n}\n";
        let out = lab.exec_with_stdin(&lab.cc, &["nft", "-f", "-"], rules.as_bytes());
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        echo
    });
    let report = first_report(&lab);
    for t in report["tried"].as_array().unwrap() {
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
    assert!(
        text.contains(&format!(
            "TCP {CC_IP}:20570 (external port 20570): answered"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("TCP {CC_IP}:20571 (external port 20571): refused")),
        "{text}"
    );
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
