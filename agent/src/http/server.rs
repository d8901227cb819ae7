//! Listening sockets kept in step with the addresses wanted (LAN addresses come and go), one poll loop
//! per address that reads requests without blocking, and a small fixed set of workers that run the
//! handler and write the answer. A client can hold a slot only while it sends a request (bounded in
//! time and size); slots are capped in total and per source address, with a reserve for the router
//! itself and the Command Centers (`slots.rs`); a newcomer finding the rest full evicts an idle
//! connection that has not sent its request line; accept errors (EMFILE) back off and never end a
//! listener.

use super::chunked::Chunked;
use super::head::{self, Head, Refused};
use super::slots::{Full, Slot, Slots};
use super::{Limits, Request, Response};
use crate::consts::{
    HTTP_ACCEPT_BACKOFF_MS, HTTP_QUEUE, HTTP_REQUEST_TIMEOUT_MS, HTTP_WORKERS,
    HTTP_WRITE_TIMEOUT_MS,
};
use crate::queue::Queue;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Runs one complete request; `None` closes the connection without a byte (a request from where the
/// service does not answer).
pub type Handler = Arc<dyn Fn(Request) -> Option<Response> + Send + Sync>;

/// A request ready for a worker, with the connection it came on and its slot.
type Job = (TcpStream, Request, Slot);

pub struct Listeners {
    /// For the log: "API", "UPnP IGD".
    label: &'static str,
    /// Shown after the address in the log line: "/api/v1/".
    path: &'static str,
    limits: Limits,
    slots: Slots,
    jobs: Arc<Queue<(Job, Handler)>>,
    running: HashMap<SocketAddr, Running>,
}

struct Running {
    stop: Arc<AtomicBool>,
    wake: UnixStream,
    thread: JoinHandle<()>,
}

impl Listeners {
    pub fn new(label: &'static str, path: &'static str, limits: Limits) -> Self {
        let jobs = Arc::new(Queue::new(HTTP_QUEUE));
        for _ in 0..HTTP_WORKERS {
            let jobs = Arc::clone(&jobs);
            std::thread::spawn(move || work(&jobs));
        }
        Listeners {
            label,
            path,
            limits,
            slots: Slots::default(),
            jobs,
            running: HashMap::new(),
        }
    }

    /// Starts listeners for new addresses and stops those no longer wanted.
    pub fn sync(&mut self, wanted: &[SocketAddr], handler: &Handler) {
        let stale: Vec<SocketAddr> = self
            .running
            .keys()
            .filter(|a| !wanted.contains(a))
            .copied()
            .collect();
        for addr in stale {
            if let Some(r) = self.running.remove(&addr) {
                r.halt();
                info!("{} stopped listening on {addr}", self.label);
            }
        }
        for &addr in wanted {
            if self.running.contains_key(&addr) {
                continue;
            }
            let jobs = self.jobs.clone();
            match start(addr, self.limits, self.slots.clone(), jobs, handler.clone()) {
                Ok(r) => {
                    info!("{} listening on http://{addr}{}", self.label, self.path);
                    self.running.insert(addr, r);
                }
                Err(e) => warning!("{} cannot listen on {addr}: {e}", self.label),
            }
        }
    }

    /// The Command Centers' addresses, for which connections are kept in reserve (with loopback).
    pub fn set_trusted(&self, ips: Vec<std::net::Ipv4Addr>) {
        self.slots.set_trusted(ips);
    }

    /// Stops every listener at once. Workers finish the request they run (bounded by their write
    /// timeout and the owner's answer) on their own; nothing waits for them.
    pub fn stop(&mut self) {
        for (addr, r) in self.running.drain() {
            r.halt();
            info!("{} stopped listening on {addr}", self.label);
        }
    }
}

impl Drop for Listeners {
    /// The workers end with the listeners (a job already queued is still answered).
    fn drop(&mut self) {
        self.stop();
        self.jobs.close();
    }
}

impl Running {
    fn halt(self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = (&self.wake).write(&[1]);
        let _ = self.thread.join();
    }
}

fn start(
    addr: SocketAddr,
    limits: Limits,
    slots: Slots,
    jobs: Arc<Queue<(Job, Handler)>>,
    handler: Handler,
) -> std::io::Result<Running> {
    let listener = TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let (wake, woken) = UnixStream::pair()?;
    woken.set_nonblocking(true)?;
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let thread = std::thread::spawn(move || {
        Loop {
            listener,
            woken,
            stop: flag,
            limits,
            slots,
            jobs,
            handler,
            conns: Vec::new(),
            accept_paused_until: None,
            last_accept_error: None,
        }
        .run()
    });
    Ok(Running { stop, wake, thread })
}

/// A connection whose request is still arriving.
struct Conn {
    stream: TcpStream,
    peer: SocketAddr,
    buf: Vec<u8>,
    head: Option<(Head, usize)>,
    /// A chunked body's decoder (its bytes are not kept in `buf`).
    chunks: Option<Chunked>,
    /// Where the head's line still arriving starts: the head is parsed again only when a line ends
    /// or this line outgrows its bound, so a head trickled byte by byte costs linear time.
    line_start: usize,
    deadline: Instant,
    slot: Slot,
}

struct Loop {
    listener: TcpListener,
    woken: UnixStream,
    stop: Arc<AtomicBool>,
    limits: Limits,
    slots: Slots,
    jobs: Arc<Queue<(Job, Handler)>>,
    handler: Handler,
    conns: Vec<Conn>,
    /// After an accept error (out of descriptors), accepting waits a moment instead of spinning.
    accept_paused_until: Option<Instant>,
    last_accept_error: Option<Instant>,
}

impl Loop {
    fn run(mut self) {
        while !self.stop.load(Ordering::SeqCst) {
            let now = Instant::now();
            if self.accept_paused_until.is_some_and(|t| t <= now) {
                self.accept_paused_until = None;
            }
            let accepting = self.accept_paused_until.is_none();
            let next = self
                .conns
                .iter()
                .map(|c| c.deadline)
                .chain(self.accept_paused_until)
                .min()
                .map_or(Duration::from_secs(1), |t| t.saturating_duration_since(now));
            let ready = {
                let mut fds = vec![
                    PollFd::new(self.woken.as_fd(), PollFlags::POLLIN),
                    PollFd::new(
                        self.listener.as_fd(),
                        if accepting {
                            PollFlags::POLLIN
                        } else {
                            PollFlags::empty()
                        },
                    ),
                ];
                fds.extend(
                    self.conns
                        .iter()
                        .map(|c| PollFd::new(c.stream.as_fd(), PollFlags::POLLIN)),
                );
                let ms = next.as_millis().clamp(1, 1000) as i32;
                let timeout = PollTimeout::try_from(ms).unwrap_or(PollTimeout::ZERO);
                if poll(&mut fds, timeout).is_err() {
                    continue;
                }
                fds.iter()
                    .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
                    .collect::<Vec<bool>>()
            };
            if ready[1] {
                self.accept();
            }
            // Newest first, so that removing keeps the indices of the ones still to visit.
            for i in (0..ready.len() - 2).rev() {
                if ready[i + 2] {
                    self.read(i);
                }
            }
            let now = Instant::now();
            let mut i = 0;
            while i < self.conns.len() {
                if self.conns[i].deadline <= now {
                    let c = self.conns.swap_remove(i);
                    refuse(
                        c.stream,
                        head::Refused {
                            status: 408,
                            reason: "request not complete in time",
                        },
                    );
                } else {
                    i += 1;
                }
            }
        }
    }

    fn accept(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((stream, peer)) => {
                    let mut taken = self.slots.take(peer.ip());
                    if taken.as_ref().err() == Some(&Full::Pool) && self.evict_idle() {
                        taken = self.slots.take(peer.ip());
                    }
                    let Ok(slot) = taken else {
                        // Full: a short answer without waiting for the request, then close.
                        let _ = stream.set_nonblocking(true);
                        refuse(
                            stream,
                            Refused {
                                status: 503,
                                reason: "too many connections",
                            },
                        );
                        continue;
                    };
                    if stream.set_nonblocking(true).is_err() {
                        continue;
                    }
                    self.conns.push(Conn {
                        stream,
                        peer,
                        buf: Vec::new(),
                        head: None,
                        chunks: None,
                        line_start: 0,
                        deadline: Instant::now() + Duration::from_millis(HTTP_REQUEST_TIMEOUT_MS),
                        slot,
                    });
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    // EMFILE and its kind: the listener stays; accepting resumes shortly.
                    let now = Instant::now();
                    if self
                        .last_accept_error
                        .is_none_or(|t| now.duration_since(t) > Duration::from_secs(60))
                    {
                        warning!("cannot accept connections ({e}); trying again");
                        self.last_accept_error = Some(now);
                    }
                    self.accept_paused_until =
                        Some(now + Duration::from_millis(HTTP_ACCEPT_BACKOFF_MS));
                    return;
                }
            }
        }
    }

    /// Closes one connection of the general pool that has not sent its request line yet, from the
    /// source holding the most slots (the oldest of its), so that a host with many idle connections
    /// gives way to a newcomer. False: there is none here (every connection in the pool is sending
    /// a request, each bounded by the request deadline).
    fn evict_idle(&mut self) -> bool {
        let victim = self
            .conns
            .iter()
            .enumerate()
            .filter(|(_, c)| !c.slot.reserved() && c.head.is_none() && c.line_start == 0)
            .max_by_key(|(_, c)| {
                (
                    self.slots.held_by(c.peer.ip()),
                    std::cmp::Reverse(c.deadline),
                )
            })
            .map(|(i, _)| i);
        let Some(i) = victim else { return false };
        let c = self.conns.swap_remove(i);
        refuse(
            c.stream,
            Refused {
                status: 408,
                reason: "idle: the connection was given to another client",
            },
        );
        true
    }

    /// Reads what connection `i` sent; hands a complete request to a worker.
    fn read(&mut self, i: usize) {
        let limits = self.limits;
        let c = &mut self.conns[i];
        const READ: usize = 4096;
        let mut chunk = [0u8; READ];
        // Never more than the head's bound plus the declared body (a chunked body bounds itself).
        let room = match (&c.head, &c.chunks) {
            (Some(_), Some(_)) => READ,
            (Some((h, n)), None) => (n + h.body_len).saturating_sub(c.buf.len()),
            (None, _) => (limits.max_head + 1).saturating_sub(c.buf.len()),
        };
        let got = match c.stream.read(&mut chunk[..room.clamp(1, READ)]) {
            Ok(0) => {
                self.conns.swap_remove(i);
                return;
            }
            Ok(n) => n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => return,
            Err(_) => {
                self.conns.swap_remove(i);
                return;
            }
        };
        let mut line_ended = false;
        let fed = match &mut c.chunks {
            Some(chunks) => chunks.feed(&chunk[..got]).map(drop),
            None => {
                if let Some(p) = chunk[..got].iter().rposition(|&b| b == b'\n') {
                    c.line_start = c.buf.len() + p + 1;
                    line_ended = true;
                }
                c.buf.extend_from_slice(&chunk[..got]);
                Ok(())
            }
        };
        if let Err(refused) = fed {
            let c = self.conns.swap_remove(i);
            refuse(c.stream, refused);
            return;
        }
        if c.head.is_none() {
            let bound = if c.line_start == 0 {
                limits.max_request_line
            } else {
                limits.max_header_line
            };
            if !line_ended && c.buf.len() - c.line_start <= bound {
                return;
            }
            match head::parse(&c.buf, &limits) {
                Ok(None) => return,
                Ok(Some((h, n))) => {
                    if h.chunked {
                        // What came with the head is the body's start.
                        let mut chunks = Chunked::new(limits.max_body);
                        if let Err(refused) = chunks.feed(&c.buf[n..]) {
                            let c = self.conns.swap_remove(i);
                            refuse(c.stream, refused);
                            return;
                        }
                        c.buf.truncate(n);
                        c.chunks = Some(chunks);
                    }
                    c.head = Some((h, n));
                }
                Err(refused) => {
                    let c = self.conns.swap_remove(i);
                    refuse(c.stream, refused);
                    return;
                }
            }
        }
        let complete = match (&c.head, &c.chunks) {
            (Some(_), Some(chunks)) => chunks.done(),
            (Some((h, n)), None) => c.buf.len() >= n + h.body_len,
            (None, _) => false,
        };
        if !complete {
            return;
        }
        let c = self.conns.swap_remove(i);
        let (h, n) = c.head.unwrap();
        let body = match c.chunks {
            Some(chunks) => chunks.into_body(),
            None => c.buf[n..n + h.body_len].to_vec(),
        };
        let request = Request {
            peer: c.peer,
            method: h.method,
            target: h.target,
            headers: h.headers,
            body,
        };
        match self
            .jobs
            .push(((c.stream, request, c.slot), self.handler.clone()))
        {
            Ok(()) => {}
            Err(((stream, _, _), _)) => {
                refuse(
                    stream,
                    Refused {
                        status: 503,
                        reason: "busy",
                    },
                );
            }
        }
    }
}

/// A worker: runs the handler, writes the answer (bounded in time), closes.
fn work(jobs: &Queue<(Job, Handler)>) {
    while let Some(((stream, request, slot), handler)) = jobs.pop() {
        let head_only = request.method.eq_ignore_ascii_case("HEAD");
        if let Some(response) = handler(request) {
            let _ = stream.set_nonblocking(false);
            let _ = stream.set_write_timeout(Some(Duration::from_millis(HTTP_WRITE_TIMEOUT_MS)));
            let _ = (&stream).write_all(&response.to_bytes(head_only));
        }
        let _ = stream.shutdown(Shutdown::Both);
        drop(slot);
    }
}

/// A short error answer, written once without waiting (a client that does not read loses it), then
/// the connection closes.
fn refuse(stream: TcpStream, why: Refused) {
    let r = Response::new(why.status, "text/plain", format!("{}\n", why.reason));
    let _ = (&stream).write(&r.to_bytes(false));
    let _ = stream.shutdown(Shutdown::Both);
}
