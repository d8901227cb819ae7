//! A SOAP control request: the SOAPAction header (first line) and the body (the rest).
#![no_main]
use libfuzzer_sys::fuzz_target;
use wilife_agent::upnp::description::Service;
use wilife_agent::upnp::soap::parse_call;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (action, body) = text.split_once('\n').unwrap_or(("", text));
    for service in [Service::WanIp, Service::CommonIf] {
        let _ = parse_call(body, action, service);
    }
});
