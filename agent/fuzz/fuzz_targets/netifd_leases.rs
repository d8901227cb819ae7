//! What the agent reads from the system that LAN hosts influence: netifd's dump (interface names) and
//! dnsmasq's lease file (host names a DHCP client chose).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(interfaces) = wilife_agent::net::netifd::parse_dump(text) {
        for i in &interfaces {
            let _ = wilife_agent::net::netifd::device_of(&interfaces, &i.name);
        }
    }
    let _ = wilife_agent::net::dhcp::parse(text, 1_700_000_000);
});
