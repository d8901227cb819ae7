//! rpcd's `call METHOD` with its JSON arguments (method on the first line, arguments after it).
#![no_main]
use libfuzzer_sys::fuzz_target;
use wilife_agent::config::ApiAccess;
use wilife_agent::rpcd::plan;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (method, args) = text.split_once('\n').unwrap_or((text, ""));
    let access = ApiAccess {
        port: 1,
        token: Some("0123456789abcdef".into()),
        token_file: "/etc/wilife/api_token".into(),
    };
    if let Ok((_, path, _)) = plan(&access, method, args) {
        // Only the API's own paths, never one made of the caller's text.
        assert!(path.starts_with("/api/v1/") && !path.contains(['?', '#', ' ', '\r', '\n']));
    }
});
