//! GENA SUBSCRIBE headers: CALLBACK and TIMEOUT.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::net::Ipv4Addr;
use wilife_agent::upnp::gena::{parse_callback, parse_timeout};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let me = Ipv4Addr::new(192, 168, 1, 10);
    if let Ok(cb) = parse_callback(text, me) {
        // CallStranger: a callback never points at another host.
        assert_eq!(*cb.addr.ip(), me);
    }
    let _ = parse_timeout(Some(text));
});
