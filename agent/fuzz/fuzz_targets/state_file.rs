//! The mapping file in the state directory (what LAN clients chose, written back by us; may be damaged).
#![no_main]
use libfuzzer_sys::fuzz_target;
use wilife_agent::upnp::leases::{decode, encode};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(mappings) = decode(text) {
        // What we read, we write back the same.
        assert_eq!(decode(&encode(&mappings)).unwrap(), mappings);
    }
});
