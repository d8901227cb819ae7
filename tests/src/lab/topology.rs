//! The lab's network: the namespaces, links and bridges of the home network, and running things in them.

use super::*;

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
            peer: format!("{id}-peer"),
            camnet: format!("{id}-camnet"),
            internet: format!("{id}-internet"),
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

    /// A second host on `br-lan` that is neither camera nor Command Center, beside `other`.
    pub fn add_peer(&self) {
        must("ip", &["netns", "add", &self.peer]);
        self.ip(&self.peer, &["link", "set", "lo", "up"]);
        self.host_on_bridge(&self.peer, "lan-peer", LAN_DEV, PEER_IP, PEER_MAC, LAN_IP);
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

    /// The remote host routes the LAN subnet through the router's WAN address (a weak-host-model
    /// attacker, or one reaching the router when no firewall stands in the way).
    pub fn route_remote_to_lan(&self) {
        let via = WAN_IP.to_string();
        self.ip(
            &self.remote,
            &["route", "add", "192.168.50.0/24", "via", &via],
        );
    }

    /// One UDP datagram from `ns` to the router's LAN address: the host is heard (ARP, bridge FDB).
    pub fn say_hello_to_router(&self, ns: &str) {
        self.in_ns(ns, || {
            let s = UdpSocket::bind("0.0.0.0:0").unwrap();
            let _ = s.send_to(b"hello", (LAN_IP, 9));
        });
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

    /// Runs `f` on a fresh thread that has entered namespace `ns`; sockets it makes live there.
    pub fn in_ns<T: Send + 'static>(&self, ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
        self.in_ns_thread(ns, f)
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
    }

    /// Teaches the router's bridge `count` forged MACs (02:00:…) on `port`, as frames from them would:
    /// learned (dynamic) entries, added in one batch.
    pub fn flood_fdb(&self, port: &str, count: u32) {
        let batch: String = (0..count)
            .map(|i| {
                let b = i.to_be_bytes();
                format!(
                    "fdb add 02:00:{:02x}:{:02x}:{:02x}:{:02x} dev {port} master dynamic\n",
                    b[0], b[1], b[2], b[3]
                )
            })
            .collect();
        let file = self.dir.join("fdb.batch");
        fs::write(&file, batch).unwrap();
        let out = self.exec(&self.router, &["bridge", "-batch", file.to_str().unwrap()]);
        assert!(out.status.success(), "{out:?}");
    }

    /// The WAN address changes to `to` (/24): the new one is added, then the lab's WAN_IP removed
    /// (another subnet: removing a primary address takes the secondaries of its subnet with it).
    pub fn move_wan_address(&self, to: &str) {
        let add = format!("{to}/24");
        self.ip(&self.router, &["addr", "add", &add, "dev", WAN_DEV]);
        let del = format!("{WAN_IP}/24");
        self.ip(&self.router, &["addr", "del", &del, "dev", WAN_DEV]);
    }

    /// `in_ns` without waiting: the thread, to join when its work (e.g. an attack) should end.
    pub fn in_ns_thread<T: Send + 'static>(
        &self,
        ns: &str,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> std::thread::JoinHandle<T> {
        let path = format!("/run/netns/{ns}");
        std::thread::spawn(move || {
            let file = fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
            nix::sched::setns(file, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
            f()
        })
    }
}

static SEQ: AtomicUsize = AtomicUsize::new(0);

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

fn pid_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}
