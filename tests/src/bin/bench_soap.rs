//! Benchmark (not a test), issue 27 point 8: what a hostile SOAP body costs the IGD against a plain
//! one, in the same run. From the Command Center in the lab, ROUNDS alternating requests: a plain
//! GetExternalIPAddress, and the same call whose envelope carries 2600 attributes with two-letter
//! names (it still fits the 16 KiB body bound). Prints the median and p95 round trip of each and their
//! ratio. `WILIFE_AGENT_BIN` picks the binary (e.g. an older build, to compare).

use std::time::Instant;
use wilife_lab::lab::*;

const ROUNDS: usize = 200;

fn body(attributes: &str) -> Vec<u8> {
    format!(
        "<?xml version=\"1.0\"?><s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"{attributes}>\
         <s:Body><u:GetExternalIPAddress xmlns:u=\"{WANIP1}\"/></s:Body></s:Envelope>"
    )
    .into_bytes()
}

fn stats(mut ms: Vec<f64>) -> (f64, f64) {
    ms.sort_by(f64::total_cmp);
    (ms[ms.len() / 2], ms[ms.len() * 95 / 100])
}

fn main() {
    let mut lab = Lab::new();
    let cfg = lab.write_config("wilife", &lab.config("upnp", ""));
    lab.start_upnp_agent(&cfg);
    let letters: Vec<char> = ('a'..='z').chain('A'..='Z').collect();
    let many: String = (0..2600)
        .map(|i| format!(" {}{}=''", letters[i / 50], letters[i % 50]))
        .collect();
    let action = format!("\"{WANIP1}#GetExternalIPAddress\"");
    let (plain, hostile) = (body(""), body(&many));
    let mut times = [Vec::new(), Vec::new()];
    let mut statuses = [0u16, 0u16];
    for _ in 0..ROUNDS {
        for (i, b) in [&plain, &hostile].into_iter().enumerate() {
            let t = Instant::now();
            let (status, _) = lab.soap_raw(&lab.cc, &action, b.clone());
            times[i].push(t.elapsed().as_secs_f64() * 1000.0);
            statuses[i] = status;
        }
    }
    let [p, h] = times;
    let ((p50, p95), (h50, h95)) = (stats(p), stats(h));
    println!(
        "SOAP round trip over {ROUNDS} requests each, ms (median / p95): plain {p50:.3} / {p95:.3} \
         (HTTP {}), 2600 attributes ({} B) {h50:.3} / {h95:.3} (HTTP {}): {:.2}x the plain median",
        statuses[0],
        hostile.len(),
        statuses[1],
        h50 / p50
    );
}
