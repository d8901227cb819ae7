//! What comes back from the WAN side claiming to be the gateway (a spoofed answer included): PCP and
//! NAT-PMP datagrams, an SSDP search answer, an IGD description, a SOAP answer. No decoder may panic,
//! and nothing may point anywhere but the gateway.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::net::Ipv4Addr;
use wilife_agent::upstream::{igd, natpmp, pcp};

const GATEWAY: Ipv4Addr = Ipv4Addr::new(192, 168, 0, 1);

fuzz_target!(|data: &[u8]| {
    let _ = pcp::decode(data);
    let _ = natpmp::decode(data);
    let _ = igd::location(data, GATEWAY);
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(c) = igd::control(text, GATEWAY, 5000) {
            assert!(c.path.starts_with('/'), "{c:?}");
        }
        let _ = igd::answer(text);
    }
});
