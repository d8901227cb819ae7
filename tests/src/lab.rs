//! The simulated router lab: network namespaces wired like a home network, with the real fw4 ruleset.
//!
//! ```text
//!  remote (203.0.113.100) ──wan0── router ──br-lan (192.168.50.1/24)─┬─ cc (192.168.50.10)
//!                        203.0.113.1     │                            ├─ camera (192.168.50.20)
//!                                        │                            └─ other (192.168.50.30)
//!                                        └──br-cam (192.168.60.1/24)── camnet (192.168.60.20)
//! ```
//! (`br-cam` and `camnet` only after `add_camera_network`: a separate camera network, routed.)
//! Every LAN host has a fixed MAC (`0a:00:00:00:00:` + the last byte of its address, in decimal digits).
//!
//! Every namespace name carries a per-lab sequence number and the test process id, so tests run in
//! parallel; `Drop` kills the agent and deletes every namespace, also when a test panics, and a new lab
//! first sweeps namespaces left by processes that died. Nothing touches the host's own network.

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
pub const REMOTE_IP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 100);
pub const LAN_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 50, 1);
pub const CC_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 50, 10);
pub const CAMERA_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 50, 20);
pub const OTHER_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 50, 30);
pub const CC_MAC: &str = "0a:00:00:00:00:10";
pub const CAMERA_MAC: &str = "0a:00:00:00:00:20";
pub const OTHER_MAC: &str = "0a:00:00:00:00:30";
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

static SEQ: AtomicUsize = AtomicUsize::new(0);

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
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo_root().join("target"));
    let bin = target.join("debug/wilife-agent");
    assert!(
        bin.exists(),
        "{} is missing: build it first with `cargo build -p wilife-agent` (tests/run.sh does)",
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

fn pid_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Deletes namespaces of earlier labs whose process is gone (a test run killed with SIGKILL).
fn sweep_stale() {
    let Ok(entries) = fs::read_dir("/run/netns") else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        let Some(rest) = name.strip_prefix("wl") else {
            continue;
        };
        let pid = rest.split('-').nth(1).and_then(|p| p.parse::<u32>().ok());
        if let Some(pid) = pid {
            if !pid_alive(pid) {
                let _ = cmd("ip", &["netns", "del", &name]);
            }
        }
    }
}

pub struct Lab {
    pub router: String,
    pub cc: String,
    pub camera: String,
    pub remote: String,
    pub other: String,
    /// The host on the separate camera network (exists after `add_camera_network`).
    pub camnet: String,
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

impl Lab {
    /// Builds the four hosts and loads fw4's stock ruleset with the package's include in the router.
    pub fn new() -> Lab {
        sweep_stale();
        let seq = SEQ.fetch_add(1, Ordering::SeqCst);
        let id = format!("wl{seq}-{}", std::process::id());
        let dir = std::env::temp_dir().join(format!("wilife-lab-{id}"));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let lab = Lab {
            router: format!("{id}-router"),
            cc: format!("{id}-cc"),
            camera: format!("{id}-camera"),
            remote: format!("{id}-remote"),
            other: format!("{id}-other"),
            camnet: format!("{id}-camnet"),
            agent_log: dir.join("agent.log"),
            dir,
            agent: None,
            fw4: std::sync::Mutex::new(Fw4Source {
                fixture: fixture_path(),
                wan_device: WAN_DEV.to_string(),
                include: true,
            }),
        };
        // From here on, Drop cleans up whatever was created.
        for ns in [&lab.router, &lab.cc, &lab.camera, &lab.remote, &lab.other] {
            must("ip", &["netns", "add", ns]);
            lab.ip(ns, &["link", "set", "lo", "up"]);
        }
        let r = lab.router.as_str();
        // WAN: router wan0 <-> remote eth0 (created inside the namespaces, never in the host's).
        lab.ip(
            r,
            &[
                "link",
                "add",
                WAN_DEV,
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "netns",
                &lab.remote,
            ],
        );
        lab.ip(r, &["addr", "add", &format!("{WAN_IP}/24"), "dev", WAN_DEV]);
        lab.ip(r, &["link", "set", WAN_DEV, "up"]);
        lab.ip(
            &lab.remote,
            &["addr", "add", &format!("{REMOTE_IP}/24"), "dev", "eth0"],
        );
        lab.ip(&lab.remote, &["link", "set", "eth0", "up"]);
        // LAN: a bridge in the router, like OpenWrt's br-lan, with one port per host.
        lab.ip(r, &["link", "add", LAN_DEV, "type", "bridge"]);
        lab.ip(r, &["addr", "add", &format!("{LAN_IP}/24"), "dev", LAN_DEV]);
        lab.ip(r, &["link", "set", LAN_DEV, "up"]);
        for (ns, port, ip, mac) in [
            (&lab.cc, "lan-cc", CC_IP, CC_MAC),
            (&lab.camera, "lan-cam", CAMERA_IP, CAMERA_MAC),
            (&lab.other, "lan-other", OTHER_IP, OTHER_MAC),
        ] {
            lab.host_on_bridge(ns, port, LAN_DEV, ip, mac, LAN_IP);
        }
        // Forwarding on; bridged frames stay out of the IP hooks, as on a stock OpenWrt (no br_netfilter).
        // WILIFE_LAB_BR_NETFILTER=1 keeps them in (a router with kmod-br-netfilter installed).
        let br_nf = if std::env::var_os("WILIFE_LAB_BR_NETFILTER").is_some() {
            1
        } else {
            0
        };
        lab.sh(
            r,
            &format!(
                "echo 1 > /proc/sys/net/ipv4/ip_forward; \
                 for f in iptables ip6tables arptables; do p=/proc/sys/net/bridge/bridge-nf-call-$f; \
                 [ -e $p ] && echo {br_nf} > $p; done; true"
            ),
        );
        lab.load_fw4();
        lab
    }

    /// A host `ns` wired to bridge `bridge` of the router through port `port`, default route via `gw`.
    fn host_on_bridge(
        &self,
        ns: &str,
        port: &str,
        bridge: &str,
        ip: Ipv4Addr,
        mac: &str,
        gw: Ipv4Addr,
    ) {
        let r = self.router.as_str();
        self.ip(
            r,
            &[
                "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns,
            ],
        );
        self.ip(r, &["link", "set", port, "master", bridge]);
        self.ip(r, &["link", "set", port, "up"]);
        // IPv4 hosts: no IPv6 chatter (router solicitations, MLD) to make a silent host look alive.
        self.sh(
            ns,
            "sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1",
        );
        self.ip(ns, &["link", "set", "eth0", "address", mac]);
        self.ip(ns, &["addr", "add", &format!("{ip}/24"), "dev", "eth0"]);
        self.ip(ns, &["link", "set", "eth0", "up"]);
        self.ip(ns, &["route", "add", "default", "via", &gw.to_string()]);
    }

    /// A separate camera network: bridge `br-cam` (192.168.60.1/24) on the router with host `camnet`.
    /// fw4's fixture knows no zone for it, so fw4 rejects whatever is forwarded to or from it.
    pub fn add_camera_network(&self) {
        must("ip", &["netns", "add", &self.camnet]);
        self.ip(&self.camnet, &["link", "set", "lo", "up"]);
        let r = self.router.as_str();
        self.ip(r, &["link", "add", CAM_DEV, "type", "bridge"]);
        self.ip(
            r,
            &[
                "addr",
                "add",
                &format!("{CAMNET_ROUTER_IP}/24"),
                "dev",
                CAM_DEV,
            ],
        );
        self.ip(r, &["link", "set", CAM_DEV, "up"]);
        self.host_on_bridge(
            &self.camnet,
            "cam-port",
            CAM_DEV,
            CAMNET_IP,
            CAMNET_MAC,
            CAMNET_ROUTER_IP,
        );
    }

    pub fn ip(&self, ns: &str, args: &[&str]) -> Output {
        let mut full = vec!["-n", ns];
        full.extend_from_slice(args);
        must("ip", &full)
    }

    /// A shell command inside a namespace; panics if it fails.
    pub fn sh(&self, ns: &str, script: &str) -> Output {
        must("ip", &["netns", "exec", ns, "sh", "-c", script])
    }

    /// Runs a command inside a namespace and returns its output, whatever the exit status.
    pub fn exec(&self, ns: &str, args: &[&str]) -> Output {
        let mut full = vec!["netns", "exec", ns];
        full.extend_from_slice(args);
        cmd("ip", &full)
    }

    pub fn nft(&self, args: &[&str]) -> Output {
        let mut full = vec!["nft"];
        full.extend_from_slice(args);
        self.exec(&self.router, &full)
    }

    /// Runs a command inside a namespace with `stdin` as its input; its output, whatever the status.
    pub fn exec_with_stdin(&self, ns: &str, args: &[&str], stdin: &[u8]) -> Output {
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {args:?} in {ns}: {e}"));
        child.stdin.take().unwrap().write_all(stdin).unwrap();
        child.wait_with_output().unwrap()
    }

    /// `nft -f -` in the router with `text` (add `-j` first for JSON).
    pub fn nft_stdin(&self, text: &str) -> Output {
        self.exec_with_stdin(&self.router, &["nft", "-f", "-"], text.as_bytes())
    }

    /// The fw4 ruleset as fw4 would render it here, with the package's include spliced in.
    pub fn fw4_ruleset(&self) -> String {
        let fw4 = self.fw4.lock().unwrap();
        let path = &fw4.fixture;
        let stock = fs::read_to_string(path).unwrap_or_else(|e| {
            panic!(
                "the fw4 fixture {} is missing ({e}); set WILIFE_FW4_FIXTURE",
                path.display()
            )
        });
        let include =
            fs::read_to_string(forward_include_path()).expect("the package's fw4 include");
        // Literal replacement (no sed: the include is full of `&`). The chain-pre placeholders are also
        // named in the header comment: only a line that is the placeholder alone is where fw4 inlines.
        stock
            .lines()
            .map(|line| match line.trim() {
                "@CHAIN_PRE_FORWARD@" if fw4.include => include.clone(),
                "@CHAIN_PRE_FORWARD@" => String::new(),
                "@CHAIN_PRE_INPUT@" => String::new(),
                _ => line
                    .replace("@LAN_DEV@", LAN_DEV)
                    .replace("@WAN_DEV@", &fw4.wan_device)
                    .replace("@LAN_SUBNET@", "192.168.50.0/24")
                    .replace("@WAN_SUBNET@", "203.0.113.0/24"),
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The WAN network moved to `device`: fw4's next reload renders its wan zone with it.
    pub fn set_fw4_wan_device(&self, device: &str) {
        self.fw4.lock().unwrap().wan_device = device.to_string();
    }

    /// Whether the package's include is installed, for fw4's next reload (`load_fw4`).
    pub fn set_fw4_include_installed(&self, installed: bool) {
        self.fw4.lock().unwrap().include = installed;
    }

    /// Renders fw4 from another ruleset from now on (`load_fw4` loads it).
    pub fn set_fw4_fixture(&self, path: &Path) {
        self.fw4.lock().unwrap().fixture = path.to_path_buf();
    }

    /// Loads (or reloads, like `fw4 reload`) fw4's table; panics if nft refuses it.
    pub fn load_fw4(&self) {
        self.load_fw4_text(&self.fw4_ruleset());
    }

    /// fw4 without the lan -> wan forwarding (a network where outbound is closed by default).
    pub fn load_fw4_without_lan_to_wan(&self) {
        let full = self.fw4_ruleset();
        let closed: String = full
            .lines()
            .filter(|l| !l.contains("Accept lan to wan forwarding"))
            .collect::<Vec<_>>()
            .join("\n");
        assert_ne!(
            full.lines().count(),
            closed.lines().count(),
            "the fixture has a lan->wan forwarding"
        );
        self.load_fw4_text(&closed);
    }

    fn load_fw4_text(&self, text: &str) {
        let out = self.nft_stdin(text);
        assert!(
            out.status.success(),
            "loading fw4 failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let listed = self.nft(&["list", "chain", "inet", "fw4", "forward"]);
        assert_eq!(
            String::from_utf8_lossy(&listed.stdout).contains("flows granted by wilife-agent"),
            self.fw4.lock().unwrap().include,
            "the fw4 include is (not) in fw4's forward chain"
        );
    }

    /// The remote host routes the LAN subnet through the router's WAN address (a weak-host-model
    /// attacker, or one reaching the router when no firewall stands in the way).
    pub fn route_remote_to_lan(&self) {
        let via = WAN_IP.to_string();
        self.ip(
            &self.remote,
            &["route", "add", "192.168.50.0/24", "via", &via],
        );
    }

    /// `service firewall stop`: every table goes.
    pub fn flush_ruleset(&self) {
        assert!(self.nft(&["flush", "ruleset"]).status.success());
    }

    pub fn table_present(&self) -> bool {
        self.nft(&["list", "table", "inet", "wilife"])
            .status
            .success()
    }

    /// Our tables as nft lists them: `inet wilife`, then `bridge wilife` when it exists.
    pub fn table_text(&self) -> String {
        ["inet", "bridge"]
            .iter()
            .map(|f| {
                String::from_utf8_lossy(&self.nft(&["list", "table", f, "wilife"]).stdout)
                    .to_string()
            })
            .collect()
    }

    /// Writes a config file into the lab directory and returns its path.
    pub fn write_config(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.join(name);
        fs::write(&p, text).unwrap();
        p
    }

    /// A config for this lab: `mode` direct access, the cc as the Command Center, plus `extra` lines.
    pub fn config(&self, mode: &str, extra: &str) -> String {
        format!(
            "config agent 'main'\n\toption direct_access '{mode}'\n\toption wan_device '{WAN_DEV}'\n\tlist lan_device '{LAN_DEV}'\n\toption api_port '{API_PORT}'\n\toption state_dir '{}'\n\nconfig direct 'direct'\n\toption ports '20570-20575'\n\nconfig command_center\n\toption name 'office-pc'\n\toption ip '{CC_IP}'\n{extra}",
            self.dir.join("state").display()
        )
    }

    /// Starts the agent in the router with `config` and waits until it applied (or failed to apply) its
    /// table. `extra` adds command-line arguments.
    pub fn start_agent(&mut self, config: &Path, extra: &[&str]) {
        self.spawn_agent(config, extra, &[], true);
        self.wait_log("table inet wilife", Duration::from_secs(10));
        // The API starts after the first reconcile; both LAN and loopback listeners must be up.
        self.wait_log(
            &format!("API listening on http://{LAN_IP}:{API_PORT}"),
            Duration::from_secs(5),
        );
        self.wait_log(
            &format!("API listening on http://127.0.0.1:{API_PORT}"),
            Duration::from_secs(5),
        );
    }

    /// Starts the agent without waiting; `foreground: false` makes it log to syslog (see `env`).
    pub fn spawn_agent(
        &mut self,
        config: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
        foreground: bool,
    ) {
        assert!(self.agent.is_none(), "an agent is running already");
        let log = fs::File::create(&self.agent_log).unwrap();
        let bin = agent_bin();
        let include = forward_include_path();
        let mut args = vec![
            "netns".to_string(),
            "exec".into(),
            self.router.clone(),
            openwrt_root().display().to_string(),
            bin.display().to_string(),
            "run".into(),
            "--config".into(),
            config.display().to_string(),
            "--fw4-include".into(),
            include.display().to_string(),
        ];
        if foreground {
            args.push("--foreground".into());
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let child = Command::new("ip")
            .args(&args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start the agent");
        self.agent = Some(child);
    }

    /// Starts an agent command line exactly as an init script gave it to procd, in the router, over the
    /// package installed into `root` (see `openwrt_root`), with `env` only (procd's instance
    /// environment; it must hold PATH).
    /// `--foreground` is added so its log lands here.
    pub fn spawn_installed_agent(&mut self, args: &[String], root: &Path, env: &[(&str, &str)]) {
        assert!(self.agent.is_none(), "an agent is running already");
        let log = fs::File::create(&self.agent_log).unwrap();
        let mut full = vec![
            "netns".to_string(),
            "exec".into(),
            self.router.clone(),
            openwrt_root().display().to_string(),
        ];
        full.extend(args.iter().cloned());
        full.push("--foreground".into());
        let child = Command::new(ip_program())
            .args(&full)
            .env_clear()
            .env("OPENWRT_ROOT", root)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start the installed agent");
        self.agent = Some(child);
    }

    /// Runs the agent to completion (for commands that exit, or a `run` that must fail).
    pub fn run_agent(&self, args: &[&str]) -> Output {
        let bin = agent_bin();
        let root = openwrt_root();
        let mut full = vec![root.to_str().unwrap(), bin.to_str().unwrap()];
        full.extend_from_slice(args);
        self.exec(&self.router, &full)
    }

    pub fn agent_pid(&self) -> Option<u32> {
        self.agent.as_ref().map(|c| c.id())
    }

    pub fn signal_agent(&self, sig: nix::sys::signal::Signal) {
        let pid = self.agent_pid().expect("agent running");
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), sig).unwrap();
    }

    /// SIGTERM and wait for the exit.
    pub fn stop_agent(&mut self) -> ExitStatus {
        self.signal_agent(nix::sys::signal::Signal::SIGTERM);
        let mut child = self.agent.take().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!(
                    "the agent did not stop within 10 s of SIGTERM:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn kill_agent(&mut self) {
        if let Some(mut c) = self.agent.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn log(&self) -> String {
        fs::read_to_string(&self.agent_log).unwrap_or_default()
    }

    /// Waits until the agent's log contains `needle` (counting from the start of the log).
    pub fn wait_log(&self, needle: &str, timeout: Duration) {
        self.wait_log_count(needle, 1, timeout);
    }

    /// Waits until `needle` occurs at least `count` times in the agent's log.
    pub fn wait_log_count(&self, needle: &str, count: usize, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.log().matches(needle).count() < count {
            assert!(
                Instant::now() < deadline,
                "no {needle:?} (x{count}) in the agent's log after {timeout:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Runs `f` on a fresh thread that has entered namespace `ns`; sockets it makes live there.
    pub fn in_ns<T: Send + 'static>(&self, ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = format!("/run/netns/{ns}");
        std::thread::spawn(move || {
            let file = fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
            nix::sched::setns(file, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
            f()
        })
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
    }

    /// A TCP server in `ns` on `port` that answers each line with `NAME:line`.
    pub fn echo_server(&self, ns: &str, port: u16, name: &str) -> EchoServer {
        let listener = self.in_ns(ns, move || {
            TcpListener::bind(("0.0.0.0", port)).expect("bind echo server")
        });
        EchoServer::start(listener, name.to_string())
    }

    /// A UDP socket in `ns` bound to `port`.
    pub fn udp_socket(&self, ns: &str, port: u16) -> UdpSocket {
        self.in_ns(ns, move || {
            UdpSocket::bind(("0.0.0.0", port)).expect("bind udp")
        })
    }

    /// Connects from `ns` to `to`, sends one line, returns the answer line.
    pub fn tcp_exchange(&self, ns: &str, to: SocketAddr, line: &str) -> std::io::Result<String> {
        let line = line.to_string();
        self.in_ns(ns, move || exchange(to, &line))
    }

    /// Opens a TCP connection from `ns` (for tests that keep a session open).
    pub fn tcp_connect(&self, ns: &str, to: SocketAddr) -> std::io::Result<TcpStream> {
        self.in_ns(ns, move || {
            let s = TcpStream::connect_timeout(&to, Duration::from_secs(2))?;
            s.set_read_timeout(Some(Duration::from_secs(2)))?;
            Ok(s)
        })
    }

    /// An HTTP request from `ns`; returns (status, body). `host` is the Host header.
    pub fn http(
        &self,
        ns: &str,
        to: SocketAddr,
        method: &str,
        path: &str,
        host: &str,
    ) -> std::io::Result<(u16, String)> {
        let request =
            format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        self.in_ns(ns, move || {
            let mut s = TcpStream::connect_timeout(&to, Duration::from_secs(2))?;
            s.set_read_timeout(Some(Duration::from_secs(5)))?;
            s.write_all(request.as_bytes())?;
            let mut raw = String::new();
            s.read_to_string(&mut raw)?;
            let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
            let code = head
                .split_whitespace()
                .nth(1)
                .and_then(|c| c.parse().ok())
                .unwrap_or(0);
            Ok((code, body.to_string()))
        })
    }

    /// Starts the agent in mode upnp and waits for the IGD (HTTP on the LAN address, SSDP).
    pub fn start_upnp_agent(&mut self, config: &Path) {
        self.start_agent(config, &[]);
        self.wait_log(
            &format!("UPnP IGD listening on http://{LAN_IP}:{UPNP_PORT}"),
            Duration::from_secs(5),
        );
        self.wait_log("SSDP listening", Duration::from_secs(5));
    }

    /// A raw request from `ns` (bytes as given); the whole answer until the server closes, or an error.
    pub fn raw_http(&self, ns: &str, to: SocketAddr, request: Vec<u8>) -> std::io::Result<String> {
        self.in_ns(ns, move || {
            let mut s = TcpStream::connect_timeout(&to, Duration::from_secs(2))?;
            s.set_read_timeout(Some(Duration::from_secs(5)))?;
            // A server may answer and close before reading a huge body: a failed write is not the end.
            let _ = s.write_all(&request);
            let mut raw = Vec::new();
            match s.read_to_end(&mut raw) {
                Ok(_) => {}
                Err(e) if raw.is_empty() => return Err(e),
                Err(_) => {}
            }
            Ok(String::from_utf8_lossy(&raw).to_string())
        })
    }

    /// A SOAP call from `ns` to the IGD's WANIPConnection control URL: (HTTP status, body).
    pub fn soap(&self, ns: &str, urn: &str, action: &str, args: &[(&str, &str)]) -> (u16, String) {
        self.soap_at(ns, UPNP_PORT, urn, action, args)
    }

    /// Like `soap`, to an IGD on another port.
    pub fn soap_at(
        &self,
        ns: &str,
        port: u16,
        urn: &str,
        action: &str,
        args: &[(&str, &str)],
    ) -> (u16, String) {
        let inner: String = args
            .iter()
            .map(|(k, v)| format!("<{k}>{v}</{k}>"))
            .collect();
        let body = format!(
            "<?xml version=\"1.0\"?><s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\" s:encodingStyle=\"http://schemas.xmlsoap.org/soap/encoding/\"><s:Body><u:{action} xmlns:u=\"{urn}\">{inner}</u:{action}></s:Body></s:Envelope>"
        );
        self.soap_raw_at(ns, port, &format!("\"{urn}#{action}\""), body.into_bytes())
    }

    /// POSTs `body` to the control URL with a SOAPAction header: (HTTP status, body).
    pub fn soap_raw(&self, ns: &str, soap_action: &str, body: Vec<u8>) -> (u16, String) {
        self.soap_raw_at(ns, UPNP_PORT, soap_action, body)
    }

    /// Like `soap_raw`, to an IGD on another port (the benchmark's peer).
    pub fn soap_raw_at(
        &self,
        ns: &str,
        port: u16,
        soap_action: &str,
        body: Vec<u8>,
    ) -> (u16, String) {
        let mut request = format!(
            "POST /ctl/IPConn HTTP/1.1\r\nHost: {LAN_IP}:{port}\r\nContent-Type: text/xml; charset=\"utf-8\"\r\nSOAPAction: {soap_action}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .into_bytes();
        request.extend_from_slice(&body);
        let raw = self
            .raw_http(ns, SocketAddr::from((LAN_IP, port)), request)
            .expect("the IGD answers");
        split_response(&raw)
    }

    /// AddPortMapping (v1) from `ns` for `client`: the UPnP error code, 0 for success.
    pub fn add_mapping(
        &self,
        ns: &str,
        port: u16,
        proto: &str,
        client: Ipv4Addr,
        lease: u32,
    ) -> u16 {
        let (p, c, l) = (port.to_string(), client.to_string(), lease.to_string());
        let (status, body) = self.soap(
            ns,
            WANIP1,
            "AddPortMapping",
            &[
                ("NewRemoteHost", ""),
                ("NewExternalPort", &p),
                ("NewProtocol", proto),
                ("NewInternalPort", &p),
                ("NewInternalClient", &c),
                ("NewEnabled", "1"),
                ("NewPortMappingDescription", "WiLife test"),
                ("NewLeaseDuration", &l),
            ],
        );
        upnp_error(status, &body)
    }

    /// Sends an M-SEARCH from `ns` to `to` and collects the answers that arrive within `wait`.
    pub fn m_search(
        &self,
        ns: &str,
        to: SocketAddr,
        st: &str,
        mx: Option<u32>,
        wait: Duration,
    ) -> Vec<String> {
        let mx = mx.map_or(String::new(), |m| format!("MX: {m}\r\n"));
        let msg = format!(
            "M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: \"ssdp:discover\"\r\n{mx}ST: {st}\r\n\r\n"
        );
        self.in_ns(ns, move || {
            let s = UdpSocket::bind("0.0.0.0:0").unwrap();
            s.set_multicast_ttl_v4(2).unwrap();
            if let Err(e) = s.send_to(msg.as_bytes(), to) {
                return vec![format!("send failed: {e}")];
            }
            let deadline = Instant::now() + wait;
            let mut out = Vec::new();
            let mut buf = [0u8; 4096];
            while let Some(left) = deadline.checked_duration_since(Instant::now()) {
                s.set_read_timeout(Some(left.max(Duration::from_millis(1))))
                    .unwrap();
                match s.recv(&mut buf) {
                    Ok(n) => out.push(String::from_utf8_lossy(&buf[..n]).to_string()),
                    Err(_) => break,
                }
            }
            out
        })
    }

    /// GET `/api/v1/status` from the router's loopback, parsed.
    pub fn api_status(&self) -> serde_json::Value {
        self.api_get("/api/v1/status")
    }

    /// GET an API document from the router's loopback; panics unless 200 with JSON.
    pub fn api_get(&self, path: &str) -> serde_json::Value {
        let to = SocketAddr::from((Ipv4Addr::LOCALHOST, API_PORT));
        let (code, body) = self
            .http(&self.router, to, "GET", path, "127.0.0.1:8780")
            .expect("API answers");
        assert_eq!(code, 200, "{path}: {body}");
        serde_json::from_str(&body).expect("the API answers JSON")
    }

    /// Polls `probe` every 10 ms until it holds; how long it took, or `None` after `limit`.
    pub fn time_until(&self, limit: Duration, mut probe: impl FnMut() -> bool) -> Option<Duration> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if probe() {
                return Some(start.elapsed());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }

    /// One UDP datagram from `ns` to the router's LAN address: the host is heard (ARP, bridge FDB).
    pub fn say_hello_to_router(&self, ns: &str) {
        self.in_ns(ns, || {
            let s = UdpSocket::bind("0.0.0.0:0").unwrap();
            let _ = s.send_to(b"hello", (LAN_IP, 9));
        });
    }
}

/// (status, body) of a raw HTTP answer.
pub fn split_response(raw: &str) -> (u16, String) {
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((raw, ""));
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, body.to_string())
}

/// The UPnP errorCode of a SOAP answer; 0 when it succeeded (HTTP 200).
pub fn upnp_error(status: u16, body: &str) -> u16 {
    if status == 200 {
        return 0;
    }
    body.split("<errorCode>")
        .nth(1)
        .and_then(|r| r.split('<').next())
        .and_then(|c| c.trim().parse().ok())
        .unwrap_or(status)
}

/// The value of a header in an SSDP or HTTP message (case-insensitive name).
pub fn header_value(message: &str, name: &str) -> Option<String> {
    message.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_string())
    })
}

/// Does a TCP exchange from `ns` to `to` get its answer within `wait`? (A drop shows as a timeout, a
/// reject as a refusal: both are "no".)
impl Lab {
    pub fn reaches(&self, ns: &str, to: SocketAddr) -> bool {
        self.in_ns(ns, move || {
            exchange_within(to, "ping", None, Duration::from_millis(700)).is_ok()
        })
    }

    /// Opens `count` connections to `to` at once, from source ports `first_sport..`; how many got an
    /// answer. Many connections, not one: a lucky source port must not hide a leak.
    pub fn reaches_from_ports(
        &self,
        ns: &str,
        to: SocketAddr,
        first_sport: u16,
        count: u16,
    ) -> usize {
        self.in_ns(ns, move || {
            let handles: Vec<_> = (0..count)
                .map(|i| {
                    std::thread::spawn(move || {
                        exchange_within(
                            to,
                            "ping",
                            Some(first_sport + i),
                            Duration::from_millis(700),
                        )
                        .is_ok()
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap())
                .filter(|ok| *ok)
                .count()
        })
    }

    /// Sends a UDP datagram from `from` (source port `sport`) to `to` and says whether a socket
    /// bound in `to_ns` received it.
    pub fn udp_delivered(&self, from: &str, sport: u16, to_ns: &str, to: SocketAddr) -> bool {
        let rx = self.in_ns(to_ns, move || {
            let s = UdpSocket::bind(("0.0.0.0", to.port())).expect("bind udp receiver");
            s.set_read_timeout(Some(Duration::from_millis(700)))
                .unwrap();
            s
        });
        self.in_ns(from, move || {
            let s = socket_with_reuse_udp(sport);
            for _ in 0..3 {
                let _ = s.send_to(b"wilife", to);
            }
        });
        let mut buf = [0u8; 64];
        rx.recv_from(&mut buf)
            .is_ok_and(|(n, _)| &buf[..n] == b"wilife")
    }

    /// SSDP-style multicast from `from` to 239.255.255.250:1900: does a member socket in `to_ns`
    /// (joined on its eth0 address `member`) receive it?
    pub fn ssdp_multicast_delivered(&self, from: &str, to_ns: &str, member: Ipv4Addr) -> bool {
        let group = Ipv4Addr::new(239, 255, 255, 250);
        let rx = self.in_ns(to_ns, move || {
            let s = socket_with_reuse_udp(1900);
            s.join_multicast_v4(&group, &member)
                .expect("join the SSDP group");
            s.set_read_timeout(Some(Duration::from_millis(700)))
                .unwrap();
            s
        });
        self.in_ns(from, move || {
            let s = UdpSocket::bind("0.0.0.0:0").unwrap();
            for _ in 0..3 {
                let _ = s.send_to(b"NOTIFY * HTTP/1.1\r\n\r\n", (group, 1900));
            }
        });
        let mut buf = [0u8; 64];
        rx.recv_from(&mut buf)
            .is_ok_and(|(n, _)| buf[..n].starts_with(b"NOTIFY"))
    }
}

/// A UDP socket on `port` (0: any) with SO_REUSEADDR, so tests can share well-known ports.
fn socket_with_reuse_udp(port: u16) -> UdpSocket {
    use nix::sys::socket::{
        bind, setsockopt, socket, sockopt, AddressFamily, SockFlag, SockType, SockaddrIn,
    };
    let fd = socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::empty(),
        None,
    )
    .unwrap();
    setsockopt(&fd, sockopt::ReuseAddr, &true).unwrap();
    bind(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        &SockaddrIn::from(std::net::SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port)),
    )
    .unwrap_or_else(|e| panic!("bind udp {port}: {e}"));
    UdpSocket::from(fd)
}

/// One line out, one line back, from an optional fixed source port, within `wait`.
pub fn exchange_within(
    to: SocketAddr,
    line: &str,
    sport: Option<u16>,
    wait: Duration,
) -> std::io::Result<String> {
    use nix::sys::socket::{
        bind, setsockopt, socket, sockopt, AddressFamily, SockFlag, SockType, SockaddrIn,
    };
    let s = match sport {
        None => TcpStream::connect_timeout(&to, wait)?,
        Some(p) => {
            let fd = socket(
                AddressFamily::Inet,
                SockType::Stream,
                SockFlag::empty(),
                None,
            )?;
            setsockopt(&fd, sockopt::ReuseAddr, &true)?;
            bind(
                std::os::fd::AsRawFd::as_raw_fd(&fd),
                &SockaddrIn::from(std::net::SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, p)),
            )?;
            let s = TcpStream::from(fd);
            // connect with a deadline: nonblocking connect, then wait for writability.
            connect_deadline(&s, to, wait)?;
            s
        }
    };
    s.set_read_timeout(Some(wait))?;
    (&s).write_all(format!("{line}\n").as_bytes())?;
    let mut answer = String::new();
    BufReader::new(&s).read_line(&mut answer)?;
    if answer.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "no answer",
        ));
    }
    Ok(answer.trim().to_string())
}

fn connect_deadline(s: &TcpStream, to: SocketAddr, wait: Duration) -> std::io::Result<()> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use nix::sys::socket::{connect, getsockopt, sockopt, SockaddrStorage};
    use std::os::fd::{AsFd, AsRawFd};
    s.set_nonblocking(true)?;
    let addr = SockaddrStorage::from(to);
    match connect(s.as_raw_fd(), &addr) {
        Ok(()) | Err(nix::errno::Errno::EINPROGRESS) => {}
        Err(e) => return Err(e.into()),
    }
    let mut fds = [PollFd::new(s.as_fd(), PollFlags::POLLOUT)];
    let ms = PollTimeout::try_from(wait.as_millis() as i32).unwrap_or(PollTimeout::MAX);
    if poll(&mut fds, ms)? == 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "connect timed out",
        ));
    }
    let err = getsockopt(s, sockopt::SocketError)?;
    s.set_nonblocking(false)?;
    if err != 0 {
        return Err(std::io::Error::from_raw_os_error(err));
    }
    Ok(())
}

/// One line out, one line back.
pub fn exchange(to: SocketAddr, line: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect_timeout(&to, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    s.write_all(format!("{line}\n").as_bytes())?;
    let mut answer = String::new();
    BufReader::new(s).read_line(&mut answer)?;
    Ok(answer.trim().to_string())
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
            &self.camnet,
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

/// A line-echo TCP server on its own thread; stops on drop.
pub struct EchoServer {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
    pub accepted: Arc<AtomicUsize>,
}

impl EchoServer {
    fn start(listener: TcpListener, name: String) -> EchoServer {
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(AtomicUsize::new(0));
        let (st, acc) = (stop.clone(), accepted.clone());
        let handle = std::thread::spawn(move || {
            while !st.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((s, _)) => {
                        acc.fetch_add(1, Ordering::SeqCst);
                        let name = name.clone();
                        std::thread::spawn(move || serve_echo(s, &name));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        EchoServer {
            stop,
            handle: Some(handle),
            accepted,
        }
    }
}

fn serve_echo(s: TcpStream, name: &str) {
    let _ = s.set_nonblocking(false);
    let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
    let mut w = s.try_clone().unwrap();
    for line in BufReader::new(s).lines() {
        let Ok(line) = line else { return };
        if w.write_all(format!("{name}:{line}\n").as_bytes()).is_err() {
            return;
        }
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}
