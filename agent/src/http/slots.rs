//! Connection slots of one service. Any LAN host may connect, so the slots are split: a reserve that
//! only the router itself (loopback: LuCI's rpcd, `wilife-agent status`) and the authorised Command
//! Centers may take, and a general pool for everyone, each source capped in both. Many addresses
//! opening idle connections can fill the general pool, never the reserve; and a newcomer that finds
//! the pool full may evict an idle connection (see `server.rs`).

use crate::consts::{HTTP_MAX_CONNECTIONS, HTTP_MAX_PER_SOURCE, HTTP_RESERVED_CONNECTIONS};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};

#[derive(Clone, Default)]
pub struct Slots(Arc<Mutex<Inner>>);

#[derive(Default)]
struct Inner {
    held: HashMap<IpAddr, usize>,
    /// The authorised Command Centers' addresses (loopback is always trusted).
    trusted: Vec<Ipv4Addr>,
    reserve_used: usize,
    general_used: usize,
}

/// Why no slot was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Full {
    /// This source holds its share already: it must wait for one of its own.
    Source,
    /// The pool it may use is full: evicting an idle connection may make room.
    Pool,
}

/// One connection's slot; given back when dropped.
pub struct Slot {
    slots: Slots,
    ip: IpAddr,
    reserved: bool,
}

impl Slot {
    /// Taken from the reserve (the router itself or a Command Center): never evicted.
    pub fn reserved(&self) -> bool {
        self.reserved
    }
}

impl Slots {
    /// The addresses the reserve is for, besides loopback (replaces the previous ones).
    pub fn set_trusted(&self, ips: Vec<Ipv4Addr>) {
        self.0.lock().unwrap().trusted = ips;
    }

    pub fn take(&self, ip: IpAddr) -> Result<Slot, Full> {
        let mut inner = self.0.lock().unwrap();
        if inner.held.get(&ip).copied().unwrap_or(0) >= HTTP_MAX_PER_SOURCE {
            return Err(Full::Source);
        }
        let trusted =
            ip.is_loopback() || matches!(ip, IpAddr::V4(v4) if inner.trusted.contains(&v4));
        let reserved = if trusted && inner.reserve_used < HTTP_RESERVED_CONNECTIONS {
            inner.reserve_used += 1;
            true
        } else if inner.general_used < HTTP_MAX_CONNECTIONS - HTTP_RESERVED_CONNECTIONS {
            inner.general_used += 1;
            false
        } else {
            return Err(Full::Pool);
        };
        *inner.held.entry(ip).or_insert(0) += 1;
        Ok(Slot {
            slots: self.clone(),
            ip,
            reserved,
        })
    }

    /// Connections `ip` holds now.
    pub fn held_by(&self, ip: IpAddr) -> usize {
        self.0.lock().unwrap().held.get(&ip).copied().unwrap_or(0)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut inner = self.slots.0.lock().unwrap();
        if self.reserved {
            inner.reserve_used -= 1;
        } else {
            inner.general_used -= 1;
        }
        if let Some(n) = inner.held.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                inner.held.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lan(i: usize) -> IpAddr {
        IpAddr::from([10, 0, (i / 200) as u8, (i % 200) as u8])
    }

    #[test]
    fn each_source_is_capped_in_both_pools() {
        let slots = Slots::default();
        let a4: Ipv4Addr = "192.168.1.10".parse().unwrap();
        let a = IpAddr::V4(a4);
        let held: Vec<Slot> = (0..HTTP_MAX_PER_SOURCE)
            .map(|_| slots.take(a).unwrap())
            .collect();
        assert_eq!(slots.take(a).err(), Some(Full::Source));
        assert_eq!(slots.held_by(a), HTTP_MAX_PER_SOURCE);
        drop(held);
        assert_eq!(slots.held_by(a), 0);
        slots.set_trusted(vec![a4]);
        let held: Vec<Slot> = (0..HTTP_MAX_PER_SOURCE)
            .map(|_| slots.take(a).unwrap())
            .collect();
        assert!(held.iter().all(Slot::reserved));
        assert_eq!(slots.take(a).err(), Some(Full::Source));
    }

    #[test]
    fn many_sources_fill_the_general_pool_never_the_reserve() {
        let slots = Slots::default();
        let general = HTTP_MAX_CONNECTIONS - HTTP_RESERVED_CONNECTIONS;
        let many: Vec<Slot> = (0..general * 2)
            .filter_map(|i| slots.take(lan(i)).ok())
            .collect();
        assert_eq!(many.len(), general);
        assert!(many.iter().all(|s| !s.reserved()));
        assert_eq!(slots.take(lan(9999)).err(), Some(Full::Pool));
        // The router itself and a Command Center still get in, up to the reserve.
        let cc4: Ipv4Addr = "192.168.1.10".parse().unwrap();
        let cc = IpAddr::V4(cc4);
        assert_eq!(slots.take(cc).err(), Some(Full::Pool));
        slots.set_trusted(vec![cc4]);
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        let v6: IpAddr = "::1".parse().unwrap();
        let mut trusted: Vec<Slot> = (0..HTTP_MAX_PER_SOURCE)
            .map(|_| slots.take(cc).unwrap())
            .collect();
        trusted.extend((0..HTTP_MAX_PER_SOURCE).map(|_| slots.take(local).unwrap()));
        assert_eq!(trusted.len(), HTTP_RESERVED_CONNECTIONS);
        assert_eq!(slots.take(v6).err(), Some(Full::Pool));
        // A slot given back is the pool's again.
        drop(many);
        assert!(!slots.take(v6).unwrap().reserved());
    }
}
