//! The commands README.md, CHANGELOG.md and docs/*.md show, as a reader would copy them: each line of a
//! ```sh block (typed on the router) or a ```bash block (typed on a PC, in a clone of the project),
//! without its trailing comment. The tests that run them take them from here, so none can rot.

use crate::lab::repo_root;
use std::fs;

/// Router commands that need OpenWrt's own package manager or its feed, which cannot run here: the
/// router test checks the file and package names the others use, and installs and removes the
/// packages as opkg and apk do (the stand-ins of `openwrt.rs`).
pub const PACKAGE_MANAGER: &[&str] = &[
    "apk --print-arch",
    "opkg print-architecture",
    "apk update",
    "opkg update",
    "apk add kmod-nft-bridge",
    "opkg install kmod-nft-bridge",
];

/// Where a command is typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shell {
    /// ```sh: the router's shell (OpenWrt's busybox ash).
    Router,
    /// ```bash: a Linux PC, in a clone of the project.
    Pc,
}

/// One command line shown in the docs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown {
    pub file: String,
    pub line: usize,
    pub shell: Shell,
    pub command: String,
}

impl std::fmt::Display for Shown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.command)
    }
}

/// The documents, in the order a reader meets them.
pub fn documents() -> Vec<String> {
    let mut docs: Vec<String> = fs::read_dir(repo_root().join("docs"))
        .unwrap()
        .flatten()
        .map(|e| format!("docs/{}", e.file_name().to_string_lossy()))
        .filter(|n| n.ends_with(".md"))
        .collect();
    docs.sort();
    [
        vec!["README.md".to_string(), "CHANGELOG.md".to_string()],
        docs,
    ]
    .concat()
}

/// Every command of every document.
pub fn shown() -> Vec<Shown> {
    documents()
        .iter()
        .flat_map(|f| commands(f, &fs::read_to_string(repo_root().join(f)).unwrap()))
        .collect()
}

/// The commands of one document's text.
pub fn commands(file: &str, text: &str) -> Vec<Shown> {
    let mut out = Vec::new();
    let mut block: Option<Option<Shell>> = None;
    for (i, line) in text.lines().enumerate() {
        if let Some(info) = line.trim_start().strip_prefix("```") {
            block = match block {
                Some(_) => None,
                None => Some(match info.trim() {
                    "sh" => Some(Shell::Router),
                    "bash" => Some(Shell::Pc),
                    _ => None,
                }),
            };
            continue;
        }
        if let Some(Some(shell)) = block {
            let command = without_comment(line);
            if !command.is_empty() {
                out.push(Shown {
                    file: file.to_string(),
                    line: i + 1,
                    shell,
                    command,
                });
            }
        }
    }
    out
}

/// The line without a trailing `# comment` (a `#` after a blank, outside quotes), trimmed.
pub fn without_comment(line: &str) -> String {
    let (mut single, mut double, mut prev) = (false, false, ' ');
    for (i, c) in line.char_indices() {
        match c {
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            '#' if !single && !double && prev.is_whitespace() => {
                return line[..i].trim().to_string();
            }
            _ => {}
        }
        prev = c;
    }
    line.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_come_from_sh_and_bash_blocks_without_their_comments() {
        let text = "x\n```sh\nuci commit wilife   # save\n\necho '#not a comment'\n```\n```json\n{\"a\": 1}\n```\n```bash\ncurl -s -w '%{http_code}\\n' http://x/#frag\n```\n";
        let got: Vec<(Shell, String)> = commands("f.md", text)
            .into_iter()
            .map(|s| (s.shell, s.command))
            .collect();
        assert_eq!(
            got,
            [
                (Shell::Router, "uci commit wilife".to_string()),
                (Shell::Router, "echo '#not a comment'".to_string()),
                (
                    Shell::Pc,
                    "curl -s -w '%{http_code}\\n' http://x/#frag".to_string()
                ),
            ]
        );
    }
}
