//! Benchmark (not a test): what our tables cost the data path, against the right reference. iperf3
//! streams through the lab router (static mode, a camera, isolation on, our tables as `print-ruleset`
//! renders them for it), each stream measured under three rulesets beside fw4, back to back in a
//! round whose order rotates:
//!
//! - **none**: fw4 alone, plus the one DNAT rule any port forward needs (the inbound stream's floor);
//! - **reference**: `REFERENCE` below, the cheapest hand-written ruleset we found that enforces the
//!   same policy (see its comment);
//! - **ours**.
//!
//! One line per stream, `datapath STREAM: ours/reference R1 ours/none R2 (N rounds)`: the medians of
//! the per-round ratios, or for bulk TCP (whose noise is about ±10 %) their range over the rounds.
//! The bars (issue 28): ours/reference >= 0.97 on every stream; ours/none >= 0.95 for the frames
//! between two hosts that are neither camera nor Command Center.

use std::process::{Child, Command, Stdio};
use std::time::Duration;
use wilife_lab::lab::*;

/// Rounds of each stream; `DATAPATH_ROUNDS` overrides.
fn rounds() -> usize {
    std::env::var("DATAPATH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(7)
}
const SECONDS: u32 = 3;

/// `DATAPATH_ONLY`: measure only the streams whose name contains it (e.g. `bridge`).
fn wanted(name: &str) -> bool {
    std::env::var("DATAPATH_ONLY").map_or(true, |only| name.contains(&only))
}
/// Sender and receiver each on a CPU of their own (the sender's CPU also runs the router's softirq
/// work): the scheduler moving them about varied the runs by up to 15 %.
const CLIENT_CPU: &str = "0";
const SERVER_CPU: &str = "1";

/// The policy of our tables for the lab router, by hand and as cheap as we could make it:
///
/// - bridge: one camera, so a plain comparison of each MAC (cheaper than any set lookup) sends the
///   camera's frames to a chain that accepts ARP and the listed services with the Command Center
///   (TCP answers never an opener), SSDP and IGMP from the camera, and drops the rest; no counters;
/// - inet: the DNAT of the forward with the connmark bit fw4's include accepts; the camera's routed
///   isolation (its MAC and its address, unless the flow was granted); a forward whose grant was
///   revoked ends at once (the check runs only on DNAT'd flows, as ours).
///
/// Ours adds what this leaves out: per-camera counters, sets (a second camera or a learned address
/// changes elements, not rules), the outbound allowances and reflection, the input guards.
const REFERENCE: &str = "
table bridge reference {
 chain forward {
  type filter hook forward priority filter - 10; policy accept;
  ether saddr 0a:00:00:00:00:20 jump from_camera
  ether daddr 0a:00:00:00:00:20 jump to_camera
 }
 chain from_camera {
  ether type arp accept
  ether type != ip drop
  ip daddr != 192.168.50.10 ip daddr 239.255.255.250 udp dport 1900 accept
  ip daddr != 192.168.50.10 ip protocol igmp accept
  ip daddr != 192.168.50.10 drop
  tcp dport { 5800-5821, 22211, 50000-65000 } accept
  udp dport { 1900, 5800-5821 } accept
  tcp flags & (syn | ack) != syn tcp sport { 5800-5821, 22211, 50000-65000 } accept
  udp sport { 1900, 5800-5821 } accept
  drop
 }
 chain to_camera {
  ether type arp accept
  ether type != ip drop
  ip saddr != 192.168.50.10 drop
  tcp dport { 5800-5821, 22211, 50000-65000 } accept
  udp dport { 1900, 5800-5821 } accept
  tcp flags & (syn | ack) != syn tcp sport { 5800-5821, 22211, 50000-65000 } accept
  udp sport { 1900, 5800-5821 } accept
  drop
 }
}
table inet reference {
 chain dstnat {
  type nat hook prerouting priority dstnat - 10; policy accept;
  iifname \"wan0\" tcp dport 20570-20575 ct mark set ct mark | 0x10000000 dnat ip to 192.168.50.10
 }
 chain forward {
  type filter hook forward priority filter - 10; policy accept;
  ct mark & 0x10000000 == 0x10000000 ct status dnat meta l4proto tcp ct original proto-dst != 20570-20575 drop
  ct mark & 0x10000000 == 0x10000000 ct status dnat ct reply ip saddr != 192.168.50.10 drop
  ct mark & 0x10000000 == 0x10000000 accept
  ether saddr 0a:00:00:00:00:20 drop
  ip daddr 192.168.50.20 drop
 }
}
";

/// The floor: fw4 alone and the one DNAT rule the inbound stream needs to get in at all.
const NONE: &str = "table inet baseline {\n chain dstnat {\n  type nat hook prerouting priority dstnat - 10; policy accept;\n  iifname \"wan0\" tcp dport 20570 ct mark set ct mark | 0x10000000 dnat ip to 192.168.50.10\n }\n}\n";

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

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    /// As fast as TCP goes (Mbit/s).
    TcpBulk,
    /// 64-byte writes, no Nagle: one small segment each (Mbit/s, a packet rate in disguise).
    Tcp64,
    /// 64-byte datagrams as fast as the sender can (datagrams/s received).
    Udp64,
}

/// One iperf3 run from `ns` to `to:port`.
fn measure(lab: &Lab, ns: &str, to: &str, port: u16, kind: Kind) -> f64 {
    let secs = SECONDS.to_string();
    let port = port.to_string();
    let mut args = vec![
        "taskset", "-c", CLIENT_CPU, "iperf3", "-c", to, "-p", &port, "-t", &secs, "-J",
    ];
    match kind {
        Kind::TcpBulk => {}
        Kind::Tcp64 => args.extend(["-l", "64", "-N"]),
        Kind::Udp64 => args.extend(["-u", "-b", "0", "-l", "64"]),
    }
    let out = lab.exec(ns, &args);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "iperf3 {args:?} from {ns}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    if kind == Kind::Udp64 {
        let sum = &doc["end"]["sum"];
        assert!(
            sum["packets"].is_number(),
            "iperf3 {args:?} from {ns}: {}",
            doc["error"]
        );
        let got = sum["packets"].as_f64().unwrap() - sum["lost_packets"].as_f64().unwrap();
        return got / sum["seconds"].as_f64().unwrap();
    }
    let bps = doc["end"]["sum_received"]["bits_per_second"].as_f64();
    bps.unwrap_or_else(|| panic!("iperf3 {args:?} from {ns}: {}", doc["error"])) / 1e6
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// `median` of the ratios, or for bulk TCP `low-high`.
fn summary(ratios: &[f64], kind: Kind) -> String {
    if kind == Kind::TcpBulk {
        let low = ratios.iter().copied().fold(f64::INFINITY, f64::min);
        let high = ratios.iter().copied().fold(0.0, f64::max);
        format!("{low:.2}-{high:.2}")
    } else {
        format!("{:.3}", median(ratios.to_vec()))
    }
}

struct Stream {
    name: &'static str,
    from: String,
    to: String,
    port: u16,
    kind: Kind,
}

/// The rulesets a stream is measured under, in the order of `Stream` results.
const SIDES: [&str; 3] = ["none", "reference", "ours"];

fn main() {
    let lab = Lab::new();
    let text = lab.config(
        "static",
        &format!("config camera\n\toption name 'porch'\n\toption mac '{CAMERA_MAC}'\n"),
    );
    let cfg = lab.write_config("wilife", &text);
    let _servers = [
        Server::start(&lab.remote, 5201),
        Server::start(&lab.cc, 5201),
        Server::start(&lab.cc, 22211),
        Server::start(&lab.cc, 20570),
        Server::start(&lab.cc, 5800),
        Server::start(&lab.camera, 22211),
        Server::start(&lab.camera, 5801),
    ];
    let (remote, cc, wan, camera) = (
        REMOTE_IP.to_string(),
        CC_IP.to_string(),
        WAN_IP.to_string(),
        CAMERA_IP.to_string(),
    );
    let s = |name, from: &str, to: &str, port, kind| Stream {
        name,
        from: from.to_string(),
        to: to.to_string(),
        port,
        kind,
    };
    use Kind::*;
    let streams = [
        s("bridge camera->cc udp64", &lab.camera, &cc, 5800, Udp64),
        s("bridge camera->cc tcp64", &lab.camera, &cc, 22211, Tcp64),
        s(
            "bridge camera->cc tcp bulk",
            &lab.camera,
            &cc,
            22211,
            TcpBulk,
        ),
        s("bridge cc->camera udp64", &lab.cc, &camera, 5801, Udp64),
        s("bridge cc->camera tcp64", &lab.cc, &camera, 22211, Tcp64),
        s("bridge other->cc udp64", &lab.other, &cc, 5201, Udp64),
        s("bridge other->cc tcp64", &lab.other, &cc, 5201, Tcp64),
        s("bridge other->cc tcp bulk", &lab.other, &cc, 5201, TcpBulk),
        s(
            "routed wan->cc 20570 tcp64",
            &lab.remote,
            &wan,
            20570,
            Tcp64,
        ),
        s(
            "routed wan->cc 20570 tcp bulk",
            &lab.remote,
            &wan,
            20570,
            TcpBulk,
        ),
        s("routed cc->wan udp64", &lab.cc, &remote, 5201, Udp64),
    ];
    // Our tables as the agent renders them in this router (print-ruleset reads its network, the
    // camera included), put in and taken out by nft.
    let printed = lab.run_agent(&["print-ruleset", "--config", cfg.to_str().unwrap(), "--json"]);
    assert!(printed.status.success(), "print-ruleset failed");
    let ours_json = printed.stdout;
    let load = |side: &str| {
        let out = match side {
            "none" => lab.nft_stdin(NONE),
            "reference" => lab.nft_stdin(&format!("{NONE}{REFERENCE}")),
            _ => {
                lab.nft_stdin(NONE);
                lab.exec_with_stdin(&lab.router, &["nft", "-j", "-f", "-"], &ours_json)
            }
        };
        assert!(
            out.status.success(),
            "{side}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let unload = || {
        for (family, table) in [
            ("inet", "baseline"),
            ("inet", "reference"),
            ("bridge", "reference"),
            ("inet", "wilife"),
            ("bridge", "wilife"),
        ] {
            lab.nft(&["delete", "table", family, table]);
        }
    };
    let mut results: Vec<[Vec<f64>; 3]> = streams.iter().map(|_| Default::default()).collect();
    for round in 0..rounds() {
        for (i, st) in streams.iter().enumerate() {
            if !wanted(st.name) {
                continue;
            }
            // The first run after a table change may pay for it: each side goes first in turn.
            for k in 0..SIDES.len() {
                let side = (round + k) % SIDES.len();
                load(SIDES[side]);
                results[i][side].push(measure(&lab, &st.from, &st.to, st.port, st.kind));
                unload();
            }
        }
    }
    println!(
        "data path through the lab router: {} rounds of {SECONDS} s, each stream under none, the \
         reference and ours back to back (rotating order)",
        rounds()
    );
    println!("| stream | unit | none | reference | ours | ours/reference | ours/none |");
    println!("|---|---|---|---|---|---|---|");
    let mut lines = Vec::new();
    for (i, st) in streams.iter().enumerate() {
        if !wanted(st.name) {
            continue;
        }
        let [none, reference, ours] = &results[i];
        let ratio =
            |base: &[f64]| -> Vec<f64> { ours.iter().zip(base).map(|(o, b)| o / b).collect() };
        let (to_ref, to_none) = (ratio(reference), ratio(none));
        let unit = if st.kind == Kind::Udp64 {
            "pkt/s"
        } else {
            "Mbit/s"
        };
        println!(
            "| {} | {unit} | {:.0} | {:.0} | {:.0} | {:.3} | {:.3} |",
            st.name,
            median(none.clone()),
            median(reference.clone()),
            median(ours.clone()),
            median(to_ref.clone()),
            median(to_none.clone()),
        );
        lines.push(format!(
            "datapath {}: ours/reference {} ours/none {} ({} rounds)",
            st.name,
            summary(&to_ref, st.kind),
            summary(&to_none, st.kind),
            ours.len()
        ));
    }
    for line in lines {
        println!("{line}");
    }
}
