//! The agent under test: its configs, starting it (as OpenWrt would), signals, its log and its API.

use super::*;

impl Lab {
    /// Writes a config file into the lab directory and returns its path.
    pub fn write_config(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.join(name);
        fs::write(&p, text).unwrap();
        p
    }

    /// A config for this lab: `mode` direct access, the cc as the Command Center, plus `extra` lines.
    pub fn config(&self, mode: &str, extra: &str) -> String {
        format!(
            "config agent 'main'\n\toption direct_access '{mode}'\n\toption wan_device '{WAN_DEV}'\n\tlist lan_device '{LAN_DEV}'\n\toption api_port '{API_PORT}'\n\toption api_token_file '{}'\n\toption state_dir '{}'\n\nconfig direct 'direct'\n\toption ports '20570-20575'\n\nconfig command_center\n\toption name 'office-pc'\n\toption ip '{CC_IP}'\n{extra}",
            self.token_file().display(),
            self.dir.join("state").display()
        )
    }

    /// The lab's API token file (absent until `set_token`: API writes are off).
    pub fn token_file(&self) -> PathBuf {
        self.dir.join("api_token")
    }

    /// Gives the agent `token` for API writes, in a root-only file as the package keeps it (read at
    /// the agent's start and on SIGHUP).
    pub fn set_token(&self, token: &str) {
        use std::os::unix::fs::PermissionsExt;
        let p = self.token_file();
        fs::write(&p, format!("{token}\n")).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
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

    /// Starts the agent in mode upnp and waits for the IGD (HTTP on the LAN address, SSDP).
    pub fn start_upnp_agent(&mut self, config: &Path) {
        self.start_upnp_agent_with(config, &[]);
    }

    /// `start_upnp_agent` with more arguments.
    pub fn start_upnp_agent_with(&mut self, config: &Path, extra: &[&str]) {
        self.start_agent(config, extra);
        self.wait_log(
            &format!("UPnP IGD listening on http://{LAN_IP}:{UPNP_PORT}"),
            Duration::from_secs(5),
        );
        self.wait_log("SSDP listening", Duration::from_secs(5));
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

    /// GET `/api/v1/status` from the router's loopback, parsed.
    pub fn api_status(&self) -> serde_json::Value {
        self.api_get("/api/v1/status")
    }

    /// POST to the API from the router's loopback: the status and the JSON answer.
    pub fn api_post(&self, path: &str) -> (u16, serde_json::Value) {
        let to = SocketAddr::from((Ipv4Addr::LOCALHOST, API_PORT));
        let (code, body) = self
            .http(&self.router, to, "POST", path, "127.0.0.1:8780")
            .expect("API answers");
        (
            code,
            serde_json::from_str(&body).expect("the API answers JSON"),
        )
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
}
