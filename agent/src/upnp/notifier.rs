//! GENA NOTIFY delivery. One thread drives every NOTIFY at once over non-blocking sockets, each with a
//! deadline of its own: a subscriber whose address is dead, or that accepts and never answers, holds
//! up only its own events, never another subscriber's. Events of one subscription go out one at a
//! time, in SEQ order, as GENA requires.

use crate::queue::Queue;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{connect, socket, AddressFamily, SockFlag, SockType, SockaddrIn};
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::os::fd::{AsFd, AsRawFd};
use std::time::{Duration, Instant};

/// Where a subscriber wants its events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Callback {
    pub addr: std::net::SocketAddrV4,
    pub path: String,
}

/// One NOTIFY to send.
pub struct Job {
    pub callback: Callback,
    pub sid: String,
    pub seq: u32,
    pub body: String,
}

/// A NOTIFY gets this long to connect, be sent, and see the start of an answer.
const DEADLINE: Duration = Duration::from_secs(4);
/// While NOTIFYs are under way, new jobs are looked for this often.
const TICK_MS: u8 = 20;

/// Runs until `jobs` is closed and everything queued went out (or ran out of time).
pub fn run(jobs: &Queue<Job>) {
    let mut waiting: Vec<Job> = Vec::new();
    let mut flying: Vec<Flight> = Vec::new();
    loop {
        if flying.is_empty() && waiting.is_empty() {
            match jobs.pop() {
                Some(j) => waiting.push(j),
                None => return,
            }
        }
        while let Some(j) = jobs.pop_timeout(Duration::ZERO) {
            waiting.push(j);
        }
        // Start what may start: a subscription's next event waits for its previous one.
        let mut i = 0;
        while i < waiting.len() {
            if flying.iter().any(|f| f.sid == waiting[i].sid) {
                i += 1;
                continue;
            }
            let job = waiting.remove(i);
            match Flight::start(&job) {
                Ok(f) => flying.push(f),
                Err(e) => debug!("GENA: NOTIFY to {} failed: {e}", job.callback.addr),
            }
        }
        if flying.is_empty() {
            // (Nothing waits either: with nothing under way, every waiting job started.)
            continue;
        }
        let ready: Vec<PollFlags> = {
            let mut fds: Vec<PollFd> = (flying.iter())
                .map(|f| PollFd::new(f.stream.as_fd(), f.interest()))
                .collect();
            let _ = poll(&mut fds, PollTimeout::from(TICK_MS));
            fds.iter()
                .map(|f| f.revents().unwrap_or(PollFlags::empty()))
                .collect()
        };
        let now = Instant::now();
        let mut k = 0;
        flying.retain_mut(|f| {
            let revents = ready[k];
            k += 1;
            let outcome = if !revents.is_empty() {
                f.step()
            } else if now >= f.deadline {
                Some(Err(std::io::Error::new(
                    ErrorKind::TimedOut,
                    "no answer in time",
                )))
            } else {
                None
            };
            match outcome {
                None => true,
                Some(Ok(())) => false,
                Some(Err(e)) => {
                    debug!("GENA: NOTIFY to {} failed: {e}", f.to);
                    false
                }
            }
        });
    }
}

/// One NOTIFY under way.
struct Flight {
    sid: String,
    to: std::net::SocketAddrV4,
    stream: TcpStream,
    request: Vec<u8>,
    sent: usize,
    connected: bool,
    deadline: Instant,
}

impl Flight {
    fn start(job: &Job) -> std::io::Result<Flight> {
        let fd = socket(
            AddressFamily::Inet,
            SockType::Stream,
            SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
            None,
        )?;
        match connect(fd.as_raw_fd(), &SockaddrIn::from(job.callback.addr)) {
            Ok(()) | Err(nix::errno::Errno::EINPROGRESS) => {}
            Err(e) => return Err(e.into()),
        }
        Ok(Flight {
            sid: job.sid.clone(),
            to: job.callback.addr,
            stream: TcpStream::from(fd),
            request: request(job).into_bytes(),
            sent: 0,
            connected: false,
            deadline: Instant::now() + DEADLINE,
        })
    }

    fn interest(&self) -> PollFlags {
        if self.sent < self.request.len() {
            PollFlags::POLLOUT
        } else {
            PollFlags::POLLIN
        }
    }

    /// Moves on after the socket became ready; `Some` once the NOTIFY is done (or failed).
    fn step(&mut self) -> Option<std::io::Result<()>> {
        if !self.connected {
            match self.stream.take_error() {
                Ok(None) => self.connected = true,
                Ok(Some(e)) | Err(e) => return Some(Err(e)),
            }
        }
        if self.sent < self.request.len() {
            return match self.stream.write(&self.request[self.sent..]) {
                Ok(n) => {
                    self.sent += n;
                    None
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => None,
                Err(e) => Some(Err(e)),
            };
        }
        // The start of the answer: the subscriber was not cut off mid-request; what it says does
        // not matter.
        match self.stream.read(&mut [0u8; 64]) {
            Err(e) if e.kind() == ErrorKind::WouldBlock => None,
            _ => Some(Ok(())),
        }
    }
}

fn request(job: &Job) -> String {
    format!(
        "NOTIFY {} HTTP/1.1\r\nHOST: {}\r\nCONTENT-TYPE: text/xml; charset=\"utf-8\"\r\nNT: upnp:event\r\n\
NTS: upnp:propchange\r\nSID: {}\r\nSEQ: {}\r\nCONTENT-LENGTH: {}\r\nCONNECTION: close\r\n\r\n{}",
        job.callback.path,
        job.callback.addr,
        job.sid,
        job.seq,
        job.body.len(),
        job.body
    )
}
