//! What the API's local clients (`wilife-agent status`, the rpcd plugin behind LuCI) need from the
//! config: the port and the write token (kept in a root-only file of its own), nothing else. Read on their own, so that a mistake elsewhere
//! in the file (which the running daemon refuses and reports as `reload_error`) or devices the file
//! leaves to netifd never hide the agent's own answers from LuCI.

use super::{parse_abs_path, parse_port, parse_token, uci, ConfigError};
use crate::consts::{DEFAULT_API_PORT, DEFAULT_API_TOKEN_FILE};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiAccess {
    pub port: u16,
    /// `None`: writes through the API are disabled (no token, or not a usable one).
    pub token: Option<String>,
    pub token_file: PathBuf,
}

/// Reads `api_port` and `api_token_file` of the `agent` section, then the token from that file.
pub fn api_access(path: &Path) -> Result<ApiAccess, ConfigError> {
    let file = path.display().to_string();
    let error = |line, option: Option<&str>, message| ConfigError {
        file: file.clone(),
        line,
        section: None,
        option: option.map(str::to_string),
        message,
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| error(None, None, format!("cannot read the file: {e}")))?;
    let sections = uci::parse(&text).map_err(|mut e| {
        let first = e.swap_remove(0);
        error(Some(first.line), None, first.message)
    })?;
    let value = |key: &str| {
        sections
            .iter()
            .find(|s| s.kind == "agent")
            .and_then(|s| s.entries.iter().find(|e| e.key == key))
            .filter(|e| !e.value.is_empty())
    };
    let port = match value("api_port") {
        None => DEFAULT_API_PORT,
        Some(e) => parse_port(&e.value)
            .map_err(|m| error(Some(e.line), Some("api_port"), format!("'{}' {m}", e.value)))?,
    };
    let token_file = value("api_token_file")
        .and_then(|e| parse_abs_path(&e.value, DEFAULT_API_TOKEN_FILE).ok())
        .unwrap_or_else(|| PathBuf::from(DEFAULT_API_TOKEN_FILE));
    let token = read_token(&token_file).ok().flatten();
    Ok(ApiAccess {
        port,
        token,
        token_file,
    })
}

/// The write token in `path`: `Ok(None)` when there is no such file (API writes are off). Refused: a
/// file others may read (as ssh refuses a private key), or one that holds no usable token. The token
/// is never part of a message.
pub fn read_token(path: &Path) -> Result<Option<String>, String> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read the token: {e}")),
    };
    let meta = file
        .metadata()
        .map_err(|e| format!("cannot read the token: {e}"))?;
    let mode = meta.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(format!(
            "may be read by others (mode {:04o}): chmod 600 it",
            mode & 0o7777
        ));
    }
    let unusable = || "holds no usable token: 16-256 printable characters on one line".to_string();
    if meta.len() > 1024 {
        return Err(unusable());
    }
    let mut bytes = Vec::new();
    use std::io::Read;
    (&file).read_to_end(&mut bytes).map_err(|_| unusable())?;
    let text = String::from_utf8(bytes).map_err(|_| unusable())?;
    parse_token(text.trim_end_matches(['\n', '\r']))
        .map(Some)
        .map_err(|_| unusable())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A fresh directory for one test.
    fn dir() -> PathBuf {
        static SEQ: AtomicUsize = AtomicUsize::new(0);
        let n = SEQ.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("wilife-access-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn access(dir: &Path, text: &str) -> Result<ApiAccess, ConfigError> {
        let p = dir.join("wilife");
        std::fs::write(&p, text).unwrap();
        api_access(&p)
    }

    fn token_file(dir: &Path, text: &str, mode: u32) -> PathBuf {
        let p = dir.join("api_token");
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    #[test]
    fn only_port_and_token_matter() {
        let d = dir();
        let t = token_file(&d, "0123456789abcdef\n", 0o600);
        // Devices left to netifd, and a broken camera section the daemon would refuse.
        let a = access(
            &d,
            &format!(
                "config agent 'main'\n\toption wan_device ''\n\toption api_port '8781'\n\
                 \toption api_token_file '{}'\nconfig camera\n\toption mac 'nonsense'\n",
                t.display()
            ),
        )
        .unwrap();
        assert_eq!(a.port, 8781);
        assert_eq!(a.token.as_deref(), Some("0123456789abcdef"));
        // A token left in the UCI file is not used; no file: no token.
        let none = access(
            &d,
            "config agent 'main'\n\toption api_token '0123456789abcdef'\n\
             \toption api_token_file '/nonexistent/api_token'\n",
        )
        .unwrap();
        assert_eq!((none.port, none.token), (DEFAULT_API_PORT, None));
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_token_file_others_may_read_or_holding_no_token_is_refused_without_echo() {
        let d = dir();
        let secret = "0123456789abcdef-secret";
        let e = read_token(&token_file(&d, secret, 0o644)).unwrap_err();
        assert!(e.contains("mode 0644") && !e.contains(secret), "{e}");
        assert!(read_token(&token_file(&d, "short", 0o600)).is_err());
        let e = read_token(&token_file(&d, &format!("{secret} two words"), 0o600)).unwrap_err();
        assert!(e.contains("no usable token") && !e.contains(secret), "{e}");
        assert_eq!(
            read_token(&token_file(&d, &format!("{secret}\r\n"), 0o400)).unwrap(),
            Some(secret.to_string())
        );
        assert_eq!(read_token(&d.join("absent")).unwrap(), None);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn an_unusable_port_or_file_is_an_error() {
        let d = dir();
        let e = access(&d, "config agent 'main'\n\toption api_port 'x'\n").unwrap_err();
        assert_eq!(e.option.as_deref(), Some("api_port"));
        assert_eq!(e.line, Some(2));
        assert!(access(&d, "config agent 'main\n").is_err());
        let _ = std::fs::remove_dir_all(&d);
    }
}
