//! Benchmark (not a test): the agent under the HTTP attacks of issue 13, each in turn, from a LAN host
//! ("other") in the lab, while a real UPnP client (`upnpc`, from the Command Center) maps and unmaps its
//! port. For each attack: upnpc's AddPortMapping+DeletePortMapping round trip (p50/p99 over RUNS), the
//! agent's threads, descriptors and RSS, whether it is still alive; at the end the time SIGTERM takes
//! with slow clients connected. `WILIFE_AGENT_BIN` picks the binary (e.g. an older build, to compare).

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wilife_lab::lab::*;

const RUNS: usize = 30;

fn status_field(pid: u32, field: &str) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// The process exists and has not exited (an exited child stays a zombie until the lab reaps it).
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|st| {
        st.rsplit(')')
            .next()
            .is_some_and(|r| !r.trim_start().starts_with('Z'))
    })
}

fn fds(pid: u32) -> Option<usize> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count())
}

/// upnpc's add+delete round trips from the cc: (p50, p99) in ms, and how many failed.
fn upnpc_round_trips(lab: &Lab) -> (f64, f64, usize) {
    let url = format!("http://{LAN_IP}:{UPNP_PORT}/rootDesc.xml");
    let cc = CC_IP.to_string();
    let mut times = Vec::new();
    let mut failed = 0;
    for _ in 0..RUNS {
        let t = Instant::now();
        let add = Command::new("ip")
            .args([
                "netns", "exec", &lab.cc, "upnpc", "-u", &url, "-a", &cc, "20570", "20570", "TCP",
                "0",
            ])
            .output();
        let del = Command::new("ip")
            .args([
                "netns", "exec", &lab.cc, "upnpc", "-u", &url, "-d", "20570", "TCP",
            ])
            .output();
        let ok = |o: &std::io::Result<std::process::Output>| {
            o.as_ref().is_ok_and(|o| {
                let text = String::from_utf8_lossy(&o.stdout);
                o.status.success() && !text.contains("failed")
            })
        };
        if ok(&add) && ok(&del) {
            times.push(t.elapsed().as_secs_f64() * 1000.0);
        } else {
            failed += 1;
        }
    }
    if times.is_empty() {
        return (f64::NAN, f64::NAN, failed);
    }
    times.sort_by(f64::total_cmp);
    let p = |q: usize| times[(times.len() * q).div_ceil(100).max(1) - 1];
    (p(50), p(99), failed)
}

type Attack = fn(&Lab, Arc<AtomicBool>) -> Vec<TcpStream>;

fn services() -> [SocketAddr; 2] {
    [
        SocketAddr::from((LAN_IP, API_PORT)),
        SocketAddr::from((LAN_IP, UPNP_PORT)),
    ]
}

fn none(_: &Lab, _: Arc<AtomicBool>) -> Vec<TcpStream> {
    Vec::new()
}

fn idle_connections(lab: &Lab, _: Arc<AtomicBool>) -> Vec<TcpStream> {
    let _ = nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, 8192, 8192);
    lab.in_ns(&lab.other, || {
        services()
            .iter()
            .flat_map(|to| {
                (0..600).filter_map(|_| TcpStream::connect_timeout(to, Duration::from_secs(1)).ok())
            })
            .collect()
    })
}

fn slow_bodies(lab: &Lab, _: Arc<AtomicBool>) -> Vec<TcpStream> {
    lab.in_ns(&lab.other, || {
        services()
            .iter()
            .flat_map(|&to| {
                (0..8).filter_map(move |_| {
                    let mut s = TcpStream::connect_timeout(&to, Duration::from_secs(1)).ok()?;
                    let head = format!("POST /ctl/IPConn HTTP/1.1\r\nHost: {to}\r\nContent-Length: 10000\r\n\r\nabc");
                    s.write_all(head.as_bytes()).ok()?;
                    Some(s)
                })
            })
            .collect()
    })
}

fn header_flood(lab: &Lab, stop: Arc<AtomicBool>) -> Vec<TcpStream> {
    let ns = lab.other.clone();
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).unwrap();
        nix::sched::setns(file, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        let line = format!("X-Filler: {}\r\n", "a".repeat(1000));
        while !stop.load(Ordering::SeqCst) {
            for to in services() {
                let Ok(mut s) = TcpStream::connect_timeout(&to, Duration::from_secs(1)) else {
                    continue;
                };
                let _ = s.set_write_timeout(Some(Duration::from_secs(1)));
                let _ = s.write_all(b"GET / HTTP/1.1\r\n");
                for _ in 0..1024 {
                    if stop.load(Ordering::SeqCst) || s.write_all(line.as_bytes()).is_err() {
                        break;
                    }
                }
            }
        }
    });
    Vec::new()
}

/// Issue 27: eight addresses of one host, eight idle connections each to both services (opened at
/// the pace fw4's limit on new connections lets through).
fn many_addresses(lab: &Lab, _: Arc<AtomicBool>) -> Vec<TcpStream> {
    let from: Vec<std::net::Ipv4Addr> = (0..8)
        .map(|i| {
            let ip = std::net::Ipv4Addr::new(192, 168, 50, 200 + i);
            let cidr = format!("{ip}/24");
            let _ = Command::new("ip")
                .args(["-n", &lab.other, "addr", "add", &cidr, "dev", "eth0"])
                .output();
            ip
        })
        .collect();
    lab.in_ns(&lab.other, move || {
        let mut held = Vec::new();
        for ip in from {
            for to in services() {
                held.extend((0..8).filter_map(|_| {
                    (0..50).find_map(|_| tcp_connect_from(ip, to, Duration::from_millis(300)).ok())
                }));
            }
        }
        held
    })
}

fn huge_content_length(lab: &Lab, _: Arc<AtomicBool>) -> Vec<TcpStream> {
    for to in services() {
        let request = format!("GET /api/v1/health HTTP/1.1\r\nHost: {to}\r\nContent-Length: 18446744073709551615\r\n\r\n");
        let _ = lab.raw_http(&lab.other, to, request.into_bytes());
    }
    Vec::new()
}

fn main() {
    let mut lab = Lab::new();
    let cfg = lab.write_config("wilife", &lab.config("upnp", ""));
    lab.start_upnp_agent(&cfg);
    let pid = lab.agent_pid().unwrap();
    let attacks: [(&str, Attack); 6] = [
        ("none", none),
        ("1200 idle connections", idle_connections),
        ("16 slow bodies", slow_bodies),
        ("header flood (1 MiB each)", header_flood),
        ("Content-Length 2^64-1", huge_content_length),
        ("8 addresses x 8 idle connections", many_addresses),
    ];
    println!(
        "| attack | upnpc add+delete p50 / p99 (ms) | failed | threads | fds | RSS (kB) | alive |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (name, attack) in attacks {
        let stop = Arc::new(AtomicBool::new(false));
        let held = attack(&lab, stop.clone());
        std::thread::sleep(Duration::from_millis(300));
        let (threads, open, rss) = (
            status_field(pid, "Threads"),
            fds(pid),
            status_field(pid, "VmRSS"),
        );
        let (p50, p99, failed) = upnpc_round_trips(&lab);
        stop.store(true, Ordering::SeqCst);
        drop(held);
        let alive = running(pid);
        let show = |v: Option<u64>| v.map_or("-".to_string(), |v| v.to_string());
        println!(
            "| {name} | {p50:.1} / {p99:.1} | {failed}/{RUNS} | {} | {} | {} | {} |",
            show(threads),
            show(open.map(|n| n as u64)),
            show(rss),
            if alive { "yes" } else { "NO" }
        );
        if !alive {
            println!("the agent died: {}", lab.log().lines().last().unwrap_or(""));
            return;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let _slow = slow_bodies(&lab, Arc::new(AtomicBool::new(false)));
    let t = Instant::now();
    lab.signal_agent(nix::sys::signal::Signal::SIGTERM);
    while running(pid) && t.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(10));
    }
    let took = t.elapsed();
    let how = if running(pid) {
        "still running after"
    } else {
        "exited after"
    };
    println!("SIGTERM with 16 slow clients connected: {how} {took:?}");
    lab.kill_agent();
}
