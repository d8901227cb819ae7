//! The Host header against DNS rebinding: a page on some name that resolves to the router must not
//! reach the API or the IGD, so both accept only the router's own addresses (pure).

use std::net::IpAddr;

/// Host header value -> the host part, without port or IPv6 brackets.
fn host_part(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or("");
    }
    match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

/// Is `host` (a Host header) an IP literal of one of the router's own addresses?
pub fn host_is_own_ip(host: &str, own: &[IpAddr]) -> bool {
    host_part(host.trim())
        .parse::<IpAddr>()
        .is_ok_and(|ip| own.contains(&ip))
}

/// The API also takes `localhost` (scripts on the router itself).
pub fn host_allowed(host: &str, own: &[IpAddr]) -> bool {
    host_part(host.trim()).eq_ignore_ascii_case("localhost") || host_is_own_ip(host, own)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_header_must_name_the_router() {
        let own: Vec<IpAddr> = vec!["192.168.1.1".parse().unwrap(), "::1".parse().unwrap()];
        assert!(host_allowed("192.168.1.1:8780", &own));
        assert!(host_allowed("192.168.1.1", &own));
        assert!(host_allowed("[::1]:8780", &own));
        assert!(host_allowed("localhost:8780", &own));
        assert!(!host_allowed("evil.example:8780", &own));
        assert!(!host_allowed("192.168.1.2:8780", &own));
        assert!(!host_allowed("192.168.1.1.evil.example", &own));
        assert!(!host_allowed("", &own));
    }

    #[test]
    fn the_igd_takes_only_own_ip_literals() {
        let own: Vec<IpAddr> = vec!["192.168.1.1".parse().unwrap()];
        assert!(host_is_own_ip("192.168.1.1:5431", &own));
        assert!(host_is_own_ip("192.168.1.1", &own));
        assert!(!host_is_own_ip("localhost:5431", &own));
        assert!(!host_is_own_ip("router.lan:5431", &own));
        assert!(!host_is_own_ip("192.168.1.2:5431", &own));
        assert!(!host_is_own_ip("192.168.1.1.nip.io:5431", &own));
    }
}
