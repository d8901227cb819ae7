//! Benchmark (not a test): what an idle agent costs. The agent runs in the lab router (upnp mode, a
//! camera, the Command Center present) with nobody asking anything for IDLE_SECONDS (default 600); the
//! figures are its CPU time including reaped children (utime + stime + cutime + cstime from
//! /proc/PID/stat) and the number of nft processes it started (an nft wrapper counts them).
//! `WILIFE_AGENT_BIN` picks the binary, so two builds can be compared side by side.

use std::time::Duration;
use wilife_lab::lab::*;

/// utime, stime, cutime, cstime of a process, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The command name may hold spaces: the fields start after its closing parenthesis.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    let ticks: u64 = fields[11..15]
        .iter()
        .map(|f| f.parse::<u64>().unwrap())
        .sum();
    ticks as f64 / 100.0
}

fn main() {
    let seconds: u64 = std::env::var("IDLE_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(600);
    let mut lab = Lab::new();
    let nft = lab.counting_nft();
    let runs = || nft.runs().len();
    let text = lab.config(
        "upnp",
        &format!("config camera\n\toption name 'porch'\n\toption mac '{CAMERA_MAC}'\n"),
    );
    let cfg = lab.write_config("wilife", &text);
    lab.start_agent(&cfg, &["--nft", nft.wrapper.to_str().unwrap()]);
    lab.say_hello_to_router(&lab.cc);
    std::thread::sleep(Duration::from_secs(2));
    let pid = lab.agent_pid().unwrap();
    let (cpu0, runs0) = (cpu_seconds(pid), runs());
    std::thread::sleep(Duration::from_secs(seconds));
    let (cpu1, runs1) = (cpu_seconds(pid), runs());
    println!(
        "idle agent over {seconds} s ({}): CPU {:.2} s (utime+stime incl. children), {} nft process(es) started",
        agent_bin().display(),
        cpu1 - cpu0,
        runs1 - runs0
    );
}
