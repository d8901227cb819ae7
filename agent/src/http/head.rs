//! An HTTP/1.x request head, parsed from bytes a LAN host sent (pure). Every bound is checked while the
//! bytes are read, before anything is allocated for them: the request line, each header line, their
//! number, and the body's declared length (which decides whether the body is read at all).

use super::Limits;

/// A parsed request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub method: String,
    /// The request target as sent (`/path?query`).
    pub target: String,
    pub headers: Vec<(String, String)>,
    /// Bytes of body that follow the head (Content-Length; 0 without one or when chunked).
    pub body_len: usize,
    /// The body comes in chunks (`Transfer-Encoding: chunked`), bounded like a Content-Length one.
    pub chunked: bool,
}

/// Why a head is refused: the status to answer with, and a reason for the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    pub status: u16,
    pub reason: &'static str,
}

const fn refused(status: u16, reason: &'static str) -> Refused {
    Refused { status, reason }
}

/// Parses the head at the start of `buf`. `Ok(None)`: not complete yet (read more, within the limits
/// this already checked for the part that is there); `Ok(Some((head, n)))`: the head is the first `n`
/// bytes.
pub fn parse(buf: &[u8], limits: &Limits) -> Result<Option<(Head, usize)>, Refused> {
    let mut lines = Vec::new();
    let mut start = 0;
    let end = loop {
        // The request line and each header line have a bound of their own, checked also while the
        // line is still arriving. (The head's bound is checked per line: it holds here already.)
        let max = if lines.is_empty() {
            limits.max_request_line
        } else {
            limits.max_header_line
        };
        let Some(nl) = buf[start..].iter().position(|&b| b == b'\n') else {
            if buf.len() - start > max {
                return Err(too_long(lines.is_empty()));
            }
            return Ok(None);
        };
        let line = &buf[start..start + nl];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.len() > max {
            return Err(too_long(lines.is_empty()));
        }
        start += nl + 1;
        if start > limits.max_head {
            return Err(refused(431, "request head too large"));
        }
        if line.is_empty() {
            if lines.is_empty() {
                // RFC 9112 §2.2: a few empty lines before the request line are ignored.
                if start > 8 {
                    return Err(refused(400, "no request line"));
                }
                continue;
            }
            break start;
        }
        if lines.len() > limits.max_headers {
            return Err(refused(431, "too many header fields"));
        }
        lines.push(line);
    };
    let head = head(&lines, limits)?;
    Ok(Some((head, end)))
}

fn too_long(request_line: bool) -> Refused {
    if request_line {
        refused(414, "request line too long")
    } else {
        refused(431, "header field too large")
    }
}

fn head(lines: &[&[u8]], limits: &Limits) -> Result<Head, Refused> {
    let bad = refused(400, "malformed request");
    let text = |b: &[u8]| std::str::from_utf8(b).map(str::to_string).map_err(|_| bad);
    let request_line = text(lines[0])?;
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad);
    };
    if method.is_empty() || !method.bytes().all(is_token) || !target.starts_with('/') {
        return Err(bad);
    }
    if version != "HTTP/1.1" && version != "HTTP/1.0" {
        return Err(refused(505, "HTTP version not supported"));
    }
    let mut headers = Vec::with_capacity(lines.len() - 1);
    let mut length: Option<usize> = None;
    let mut codings = 0;
    for line in &lines[1..] {
        // Folded lines (obs-fold) are refused, as RFC 9112 §5.2 allows.
        if line.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
            return Err(bad);
        }
        let line = text(line)?;
        let (name, value) = line.split_once(':').ok_or(bad)?;
        if name.is_empty() || !name.bytes().all(is_token) {
            return Err(bad);
        }
        let value = value.trim_matches([' ', '\t']);
        if value.bytes().any(|b| b.is_ascii_control() && b != b'\t') {
            return Err(bad);
        }
        if name.eq_ignore_ascii_case("Transfer-Encoding") {
            // Only `chunked`, once: what else a client names we could not decode (RFC 9112 §6.1).
            for coding in value.split(',').map(|c| c.trim_matches([' ', '\t'])) {
                if !coding.eq_ignore_ascii_case("chunked") {
                    return Err(refused(
                        501,
                        "only the chunked transfer coding is supported",
                    ));
                }
                codings += 1;
            }
        }
        if name.eq_ignore_ascii_case("Content-Length") {
            if value.is_empty() || value.len() > 20 || !value.bytes().all(|b| b.is_ascii_digit()) {
                return Err(refused(400, "malformed Content-Length"));
            }
            // Compared as digits: a length of 2^64 must be refused, not wrapped or allocated.
            let n = value
                .parse::<u64>()
                .ok()
                .filter(|n| *n <= limits.max_body as u64)
                .ok_or(refused(413, "request body too large"))? as usize;
            if length.is_some_and(|l| l != n) {
                return Err(refused(400, "conflicting Content-Length"));
            }
            length = Some(n);
        }
        headers.push((name.to_string(), value.to_string()));
    }
    let chunked = codings > 0;
    if codings > 1 {
        return Err(refused(400, "chunked applied more than once"));
    }
    // Two framings at once are how requests are smuggled past a proxy: neither is believed
    // (RFC 9112 §6.3); nor a coding in HTTP/1.0, which has none.
    if chunked && length.is_some() {
        return Err(refused(
            400,
            "Content-Length and Transfer-Encoding together",
        ));
    }
    if chunked && version == "HTTP/1.0" {
        return Err(refused(400, "Transfer-Encoding in an HTTP/1.0 request"));
    }
    Ok(Head {
        method: method.to_string(),
        target: target.to_string(),
        headers,
        body_len: length.unwrap_or(0),
        chunked,
    })
}

/// RFC 9110 token characters (methods, header names).
fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            max_request_line: 64,
            max_header_line: 64,
            max_headers: 4,
            max_head: 200,
            max_body: 100,
        }
    }

    fn ok(text: &str) -> (Head, usize) {
        parse(text.as_bytes(), &limits()).unwrap().unwrap()
    }

    fn err(text: &[u8]) -> u16 {
        parse(text, &limits()).unwrap_err().status
    }

    #[test]
    fn a_request_parses_once_complete() {
        let text =
            "POST /ctl?x=1 HTTP/1.1\r\nHost: 192.168.1.1:5431\r\nContent-Length: 5\r\n\r\nhello";
        assert_eq!(parse(&text.as_bytes()[..20], &limits()), Ok(None));
        let (h, n) = ok(text);
        assert_eq!(h.method, "POST");
        assert_eq!(h.target, "/ctl?x=1");
        assert_eq!(h.headers[0], ("Host".into(), "192.168.1.1:5431".into()));
        assert_eq!(h.body_len, 5);
        assert_eq!(&text[n..], "hello");
        // Bare LF line ends are taken too.
        assert_eq!(ok("GET / HTTP/1.0\nA: b\n\n").0.headers.len(), 1);
    }

    #[test]
    fn lengths_are_refused_before_anything_is_read() {
        for huge in [
            "18446744073709551615",
            "18446744073709551616",
            "1099511627776",
            "101",
        ] {
            let text = format!("GET / HTTP/1.1\r\nContent-Length: {huge}\r\n\r\n");
            assert_eq!(err(text.as_bytes()), 413, "{huge}");
        }
        assert_eq!(err(b"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n"), 400);
        assert_eq!(err(b"GET / HTTP/1.1\r\nContent-Length: 1, 1\r\n\r\n"), 400);
        assert_eq!(
            err(b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
            400
        );
    }

    #[test]
    fn chunked_alone_is_taken_and_every_other_framing_refused() {
        let (h, _) = ok("POST / HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n");
        assert!(h.chunked && h.body_len == 0);
        for (text, status) in [
            ("POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
            ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 501),
            ("POST / HTTP/1.1\r\nTransfer-Encoding: identity\r\n\r\n", 501),
            ("POST / HTTP/1.1\r\nTransfer-Encoding: \r\n\r\n", 501),
            ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", 400),
            (
                "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
                400,
            ),
            (
                "POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
                400,
            ),
            (
                "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n",
                400,
            ),
            ("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        ] {
            assert_eq!(err(text.as_bytes()), status, "{text}");
        }
    }

    #[test]
    fn heads_are_bounded_while_they_arrive() {
        // An endless request line or header line is refused before its end comes.
        assert_eq!(err(&[b'G'; 65]), 414);
        assert_eq!(
            err(format!("GET / HTTP/1.1\r\nX: {}", "a".repeat(70)).as_bytes()),
            431
        );
        // Too many lines, or too many bytes in all.
        let many = format!("GET / HTTP/1.1\r\n{}", "A: b\r\n".repeat(6));
        assert_eq!(err(many.as_bytes()), 431);
        let big = format!(
            "GET / HTTP/1.1\r\n{}",
            "A: bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\r\n".repeat(4)
        );
        assert_eq!(err(big.as_bytes()), 431);
    }

    #[test]
    fn malformed_heads_are_refused() {
        for bad in [
            &b"GET\r\n\r\n"[..],
            b"GET / HTTP/1.1 x\r\n\r\n",
            b"GET example HTTP/1.1\r\n\r\n",
            b"G(T / HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nNo colon\r\n\r\n",
            b"GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n",
            b"GET / HTTP/1.1\r\nA: b\x01c\r\n\r\n",
            b"GET / HTTP/1.1\r\nA: \xff\r\n\r\n",
            b"GET / HTTP/1.1\r\nBad name: x\r\n\r\n",
        ] {
            assert_eq!(err(bad), 400, "{}", String::from_utf8_lossy(bad));
        }
        assert_eq!(err(b"GET / HTTP/2.0\r\n\r\n"), 505);
    }
}
