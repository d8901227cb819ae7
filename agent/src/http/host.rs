//! The Host header against DNS rebinding: a page on some name that resolves to the router must not
//! reach the API or the IGD, so both accept only the router's own addresses. And the browser's own
//! word on where a request comes from (`Origin`, `Sec-Fetch-Site`) against cross-site requests: a page
//! the Command Center's user opens must not act in its name (pure).

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

/// Why a request a browser made for another site's page is refused, if it is one. Browsers say it in
/// `Sec-Fetch-Site` (anything but `same-origin`, or `none` for what the user typed) and in `Origin`
/// (whose authority must be the Host the request went to); UPnP clients, scripts and the rpcd plugin
/// send neither.
pub fn cross_site(
    origin: Option<&str>,
    fetch_site: Option<&str>,
    host: &str,
) -> Option<&'static str> {
    if let Some(site) = fetch_site {
        let site = site.trim();
        if !site.eq_ignore_ascii_case("same-origin") && !site.eq_ignore_ascii_case("none") {
            return Some("a request from another site's page is refused (Sec-Fetch-Site)");
        }
    }
    let origin = origin?.trim();
    let authority = origin
        .strip_prefix("http://")
        .map(|a| a.strip_suffix(":80").unwrap_or(a));
    let host = host.trim();
    let host = host.strip_suffix(":80").unwrap_or(host);
    match authority {
        Some(a) if a.eq_ignore_ascii_case(host) => None,
        _ => Some("a request from another site's page is refused (Origin)"),
    }
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

    #[test]
    fn pages_of_other_sites_are_told_apart_from_clients_and_the_routers_own_pages() {
        let host = "192.168.1.1:5431";
        // UPnP clients, curl, the rpcd plugin: no browser headers.
        assert_eq!(cross_site(None, None, host), None);
        // The user's own navigation, and a page of the same origin.
        assert_eq!(cross_site(None, Some("none"), host), None);
        assert_eq!(
            cross_site(Some("http://192.168.1.1:5431"), Some("same-origin"), host),
            None
        );
        assert_eq!(cross_site(Some("http://router"), None, "router:80"), None);
        // Other sites, LuCI's origin on port 80 included, opaque and malformed origins.
        for (origin, site) in [
            (Some("http://evil.example"), None),
            (Some("http://192.168.1.1"), None),
            (Some("null"), None),
            (Some("https://192.168.1.1:5431"), None),
            (Some("http://192.168.1.1:5431.evil.example"), None),
            (None, Some("cross-site")),
            (None, Some("same-site")),
            (Some("http://192.168.1.1:5431"), Some("cross-site")),
        ] {
            assert!(
                cross_site(origin, site, host).is_some(),
                "{origin:?} {site:?}"
            );
        }
    }
}
