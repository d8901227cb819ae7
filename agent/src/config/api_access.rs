//! What the API's local clients (`wilife-agent status`, the rpcd plugin behind LuCI) need from the
//! config: the port and the write token, nothing else. Read on their own, so that a mistake elsewhere
//! in the file (which the running daemon refuses and reports as `reload_error`) or devices the file
//! leaves to netifd never hide the agent's own answers from LuCI.

use super::{parse_port, parse_token, uci, ConfigError};
use crate::consts::DEFAULT_API_PORT;
use std::path::Path;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiAccess {
    pub port: u16,
    /// `None`: writes through the API are disabled (no token, or not a usable one).
    pub token: Option<String>,
}

/// Reads `api_port` and `api_token` of the `agent` section.
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
    let token = value("api_token").and_then(|e| parse_token(&e.value).ok());
    Ok(ApiAccess { port, token })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(text: &str) -> Result<ApiAccess, ConfigError> {
        static SEQ: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("wilife-access-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("wilife");
        std::fs::write(&p, text).unwrap();
        let r = api_access(&p);
        let _ = std::fs::remove_dir_all(&dir);
        r
    }

    #[test]
    fn only_port_and_token_matter() {
        // Devices left to netifd, and a broken camera section the daemon would refuse.
        let a = access(
            "config agent 'main'\n\toption wan_device ''\n\toption api_port '8781'\n\
             \toption api_token '0123456789abcdef'\nconfig camera\n\toption mac 'nonsense'\n",
        )
        .unwrap();
        assert_eq!(a.port, 8781);
        assert_eq!(a.token.as_deref(), Some("0123456789abcdef"));
        let d = access("config agent 'main'\n\toption api_token ''\n").unwrap();
        assert_eq!((d.port, d.token), (DEFAULT_API_PORT, None));
        assert_eq!(
            access("config agent 'main'\n\toption api_token 'short'\n")
                .unwrap()
                .token,
            None
        );
    }

    #[test]
    fn an_unusable_port_or_file_is_an_error() {
        let e = access("config agent 'main'\n\toption api_port 'x'\n").unwrap_err();
        assert_eq!(e.option.as_deref(), Some("api_port"));
        assert_eq!(e.line, Some(2));
        assert!(access("config agent 'main\n").is_err());
    }
}
