//! The LAN's clients of the agent: HTTP, SOAP (as a Command Center speaks it) and SSDP searches.

use super::*;

impl Lab {
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

    /// A raw request from `ns` (bytes as given); the whole answer until the server closes, or an error.
    pub fn raw_http(&self, ns: &str, to: SocketAddr, request: Vec<u8>) -> std::io::Result<String> {
        self.raw_http_waiting(ns, to, request, Duration::from_secs(5))
    }

    /// `raw_http` for a request that never completes: the answer comes only when the server gives
    /// up on it (its request deadline), so this waits up to 20 s.
    pub fn raw_http_held(
        &self,
        ns: &str,
        to: SocketAddr,
        request: Vec<u8>,
    ) -> std::io::Result<String> {
        self.raw_http_waiting(ns, to, request, Duration::from_secs(20))
    }

    fn raw_http_waiting(
        &self,
        ns: &str,
        to: SocketAddr,
        request: Vec<u8>,
        wait: Duration,
    ) -> std::io::Result<String> {
        self.in_ns(ns, move || {
            let mut s = TcpStream::connect_timeout(&to, Duration::from_secs(2))?;
            s.set_read_timeout(Some(wait))?;
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

    /// A SUBSCRIBE to the WANIPConnection events from `from` (one of `ns`'s addresses) with
    /// `callback`: the whole answer.
    pub fn subscribe_from(&self, ns: &str, from: Ipv4Addr, callback: String) -> String {
        let to = SocketAddr::from((LAN_IP, UPNP_PORT));
        self.in_ns(ns, move || {
            let mut s = tcp_connect_from(from, to, Duration::from_secs(2)).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let r = format!(
                "SUBSCRIBE /evt/IPConn HTTP/1.1\r\nHost: {LAN_IP}:{UPNP_PORT}\r\nCallback: <{callback}>\r\n\
                 NT: upnp:event\r\nTimeout: Second-300\r\nConnection: close\r\n\r\n"
            );
            s.write_all(r.as_bytes()).unwrap();
            let mut answer = String::new();
            let _ = s.read_to_string(&mut answer);
            answer
        })
    }

    /// `count` more addresses on host `ns` (aliases, as one machine can have many), from
    /// 192.168.50.200 on.
    pub fn aliases(&self, ns: &str, count: u8) -> Vec<Ipv4Addr> {
        (0..count)
            .map(|i| {
                let ip = Ipv4Addr::new(192, 168, 50, 200 + i);
                self.ip(ns, &["addr", "add", &format!("{ip}/24"), "dev", "eth0"]);
                ip
            })
            .collect()
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
        let body = soap_body(urn, action, args);
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

    /// `upnpc` in a namespace. Debian's miniupnpc calls an IGD whose WAN address is in TEST-NET "not
    /// connected"; `-i` accepts it anyway.
    pub fn upnpc(&self, ns: &str, args: &[&str]) -> (bool, String) {
        let mut full = vec!["upnpc", "-i"];
        full.extend_from_slice(args);
        let out = self.exec(ns, &full);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
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

    /// DeletePortMapping (v1) of TCP `port` from `ns`: the UPnP error code, 0 for success.
    pub fn delete_mapping(&self, ns: &str, port: u16) -> u16 {
        let p = port.to_string();
        let (status, body) = self.soap(
            ns,
            WANIP1,
            "DeletePortMapping",
            &[
                ("NewRemoteHost", ""),
                ("NewExternalPort", &p),
                ("NewProtocol", "TCP"),
            ],
        );
        upnp_error(status, &body)
    }

    /// Sends an M-SEARCH from `ns` to `to` and collects the answers that arrive within `wait`.
    /// How long the first answer to an M-SEARCH for `st` from `ns` took (`None`: none within `wait`).
    pub fn m_search_first(
        &self,
        ns: &str,
        to: SocketAddr,
        st: &str,
        wait: Duration,
    ) -> Option<Duration> {
        let msg = format!(
            "M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: \"ssdp:discover\"\r\nST: {st}\r\n\r\n"
        );
        self.in_ns(ns, move || {
            let s = UdpSocket::bind("0.0.0.0:0").unwrap();
            s.set_read_timeout(Some(wait)).unwrap();
            let t = Instant::now();
            s.send_to(msg.as_bytes(), to).ok()?;
            s.recv(&mut [0u8; 4096]).ok().map(|_| t.elapsed())
        })
    }

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
}

/// (status, body) of a raw HTTP answer.
/// The SOAP envelope of a call of `action` of service `urn` with `args`, as UPnP clients send it.
pub fn soap_body(urn: &str, action: &str, args: &[(&str, &str)]) -> String {
    let inner: String = args
        .iter()
        .map(|(k, v)| format!("<{k}>{v}</{k}>"))
        .collect();
    format!(
        "<?xml version=\"1.0\"?><s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\" s:encodingStyle=\"http://schemas.xmlsoap.org/soap/encoding/\"><s:Body><u:{action} xmlns:u=\"{urn}\">{inner}</u:{action}></s:Body></s:Envelope>"
    )
}

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

impl Lab {
    /// Validates real API answers (`{"method", "path", "status", "body"}`) against agent/openapi.yaml
    /// with openapi-core (PyPI); `partial`: not every documented operation need be among them.
    pub fn check_openapi(&self, answers: &[serde_json::Value], partial: bool) {
        let file = self.dir.join("answers.json");
        fs::write(&file, serde_json::to_string_pretty(answers).unwrap()).unwrap();
        let root = repo_root();
        let mut cmd = Command::new("python3");
        cmd.arg(root.join("tests/clients/openapi_check.py"))
            .arg(root.join("agent/openapi.yaml"))
            .arg(&file);
        if partial {
            cmd.arg("--partial");
        }
        let out = cmd
            .output()
            .expect("python3 runs (tests/run.sh and .ci/run install openapi-core)");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "OpenAPI validation failed:\n{text}");
        assert!(
            text.contains(&format!("{} answers checked, 0 failures", answers.len())),
            "{text}"
        );
    }

    /// `GET path` on the API, kept as an answer for `check_openapi`.
    pub fn api_answer(&self, path: &str) -> serde_json::Value {
        let body = self.api_get(path);
        serde_json::json!({"method": "GET", "path": path, "status": 200, "body": body.to_string()})
    }
}

/// The next NOTIFY on `listener` (answered 200), within `wait`.
pub fn notify_within(listener: &std::net::TcpListener, wait: Duration) -> Option<String> {
    listener.set_nonblocking(true).unwrap();
    let until = std::time::Instant::now() + wait;
    let (mut s, _) = loop {
        match listener.accept() {
            Ok(c) => break c,
            Err(_) if std::time::Instant::now() < until => {
                std::thread::sleep(Duration::from_millis(2))
            }
            Err(_) => return None,
        }
    };
    s.set_nonblocking(false).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..n]);
        if String::from_utf8_lossy(&raw).contains("</e:propertyset>") {
            break;
        }
    }
    let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    Some(String::from_utf8_lossy(&raw).to_string())
}
