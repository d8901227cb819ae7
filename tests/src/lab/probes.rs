//! Real packets through the lab: TCP and UDP probes between namespaces, and an echo server to reach.

use super::*;

impl Lab {
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

    /// Polls `probe` every 10 ms until it holds; how long it took, or `None` after `limit`.
    /// A UPnP device in `responder` (a member of the SSDP group on its address `member`) answers the
    /// M-SEARCHes it hears within 4 s unicast to their sender, with LOCATION `location`, as devices
    /// do; meanwhile `from` searches the group. The answers `from` got within 3 s, with their senders.
    pub fn ssdp_search_answered(
        &self,
        from: &str,
        responder: &str,
        member: Ipv4Addr,
        location: &str,
    ) -> Vec<(SocketAddr, String)> {
        let group = Ipv4Addr::new(239, 255, 255, 250);
        let device = self.in_ns(responder, move || {
            let s = socket_with_reuse_udp(1900);
            s.join_multicast_v4(&group, &member)
                .expect("join the SSDP group");
            s
        });
        let answer = format!(
            "HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=1800\r\nST: upnp:rootdevice\r\nUSN: uuid:lab-device::upnp:rootdevice\r\nLOCATION: {location}\r\n\r\n"
        );
        let answering = std::thread::spawn(move || {
            let deadline = std::time::Instant::now() + Duration::from_secs(4);
            let mut buf = [0u8; 2048];
            while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
                device
                    .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                    .unwrap();
                let Ok((n, searcher)) = device.recv_from(&mut buf) else {
                    break;
                };
                if buf[..n].starts_with(b"M-SEARCH") {
                    let _ = device.send_to(answer.as_bytes(), searcher);
                }
            }
        });
        let search = "M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: \"ssdp:discover\"\r\nMX: 1\r\nST: upnp:rootdevice\r\n\r\n";
        let got = self.in_ns(from, move || {
            let s = UdpSocket::bind("0.0.0.0:0").unwrap();
            s.set_multicast_ttl_v4(2).unwrap();
            let _ = s.send_to(search.as_bytes(), (group, 1900));
            let deadline = std::time::Instant::now() + Duration::from_secs(3);
            let mut out = Vec::new();
            let mut buf = [0u8; 2048];
            while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
                s.set_read_timeout(Some(left.max(Duration::from_millis(1))))
                    .unwrap();
                match s.recv_from(&mut buf) {
                    Ok((n, at)) => out.push((at, String::from_utf8_lossy(&buf[..n]).to_string())),
                    Err(_) => break,
                }
            }
            out
        });
        answering.join().unwrap();
        got
    }

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
}

/// A UDP socket on `port` (0: any) with SO_REUSEADDR, so tests can share well-known ports.
fn socket_with_reuse_udp(port: u16) -> UdpSocket {
    let local = std::net::SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port);
    let fd = bound_with_reuse(nix::sys::socket::SockType::Datagram, local)
        .unwrap_or_else(|e| panic!("bind udp {port}: {e}"));
    UdpSocket::from(fd)
}

/// A socket of `ty` bound to `local` with SO_REUSEADDR.
fn bound_with_reuse(
    ty: nix::sys::socket::SockType,
    local: std::net::SocketAddrV4,
) -> std::io::Result<std::os::fd::OwnedFd> {
    use nix::sys::socket::{
        bind, setsockopt, socket, sockopt, AddressFamily, SockFlag, SockaddrIn,
    };
    let fd = socket(AddressFamily::Inet, ty, SockFlag::empty(), None)?;
    setsockopt(&fd, sockopt::ReuseAddr, &true)?;
    bind(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        &SockaddrIn::from(local),
    )?;
    Ok(fd)
}

/// One line out, one line back, from an optional fixed source port, within `wait`.
pub fn exchange_within(
    to: SocketAddr,
    line: &str,
    sport: Option<u16>,
    wait: Duration,
) -> std::io::Result<String> {
    let s = match sport {
        None => TcpStream::connect_timeout(&to, wait)?,
        Some(p) => connect_bound(
            std::net::SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, p),
            to,
            wait,
        )?,
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

/// A TCP connection from a chosen local address (one of several a host has), within `wait`.
pub fn tcp_connect_from(
    from: Ipv4Addr,
    to: SocketAddr,
    wait: Duration,
) -> std::io::Result<TcpStream> {
    connect_bound(std::net::SocketAddrV4::new(from, 0), to, wait)
}

/// A TCP connection from `local` (address or port fixed) to `to`, within `wait`.
fn connect_bound(
    local: std::net::SocketAddrV4,
    to: SocketAddr,
    wait: Duration,
) -> std::io::Result<TcpStream> {
    let fd = bound_with_reuse(nix::sys::socket::SockType::Stream, local)?;
    let s = TcpStream::from(fd);
    // connect with a deadline: nonblocking connect, then wait for writability.
    connect_deadline(&s, to, wait)?;
    Ok(s)
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
