//! Notices ruleset changes made by anyone else (`fw4 reload`, `nft flush ruleset`, a user's
//! `nft delete …`): the kernel multicasts every nftables change on the NFNLGRP_NFTABLES netlink group,
//! and closes each committed transaction with a NEWGEN message naming the process that made it.
//! Generations our own nft processes committed are no news, so an idle agent reads nothing back and
//! spawns nothing; the daemon reads our tables back only after someone else's change.

use crate::netlink::{self, attributes, messages};
use nix::errno::Errno;
use nix::sys::socket::{recv, MsgFlags, SockProtocol};
use std::collections::VecDeque;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// `NFNLGRP_NFTABLES` from linux/netfilter/nfnetlink.h.
const NFNLGRP_NFTABLES: u32 = 7;
/// `NFT_MSG_NEWGEN` in the nftables subsystem (`NFNL_SUBSYS_NFTABLES << 8`), linux/netfilter/nf_tables.h.
const NFT_MSG_NEWGEN: u16 = (10 << 8) | 15;
/// `NFTA_GEN_PROC_PID`: the pid of the committing process (big-endian u32).
const NFTA_GEN_PROC_PID: u16 = 2;
/// `struct nfgenmsg` before the attributes.
const NFGENMSG: usize = 4;
/// Our nft processes remembered (one apply runs two or three).
const OWN_KEPT: usize = 16;
/// How long after it ended a process's pid still counts as ours: a pid is reused only much later.
const OWN_GRACE: Duration = Duration::from_secs(2);

/// The pids of the nft processes the agent started: the applier records them, the monitor skips the
/// generations they committed. A pid counts as ours while its process runs and for `OWN_GRACE` after it
/// ended (its last event may still be on the way); after that the pid may belong to someone else.
#[derive(Debug, Default)]
pub struct OwnPids(Mutex<VecDeque<(u32, Option<Instant>)>>);

impl OwnPids {
    /// A process of ours started.
    pub fn record(&self, pid: u32) {
        let mut pids = self.0.lock().unwrap();
        pids.retain(|(_, ended)| ended.is_none_or(|at| at.elapsed() < OWN_GRACE));
        if pids.len() >= OWN_KEPT {
            pids.pop_front();
        }
        pids.push_back((pid, None));
    }

    /// A process of ours ended.
    pub fn ended(&self, pid: u32) {
        let mut pids = self.0.lock().unwrap();
        for (p, ended) in pids.iter_mut() {
            if *p == pid && ended.is_none() {
                *ended = Some(Instant::now());
            }
        }
    }

    fn contains(&self, pid: u32) -> bool {
        let pids = self.0.lock().unwrap();
        pids.iter()
            .any(|(p, ended)| *p == pid && ended.is_none_or(|at| at.elapsed() < OWN_GRACE))
    }
}

/// A subscription to nftables change events.
pub struct RulesetEvents {
    fd: OwnedFd,
    own: Arc<OwnPids>,
}

impl RulesetEvents {
    pub fn subscribe(own: Arc<OwnPids>) -> nix::Result<Self> {
        let fd = netlink::open(SockProtocol::NetlinkNetFilter, 1 << (NFNLGRP_NFTABLES - 1))?;
        Ok(RulesetEvents { fd, own })
    }

    /// Blocks until someone else commits a ruleset change (or events were lost, which means the same).
    pub fn wait(&self) -> nix::Result<()> {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::empty()) {
                Ok(n) => n,
                Err(Errno::ENOBUFS) => return Ok(()),
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(e),
            };
            let foreign = messages(&buf[..n])
                .filter(|(kind, _, _)| *kind == NFT_MSG_NEWGEN)
                .any(|(_, _, payload)| {
                    !generation_pid(payload).is_some_and(|p| self.own.contains(p))
                });
            if foreign {
                return Ok(());
            }
        }
    }
}

/// The committing process of a NEWGEN message.
fn generation_pid(payload: &[u8]) -> Option<u32> {
    attributes(payload.get(NFGENMSG..)?)
        .find(|(t, _)| *t == NFTA_GEN_PROC_PID)
        .and_then(|(_, v)| Some(u32::from_be_bytes(v.get(..4)?.try_into().ok()?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generation_names_its_process() {
        // nfgenmsg, NFTA_GEN_ID 7, NFTA_GEN_PROC_PID 4242 (big-endian), NFTA_GEN_PROC_NAME "nft"
        let mut p = vec![0, 0, 0, 10];
        p.extend_from_slice(&[8, 0, 1, 0, 0, 0, 0, 7]);
        p.extend_from_slice(&[8, 0, 2, 0]);
        p.extend_from_slice(&4242u32.to_be_bytes());
        p.extend_from_slice(&[8, 0, 3, 0, b'n', b'f', b't', 0]);
        assert_eq!(generation_pid(&p), Some(4242));
        assert_eq!(generation_pid(&p[..8]), None);
        let own = OwnPids::default();
        for pid in 1..=20 {
            own.record(pid);
        }
        assert!(own.contains(20) && own.contains(5) && !own.contains(4));
        // An ended process stays ours for a moment, then its pid is anyone's.
        own.ended(20);
        assert!(own.contains(20));
        let long_ago = Instant::now() - OWN_GRACE - Duration::from_millis(1);
        own.0.lock().unwrap().iter_mut().for_each(|e| {
            if e.0 == 20 {
                e.1 = Some(long_ago);
            }
        });
        assert!(!own.contains(20));
    }
}
