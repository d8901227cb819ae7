//! A chunked request body (RFC 9112 §7.1), decoded as its bytes arrive (pure). Bounded like a body with
//! a Content-Length: the decoded body by the same cap, and the bytes on the wire by twice that plus a
//! little, so many tiny chunks, long chunk extensions or an endless trailer cannot make a client cost
//! more than a plain body of the cap. Each byte is looked at once: feeding a body in any split costs
//! the same as feeding it whole.

use super::head::Refused;

/// Chunk-size line (hex digits and extensions) and trailer field bounds.
const MAX_SIZE_LINE: usize = 256;
const MAX_TRAILER: usize = 4096;
/// Wire bytes beyond the decoded body's cap: framing of a handful of chunks and the trailer.
const WIRE_SLACK: usize = MAX_TRAILER + 4 * MAX_SIZE_LINE;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// In a chunk-size line; `digits` hex digits read so far, `in_ext` after a `;`.
    Size {
        digits: usize,
        in_ext: bool,
    },
    /// After the size line's CR.
    SizeLf,
    /// In a chunk's data; this many bytes still to come.
    Data(usize),
    /// Expecting the CR (or a bare LF) that ends a chunk's data.
    DataCr,
    DataLf,
    /// In the trailer section, `line` bytes into the current field line.
    Trailer {
        line: usize,
    },
    TrailerLf {
        line: usize,
    },
    Done,
}

/// The decoder of one body.
#[derive(Debug, Clone)]
pub struct Chunked {
    state: State,
    size: usize,
    line: usize,
    wire: usize,
    max_body: usize,
    body: Vec<u8>,
}

fn refused(status: u16, reason: &'static str) -> Refused {
    Refused { status, reason }
}

impl Chunked {
    pub fn new(max_body: usize) -> Chunked {
        Chunked {
            state: State::Size {
                digits: 0,
                in_ext: false,
            },
            size: 0,
            line: 0,
            wire: 0,
            max_body,
            body: Vec::new(),
        }
    }

    /// Is the body complete (the last chunk and the trailer's end were read)?
    pub fn done(&self) -> bool {
        self.state == State::Done
    }

    /// The decoded body, once `done`.
    pub fn into_body(self) -> Vec<u8> {
        self.body
    }

    /// Takes the next bytes of the body; returns how many belong to it (bytes after its end are
    /// not the body's: a second request on the connection, which is refused elsewhere).
    pub fn feed(&mut self, bytes: &[u8]) -> Result<usize, Refused> {
        let malformed = refused(400, "malformed chunked body");
        let mut i = 0;
        while i < bytes.len() && self.state != State::Done {
            if let State::Data(left) = self.state {
                // Data is copied in one piece, not byte by byte.
                let n = left.min(bytes.len() - i);
                self.body.extend_from_slice(&bytes[i..i + n]);
                i += n;
                self.wire += n;
                self.state = if n == left {
                    State::DataCr
                } else {
                    State::Data(left - n)
                };
                continue;
            }
            let b = bytes[i];
            i += 1;
            self.wire += 1;
            if self.wire > self.max_body.saturating_mul(2) + WIRE_SLACK {
                return Err(refused(413, "request body too large"));
            }
            self.state = match self.state {
                State::Size { digits, in_ext } => {
                    self.line += 1;
                    if self.line > MAX_SIZE_LINE {
                        return Err(refused(413, "chunk-size line too long"));
                    }
                    match b {
                        b'\r' if digits > 0 => State::SizeLf,
                        b'\n' if digits > 0 => self.end_size_line()?,
                        _ if in_ext => {
                            // Extensions are ignored, but may not carry control bytes.
                            if b.is_ascii_control() && b != b'\t' {
                                return Err(malformed);
                            }
                            State::Size { digits, in_ext }
                        }
                        b';' | b' ' | b'\t' if digits > 0 => State::Size {
                            digits,
                            in_ext: true,
                        },
                        _ => {
                            let d = (b as char).to_digit(16).ok_or(malformed)? as usize;
                            // Compared before it grows: a size beyond the cap is refused, not wrapped.
                            self.size = self
                                .size
                                .checked_mul(16)
                                .and_then(|s| s.checked_add(d))
                                .filter(|s| *s <= self.max_body)
                                .ok_or(refused(413, "request body too large"))?;
                            State::Size {
                                digits: digits + 1,
                                in_ext,
                            }
                        }
                    }
                }
                State::SizeLf if b == b'\n' => self.end_size_line()?,
                State::DataCr if b == b'\r' => State::DataLf,
                State::DataCr | State::DataLf if b == b'\n' => self.next_size_line(),
                State::Trailer { line } => match b {
                    b'\r' => State::TrailerLf { line },
                    b'\n' if line == 0 => State::Done,
                    b'\n' => State::Trailer { line: 0 },
                    _ if line >= MAX_TRAILER => {
                        return Err(refused(431, "trailer field too large"))
                    }
                    _ if b.is_ascii_control() && b != b'\t' => return Err(malformed),
                    _ => State::Trailer { line: line + 1 },
                },
                State::TrailerLf { line } if b == b'\n' => {
                    if line == 0 {
                        State::Done
                    } else {
                        State::Trailer { line: 0 }
                    }
                }
                _ => return Err(malformed),
            };
        }
        Ok(i)
    }

    fn next_size_line(&mut self) -> State {
        self.size = 0;
        self.line = 0;
        State::Size {
            digits: 0,
            in_ext: false,
        }
    }

    /// A chunk-size line ended: data follows, or (size 0) the trailer.
    fn end_size_line(&mut self) -> Result<State, Refused> {
        if self.size == 0 {
            return Ok(State::Trailer { line: 0 });
        }
        if self.body.len() + self.size > self.max_body {
            return Err(refused(413, "request body too large"));
        }
        self.body.reserve(self.size);
        Ok(State::Data(self.size))
    }
}

/// Decodes a whole chunked body at once (for tests and fuzzing): (body, bytes it took).
pub fn decode(bytes: &[u8], max_body: usize) -> Result<Option<(Vec<u8>, usize)>, Refused> {
    let mut c = Chunked::new(max_body);
    let n = c.feed(bytes)?;
    Ok(c.done().then(|| (c.into_body(), n)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(wire: &[u8]) -> Vec<u8> {
        let (body, n) = decode(wire, 100).unwrap().expect("complete");
        assert_eq!(n, wire.len());
        body
    }

    fn err(wire: &[u8]) -> u16 {
        decode(wire, 100).unwrap_err().status
    }

    #[test]
    fn chunks_extensions_and_trailers_decode() {
        assert_eq!(
            ok(b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"),
            b"hello world"
        );
        assert_eq!(
            ok(b"5;name=value\r\nhello\r\n0\r\nX-T: 1\r\n\r\n"),
            b"hello"
        );
        assert_eq!(ok(b"A\nabcdefghij\n0\n\n"), b"abcdefghij");
        assert_eq!(ok(b"0\r\n\r\n"), b"");
        // What follows the body is not taken.
        let (_, n) = decode(b"1\r\na\r\n0\r\n\r\nGET", 100).unwrap().unwrap();
        assert_eq!(n, 11);
    }

    #[test]
    fn any_split_gives_the_same_body() {
        let wire = b"3;x\r\nabc\r\n2\r\nde\r\n0\r\nT: v\r\n\r\n";
        for cut in 0..wire.len() {
            let mut c = Chunked::new(100);
            let a = c.feed(&wire[..cut]).unwrap();
            assert_eq!(a, cut);
            assert!(!c.done() || cut == wire.len());
            c.feed(&wire[cut..]).unwrap();
            assert!(c.done(), "{cut}");
            assert_eq!(c.into_body(), b"abcde");
        }
    }

    #[test]
    fn bounds_hold_before_anything_is_kept() {
        // A size beyond the cap, one that would wrap, and a body that grows beyond it.
        assert_eq!(err(b"65\r\n"), 413);
        assert_eq!(err(b"ffffffffffffffffffffffff\r\n"), 413);
        let mut many = Vec::new();
        for _ in 0..11 {
            many.extend_from_slice(b"a\r\n0123456789\r\n");
        }
        assert_eq!(err(&many), 413);
        // Endless extensions or trailer, many one-byte chunks.
        assert_eq!(err(format!("1;{}", "x".repeat(300)).as_bytes()), 413);
        assert_eq!(err(format!("0\r\nT: {}", "x".repeat(5000)).as_bytes()), 431);
        let tiny = "1;xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\na\r\n".repeat(100);
        assert_eq!(decode(tiny.as_bytes(), 100).unwrap_err().status, 413);
    }

    #[test]
    fn malformed_framing_is_refused() {
        for bad in [
            &b"\r\n"[..],
            b"x\r\n",
            b"-1\r\n",
            b";ext\r\n",
            b"5\r\nhelloX",
            b"5\r\nhello\rX",
            b"1\r\na\r\n0\r\nT: \x01\r\n\r\n",
            b"1;a\x00\r\n",
            b"1\rX",
        ] {
            assert_eq!(err(bad), 400, "{}", String::from_utf8_lossy(bad));
        }
    }
}
