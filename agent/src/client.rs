//! A minimal client of the agent's own API on loopback, for the command line (`status`, `rpcd`).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// The largest answer read (the API's documents are a few KB; a mapping list is bounded).
const MAX_ANSWER: u64 = 1 << 20;

/// One request; (status, body). An error says in words why the agent could not be asked.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
) -> Result<(u16, String), String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(3))
        .map_err(|e| format!("cannot reach the agent at {addr}: {e} (is it running?)"))?;
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut raw = String::new();
    s.take(MAX_ANSWER)
        .read_to_string(&mut raw)
        .map_err(|e| format!("reading the agent's answer: {e}"))?;
    let (head, body) = raw.split_once("\r\n\r\n").ok_or("malformed HTTP answer")?;
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or("malformed status line")?;
    Ok((code, body.to_string()))
}
