//! The demo: a lab router with fw4, the agent in static mode, a connection from the internet reaching
//! the Command Center, and the agent's status. Everything is torn down at the end.

use std::net::SocketAddr;
use std::time::Duration;
use wilife_lab::lab::*;

fn main() {
    let mut lab = Lab::new();
    println!(
        "lab up: router {} (WAN {WAN_IP}, LAN {LAN_IP}), cc {CC_IP}, remote {REMOTE_IP}",
        lab.router
    );
    let _echo = lab.echo_server(&lab.cc.clone(), 20570, "command-center");
    let cfg = lab.write_config("wilife", &lab.config("static", ""));
    println!(
        "\n--- /etc/config/wilife\n{}",
        std::fs::read_to_string(&cfg).unwrap()
    );
    lab.start_agent(&cfg, &[]);
    lab.wait_log("applied (startup)", Duration::from_secs(5));
    println!("--- agent log\n{}", lab.log());
    println!(
        "--- nft list table inet wilife (in the router)\n{}",
        lab.table_text()
    );

    let to = SocketAddr::from((WAN_IP, 20570));
    match lab.tcp_exchange(&lab.remote, to, "hello from the internet") {
        Ok(answer) => {
            println!("--- remote -> {to}: sent \"hello from the internet\", got \"{answer}\"")
        }
        Err(e) => {
            eprintln!("demo failed: remote -> {to}: {e}\n{}", lab.log());
            std::process::exit(1);
        }
    }
    let refused = lab.tcp_exchange(&lab.remote, SocketAddr::from((WAN_IP, 20576)), "x");
    println!(
        "--- remote -> {WAN_IP}:20576 (outside the range): {}",
        refused.err().map_or("open?!".into(), |e| e.to_string())
    );

    println!(
        "\n--- GET /api/v1/status\n{}",
        serde_json::to_string_pretty(&lab.api_status()).unwrap()
    );
    // The cc speaks once, so the router has seen it; then the verdict.
    lab.say_hello_to_router(&lab.cc);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let d = lab.api_get("/api/v1/diagnosis");
    println!(
        "
--- GET /api/v1/diagnosis: direct_possible {}
{}",
        d["direct_possible"],
        d["summary"].as_str().unwrap_or("")
    );
    let status = lab.stop_agent();
    println!(
        "\nagent stopped ({status}); table present afterwards: {}",
        lab.table_present()
    );
    drop(lab);
    println!("lab torn down");
}
