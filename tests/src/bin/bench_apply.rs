//! Benchmark (not a test): the time of one apply in the lab router, median and p95 of 50, side by side
//! with the peer `nft -j -f` of the same batch (what a bare apply costs; ours adds the read-back and
//! verification). Also the idle RSS of the running agent (`WILIFE_AGENT_BIN` picks the binary).

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use wilife_agent::config::{self, Overrides};
use wilife_agent::firewall::apply::Nft;
use wilife_agent::firewall::{render, static_forwards};
use wilife_lab::lab::*;

const RUNS: usize = 50;

fn stats(mut v: Vec<Duration>) -> (Duration, Duration) {
    v.sort();
    (v[v.len() / 2], v[(v.len() * 95).div_ceil(100) - 1])
}

fn main() {
    let mut lab = Lab::new();
    let text = lab.config("static", "");
    let cfg = config::parse(&text, Path::new("bench"), &Overrides::default()).unwrap();
    let facts = lab.in_ns(&lab.router, {
        let c = cfg.clone();
        move || {
            wilife_agent::net::facts(
                &c,
                &wilife_agent::net::rtnl::dump(&Default::default(), true).unwrap(),
                &[],
            )
        }
    });
    let forwards = static_forwards(&cfg);
    let tables = render::render(&render::Desired {
        config: &cfg,
        forwards: &forwards,
        facts: &facts,
    });

    let (whole, b) = (tables.clone(), tables.batch());
    let (ours, peer) = lab.in_ns(&lab.router, move || {
        let nft = Nft::new("nft".into());
        let (mut ours, mut peer) = (Vec::new(), Vec::new());
        for _ in 0..RUNS {
            let t = Instant::now();
            nft.replace(&whole).expect("apply");
            ours.push(t.elapsed());
            let t = Instant::now();
            let mut c = Command::new("nft")
                .args(["-j", "-f", "-"])
                .stdin(Stdio::piped())
                .spawn()
                .unwrap();
            c.stdin
                .take()
                .unwrap()
                .write_all(b.to_string().as_bytes())
                .unwrap();
            assert!(c.wait().unwrap().success());
            peer.push(t.elapsed());
        }
        (ours, peer)
    });
    let (om, op) = stats(ours);
    let (pm, pp) = stats(peer);
    println!("apply of table inet wilife (static mode, {RUNS} runs, lab router with fw4 loaded)");
    println!("  wilife-agent replace (read counters + apply + read back + verify): median {om:?}  p95 {op:?}");
    println!("  peer: bare `nft -j -f -` of the same batch:                         median {pm:?}  p95 {pp:?}");
    println!(
        "  ratio (median): {:.2}x",
        om.as_secs_f64() / pm.as_secs_f64()
    );

    let cfg_path = lab.write_config("wilife", &text);
    lab.start_agent(&cfg_path, &[]);
    lab.wait_log("applied (startup)", Duration::from_secs(5));
    std::thread::sleep(Duration::from_secs(2));
    let pid = lab.agent_pid().unwrap();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let rss = status
        .lines()
        .find(|l| l.starts_with("VmRSS"))
        .unwrap_or("VmRSS: ?");
    println!(
        "idle agent ({}): {}",
        agent_bin().display(),
        rss.split_whitespace().skip(1).collect::<Vec<_>>().join(" ")
    );
}
