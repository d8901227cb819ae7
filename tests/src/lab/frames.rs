//! Raw 64-byte streams for the data-path benchmark: whole Ethernet frames handed to a host's `eth0`
//! by an AF_PACKET socket, 256 per `sendmmsg`, as fast as the kernel takes them. The kernel forwards
//! each one inline (veth, bridge, our hooks, the next veth) before the call returns, so the rate is
//! the router path's, not a sender's: iperf3's UDP client was the bottleneck (150-200 kpps), and its
//! noise (±15 %) drowned what a rule costs. The receiver counts them on its device (`rx_packets`)
//! and drops them at once (`sink`), so nothing answers and nothing is queued.

use super::*;
use nix::libc;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

/// The source port of every raw frame: what the receivers' sink drops.
pub const RAW_SPORT: u16 = 40404;

/// A 64-byte UDP datagram or TCP segment (ACK: never a connection opener), as one Ethernet frame.
#[derive(Clone, Copy)]
pub struct Frame {
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub sport: u16,
    pub dport: u16,
    pub tcp: bool,
}

impl Frame {
    pub fn bytes(&self) -> Vec<u8> {
        let payload = [0x5au8; 64];
        let l4_len = if self.tcp { 20 } else { 8 } + payload.len();
        let mut l4 = Vec::with_capacity(l4_len);
        l4.extend(self.sport.to_be_bytes());
        l4.extend(self.dport.to_be_bytes());
        if self.tcp {
            l4.extend(1u32.to_be_bytes()); // seq
            l4.extend(1u32.to_be_bytes()); // ack
            l4.extend([0x50, 0x10]); // 20-byte header, ACK
            l4.extend(512u16.to_be_bytes()); // window
            l4.extend([0, 0, 0, 0]); // checksum, urgent pointer
        } else {
            l4.extend((l4_len as u16).to_be_bytes());
            l4.extend([0, 0]);
        }
        l4.extend(payload);
        // Real checksums: conntrack checks them on the routed path (an AF_PACKET frame is not
        // CHECKSUM_UNNECESSARY) and would call a bad one invalid.
        let proto = if self.tcp { 6u8 } else { 17 };
        let mut pseudo = Vec::new();
        pseudo.extend(self.src.octets());
        pseudo.extend(self.dst.octets());
        pseudo.extend([0, proto]);
        pseudo.extend((l4_len as u16).to_be_bytes());
        pseudo.extend(&l4);
        let sum = checksum(&pseudo).to_be_bytes();
        let at = if self.tcp { 16 } else { 6 };
        l4[at..at + 2].copy_from_slice(&sum);
        let mut ip = vec![0x45, 0];
        ip.extend(((20 + l4_len) as u16).to_be_bytes());
        ip.extend([0, 0, 0x40, 0, 64, proto, 0, 0]);
        ip.extend(self.src.octets());
        ip.extend(self.dst.octets());
        let sum = checksum(&ip).to_be_bytes();
        ip[10..12].copy_from_slice(&sum);
        let mut frame = Vec::new();
        frame.extend(self.dst_mac);
        frame.extend(self.src_mac);
        frame.extend([0x08, 0x00]);
        frame.extend(ip);
        frame.extend(l4);
        frame
    }
}

/// The Internet checksum (RFC 1071).
fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for pair in data.chunks(2) {
        let word = u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]);
        sum += u32::from(word);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

pub fn parse_mac(text: &str) -> [u8; 6] {
    let mut mac = [0u8; 6];
    for (i, part) in text.split(':').enumerate() {
        mac[i] = u8::from_str_radix(part, 16).expect("a MAC");
    }
    mac
}

impl Lab {
    /// The MAC of `dev` in `ns`.
    pub fn mac_of(&self, ns: &str, dev: &str) -> [u8; 6] {
        let out = self.ip(ns, &["-j", "link", "show", dev]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        parse_mac(v[0]["address"].as_str().unwrap())
    }

    /// Frames received on `eth0` of `ns` so far.
    pub fn rx_packets(&self, ns: &str) -> u64 {
        let out = self.ip(ns, &["-j", "-s", "link", "show", "eth0"]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v[0]["stats64"]["rx"]["packets"].as_u64().unwrap()
    }

    /// Steers the frames arriving on the router's ports to CPU `cpu` (RPS), so the sender, on the
    /// other CPU, only makes frames, and `cpu` runs the whole path: the router's, then the
    /// receiver's. The path, always busy, then sets the rate: frames it cannot take are dropped
    /// at its queue, not half-processed.
    pub fn steer_router_ports(&self, cpu: usize) {
        let mask = format!("{:x}", 1u32 << cpu);
        let script =
            format!("for q in /sys/class/net/*/queues/rx-*/rps_cpus; do echo {mask} > $q; done");
        self.sh(&self.router, &script);
    }

    /// The bridge knows where each LAN host is, as on a LAN whose hosts talk: without it, a frame to
    /// a receiver that only listens is flooded to every port (the bridge forgets a silent MAC after
    /// 300 s), and each stream would pay for its copies to the other ports.
    pub fn pin_lan_hosts(&self) {
        for (port, mac) in [
            ("lan-cc", CC_MAC),
            ("lan-cam", CAMERA_MAC),
            ("lan-other", OTHER_MAC),
            ("lan-peer", PEER_MAC),
        ] {
            if !self
                .exec(&self.router, &["ip", "link", "show", port])
                .status
                .success()
            {
                continue;
            }
            self.sh(
                &self.router,
                &format!("bridge fdb replace {mac} dev {port} master static"),
            );
        }
    }

    /// The receiver's side: raw frames (from or to port RAW_SPORT: a stream, or the answer that
    /// made it established) are dropped on arrival, before any socket lookup, so they draw no ICMP
    /// or RST (a RST would close the flow for conntrack). Counted on the device before that.
    pub fn sink(&self, ns: &str) {
        let rules = format!(
            "table inet sink {{\n chain pre {{\n  type filter hook prerouting priority raw - 10;\n  \
             meta l4proto {{ tcp, udp }} th sport {RAW_SPORT} drop\n  \
             meta l4proto {{ tcp, udp }} th dport {RAW_SPORT} drop\n }}\n}}\n"
        );
        let out = self.exec_with_stdin(ns, &["nft", "-f", "-"], rules.as_bytes());
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Sends `frame` out of `eth0` of `from` for `secs` on CPU `cpu`; the frames `to` received per
    /// second. `answer`, a frame `to` sends back once the flow began: a routed flow is then
    /// established for conntrack, as real flows are (an unanswered one stays `new` packet after
    /// packet, which no real stream is).
    pub fn raw_stream(
        &self,
        from: &str,
        to: &str,
        frame: Frame,
        answer: Option<Frame>,
        secs: u64,
        cpu: usize,
    ) -> f64 {
        let bytes = frame.bytes();
        if let Some(answer) = answer {
            let first = bytes.clone();
            self.in_ns(from, move || blast(&first, Duration::ZERO, cpu));
            let back = answer.bytes();
            self.in_ns(to, move || blast(&back, Duration::ZERO, cpu));
        }
        let before = self.rx_packets(to);
        let wall = self.in_ns(from, move || blast(&bytes, Duration::from_secs(secs), cpu));
        // Let what is in flight land.
        std::thread::sleep(Duration::from_millis(50));
        (self.rx_packets(to) - before) as f64 / wall.as_secs_f64()
    }
}

/// Sends `frame` out of eth0 of this thread's namespace for `time` (one batch at least); how long it
/// really sent.
fn blast(frame: &[u8], time: Duration, cpu: usize) -> Duration {
    let mut set = nix::sched::CpuSet::new();
    set.set(cpu).unwrap();
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set).unwrap();
    // SAFETY: plain libc calls on a socket this function owns, with buffers that outlive them.
    unsafe {
        let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0);
        assert!(
            fd >= 0,
            "AF_PACKET socket: {}",
            std::io::Error::last_os_error()
        );
        let fd = OwnedFd::from_raw_fd(fd);
        let name = std::ffi::CString::new("eth0").unwrap();
        let mut addr: libc::sockaddr_ll = std::mem::zeroed();
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_ifindex = libc::if_nametoindex(name.as_ptr()) as i32;
        let bound = libc::bind(
            fd.as_raw_fd(),
            &addr as *const libc::sockaddr_ll as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_ll>() as u32,
        );
        assert_eq!(bound, 0, "bind: {}", std::io::Error::last_os_error());
        const BATCH: usize = 256;
        let mut iov = libc::iovec {
            iov_base: frame.as_ptr() as *mut libc::c_void,
            iov_len: frame.len(),
        };
        let mut msgs: Vec<libc::mmsghdr> = (0..BATCH)
            .map(|_| {
                let mut m: libc::mmsghdr = std::mem::zeroed();
                m.msg_hdr.msg_iov = &mut iov;
                m.msg_hdr.msg_iovlen = 1;
                m
            })
            .collect();
        let start = Instant::now();
        loop {
            libc::sendmmsg(fd.as_raw_fd(), msgs.as_mut_ptr(), BATCH as u32, 0);
            if start.elapsed() >= time {
                break;
            }
        }
        start.elapsed()
    }
}
