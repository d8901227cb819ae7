//! The probe's thread: takes the asks (on demand, or after a mapping change), keeps the rate limit,
//! sends each step's SYNs side by side (one poll, no thread each), publishes the report in the
//! snapshot and logs a changed problem once.

use super::{
    command_centers, onward, problem, Hop, Limiter, Outside, Report, Target, Tried, Trigger,
    Upstream, Verdict, ANSWER_WAIT,
};
use crate::clock::unix_now;
use crate::owner::{ProbeAnswer, Shared};
use crate::upstream::cascade::Standing;
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{
    connect, getsockopt, setsockopt, socket, sockopt, AddressFamily, SockFlag, SockType, SockaddrIn,
};
use std::net::SocketAddrV4;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Starts the thread; it ends when `shared.probes` is closed.
pub fn start(shared: Arc<Shared>) {
    std::thread::spawn(move || serve(&shared));
}

fn serve(shared: &Shared) {
    let mut limiter = Limiter::default();
    // A run after a mapping change that the limit put off, and when it may run.
    let mut put_off: Option<Instant> = None;
    loop {
        let wait = put_off.map_or(Duration::from_secs(3600), |at| {
            at.saturating_duration_since(Instant::now())
        });
        let ask = shared.probes.pop_timeout(wait);
        if ask.is_none() && shared.probes.is_closed() {
            return;
        }
        let (trigger, reply) = match ask {
            Some(ask) => ask,
            None if put_off.is_some_and(|at| at <= Instant::now()) => {
                (Trigger::MappingChange, None)
            }
            None => continue,
        };
        let answer: ProbeAnswer = match limiter.take(Instant::now()) {
            Ok(()) => {
                put_off = None;
                Ok(run(shared, trigger))
            }
            Err(after) => {
                if reply.is_none() {
                    put_off = Some(Instant::now() + after);
                }
                Err(after)
            }
        };
        if let Some(reply) = reply {
            let _ = reply.push(answer);
        }
    }
}

/// What the snapshot says of the forwards and of the path beyond the router; the probe's mark.
fn path(shared: &Shared) -> (Vec<crate::firewall::Forward>, Outside, u32) {
    let snap = shared.snapshot.lock().unwrap();
    let up = &snap.upstream;
    let upstream = match &up.standing {
        Standing::Mapping {
            external_address, ..
        } if up.idle.is_none() => Some(Upstream {
            gateway: up.gateway,
            external: *external_address,
            forwarded: (up.mappings.iter())
                .map(|m| (m.port, m.external_port))
                .collect(),
        }),
        _ => None,
    };
    let outside = Outside {
        wan: snap.facts.wan_ipv4.first().copied(),
        table: snap.table_present,
        upstream,
    };
    (snap.forwards.clone(), outside, snap.config.connmark)
}

/// One run over the forwards in force, hop by hop: published, and its problem logged when it changed.
fn run(shared: &Shared, trigger: Trigger) -> Report {
    let (forwards, outside, mark) = path(shared);
    let first = command_centers(&forwards);
    let mut hops = syns(first.targets, mark);
    let next = onward(&hops, &outside);
    hops.extend(first.not_tried);
    hops.extend(syns(next.targets, mark));
    hops.extend(next.not_tried);
    let (broken_hop, problem) = problem(&hops, &outside).unzip();
    let report = Report {
        at: unix_now(),
        trigger,
        hops,
        broken_hop,
        problem,
    };
    let before = shared
        .snapshot
        .lock()
        .unwrap()
        .probe
        .replace(report.clone())
        .and_then(|r| r.problem);
    match (&before, &report.problem) {
        (_, Some(now)) if before.as_ref() != Some(now) => warning!("end-to-end probe: {now}"),
        (Some(_), None) if !report.hops.is_empty() => {
            info!("end-to-end probe: every hop answers again")
        }
        _ => {}
    }
    report
}

/// One connection attempt from the router to each target, side by side (a non-blocking socket each,
/// one poll), each closed once answered; what has no answer after `ANSWER_WAIT` is dropped. The
/// public address is tried with `mark` on the socket: our probe chain takes only such connections
/// through the forwards.
fn syns(targets: Vec<Target>, mark: u32) -> Vec<Tried> {
    if targets.is_empty() {
        return Vec::new();
    }
    let started = Instant::now();
    let mut tried: Vec<Tried> = (targets.into_iter())
        .map(|t| Tried {
            hop: t.hop,
            address: Some(t.address),
            external_port: t.external_port,
            verdict: Verdict::Dropped,
            ms: ANSWER_WAIT.as_millis() as u64,
            why: None,
        })
        .collect();
    // The sockets still connecting, with their index in `tried`.
    let mut connecting: Vec<(usize, OwnedFd)> = Vec::new();
    for (i, t) in tried.iter_mut().enumerate() {
        let marked = (t.hop == Hop::PublicAddress).then_some(mark);
        match t.address.map_or(Err(Errno::EINVAL), |to| open(to, marked)) {
            Ok(Some(fd)) => connecting.push((i, fd)),
            done => {
                t.verdict = done.map_or_else(verdict_of, |_| Verdict::Answered);
                t.ms = started.elapsed().as_millis() as u64;
            }
        }
    }
    while !connecting.is_empty() {
        let left = (started + ANSWER_WAIT).saturating_duration_since(Instant::now());
        let timeout = PollTimeout::try_from(left.as_millis() as i32).unwrap_or(PollTimeout::ZERO);
        let mut fds: Vec<PollFd> = (connecting.iter())
            .map(|(_, fd)| PollFd::new(fd.as_fd(), PollFlags::POLLOUT))
            .collect();
        if left.is_zero() || !matches!(poll(&mut fds, timeout), Ok(n) if n > 0) {
            break;
        }
        let ready: Vec<bool> = (fds.iter())
            .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        let ms = started.elapsed().as_millis() as u64;
        let mut ready = ready.into_iter();
        connecting.retain(|(i, fd)| {
            if !ready.next().unwrap_or(false) {
                return true;
            }
            let err = getsockopt(fd, sockopt::SocketError).unwrap_or(Errno::EIO as i32);
            tried[*i].verdict = match err {
                0 => Verdict::Answered,
                e => verdict_of(Errno::from_raw(e)),
            };
            tried[*i].ms = ms;
            false
        });
    }
    tried
}

/// A non-blocking connect to `to` (its packets carrying `mark`, if any): `None` when it connected at
/// once, else the socket to wait on.
fn open(to: SocketAddrV4, mark: Option<u32>) -> Result<Option<OwnedFd>, Errno> {
    let fd = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    if let Some(mark) = mark {
        setsockopt(&fd, sockopt::Mark, &mark)?;
    }
    match connect(fd.as_raw_fd(), &SockaddrIn::from(to)) {
        Ok(()) => Ok(None),
        Err(Errno::EINPROGRESS) => Ok(Some(fd)),
        Err(e) => Err(e),
    }
}

/// RST is a refusal; anything else (unreachable, a firewall's ICMP) is as good as no answer.
fn verdict_of(e: Errno) -> Verdict {
    if e == Errno::ECONNREFUSED {
        Verdict::Refused
    } else {
        Verdict::Dropped
    }
}
