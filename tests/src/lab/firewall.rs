//! The router's firewall: fw4's ruleset (fixture, WAN device, the package's include) and our tables.

use super::*;

impl Lab {
    pub fn nft(&self, args: &[&str]) -> Output {
        let mut full = vec!["nft"];
        full.extend_from_slice(args);
        self.exec(&self.router, &full)
    }

    /// `nft -f -` in the router with `text` (add `-j` first for JSON).
    pub fn nft_stdin(&self, text: &str) -> Output {
        self.exec_with_stdin(&self.router, &["nft", "-f", "-"], text.as_bytes())
    }

    /// fw4 as it renders the camera network's zone the remedy writes (`config zone 'wilifecam'` on
    /// br-cam: input rejected but for its rules, DHCP and SSDP to the agent's relay): the zone's
    /// accepted input, ahead of fw4's final reject. Its forwarding stays rejected.
    pub fn add_fw4_camera_zone(&self) {
        let out = self.nft(&[
            "insert",
            "rule",
            "inet",
            "fw4",
            "input",
            "iifname",
            CAM_DEV,
            "udp",
            "dport",
            "{ 67, 1900-1901 }",
            "accept",
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
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

    /// The UPnP mappings the kernel holds, as `(external port, internal host)`: the elements of map
    /// `upnp_addr` (empty when there is no such map).
    pub fn mappings_in_force(&self) -> Vec<(u16, String)> {
        let out = self.nft(&["-j", "list", "map", "inet", "wilife", "upnp_addr"]);
        if !out.status.success() {
            return Vec::new();
        }
        let listing: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        listing["nftables"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|o| o["map"]["elem"].as_array())
            .flatten()
            .map(|pair| {
                let port = pair[0]["elem"]["val"].as_u64().unwrap() as u16;
                (port, pair[1].as_str().unwrap().to_string())
            })
            .collect()
    }

    /// An nft that writes each of its command lines to a file, then runs the real nft (same pid: `exec`).
    pub fn counting_nft(&self) -> CountingNft {
        let log = self.dir.join("nft-runs");
        let wrapper = self.dir.join("nft-counting");
        fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\necho \"$*\" >> {}\nexec nft \"$@\"\n",
                log.display()
            ),
        )
        .unwrap();
        fs::set_permissions(
            &wrapper,
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        CountingNft { wrapper, log }
    }
}

/// The nft wrapper of `Lab::counting_nft`: give `wrapper` to `--nft`, read what ran with `runs`.
pub struct CountingNft {
    pub wrapper: PathBuf,
    log: PathBuf,
}

impl CountingNft {
    /// The command line of every nft run so far, in order.
    pub fn runs(&self) -> Vec<String> {
        fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}
