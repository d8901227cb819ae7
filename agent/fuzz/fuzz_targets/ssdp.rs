//! An SSDP datagram from any LAN host.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = wilife_agent::upnp::ssdp::parse_search(data);
});
