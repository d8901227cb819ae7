//! Notices ruleset changes made by anyone (`fw4 reload`, `nft flush ruleset`, a user's `nft delete …`):
//! the kernel multicasts every nftables change on the NFNLGRP_NFTABLES netlink group. We only need to
//! know *that* something changed; the daemon then reads our tables back and compares them.

use crate::netlink;
use nix::sys::socket::SockProtocol;
use std::os::fd::OwnedFd;

/// `NFNLGRP_NFTABLES` from linux/netfilter/nfnetlink.h.
const NFNLGRP_NFTABLES: u32 = 7;

/// A subscription to nftables change events.
pub struct RulesetEvents {
    fd: OwnedFd,
}

impl RulesetEvents {
    pub fn subscribe() -> nix::Result<Self> {
        let fd = netlink::open(SockProtocol::NetlinkNetFilter, 1 << (NFNLGRP_NFTABLES - 1))?;
        Ok(RulesetEvents { fd })
    }

    /// Blocks until the ruleset changes (or events were lost, which means the same).
    pub fn wait(&self) -> nix::Result<()> {
        netlink::wait(&self.fd)
    }
}
