//! Benchmark (not a test), issue 27 point 7: the Command Center's events while other hosts hold
//! subscriptions whose callbacks never answer. Seven addresses of one LAN host subscribe four times
//! each (28 dead callbacks: few enough that an older agent still gives the Command Center a slot),
//! then the Command Center subscribes and maps a port `rounds()` times. Prints how long its initial
//! event took, and the median and worst time from each AddPortMapping's answer to its NOTIFY.
//! `WILIFE_AGENT_BIN` picks the binary (e.g. an older build, to compare).

use std::time::{Duration, Instant};
use wilife_lab::lab::*;

/// Rounds of add and delete (`ROUNDS` overrides: an older agent takes minutes for each).
fn rounds() -> usize {
    std::env::var("ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5)
}

fn main() {
    let mut lab = Lab::new();
    let cfg = lab.write_config("wilife", &lab.config("upnp", ""));
    lab.start_upnp_agent(&cfg);
    let from = lab.aliases(&lab.other, 7);
    let drop_callbacks = "add table inet blackhole; \
        add chain inet blackhole in { type filter hook input priority 0; }; \
        add rule inet blackhole in tcp dport 2869 drop";
    assert!(lab
        .exec(&lab.other, &["nft", drop_callbacks])
        .status
        .success());
    let mut taken = 0;
    for &ip in &from {
        for _ in 0..4 {
            let answer = lab.subscribe_from(&lab.other, ip, format!("http://{ip}:2869/evt"));
            taken += usize::from(split_response(&answer).0 == 200);
        }
    }
    let listener = lab.in_ns(&lab.cc, || {
        std::net::TcpListener::bind("0.0.0.0:2869").unwrap()
    });
    let t = Instant::now();
    let answer = lab.subscribe_from(&lab.cc, CC_IP, format!("http://{CC_IP}:2869/evt"));
    let status = split_response(&answer).0;
    let wait = Duration::from_secs(120);
    let initial = notify_within(&listener, wait).map(|_| t.elapsed());
    let mut delays = Vec::new();
    let rounds = rounds();
    for round in 0..rounds {
        let port = 20570 + (round % 2) as u16;
        assert_eq!(lab.add_mapping(&lab.cc, port, "TCP", CC_IP, 0), 0);
        let t = Instant::now();
        if notify_within(&listener, wait).is_some() {
            delays.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        assert_eq!(lab.delete_mapping(&lab.cc, port), 0);
        // The removal's event too.
        let _ = notify_within(&listener, wait);
    }
    delays.sort_by(f64::total_cmp);
    println!(
        "GENA with {taken} dead subscriptions: the Command Center's SUBSCRIBE HTTP {status}, initial \
         event after {}, AddPortMapping -> NOTIFY median {} / worst {} ms over {} of {rounds} rounds",
        initial.map_or("never".into(), |d| format!("{} ms", d.as_millis())),
        delays.get(delays.len() / 2).map_or("-".into(), |d| format!("{d:.1}")),
        delays.last().map_or("-".into(), |d| format!("{d:.1}")),
        delays.len()
    );
}
