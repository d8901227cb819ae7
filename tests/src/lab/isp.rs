//! Double NAT: the `remote` namespace becomes an ISP's router in front of ours, running Debian's
//! miniupnpd (UPnP IGD, NAT-PMP and PCP) on its LAN side, with a host `internet` beyond it.
//!
//! The router's WAN gets the private 192.168.0.2/24 with its default route via the ISP router
//! (192.168.0.1); the ISP router masquerades out of `isp-wan` (203.0.113.1, the address the internet
//! sees) and forwards what miniupnpd maps. miniupnpd refuses to map while its external address is
//! reserved (TEST-NET-3), so it is told `ext_ip=192.0.3.1`: that only changes the address it reports;
//! no packet to or from it is ever sent.

use super::*;

/// The chains miniupnpd 2.3 (nftables backend) fills, with its default names (what its
/// `nft_init.sh` sets up on Debian), and the ISP's masquerade.
pub const MINIUPNPD_CHAINS: &str = "table inet filter {
    chain forward { type filter hook forward priority 0; policy accept; jump miniupnpd; }
    chain miniupnpd { }
    chain prerouting { type nat hook prerouting priority -100; policy accept; jump prerouting_miniupnpd; }
    chain postrouting { type nat hook postrouting priority 100; policy accept; jump postrouting_miniupnpd; }
    chain prerouting_miniupnpd { }
    chain postrouting_miniupnpd { }
}
";

/// The ISP's miniupnpd (killed when dropped), and what it was started with.
pub struct Isp {
    ns: String,
    /// What must listen before miniupnpd counts as started: `udp :5351`, `udp :1900`, `tcp :5000`.
    sockets: Vec<(&'static str, &'static str)>,
    conf: PathBuf,
    pid_file: PathBuf,
    child: Option<Child>,
}

impl Lab {
    /// Puts an ISP router between our router and the internet (see the module doc); miniupnpd
    /// answers `protocols` ("upnp", "natpmp": NAT-PMP and PCP) or none.
    pub fn behind_isp(&self, protocols: &[&str]) -> Isp {
        self.behind_isp_allowing(protocols, "1024-65535")
    }

    /// `behind_isp` with miniupnpd mapping only the external `ports` (`FIRST-LAST`) for our router.
    pub fn behind_isp_allowing(&self, protocols: &[&str], ports: &str) -> Isp {
        let (r, isp) = (self.router.as_str(), self.remote.as_str());
        // Our WAN: private, default route via the ISP router.
        self.ip(r, &["addr", "flush", "dev", WAN_DEV]);
        self.ip(
            r,
            &[
                "addr",
                "add",
                &format!("{PRIVATE_WAN_IP}/24"),
                "dev",
                WAN_DEV,
            ],
        );
        self.ip(
            r,
            &["route", "add", "default", "via", &ISP_LAN_IP.to_string()],
        );
        self.ip(isp, &["addr", "flush", "dev", "eth0"]);
        self.ip(
            isp,
            &["addr", "add", &format!("{ISP_LAN_IP}/24"), "dev", "eth0"],
        );
        // The ISP's own WAN, towards the internet host.
        must("ip", &["netns", "add", &self.internet]);
        self.ip(&self.internet, &["link", "set", "lo", "up"]);
        self.ip(
            isp,
            &[
                "link",
                "add",
                "isp-wan",
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "netns",
                &self.internet,
            ],
        );
        self.ip(
            isp,
            &["addr", "add", &format!("{WAN_IP}/24"), "dev", "isp-wan"],
        );
        self.ip(isp, &["link", "set", "isp-wan", "up"]);
        let internet = self.internet.as_str();
        self.ip(
            internet,
            &["addr", "add", &format!("{REMOTE_IP}/24"), "dev", "eth0"],
        );
        self.ip(internet, &["link", "set", "eth0", "up"]);
        self.sh(isp, "sysctl -qw net.ipv4.ip_forward=1");
        let rules = format!(
            "{MINIUPNPD_CHAINS}table inet isp {{\n chain masq {{ type nat hook postrouting priority 110; oifname \"isp-wan\" masquerade; }}\n}}\n"
        );
        let out = self.exec_with_stdin(isp, &["nft", "-f", "-"], rules.as_bytes());
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let enable = |p: &str| if protocols.contains(&p) { "yes" } else { "no" };
        let conf = self.write_config(
            "isp-miniupnpd.conf",
            &format!(
                "ext_ifname=isp-wan\next_ip={ISP_REPORTED_IP}\nlistening_ip=eth0\nhttp_port=5000\n\
                 enable_upnp={}\nenable_natpmp={}\nsecure_mode=yes\nlease_file={}\n\
                 allow {ports} 192.168.0.0/24 1024-65535\ndeny 0-65535 0.0.0.0/0 0-65535\n",
                enable("upnp"),
                enable("natpmp"),
                self.dir.join("isp-miniupnpd.leases").display()
            ),
        );
        let mut sockets = Vec::new();
        if protocols.contains(&"natpmp") {
            sockets.push(("-lnu", ":5351 "));
        }
        if protocols.contains(&"upnp") {
            sockets.extend([("-lnu", ":1900 "), ("-lnt", ":5000 ")]);
        }
        let mut isp_router = Isp {
            ns: isp.to_string(),
            sockets,
            conf,
            pid_file: self.dir.join("isp-miniupnpd.pid"),
            child: None,
        };
        if !protocols.is_empty() {
            isp_router.start();
        }
        isp_router
    }

    /// When the ISP router's lease of TCP `port` runs out (unix seconds), from miniupnpd's lease file
    /// (`TCP:port:client:port:expiry:description`).
    pub fn isp_lease_expiry(&self, port: u16) -> Option<u64> {
        let leases = fs::read_to_string(self.dir.join("isp-miniupnpd.leases")).ok()?;
        leases.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() >= 5 && f[0] == "TCP" && f[1] == port.to_string())
                .then(|| f[4].parse().ok())
                .flatten()
        })
    }

    /// The TCP ports the ISP router forwards (miniupnpd's DNAT rules), sorted.
    pub fn isp_forwards(&self) -> Vec<u16> {
        let out = self.exec(
            &self.remote,
            &[
                "nft",
                "list",
                "chain",
                "inet",
                "filter",
                "prerouting_miniupnpd",
            ],
        );
        let text = String::from_utf8_lossy(&out.stdout);
        let mut ports: Vec<u16> = text
            .lines()
            .filter_map(|l| l.split("th dport ").nth(1))
            .filter_map(|rest| rest.split_whitespace().next()?.parse().ok())
            .collect();
        ports.sort_unstable();
        ports
    }
}

impl Isp {
    /// Starts miniupnpd and waits until every service it runs listens (an SSDP socket bound after
    /// its HTTP one made a first search go unanswered).
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "miniupnpd runs already");
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns, "miniupnpd", "-d", "-f"])
            .arg(&self.conf)
            .arg("-P")
            .arg(&self.pid_file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("miniupnpd (apt install miniupnpd-nftables)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        let ns = self.ns.clone();
        loop {
            let listening = self.sockets.iter().all(|(kind, port)| {
                let out = cmd("ip", &["netns", "exec", &ns, "ss", kind]);
                String::from_utf8_lossy(&out.stdout).contains(port)
            });
            if listening {
                return;
            }
            assert!(Instant::now() < deadline, "miniupnpd did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops miniupnpd as a reboot would: its process and every mapping it held are gone.
    pub fn crash(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        for chain in ["prerouting_miniupnpd", "postrouting_miniupnpd", "miniupnpd"] {
            cmd(
                "ip",
                &[
                    "netns", "exec", &self.ns, "nft", "flush", "chain", "inet", "filter", chain,
                ],
            );
        }
        if let Some(dir) = self.pid_file.parent() {
            let _ = fs::remove_file(dir.join("isp-miniupnpd.leases"));
        }
    }
}

impl Drop for Isp {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
