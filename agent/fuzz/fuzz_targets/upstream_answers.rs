//! A datagram from the WAN side claiming to be the gateway's PCP or NAT-PMP answer (a spoofed one
//! included): either decoder must return, never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use wilife_agent::upstream::{natpmp, pcp};

fuzz_target!(|data: &[u8]| {
    let _ = pcp::decode(data);
    let _ = natpmp::decode(data);
});
