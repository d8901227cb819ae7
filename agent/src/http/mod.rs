//! The HTTP/1.x layer the JSON API and the UPnP IGD share, written for a router that any LAN host can
//! reach: bounded heads and bodies (checked before anything is allocated or drained), timeouts, caps on
//! connections in total and per source address, no thread per connection, and accept errors survived.
//! Bodies come with a Content-Length or chunked (as UPnP stacks send SOAP), never both.
//! (It replaced tiny_http 0.12, which aborted on a client's huge Content-Length, lost its listener on
//! EMFILE and blocked on slow bodies; see the README.)

pub mod chunked;
pub mod head;
pub mod host;
pub mod server;
pub mod slots;

use std::net::SocketAddr;

pub use server::{Handler, Listeners};

/// Bounds of one request.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_request_line: usize,
    pub max_header_line: usize,
    pub max_headers: usize,
    /// The whole head, request line and headers.
    pub max_head: usize,
    pub max_body: usize,
}

/// A complete request as the handlers see it.
#[derive(Debug, Clone)]
pub struct Request {
    pub peer: SocketAddr,
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// The value of the first header called `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The path of the target, without query or fragment.
    pub fn path(&self) -> &str {
        self.target.split(['?', '#']).next().unwrap_or("")
    }
}

/// An answer. Every connection carries one request and is closed after the answer.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            headers: vec![("Content-Type", content_type.to_string())],
            body: body.into(),
        }
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Response {
        let value: String = value.into();
        // A value must stay one header line, whatever it was made from.
        if !value.bytes().any(|b| b == b'\r' || b == b'\n') {
            self.headers.push((name, value));
        }
        self
    }

    /// The bytes on the wire; `head_only` for HEAD (the length still says what GET would send).
    pub fn to_bytes(&self, head_only: bool) -> Vec<u8> {
        let mut out = format!("HTTP/1.1 {} {}\r\n", self.status, reason(self.status));
        for (k, v) in &self.headers {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
        out.push_str(&format!(
            "Content-Length: {}\r\nConnection: close\r\n\r\n",
            self.body.len()
        ));
        let mut bytes = out.into_bytes();
        if !head_only {
            bytes.extend_from_slice(&self.body);
        }
        bytes
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_close_and_count_their_body() {
        let r = Response::new(200, "text/xml", "<a/>").with_header("SID", "uuid:1");
        let text = String::from_utf8(r.to_bytes(false)).unwrap();
        assert_eq!(
            text,
            "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nSID: uuid:1\r\nContent-Length: 4\r\nConnection: close\r\n\r\n<a/>"
        );
        assert!(String::from_utf8(r.to_bytes(true))
            .unwrap()
            .ends_with("\r\n\r\n"));
        // A header value cannot split the head.
        let forged = Response::new(200, "text/plain", "").with_header("X", "a\r\nSet-Cookie: b");
        assert_eq!(forged.headers.len(), 1);
    }
}
