//! IPv4 subnet arithmetic (pure).

use std::net::Ipv4Addr;

/// Is `ip` inside one of `nets` (network, prefix length)?
pub fn in_nets(ip: Ipv4Addr, nets: &[(Ipv4Addr, u8)]) -> bool {
    nets.iter().any(|&(net, len)| network(ip, len) == net)
}

/// The network address of `ip/len`.
pub fn network(ip: Ipv4Addr, len: u8) -> Ipv4Addr {
    let mask = if len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(len.min(32)))
    };
    Ipv4Addr::from_bits(ip.to_bits() & mask)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_masks_host_bits() {
        assert_eq!(
            network("192.168.50.77".parse().unwrap(), 24),
            "192.168.50.0".parse::<Ipv4Addr>().unwrap()
        );
        assert_eq!(
            network("10.1.2.3".parse().unwrap(), 0),
            Ipv4Addr::UNSPECIFIED
        );
        assert_eq!(
            network("10.1.2.3".parse().unwrap(), 32),
            "10.1.2.3".parse::<Ipv4Addr>().unwrap()
        );
    }
}
