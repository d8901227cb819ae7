//! Benchmark (not a test): the agent's IGD side by side with Debian's miniupnpd-nftables, each in its
//! own lab router, same client, same run. AddPortMapping -> rule live and DeletePortMapping (median and
//! p95 over RUNS of each; both daemons install or remove the rule before they answer, and the benchmark
//! checks the kernel after a sample of them), the time to the first SSDP answer (unicast M-SEARCH), and
//! RSS idle and after 1000 control operations.
//!
//! miniupnpd refuses to map when its external address is reserved (203.0.113.1 is TEST-NET-3), so it is
//! told `ext_ip=192.0.3.1`: only the address it reports; no packet to or from it is ever sent, and the
//! lab's WAN link keeps its documentation address.

use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use wilife_lab::lab::*;

const RUNS: usize = 200;
const TOTAL_OPS: usize = 1000;
const SSDP_RUNS: usize = 50;
const MINIUPNPD_PORT: u16 = 5000;

fn stats(mut v: Vec<Duration>) -> (f64, f64) {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    (ms(v[v.len() / 2]), ms(v[(v.len() * 95).div_ceil(100) - 1]))
}

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// The pid of the daemon itself (`ip netns exec` execs it, so the child pid is the daemon's).
struct Peer {
    name: &'static str,
    port: u16,
    pid: u32,
}

fn add_args(port: &str, client: &str) -> Vec<(&'static str, String)> {
    vec![
        ("NewRemoteHost", String::new()),
        ("NewExternalPort", port.into()),
        ("NewProtocol", "TCP".into()),
        ("NewInternalPort", port.into()),
        ("NewInternalClient", client.into()),
        ("NewEnabled", "1".into()),
        ("NewPortMappingDescription", "bench".into()),
        ("NewLeaseDuration", "0".into()),
    ]
}

/// Does the kernel forward `port`? miniupnpd adds a DNAT rule per mapping; ours is an element of
/// map `upnp_addr`.
fn rule_live(lab: &Lab, port: u16) -> bool {
    let out = lab.exec(&lab.router, &["nft", "list", "ruleset"]);
    let rule = String::from_utf8_lossy(&out.stdout)
        .lines()
        .any(|l| l.contains(&format!("dport {port} ")) && l.contains("dnat"));
    rule || lab.mappings_in_force().iter().any(|(p, _)| *p == port)
}

/// RUNS Add/Delete pairs (timed), then untimed ones up to TOTAL_OPS; returns (add, delete) latencies.
fn control_ops(lab: &Lab, peer: &Peer) -> (Vec<Duration>, Vec<Duration>) {
    let (mut adds, mut dels) = (Vec::new(), Vec::new());
    let client = CC_IP.to_string();
    for i in 0..TOTAL_OPS / 2 {
        let port = 20570 + (i % 6) as u16;
        let p = port.to_string();
        let a = add_args(&p, &client);
        let args: Vec<(&str, &str)> = a.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let t = Instant::now();
        let (s, body) = lab.soap_at(&lab.cc, peer.port, WANIP1, "AddPortMapping", &args);
        let add = t.elapsed();
        assert_eq!(s, 200, "{}: AddPortMapping {port}: {body}", peer.name);
        if i < 5 {
            assert!(
                rule_live(lab, port),
                "{}: no rule for {port} after the answer",
                peer.name
            );
        }
        let del = [
            ("NewRemoteHost", ""),
            ("NewExternalPort", p.as_str()),
            ("NewProtocol", "TCP"),
        ];
        let t = Instant::now();
        let (s, body) = lab.soap_at(&lab.cc, peer.port, WANIP1, "DeletePortMapping", &del);
        let delete = t.elapsed();
        assert_eq!(s, 200, "{}: DeletePortMapping {port}: {body}", peer.name);
        if i < 5 {
            assert!(
                !rule_live(lab, port),
                "{}: rule for {port} left after delete",
                peer.name
            );
        }
        if i < RUNS {
            adds.push(add);
            dels.push(delete);
        }
    }
    (adds, dels)
}

/// Time to the first answer to a unicast M-SEARCH for upnp:rootdevice.
fn ssdp_times(lab: &Lab) -> Vec<Duration> {
    lab.in_ns(&lab.cc, || {
        let s = UdpSocket::bind("0.0.0.0:0").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let msg = "M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: \"ssdp:discover\"\r\nST: upnp:rootdevice\r\n\r\n";
        let mut buf = [0u8; 2048];
        let mut v = Vec::new();
        for _ in 0..SSDP_RUNS {
            let t = Instant::now();
            s.send_to(msg.as_bytes(), SocketAddr::from((LAN_IP, 1900))).unwrap();
            s.recv(&mut buf).expect("an SSDP answer");
            v.push(t.elapsed());
            // Stay well inside both daemons' rate limits.
            std::thread::sleep(Duration::from_millis(60));
        }
        v
    })
}

fn start_miniupnpd(lab: &Lab) -> Child {
    let chains = lab.write_config("miniupnpd.nft", MINIUPNPD_CHAINS);
    let out = lab.nft(&["-f", chains.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let conf = lab.write_config(
        "miniupnpd.conf",
        &format!(
            "ext_ifname={WAN_DEV}\next_ip=192.0.3.1\nlistening_ip={LAN_DEV}\nhttp_port={MINIUPNPD_PORT}\n\
             enable_natpmp=no\nenable_upnp=yes\nsecure_mode=yes\nnotify_interval=300\n\
             lease_file={}\nuuid=4c1f3a52-9b1e-4d4a-a1b2-0123456789ab\n\
             allow 20570-20575 {CC_IP}/32 20570-20575\ndeny 0-65535 0.0.0.0/0 0-65535\n",
            lab.dir.join("miniupnpd.leases").display()
        ),
    );
    let child = Command::new("ip")
        .args(["netns", "exec", &lab.router, "miniupnpd", "-d", "-f"])
        .arg(&conf)
        .arg("-P")
        .arg(lab.dir.join("miniupnpd.pid"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("miniupnpd (apt install miniupnpd-nftables)");
    let deadline = Instant::now() + Duration::from_secs(5);
    while lab
        .raw_http(
            &lab.cc,
            SocketAddr::from((LAN_IP, MINIUPNPD_PORT)),
            b"GET /rootDesc.xml HTTP/1.1\r\nHost: 192.168.50.1:5000\r\nConnection: close\r\n\r\n"
                .to_vec(),
        )
        .is_err()
    {
        assert!(Instant::now() < deadline, "miniupnpd did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

fn main() {
    // Ours.
    let mut ours_lab = Lab::new();
    let cfg = ours_lab.write_config(
        "wilife",
        &ours_lab.config("upnp", "config upnp 'upnp'\n\toption max_per_client '6'\n"),
    );
    ours_lab.start_upnp_agent(&cfg);
    let ours = Peer {
        name: "wilife-agent",
        port: UPNP_PORT,
        pid: ours_lab.agent_pid().unwrap(),
    };
    // The peer, in its own router.
    let peer_lab = Lab::new();
    let mut child = start_miniupnpd(&peer_lab);
    let theirs = Peer {
        name: "miniupnpd",
        port: MINIUPNPD_PORT,
        pid: child.id(),
    };

    std::thread::sleep(Duration::from_secs(1));
    let idle = (rss_kb(ours.pid), rss_kb(theirs.pid));
    let ssdp = (ssdp_times(&ours_lab), ssdp_times(&peer_lab));
    let (oa, od) = control_ops(&ours_lab, &ours);
    let (ta, td) = control_ops(&peer_lab, &theirs);
    let busy = (rss_kb(ours.pid), rss_kb(theirs.pid));
    let _ = child.kill();
    let _ = child.wait();

    let row = |what: &str, o: (f64, f64), t: (f64, f64)| {
        println!(
            "{what:<34} {:>8.2} {:>8.2}   {:>8.2} {:>8.2}   {:>7.3}x",
            o.0,
            o.1,
            t.0,
            t.1,
            o.0 / t.0
        );
    };
    println!("IGD benchmark, {RUNS} timed operations each (ms)");
    println!(
        "{:<34} {:>17}   {:>17}   {:>7}",
        "", "wilife-agent", "miniupnpd", "median"
    );
    println!(
        "{:<34} {:>8} {:>8}   {:>8} {:>8}   {:>7}",
        "", "median", "p95", "median", "p95", "ratio"
    );
    row("AddPortMapping -> rule live", stats(oa), stats(ta));
    row("DeletePortMapping -> rule gone", stats(od), stats(td));
    row("SSDP first answer (unicast)", stats(ssdp.0), stats(ssdp.1));
    println!(
        "{:<34} {:>8} kB            {:>8} kB            {:>6.2}x",
        "RSS idle",
        idle.0,
        idle.1,
        idle.0 as f64 / idle.1 as f64
    );
    println!(
        "{:<34} {:>8} kB            {:>8} kB            {:>6.2}x",
        format!("RSS after {TOTAL_OPS} operations"),
        busy.0,
        busy.1,
        busy.0 as f64 / busy.1 as f64
    );
    drop(ours_lab);
}
