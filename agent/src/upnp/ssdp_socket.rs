//! The SSDP sockets the IGD's discovery and the camera relay share: port 1900 with the receiving
//! device of every datagram (IP_PKTINFO), the group joined on chosen addresses, and one sender bound
//! to each address (the kernel sends multicast out of the device of the bound address).

use super::ssdp::{GROUP, PORT};
use nix::sys::socket::{
    bind, recvmsg, setsockopt, socket, sockopt, AddressFamily, ControlMessageOwned, MsgFlags,
    SockFlag, SockType, SockaddrIn,
};
use std::collections::HashMap;
use std::io::IoSliceMut;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;

/// Port 1900 at `addr` (any address; or the group, which hears the group only and leaves unicast
/// to the socket at any address), shared with other SSDP sockets, telling each datagram's device.
pub fn port_socket(addr: Ipv4Addr) -> std::io::Result<UdpSocket> {
    let fd = socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    setsockopt(&fd, sockopt::ReuseAddr, &true)?;
    setsockopt(&fd, sockopt::Ipv4PacketInfo, &true)?;
    bind(
        fd.as_raw_fd(),
        &SockaddrIn::from(SocketAddrV4::new(addr, PORT)),
    )?;
    Ok(UdpSocket::from(fd))
}

/// One datagram as `port_socket` hears it.
pub struct Heard {
    pub len: usize,
    pub from: SocketAddrV4,
    /// The device it came in on.
    pub ifindex: u32,
    /// Sent to the group (not to one of our addresses).
    pub to_group: bool,
}

/// The next datagram into `buf`; `None` on a timeout, EAGAIN or EINTR (the caller's loop comes back).
pub fn receive(sock: &UdpSocket, buf: &mut [u8], flags: MsgFlags) -> Option<Heard> {
    let mut iov = [IoSliceMut::new(buf)];
    let mut cmsg = nix::cmsg_space!(nix::libc::in_pktinfo);
    let msg = recvmsg::<SockaddrIn>(sock.as_raw_fd(), &mut iov, Some(&mut cmsg), flags).ok()?;
    let (mut ifindex, mut dst) = (0, Ipv4Addr::UNSPECIFIED);
    for c in msg.cmsgs().into_iter().flatten() {
        if let ControlMessageOwned::Ipv4PacketInfo(pi) = c {
            ifindex = pi.ipi_ifindex as u32;
            dst = Ipv4Addr::from(u32::from_be(pi.ipi_addr.s_addr));
        }
    }
    Some(Heard {
        len: msg.bytes,
        from: SocketAddrV4::from(msg.address?),
        ifindex,
        to_group: dst == GROUP,
    })
}

/// Joins the group on each (device, address) of `addrs` not joined yet (a join that failed is tried
/// again next time) and forgets those gone; `who` names the caller in the log.
pub fn join(
    sock: &UdpSocket,
    joined: &mut Vec<(u32, Ipv4Addr)>,
    addrs: &[(u32, Ipv4Addr)],
    who: &str,
) {
    for &(index, ip) in addrs {
        if joined.contains(&(index, ip)) {
            continue;
        }
        match sock.join_multicast_v4(&GROUP, &ip) {
            Ok(()) => {
                debug!("{who}: joined {GROUP} on {ip}");
                joined.push((index, ip));
            }
            Err(e) if e.raw_os_error() == Some(nix::libc::EADDRINUSE) => joined.push((index, ip)),
            Err(e) => warning!("{who}: cannot join {GROUP} on {ip}: {e}"),
        }
    }
    joined.retain(|j| addrs.contains(j));
}

/// One sender per address of `addrs` (bound to it at `port`, 0 for any), multicast `ttl`, no loop;
/// senders of addresses gone are closed.
pub fn senders(
    senders: &mut HashMap<Ipv4Addr, UdpSocket>,
    addrs: &[Ipv4Addr],
    port: u16,
    ttl: u32,
    who: &str,
) {
    senders.retain(|ip, _| addrs.contains(ip));
    for &ip in addrs {
        if senders.contains_key(&ip) {
            continue;
        }
        let sender = UdpSocket::bind((ip, port)).and_then(|s| {
            s.set_multicast_ttl_v4(ttl)?;
            s.set_multicast_loop_v4(false)?;
            s.set_nonblocking(true)?;
            Ok(s)
        });
        match sender {
            Ok(s) => {
                senders.insert(ip, s);
            }
            Err(e) => warning!("{who}: cannot send from {ip}: {e}"),
        }
    }
}
