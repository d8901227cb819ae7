//! The simulated router lab: network namespaces wired like a home network, with the real fw4 ruleset.
//!
//! ```text
//!  remote (203.0.113.100) ──wan0── router ──br-lan (192.168.50.1/24)─┬─ cc (192.168.50.10)
//!                        203.0.113.1     │                            ├─ camera (192.168.50.20)
//!                                        │                            ├─ other (192.168.50.30)
//!                                        │                            └─ peer (192.168.50.40)
//!                                        └──br-cam (192.168.60.1/24)── camnet (192.168.60.20)
//! ```
//! (`br-cam` and `camnet` only after `add_camera_network`: a separate camera network, routed; `peer`
//! only after `add_peer`: a second host that is neither camera nor Command Center.)
//!
//! `behind_isp` turns `remote` into an ISP's router (double NAT, see `isp.rs`):
//!
//! ```text
//!  internet (203.0.113.100) ──isp-wan── remote/ISP ──(192.168.0.0/24)── wan0 router …
//!                          203.0.113.1             192.168.0.1         192.168.0.2
//! ```
//! Every LAN host has a fixed MAC (`0a:00:00:00:00:` + the last byte of its address, in decimal digits).
//!
//! Every namespace name carries a per-lab sequence number and the test process id, so tests run in
//! parallel; `Drop` kills the agent and deletes every namespace, also when a test panics, and a new lab
//! first sweeps namespaces left by processes that died. Nothing touches the host's own network.
//!
//! One `Lab`, its parts in one file each: `topology` (namespaces, links, running things in them),
//! `firewall` (fw4's ruleset and our tables), `agent` (the agent under test: config, start, signals,
//! log, API), `probes` (real packets between hosts), `clients` (HTTP, SOAP and SSDP as LAN clients),
//! `frames` (raw 64-byte streams for the data-path benchmark).

mod agent;
mod clients;
mod firewall;
mod frames;
mod isp;
mod probes;
mod topology;

pub use clients::{header_value, notify_within, soap_body, split_response, upnp_error};
pub use firewall::CountingNft;
pub use frames::{parse_mac, Frame, RAW_SPORT};
pub use isp::{Isp, MINIUPNPD_CHAINS};
pub use probes::{exchange, exchange_within, tcp_connect_from, EchoServer};

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub const WAN_IP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);
/// Behind the ISP router (`behind_isp`): the router's WAN address and the ISP router's LAN address.
pub const PRIVATE_WAN_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 0, 2);
pub const ISP_LAN_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 0, 1);
/// What the ISP's miniupnpd reports as its external address (see `isp.rs`).
pub const ISP_REPORTED_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 3, 1);

pub const REMOTE_IP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 100);

pub const LAN_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 50, 1);

pub const CC_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 50, 10);

pub const CAMERA_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 50, 20);

pub const OTHER_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 50, 30);

pub const CC_MAC: &str = "0a:00:00:00:00:10";

pub const CAMERA_MAC: &str = "0a:00:00:00:00:20";

pub const OTHER_MAC: &str = "0a:00:00:00:00:30";

pub const PEER_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 50, 40);

pub const PEER_MAC: &str = "0a:00:00:00:00:40";

pub const CAMNET_ROUTER_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 60, 1);

pub const CAMNET_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 60, 20);

pub const CAMNET_MAC: &str = "0a:00:00:00:00:60";

pub const CAM_DEV: &str = "br-cam";

pub const WAN_DEV: &str = "wan0";

pub const LAN_DEV: &str = "br-lan";

pub const API_PORT: u16 = 8780;

pub const UPNP_PORT: u16 = 5431;

pub const WANIP1: &str = "urn:schemas-upnp-org:service:WANIPConnection:1";

pub const WANIP2: &str = "urn:schemas-upnp-org:service:WANIPConnection:2";

/// Root of the repository (this crate lives in `tests/`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The agent binary under test: `WILIFE_AGENT_BIN`, else the workspace's debug build.
pub fn agent_bin() -> PathBuf {
    if let Ok(p) = std::env::var("WILIFE_AGENT_BIN") {
        return PathBuf::from(p);
    }
    debug_bin("wilife-agent")
}

/// A program of the workspace's debug build (the APKv3 writer: `wilife-mkapk`).
pub fn debug_bin(name: &str) -> PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo_root().join("target"));
    let bin = target.join("debug").join(name);
    assert!(
        bin.exists(),
        "{} is missing: build it first with `cargo build -p {name}` (tests/run.sh does)",
        bin.display()
    );
    bin
}

/// The package's static fw4 include for fw4's forward chain.
pub fn forward_include_path() -> PathBuf {
    repo_root().join(
        "openwrt-package/wilife-agent/files/usr/share/nftables.d/chain-pre/forward/30-wilife.nft",
    )
}

/// The host's `ip` by absolute path: commands run with an OpenWrt PATH must not find busybox's.
pub fn ip_program() -> &'static str {
    ["/usr/sbin/ip", "/usr/bin/ip", "/sbin/ip", "/bin/ip"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("iproute2's ip")
}

/// A process's user plus system CPU time in ms (fields 14 and 15 of /proc/PID/stat, in USER_HZ
/// ticks of 10 ms; the fields start after the command name's closing parenthesis).
pub fn cpu_ms(pid: u32) -> u64 {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    (fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()) * 10
}

/// A field of /proc/PID/status (kB for VmRSS and VmHWM, a count for Threads).
pub fn proc_status(pid: u32, field: &str) -> Option<u64> {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// `tests/openwrt-stubs/openwrt-root`: runs a command under a `/dev` as OpenWrt has it (device nodes
/// only, no `/dev/stdin`), and with `OPENWRT_ROOT` over an installed package's files. Every agent the lab
/// starts runs under it.
pub fn openwrt_root() -> PathBuf {
    repo_root().join("tests/openwrt-stubs/openwrt-root")
}

/// A real firewall4 ruleset (`../shared/fixtures/fw4/stock.nft`), beside the clone in CI.
pub fn shared_fw4_fixture() -> PathBuf {
    repo_root().join("../shared/fixtures/fw4/stock.nft")
}

/// The project's own fw4-like ruleset, for a clone with nothing beside it.
pub fn own_fw4_fixture() -> PathBuf {
    repo_root().join("tests/fixtures/fw4-default.nft")
}

/// The fw4 ruleset the lab loads: `WILIFE_FW4_FIXTURE`, else the real one where it is beside the
/// clone, else the project's own.
fn fixture_path() -> PathBuf {
    if let Ok(p) = std::env::var("WILIFE_FW4_FIXTURE") {
        return PathBuf::from(p);
    }
    let shared = shared_fw4_fixture();
    if shared.exists() {
        shared
    } else {
        own_fw4_fixture()
    }
}

/// Runs a command; panics with its output if it cannot start.
fn cmd(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program} {args:?}: {e}"))
}

fn must(program: &str, args: &[&str]) -> Output {
    let out = cmd(program, args);
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub struct Lab {
    pub router: String,
    pub cc: String,
    pub camera: String,
    pub remote: String,
    pub other: String,
    /// A second plain LAN host (exists after `add_peer`).
    pub peer: String,
    /// The host on the separate camera network (exists after `add_camera_network`).
    pub camnet: String,
    /// The internet host beyond the ISP router (exists after `behind_isp`).
    pub internet: String,
    pub dir: PathBuf,
    agent: Option<Child>,
    agent_log: PathBuf,
    /// What fw4 renders from: the ruleset and the WAN device of its wan zone.
    fw4: std::sync::Mutex<Fw4Source>,
}

struct Fw4Source {
    fixture: PathBuf,
    wan_device: String,
    /// The package's include is installed (fw4 inlines it on its next reload).
    include: bool,
}

impl Default for Lab {
    fn default() -> Self {
        Lab::new()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.kill_agent();
        for ns in [
            &self.router,
            &self.cc,
            &self.camera,
            &self.remote,
            &self.other,
            &self.peer,
            &self.camnet,
            &self.internet,
        ] {
            if Path::new("/run/netns").join(ns).exists() {
                let _ = cmd("ip", &["netns", "del", ns]);
            }
        }
        if std::env::var_os("WILIFE_KEEP_LAB").is_none() {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}
