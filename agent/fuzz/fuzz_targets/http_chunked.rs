//! A chunked request body as it arrives: decoded whole, and fed in two pieces split where the first
//! byte says; both must agree, and nothing may exceed the body's cap.
#![no_main]
use libfuzzer_sys::fuzz_target;
use wilife_agent::http::chunked::{decode, Chunked};

fuzz_target!(|data: &[u8]| {
    let Some((&cut, wire)) = data.split_first() else {
        return;
    };
    let max = wilife_agent::upnp::server::IGD_LIMITS.max_body;
    let whole = decode(wire, max);
    if let Ok(Some((body, n))) = &whole {
        assert!(body.len() <= max && *n <= wire.len());
    }
    let cut = (cut as usize * wire.len()) / 255;
    let mut c = Chunked::new(max);
    let pieces = c.feed(&wire[..cut]).and_then(|a| {
        if c.done() {
            return Ok(a);
        }
        c.feed(&wire[cut..]).map(|b| a + b)
    });
    match (whole, pieces) {
        (Ok(Some((body, n))), Ok(m)) => {
            assert!(c.done() && n == m);
            assert_eq!(body, c.into_body());
        }
        (Ok(None), Ok(m)) => assert!(!c.done() && m == wire.len()),
        (Err(a), Err(b)) => assert_eq!(a, b),
        (a, b) => panic!("whole {a:?}, in pieces {b:?}"),
    }
});
