//! Benchmark (not a test), issue 27 point 6: the agent with a bridge FDB flooded to ENTRIES entries
//! (what a LAN host sending frames from forged MACs teaches the bridge). Prints how long the kernel
//! took to learn them, the agent's peak and current RSS and CPU time, the median and worst
//! AddPortMapping+DeletePortMapping round trip from the Command Center over 20, and how long a WAN
//! address change took to show in the API. `WILIFE_AGENT_BIN` picks the binary (e.g. an older build,
//! to compare); `ENTRIES` the flood's size (200000).

use std::time::{Duration, Instant};
use wilife_lab::lab::*;

fn status_kb(pid: u32, field: &str) -> u64 {
    proc_status(pid, field).unwrap_or(0)
}

fn main() {
    let entries: u32 = std::env::var("ENTRIES")
        .ok()
        .and_then(|e| e.parse().ok())
        .unwrap_or(200_000);
    let mut lab = Lab::new();
    let cfg = lab.write_config(
        "wilife",
        &lab.config(
            "upnp",
            &format!("config camera\n\toption name 'porch'\n\toption mac '{CAMERA_MAC}'\n"),
        ),
    );
    lab.start_upnp_agent(&cfg);
    let pid = lab.agent_pid().unwrap();
    let (cpu0, rss0) = (cpu_ms(pid), status_kb(pid, "VmRSS"));
    let t = Instant::now();
    lab.flood_fdb("lan-other", entries);
    let learned = t.elapsed();
    // Let the agent take in the events of the flood.
    std::thread::sleep(Duration::from_secs(2));
    let mut times = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        assert_eq!(lab.add_mapping(&lab.cc, 20570, "TCP", CC_IP, 0), 0);
        assert_eq!(lab.delete_mapping(&lab.cc, 20570), 0);
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    let moved = "198.51.100.7";
    lab.ip(
        &lab.router,
        &["addr", "add", &format!("{moved}/24"), "dev", WAN_DEV],
    );
    lab.ip(
        &lab.router,
        &["addr", "del", &format!("{WAN_IP}/24"), "dev", WAN_DEV],
    );
    let wan = |lab: &Lab| lab.api_get("/api/v1/diagnosis")["wan"]["ipv4"].clone();
    let seen = lab.time_until(Duration::from_secs(30), || {
        wan(&lab) == serde_json::json!([moved])
    });
    println!(
        "FDB of {entries} forged MACs (learned in {:.1} s): agent RSS {rss0} kB before, peak {} kB, now {} kB, \
         {} ms CPU; add+delete median {:.2} / worst {:.2} ms (20); a WAN change seen after {}",
        learned.as_secs_f64(),
        status_kb(pid, "VmHWM"),
        status_kb(pid, "VmRSS"),
        cpu_ms(pid) - cpu0,
        times[times.len() / 2],
        times[times.len() - 1],
        seen.map_or("never (30 s)".into(), |d| format!("{} ms", d.as_millis()))
    );
}
