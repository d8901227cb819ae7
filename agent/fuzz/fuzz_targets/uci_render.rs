//! A UCI file (LuCI writes what a user types): parse, validate, and render what a valid one asks for.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::path::Path;
use wilife_agent::config::{parse, Overrides};
use wilife_agent::firewall::{render, static_forwards, NetFacts};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match parse(text, Path::new("fuzz"), &Overrides::default()) {
        Ok(config) => {
            let forwards = static_forwards(&config);
            let facts = NetFacts::default();
            let _ = render::render(&render::Desired {
                config: &config,
                forwards: &forwards,
                facts: &facts,
            })
            .batch();
        }
        // A refusal always says something, in file order.
        Err(errors) => {
            assert!(!errors.is_empty());
            assert!(errors.windows(2).all(|w| w[0].line.unwrap_or(0) <= w[1].line.unwrap_or(0)));
        }
    }
});
