//! Benchmark (not a test): what our tables cost the data path, against the right reference. Streams
//! through the lab router (static mode, a camera, isolation on, our tables as `print-ruleset` renders
//! them for it), each measured under three rulesets beside fw4, back to back in a round whose order
//! rotates:
//!
//! - **none**: fw4 alone, plus the one DNAT rule any port forward needs (the inbound stream's floor);
//! - **reference**: `REFERENCE` below, the cheapest hand-written ruleset we found that enforces the
//!   same policy (see its comment);
//! - **ours**.
//!
//! 64-byte UDP datagrams and TCP segments are raw frames (`lab/frames.rs`) sent from one CPU as fast
//! as the kernel takes them; the router's ports steer them (RPS) to the other CPU, which runs the
//! whole path (router, then receiver) and, always busy, sets the rate: per-packet cost, not a
//! sender's speed (iperf3's UDP client capped the old runs at 150-200 kpps). A routed stream is first
//! answered once, so conntrack holds it established, as any real flow; the bridge knows every LAN
//! host's port (a receiver that only listens would otherwise be forgotten and each frame flooded to
//! every port). Bulk TCP is iperf3.
//!
//! One line per stream, `datapath STREAM: ours/reference R1 ours/none R2 (N rounds)`: the medians of
//! the per-round ratios, or for bulk TCP (whose noise is about ±10 %) their range over the rounds.
//! The bars (issue 28): ours/reference >= 0.97 on every stream; ours/none >= 0.95 for the frames
//! between two hosts that are neither camera nor Command Center. `DATAPATH_OURS_NFT=FILE` measures a
//! ruleset of one's own in place of ours (its tables named `wilife`, inet, bridge or netdev, so they
//! are taken out between runs; an empty file gives the noise floor: none against none).

use std::process::{Child, Command, Stdio};
use std::time::Duration;
use wilife_lab::lab::*;

/// Rounds of each stream; `DATAPATH_ROUNDS` overrides.
fn rounds() -> usize {
    std::env::var("DATAPATH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(9)
}
/// A bulk TCP run (iperf3 needs a few seconds to reach its rate).
const SECONDS: u32 = 3;
/// A raw 64-byte run: short, so the three rulesets of a round are measured within seconds of each
/// other and the machine's drift (CPU frequency, neighbours on the host) falls on all three alike.
const RAW_SECONDS: u64 = 1;

/// `DATAPATH_ONLY`: measure only the streams whose name contains it (e.g. `bridge`).
fn wanted(name: &str) -> bool {
    std::env::var("DATAPATH_ONLY").map_or(true, |only| name.contains(&only))
}
/// Sender and receiver each on a CPU of their own (the sender's CPU also runs the router's softirq
/// work): the scheduler moving them about varied the runs by up to 15 %.
const CLIENT_CPU: &str = "0";
const SERVER_CPU: &str = "1";
/// The raw frames' sender, and the CPU the router's ports steer their frames to (RPS), which runs
/// the whole path.
const RAW_CPU: usize = 1;
const PATH_CPU: usize = 0;

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
    /// As fast as TCP goes (Mbit/s, iperf3).
    TcpBulk,
    /// 64-byte TCP segments (ACK, never an opener), raw frames (frames/s received).
    Tcp64,
    /// 64-byte UDP datagrams, raw frames (frames/s received).
    Udp64,
}

/// One run of a stream: raw frames for the 64-byte kinds, iperf3 for bulk.
fn measure(lab: &Lab, st: &Stream) -> f64 {
    match st.frame {
        Some(frame) => {
            let to = &st.to_ns;
            lab.raw_stream(&st.from, to, frame, st.answer, RAW_SECONDS, RAW_CPU)
        }
        None => iperf3(lab, &st.from, &st.to, st.port, st.kind),
    }
}

/// One iperf3 run from `ns` to `to:port`.
fn iperf3(lab: &Lab, ns: &str, to: &str, port: u16, kind: Kind) -> f64 {
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
    /// The receiving host's namespace.
    to_ns: String,
    /// The raw frame of a 64-byte stream.
    frame: Option<Frame>,
    /// A routed stream's answer, from the receiver (conntrack then calls the flow established).
    answer: Option<Frame>,
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
    lab.add_peer();
    let _servers = [
        Server::start(&lab.remote, 5201),
        Server::start(&lab.cc, 5201),
        Server::start(&lab.peer, 5201),
        Server::start(&lab.cc, 22211),
        Server::start(&lab.cc, 20570),
        Server::start(&lab.cc, 5800),
        Server::start(&lab.camera, 22211),
        Server::start(&lab.camera, 5801),
    ];
    for host in [&lab.cc, &lab.camera, &lab.remote, &lab.peer] {
        lab.sink(host);
    }
    lab.steer_router_ports(PATH_CPU);
    lab.pin_lan_hosts();
    let mac = |ns: &str| lab.mac_of(ns, "eth0");
    let (router_lan, router_wan) = (
        lab.mac_of(&lab.router, LAN_DEV),
        lab.mac_of(&lab.router, WAN_DEV),
    );
    // (namespace, its address, the MAC its frames go to for this stream)
    let camera = (lab.camera.clone(), CAMERA_IP, mac(&lab.camera));
    let cc = (lab.cc.clone(), CC_IP, mac(&lab.cc));
    let other = (lab.other.clone(), OTHER_IP, mac(&lab.other));
    let peer = (lab.peer.clone(), PEER_IP, mac(&lab.peer));
    let remote = (lab.remote.clone(), REMOTE_IP, mac(&lab.remote));
    type Host = (String, std::net::Ipv4Addr, [u8; 6]);
    // A stream from `a` to `b`; `via`: the router's MAC on the way (routed), else `b`'s own.
    let s =
        |name, a: &Host, b: &Host, dst: std::net::Ipv4Addr, via: Option<[u8; 6]>, port, kind| {
            let frame = (kind != TcpBulk).then(|| Frame {
                src_mac: a.2,
                dst_mac: via.unwrap_or(b.2),
                src: a.1,
                dst,
                sport: RAW_SPORT,
                dport: port,
                tcp: kind == Tcp64,
            });
            // Routed: the receiver answers through the router, from its own address (after the DNAT of
            // the inbound stream, the Command Center's) to the flow's reply address (for the outbound
            // one, the router's WAN address: fw4 masquerades it).
            let inbound = via == Some(router_wan);
            let (back_via, back_to) = if inbound {
                (router_lan, a.1)
            } else {
                (router_wan, WAN_IP)
            };
            let answer = frame.filter(|_| via.is_some()).map(|f| Frame {
                src_mac: b.2,
                dst_mac: back_via,
                src: b.1,
                dst: back_to,
                sport: port,
                dport: RAW_SPORT,
                tcp: f.tcp,
            });
            Stream {
                name,
                from: a.0.clone(),
                to: dst.to_string(),
                port,
                kind,
                to_ns: b.0.clone(),
                frame,
                answer,
            }
        };
    use Kind::*;
    let streams = [
        s(
            "bridge camera->cc udp64",
            &camera,
            &cc,
            CC_IP,
            None,
            5800,
            Udp64,
        ),
        s(
            "bridge camera->cc tcp64",
            &camera,
            &cc,
            CC_IP,
            None,
            22211,
            Tcp64,
        ),
        s(
            "bridge camera->cc tcp bulk",
            &camera,
            &cc,
            CC_IP,
            None,
            22211,
            TcpBulk,
        ),
        s(
            "bridge cc->camera udp64",
            &cc,
            &camera,
            CAMERA_IP,
            None,
            5801,
            Udp64,
        ),
        s(
            "bridge cc->camera tcp64",
            &cc,
            &camera,
            CAMERA_IP,
            None,
            22211,
            Tcp64,
        ),
        s(
            "bridge other->peer udp64",
            &other,
            &peer,
            PEER_IP,
            None,
            5201,
            Udp64,
        ),
        s(
            "bridge other->peer tcp64",
            &other,
            &peer,
            PEER_IP,
            None,
            5201,
            Tcp64,
        ),
        s(
            "bridge other->peer tcp bulk",
            &other,
            &peer,
            PEER_IP,
            None,
            5201,
            TcpBulk,
        ),
        s(
            "routed wan->cc 20570 tcp64",
            &remote,
            &cc,
            WAN_IP,
            Some(router_wan),
            20570,
            Tcp64,
        ),
        s(
            "routed wan->cc 20570 tcp bulk",
            &remote,
            &cc,
            WAN_IP,
            None,
            20570,
            TcpBulk,
        ),
        s(
            "routed cc->wan udp64",
            &cc,
            &remote,
            REMOTE_IP,
            Some(router_lan),
            5201,
            Udp64,
        ),
    ];
    // Our tables as the agent renders them in this router (print-ruleset reads its network, the
    // camera included), put in and taken out by nft.
    let printed = lab.run_agent(&["print-ruleset", "--config", cfg.to_str().unwrap(), "--json"]);
    assert!(printed.status.success(), "print-ruleset failed");
    let ours_json = printed.stdout;
    if std::env::var_os("DATAPATH_PRINT").is_some() {
        let text = lab.run_agent(&["print-ruleset", "--config", cfg.to_str().unwrap(), "--text"]);
        println!("{}", String::from_utf8_lossy(&text.stdout));
    }
    let load = |side: &str| {
        let out = match side {
            "none" => lab.nft_stdin(NONE),
            "reference" => lab.nft_stdin(&format!("{NONE}{REFERENCE}")),
            // DATAPATH_OURS_NFT: a ruleset file of one's own instead of ours, to try a variant.
            _ => match std::env::var("DATAPATH_OURS_NFT") {
                Ok(file) => {
                    lab.nft_stdin(&(NONE.to_string() + &std::fs::read_to_string(file).unwrap()))
                }
                Err(_) => {
                    lab.nft_stdin(NONE);
                    lab.exec_with_stdin(&lab.router, &["nft", "-j", "-f", "-"], &ours_json)
                }
            },
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
            ("netdev", "wilife"),
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
                let rate = measure(&lab, st);
                assert!(
                    rate > 0.0,
                    "{}: nothing arrived under {}",
                    st.name,
                    SIDES[side]
                );
                results[i][side].push(rate);
                unload();
            }
        }
    }
    println!(
        "data path through the lab router: {} rounds ({RAW_SECONDS} s of raw 64-byte frames, {SECONDS} \
         s of bulk TCP), each stream under none, the reference and ours back to back (rotating order)",
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
        let unit = if st.kind == Kind::TcpBulk {
            "Mbit/s"
        } else {
            "frames/s"
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
