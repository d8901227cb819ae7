//! Benchmark (not a test), issue 27 point 8: what a hostile SOAP body costs the IGD against a plain
//! one, in the same run. From the Command Center in the lab, ROUNDS alternating requests: a plain
//! GetExternalIPAddress, and the same call whose envelope carries 2600 attributes with two-letter
//! names (it still fits the 16 KiB body bound). Prints the median and p95 round trip of each and their
//! ratio. Point 9: the same plain call with a chunked body (four chunks), against the plain one.
//! Then the agent's CPU time for one head of 12 KiB trickled a byte per segment (0.4 ms apart, so
//! that each segment wakes the agent on its own). `WILIFE_AGENT_BIN` picks the binary (e.g. an older
//! build, to compare).

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
    let chunked = chunked_request(&plain, &action);
    let mut times = [Vec::new(), Vec::new(), Vec::new()];
    let mut statuses = [0u16, 0u16, 0u16];
    let to = std::net::SocketAddr::from((LAN_IP, UPNP_PORT));
    for _ in 0..ROUNDS {
        for (i, b) in [&plain, &hostile].into_iter().enumerate() {
            let t = Instant::now();
            let (status, _) = lab.soap_raw(&lab.cc, &action, b.clone());
            times[i].push(t.elapsed().as_secs_f64() * 1000.0);
            statuses[i] = status;
        }
        let t = Instant::now();
        let raw = lab.raw_http(&lab.cc, to, chunked.clone()).unwrap();
        times[2].push(t.elapsed().as_secs_f64() * 1000.0);
        statuses[2] = split_response(&raw).0;
    }
    let [p, h, c] = times;
    let (c50, c95) = stats(c);
    println!(
        "chunked body over {ROUNDS} requests, ms (median / p95): {c50:.3} / {c95:.3} (HTTP {}): \
         {:.2}x the plain median",
        statuses[2],
        c50 / stats(p.clone()).0
    );
    let ((p50, p95), (h50, h95)) = (stats(p), stats(h));
    println!(
        "SOAP round trip over {ROUNDS} requests each, ms (median / p95): plain {p50:.3} / {p95:.3} \
         (HTTP {}), 2600 attributes ({} B) {h50:.3} / {h95:.3} (HTTP {}): {:.2}x the plain median",
        statuses[0],
        hostile.len(),
        statuses[1],
        h50 / p50
    );
    let pid = lab.agent_pid().expect("the agent runs");
    let before = cpu_ms(pid);
    let t = Instant::now();
    // Three header lines near their 4 KiB bound: few lines, many bytes.
    let head = format!(
        "GET /rootDesc.xml HTTP/1.1\r\nHost: {LAN_IP}:{UPNP_PORT}\r\n{}\r\n",
        format!("X-Slow: {}\r\n", "a".repeat(4000)).repeat(3)
    );
    let sent = head.len();
    let answer = lab.in_ns(&lab.cc, move || {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(to).unwrap();
        s.set_nodelay(true).unwrap();
        for b in head.as_bytes() {
            s.write_all(&[*b]).unwrap();
            // A pause per byte, so that each arrives on its own (within the 10 s request deadline).
            std::thread::sleep(std::time::Duration::from_micros(400));
        }
        let mut raw = String::new();
        let _ = s.read_to_string(&mut raw);
        raw
    });
    let cpu = cpu_ms(pid) - before;
    println!(
        "a {sent} B head trickled one byte per segment in {:.2} s (HTTP {}): the agent used {} ms of CPU",
        t.elapsed().as_secs_f64(),
        split_response(&answer).0,
        cpu
    );
}

/// The plain call, its body in four chunks.
fn chunked_request(body: &[u8], action: &str) -> Vec<u8> {
    let mut r = format!(
        "POST /ctl/IPConn HTTP/1.1\r\nHost: {LAN_IP}:{UPNP_PORT}\r\nContent-Type: text/xml\r\n\
         SOAPAction: {action}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    .into_bytes();
    for part in body.chunks(body.len().div_ceil(4)) {
        r.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
        r.extend_from_slice(part);
        r.extend_from_slice(b"\r\n");
    }
    r.extend_from_slice(b"0\r\n\r\n");
    r
}
