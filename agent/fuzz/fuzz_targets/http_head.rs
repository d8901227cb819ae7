//! The head of an HTTP request to the API or the IGD, as it arrives (also cut at every length).
#![no_main]
use libfuzzer_sys::fuzz_target;
use wilife_agent::http::head::parse;

fuzz_target!(|data: &[u8]| {
    let limits = wilife_agent::api::API_LIMITS;
    if let Ok(Some((head, n))) = parse(data, &limits) {
        assert!(n <= data.len() && n <= limits.max_head);
        assert!(head.body_len <= limits.max_body);
        assert!(head.headers.len() <= limits.max_headers);
    }
    let _ = parse(&data[..data.len() / 2], &limits);
});
