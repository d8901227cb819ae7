//! A parser for OpenWrt's UCI file format (`/etc/config/*`), as libuci reads it:
//!
//! ```text
//! package 'wilife'                 # optional, ignored
//! config TYPE ['NAME']             # a section, named or anonymous
//!     option KEY 'VALUE'            # one value
//!     list KEY 'VALUE'              # appends to a list
//! ```
//!
//! Words are unquoted, 'single-quoted' (taken literally) or "double-quoted" (backslash escapes); adjacent
//! parts join into one word (`'a'"b"c` is `abc`); a quoted word may span lines; `#` starts a comment where a
//! word could start. Pure: text in, sections or a located error out.

use std::fmt;

/// One `option` or `list` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub value: String,
    pub is_list: bool,
    pub line: usize,
}

/// One `config` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub kind: String,
    pub name: Option<String>,
    pub line: usize,
    pub entries: Vec<Entry>,
}

impl Section {
    /// Human name for messages: `agent 'main'` or `command_center #2`.
    pub fn label(&self, index_of_kind: usize) -> String {
        match &self.name {
            Some(n) => format!("{} '{}'", self.kind, n),
            None => format!("{} #{}", self.kind, index_of_kind + 1),
        }
    }
}

/// A syntax error at a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// Longest value we accept: UCI values are short; a runaway quote should not eat memory.
const MAX_WORD: usize = 4096;

/// Splits the text into statements: each a list of words with the line where it starts.
fn statements(text: &str) -> Result<Vec<(usize, Vec<String>)>, SyntaxError> {
    let mut out = Vec::new();
    let mut words: Vec<String> = Vec::new();
    let mut stmt_line = 1;
    let mut line = 1;
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            '\n' => {
                chars.next();
                if !words.is_empty() {
                    out.push((stmt_line, std::mem::take(&mut words)));
                }
                line += 1;
            }
            ' ' | '\t' | '\r' => {
                chars.next();
            }
            // Backslash-newline between words continues the statement on the next line.
            '\\' if chars.clone().nth(1) == Some('\n') => {
                chars.next();
                chars.next();
                line += 1;
            }
            ';' => {
                // libuci accepts `;` as a statement separator.
                chars.next();
                if !words.is_empty() {
                    out.push((stmt_line, std::mem::take(&mut words)));
                }
            }
            '#' => {
                while chars.peek().is_some_and(|&c| c != '\n') {
                    chars.next();
                }
            }
            _ => {
                if words.is_empty() {
                    stmt_line = line;
                }
                let word_line = line;
                let mut word = String::new();
                loop {
                    match chars.peek().copied() {
                        None | Some(' ' | '\t' | '\r' | '\n' | ';') => break,
                        Some('\'') => {
                            chars.next();
                            let open = line;
                            loop {
                                match chars.next() {
                                    None => return Err(unterminated('\'', open)),
                                    Some('\'') => break,
                                    Some(c) => {
                                        if c == '\n' {
                                            line += 1;
                                        }
                                        word.push(c);
                                    }
                                }
                            }
                        }
                        Some('"') => {
                            chars.next();
                            let open = line;
                            loop {
                                match chars.next() {
                                    None => return Err(unterminated('"', open)),
                                    Some('"') => break,
                                    Some('\\') => match chars.next() {
                                        None => return Err(unterminated('"', open)),
                                        Some('\n') => line += 1,
                                        Some(c) => word.push(c),
                                    },
                                    Some(c) => {
                                        if c == '\n' {
                                            line += 1;
                                        }
                                        word.push(c);
                                    }
                                }
                            }
                        }
                        Some('\\') => {
                            chars.next();
                            match chars.next() {
                                None => {
                                    return Err(SyntaxError {
                                        line,
                                        message: "a backslash ends the file".into(),
                                    })
                                }
                                // Backslash-newline continues the statement on the next line.
                                Some('\n') => line += 1,
                                Some(c) => word.push(c),
                            }
                        }
                        Some(c) => {
                            chars.next();
                            word.push(c);
                        }
                    }
                    if word.len() > MAX_WORD {
                        return Err(SyntaxError {
                            line: word_line,
                            message: format!("a word longer than {MAX_WORD} bytes"),
                        });
                    }
                }
                words.push(word);
            }
        }
    }
    if !words.is_empty() {
        out.push((stmt_line, words));
    }
    Ok(out)
}

fn unterminated(quote: char, line: usize) -> SyntaxError {
    SyntaxError {
        line,
        message: format!("unterminated quote: the {quote} opened here is never closed"),
    }
}

/// Parses a whole UCI file: its sections, or every statement that is wrong (an unterminated quote ends
/// the reading: the rest of the file is inside it).
pub fn parse(text: &str) -> Result<Vec<Section>, Vec<SyntaxError>> {
    let mut sections: Vec<Section> = Vec::new();
    let mut errors = Vec::new();
    for (line, words) in statements(text).map_err(|e| vec![e])? {
        if let Err(e) = statement(&mut sections, line, &words) {
            errors.push(e);
        }
    }
    if errors.is_empty() {
        Ok(sections)
    } else {
        Err(errors)
    }
}

/// One statement: a new section, or an option of the last one.
fn statement(
    sections: &mut Vec<Section>,
    line: usize,
    words: &[String],
) -> Result<(), SyntaxError> {
    let err = |message: String| Err(SyntaxError { line, message });
    match words[0].as_str() {
        "package" => {
            if words.len() != 2 {
                return err("expected `package NAME`".into());
            }
        }
        "config" => {
            if !(2..=3).contains(&words.len()) {
                return err("expected `config TYPE ['NAME']`".into());
            }
            if !is_type(&words[1]) {
                return err(format!(
                    "invalid section type '{}': use printable characters, no spaces",
                    words[1]
                ));
            }
            let name = words.get(2).cloned();
            if let Some(n) = &name {
                if !is_identifier(n) {
                    return err(format!(
                        "invalid section name '{n}': use letters, digits and _"
                    ));
                }
            }
            sections.push(Section {
                kind: words[1].clone(),
                name,
                line,
                entries: Vec::new(),
            });
        }
        kw @ ("option" | "list") => {
            if words.len() != 3 {
                return err(format!(
                    "expected `{kw} NAME 'VALUE'` (quote values with spaces)"
                ));
            }
            let Some(section) = sections.last_mut() else {
                return err(format!("`{kw}` before any `config` section"));
            };
            if !is_identifier(&words[1]) {
                return err(format!(
                    "invalid option name '{}': use letters, digits and _",
                    words[1]
                ));
            }
            section.entries.push(Entry {
                key: words[1].clone(),
                value: words[2].clone(),
                is_list: kw == "list",
                line,
            });
        }
        other => {
            return err(format!(
                "unknown keyword '{other}': expected package, config, option or list"
            ))
        }
    }
    Ok(())
}

/// A section type as libuci takes it: printable ASCII, no space (`bridge-vlan` is one).
fn is_type(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic())
}

fn is_identifier(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sections_options_lists_and_quoting() {
        let text = "package wilife\n\n# comment\nconfig agent 'main'\n\toption direct_access upnp # trailing\n\tlist lan_device 'br-lan'\n\tlist lan_device \"br-\\\"x\"\nconfig command_center\n\toption name 'office pc'\n\toption note 'a''b'\"c\"d\n";
        let s = parse(text).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].kind, "agent");
        assert_eq!(s[0].name.as_deref(), Some("main"));
        assert_eq!(s[0].line, 4);
        assert_eq!(s[0].entries[0].value, "upnp");
        assert_eq!(s[0].entries[0].line, 5);
        assert!(s[0].entries[1].is_list);
        assert_eq!(s[0].entries[2].value, "br-\"x");
        assert_eq!(s[1].name, None);
        assert_eq!(s[1].entries[0].value, "office pc");
        assert_eq!(s[1].entries[1].value, "abcd");
    }

    #[test]
    fn multi_line_quote_and_continuation_count_lines() {
        let s = parse("config a 'x'\n\toption k 'one\ntwo'\n\toption j \\\n  v\n\toption z 1\n")
            .unwrap();
        assert_eq!(s[0].entries[0].value, "one\ntwo");
        assert_eq!(s[0].entries[1].value, "v");
        assert_eq!(s[0].entries[1].line, 4);
        assert_eq!(s[0].entries[2].line, 6);
    }

    #[test]
    fn errors_name_the_line() {
        let cases = [
            ("config a 'x'\n\toption k 'open\n", 2, "unterminated quote"),
            ("option k v\n", 1, "before any `config`"),
            (
                "config a\n\toption k\n",
                2,
                "expected `option NAME 'VALUE'`",
            ),
            ("config a\nfrobnicate x\n", 2, "unknown keyword"),
            ("config 'a b'\n", 1, "invalid section type"),
            ("config a 'b c'\n", 1, "invalid section name"),
            ("config a\n\toption k a b\n", 2, "quote values with spaces"),
        ];
        for (text, line, needle) in cases {
            let errors = parse(text).unwrap_err();
            assert_eq!(errors.len(), 1, "{text:?}: {errors:?}");
            assert_eq!(errors[0].line, line, "{text:?}: {errors:?}");
            assert!(errors[0].message.contains(needle), "{text:?}: {errors:?}");
        }
    }

    #[test]
    fn every_wrong_statement_is_reported() {
        let text = "config a
	option k
frobnicate x
	option ok 'v'
	list a-b 'c'
";
        let errors = parse(text).unwrap_err();
        let lines: Vec<usize> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, [2, 3, 5], "{errors:?}");
        // An unterminated quote swallows the rest of the file: one error, where it opened.
        let errors = parse(
            "config a
	option k 'open
frobnicate
",
        )
        .unwrap_err();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].line, 2);
    }

    #[test]
    fn empty_and_comment_only_files_have_no_sections() {
        assert!(parse("").unwrap().is_empty());
        assert!(parse("# nothing\n\n   # here\n").unwrap().is_empty());
    }
}
