//! Logging to syslog (`/dev/log`, ident `wilife-agent`, facility daemon) or to stderr in the foreground.
//!
//! A few lines rather than a crate: OpenWrt's logd and busybox syslogd take `<PRI>ident[pid]: message`
//! over a datagram socket, and this keeps the binary small. `WILIFE_SYSLOG_SOCKET` points it at another
//! socket (the tests use it to read what the daemon logs).

use std::os::unix::net::UnixDatagram;
use std::sync::OnceLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Error = 3,
    Warning = 4,
    Notice = 5,
    Info = 6,
    Debug = 7,
}

enum Sink {
    Stderr,
    Syslog { socket: UnixDatagram, path: String },
}

struct Logger {
    sink: Sink,
    max: Level,
}

static LOGGER: OnceLock<Logger> = OnceLock::new();

const IDENT: &str = "wilife-agent";
const FACILITY_DAEMON: u8 = 3;

/// Chooses the sink once, at start. Without a call, messages go to stderr.
pub fn init(foreground: bool, debug: bool) {
    let max = if debug { Level::Debug } else { Level::Info };
    let sink = if foreground {
        Sink::Stderr
    } else {
        let path = std::env::var("WILIFE_SYSLOG_SOCKET").unwrap_or_else(|_| "/dev/log".into());
        match UnixDatagram::unbound() {
            Ok(socket) => Sink::Syslog { socket, path },
            Err(_) => Sink::Stderr,
        }
    };
    let _ = LOGGER.set(Logger { sink, max });
}

pub fn log(level: Level, message: &str) {
    let logger = LOGGER.get_or_init(|| Logger {
        sink: Sink::Stderr,
        max: Level::Info,
    });
    if level > logger.max {
        return;
    }
    let message = escaped(message);
    match &logger.sink {
        Sink::Stderr => eprintln!("{IDENT}: {}: {message}", label(level)),
        Sink::Syslog { socket, path } => {
            let line = format!(
                "<{}>{IDENT}[{}]: {message}",
                FACILITY_DAEMON * 8 + level as u8,
                std::process::id()
            );
            // If syslog is not there (early boot, logd restarting) the message still reaches stderr,
            // which procd collects.
            if socket.send_to(line.as_bytes(), path).is_err() {
                eprintln!("{IDENT}: {}: {message}", label(level));
            }
        }
    }
}

/// The longest message logged, in characters (syslog lines are short; a client's string is no reason to
/// write more).
const MAX_MESSAGE: usize = 1024;

/// A message as one line of plain text: control characters (a newline a LAN client slipped into a
/// protocol name would start a forged line) become `\xNN`, and it is bounded.
pub fn escaped(message: &str) -> std::borrow::Cow<'_, str> {
    let clean = message.len() <= MAX_MESSAGE && !message.chars().any(char::is_control);
    if clean {
        return message.into();
    }
    let mut out = String::with_capacity(message.len().min(MAX_MESSAGE) + 16);
    for (i, c) in message.chars().enumerate() {
        if i == MAX_MESSAGE {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.push_str(&format!("\\x{:02x}", c as u32 & 0xff));
        } else {
            out.push(c);
        }
    }
    out.into()
}

fn label(level: Level) -> &'static str {
    match level {
        Level::Error => "error",
        Level::Warning => "warning",
        Level::Notice => "notice",
        Level::Info => "info",
        Level::Debug => "debug",
    }
}

#[macro_export]
macro_rules! error { ($($t:tt)*) => { $crate::log::log($crate::log::Level::Error, &format!($($t)*)) } }
#[macro_export]
macro_rules! warning { ($($t:tt)*) => { $crate::log::log($crate::log::Level::Warning, &format!($($t)*)) } }
#[macro_export]
macro_rules! notice { ($($t:tt)*) => { $crate::log::log($crate::log::Level::Notice, &format!($($t)*)) } }
#[macro_export]
macro_rules! info { ($($t:tt)*) => { $crate::log::log($crate::log::Level::Info, &format!($($t)*)) } }
#[macro_export]
macro_rules! debug { ($($t:tt)*) => { $crate::log::log($crate::log::Level::Debug, &format!($($t)*)) } }

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_strings_stay_on_one_line() {
        assert_eq!(escaped("plain"), "plain");
        assert_eq!(
            escaped("TCP\nwilife-agent[1]: granted\r\u{1b}[2J\u{85}"),
            "TCP\\x0awilife-agent[1]: granted\\x0d\\x1b[2J\\x85"
        );
        let long = "a".repeat(5000);
        assert_eq!(escaped(&long).chars().count(), MAX_MESSAGE + 1);
    }
}
