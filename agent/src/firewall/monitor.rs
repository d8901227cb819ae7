//! Notices ruleset changes made by anyone (`fw4 reload`, `nft flush ruleset`, a user's `nft delete …`):
//! the kernel multicasts every nftables change on the NFNLGRP_NFTABLES netlink group. We only need to
//! know *that* something changed; the daemon then reads our table back and compares it.

use nix::errno::Errno;
use nix::sys::socket::{
    bind, recv, setsockopt, socket, sockopt, AddressFamily, MsgFlags, NetlinkAddr,
};
use nix::sys::socket::{SockFlag, SockProtocol, SockType};
use std::os::fd::{AsRawFd, OwnedFd};

/// `NFNLGRP_NFTABLES` from linux/netfilter/nfnetlink.h.
const NFNLGRP_NFTABLES: u32 = 7;

/// A subscription to nftables change events.
pub struct RulesetEvents {
    fd: OwnedFd,
}

impl RulesetEvents {
    pub fn subscribe() -> nix::Result<Self> {
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkNetFilter,
        )?;
        // A big buffer rides out bursts (fw4 reload emits hundreds of messages); overflow is harmless
        // because any event, lost or not, only leads to a read-back.
        let _ = setsockopt(&fd, sockopt::RcvBuf, &(1 << 20));
        bind(
            fd.as_raw_fd(),
            &NetlinkAddr::new(0, 1 << (NFNLGRP_NFTABLES - 1)),
        )?;
        Ok(RulesetEvents { fd })
    }

    /// Blocks until the ruleset changes (or events were lost, which means the same).
    pub fn wait(&self) -> nix::Result<()> {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::empty()) {
                Ok(_) | Err(Errno::ENOBUFS) => return Ok(()),
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(e),
            }
        }
    }
}
