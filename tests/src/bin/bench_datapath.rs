//! Benchmark (not a test): what our tables cost the data path. iperf3 streams through the lab router
//! with fw4 alone and with fw4 plus the agent's tables (static mode, a camera, isolation on, as
//! `print-ruleset` renders them for the lab router), each stream alternating between the two, in
//! rounds:
//!
//! - LAN -> WAN, TCP (Mbit/s) and small UDP datagrams (packets/s): the Command Center to the internet,
//!   through fw4's forward chain and masquerade, and through every hook of ours;
//! - the camera's video stream (TCP 22211) and camera-control datagrams (UDP 5800) to the Command Center
//!   on the same bridge: our bridge table against no bridge filtering at all;
//! - WAN -> LAN, TCP to the forwarded port: our tables against the same DNAT as one hand-written rule
//!   (what any port forward costs with fw4).
//!
//! The ratio is ours / fw4 alone, per round (the two runs of a round are back to back, in alternating
//! order), and its median over the rounds; the bar is >= 0.97.

use std::process::{Child, Command, Stdio};
use std::time::Duration;
use wilife_lab::lab::*;

/// Rounds of each stream; `DATAPATH_ROUNDS` overrides (veth TCP varies by several per cent between runs).
fn rounds() -> usize {
    std::env::var("DATAPATH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5)
}
const SECONDS: u32 = 4;

/// `DATAPATH_ONLY`: measure only the streams whose name contains it (e.g. `bridge`).
fn wanted(name: &str) -> bool {
    std::env::var("DATAPATH_ONLY").map_or(true, |only| name.contains(&only))
}
/// Sender and receiver each on a CPU of their own (the sender's CPU also runs the router's softirq
/// work): the scheduler moving them about varied the runs by up to 15 %.
const CLIENT_CPU: &str = "0";
const SERVER_CPU: &str = "1";

/// An iperf3 server in `ns` on `port`, killed when dropped.
struct Server(Child);

impl Server {
    fn start(ns: &str, port: u16) -> Server {
        let child = Command::new("ip")
            .args(["netns", "exec", ns])
            .args([
                "taskset",
                "-c",
                SERVER_CPU,
                "iperf3",
                "-s",
                "-p",
                &port.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("iperf3 (apt install iperf3)");
        std::thread::sleep(Duration::from_millis(300));
        Server(child)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Tcp,
    /// 64-byte datagrams as fast as the sender can.
    Udp,
}

/// One iperf3 run from `ns` to `to:port`: Mbit/s received (TCP) or datagrams/s received (UDP).
fn measure(lab: &Lab, ns: &str, to: &str, port: u16, kind: Kind) -> f64 {
    let secs = SECONDS.to_string();
    let port = port.to_string();
    let mut args = vec![
        "taskset", "-c", CLIENT_CPU, "iperf3", "-c", to, "-p", &port, "-t", &secs, "-J",
    ];
    if let Kind::Udp = kind {
        args.extend(["-u", "-b", "0", "-l", "64"]);
    }
    let out = lab.exec(ns, &args);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "iperf3 {args:?} from {ns}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    match kind {
        Kind::Tcp => {
            let bps = doc["end"]["sum_received"]["bits_per_second"].as_f64();
            bps.unwrap_or_else(|| panic!("iperf3 {args:?} from {ns}: {}", doc["error"])) / 1e6
        }
        Kind::Udp => {
            let sum = &doc["end"]["sum"];
            assert!(
                sum["packets"].is_number(),
                "iperf3 {args:?} from {ns}: {}",
                doc["error"]
            );
            let got = sum["packets"].as_f64().unwrap() - sum["lost_packets"].as_f64().unwrap();
            got / sum["seconds"].as_f64().unwrap()
        }
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// The same DNAT as our static forward, as one rule beside fw4 (with the connmark bit fw4's include
/// accepts, as fw4 has no port forward of its own here): the baseline of the inbound stream.
const BASELINE_DNAT: &str = "table inet baseline {\n chain dstnat {\n  type nat hook prerouting priority dstnat - 10; policy accept;\n  iifname \"wan0\" tcp dport 20570 ct mark set ct mark | 0x10000000 dnat ip to 192.168.50.10\n }\n}\n";

fn main() {
    let lab = Lab::new();
    let text = lab.config(
        "static",
        &format!("config camera\n\toption name 'porch'\n\toption mac '{CAMERA_MAC}'\n"),
    );
    let cfg = lab.write_config("wilife", &text);
    let _remote = Server::start(&lab.remote, 5201);
    let _cc_video = Server::start(&lab.cc, 22211);
    let _cc_forward = Server::start(&lab.cc, 20570);
    let _cc_control = Server::start(&lab.cc, 5800);
    let (remote, cc, wan) = (REMOTE_IP.to_string(), CC_IP.to_string(), WAN_IP.to_string());
    let (cc_ns, camera_ns, remote_ns) = (lab.cc.clone(), lab.camera.clone(), lab.remote.clone());
    let cases: [(&str, &str, &str, u16, Kind); 5] = [
        ("LAN -> WAN, TCP (Mbit/s)", &cc_ns, &remote, 5201, Kind::Tcp),
        (
            "LAN -> WAN, UDP 64 B (pkt/s)",
            &cc_ns,
            &remote,
            5201,
            Kind::Udp,
        ),
        (
            "camera -> CC on the bridge, TCP 22211 (Mbit/s)",
            &camera_ns,
            &cc,
            22211,
            Kind::Tcp,
        ),
        (
            "camera -> CC on the bridge, UDP 5800 64 B (pkt/s)",
            &camera_ns,
            &cc,
            5800,
            Kind::Udp,
        ),
        (
            "WAN -> LAN forward, TCP 20570 (Mbit/s)",
            &remote_ns,
            &wan,
            20570,
            Kind::Tcp,
        ),
    ];
    // Our tables as the agent renders them in this router (print-ruleset reads its network, the
    // camera included), put in and taken out by nft: each comparison runs back to back, so the
    // machine's drift over the minutes of a run falls on both sides alike.
    let printed = lab.run_agent(&["print-ruleset", "--config", cfg.to_str().unwrap(), "--json"]);
    assert!(printed.status.success(), "print-ruleset failed");
    let ours_json = printed.stdout;
    let mut ours: Vec<Vec<f64>> = vec![Vec::new(); cases.len()];
    let mut alone: Vec<Vec<f64>> = vec![Vec::new(); cases.len()];
    let with_alone = || {
        let out = lab.nft_stdin(BASELINE_DNAT);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let without_alone = || lab.nft(&["delete", "table", "inet", "baseline"]);
    let with_ours = || {
        let out = lab.exec_with_stdin(&lab.router, &["nft", "-j", "-f", "-"], &ours_json);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let without_ours = || {
        for family in ["inet", "bridge"] {
            lab.nft(&["delete", "table", family, "wilife"]);
        }
    };
    for round in 0..rounds() {
        for (i, (name, from, to, port, kind)) in cases.iter().enumerate() {
            if !wanted(name) {
                continue;
            }
            // Which side goes first alternates: whatever the first run after a table change pays
            // falls on both sides alike.
            let mut run_alone = || {
                with_alone();
                alone[i].push(measure(&lab, from, to, *port, *kind));
                without_alone();
            };
            let mut run_ours = || {
                with_ours();
                ours[i].push(measure(&lab, from, to, *port, *kind));
                without_ours();
            };
            if round % 2 == 0 {
                run_alone();
                run_ours();
            } else {
                run_ours();
                run_alone();
            }
        }
    }
    println!(
        "data path through the lab router, {} rounds of {SECONDS} s, each a run of both back to back",
        rounds()
    );
    println!("| stream | fw4 alone (median) | fw4 + wilife (median) | ratio (median of rounds) | ratio range |");
    println!("|---|---|---|---|---|");
    for (i, (name, ..)) in cases.iter().enumerate() {
        if !wanted(name) {
            continue;
        }
        let ratios: Vec<f64> = ours[i].iter().zip(&alone[i]).map(|(o, a)| o / a).collect();
        let low = ratios.iter().copied().fold(f64::INFINITY, f64::min);
        let high = ratios.iter().copied().fold(0.0, f64::max);
        println!(
            "| {name} | {:.0} | {:.0} | {:.3} | {low:.3}-{high:.3} |",
            median(alone[i].clone()),
            median(ours[i].clone()),
            median(ratios),
        );
    }
}
