//! Dependency words as `apk mkpkg --info depends:` takes them: `name`, `name>=1.2`, `!name`, separated
//! by spaces or newlines only. apk would read a comma as part of a name; here it is refused, since in a
//! package for OpenWrt it is always opkg's separator copied by mistake.

/// The match bits a dependency carries (apk-package(5)).
pub const EQUAL: u32 = 1;
pub const LESS: u32 = 2;
pub const GREATER: u32 = 4;
pub const FUZZY: u32 = 8;
pub const CONFLICT: u32 = 16;
/// Any version: what a conflict without a version stands for.
const ANY: u32 = EQUAL | LESS | GREATER;

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Dependency {
    pub name: String,
    pub version: Option<String>,
    /// None where the version must be equal (or there is none): apk leaves the field out then.
    pub matching: Option<u32>,
}

/// The characters of a package name; dependencies may also name `so:`, `cmd:` and `[...]` providers.
fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "+._-:/[]".contains(c)
}

/// Parses a list of dependency words: sorted and without repeats, as apk writes them.
pub fn parse_list(text: &str) -> Result<Vec<Dependency>, String> {
    let mut deps = text
        .split([' ', '\n'])
        .filter(|w| !w.is_empty())
        .map(parse)
        .collect::<Result<Vec<_>, _>>()?;
    deps.sort();
    deps.dedup();
    Ok(deps)
}

fn parse(word: &str) -> Result<Dependency, String> {
    let (conflict, rest) = match word.strip_prefix('!') {
        Some(rest) => (true, rest),
        None => (false, word),
    };
    let split = rest.find(['<', '>', '=', '~']).unwrap_or(rest.len());
    let (name, constraint) = rest.split_at(split);
    if name.is_empty()
        || !name.starts_with(|c: char| c.is_ascii_alphanumeric())
        || !name.chars().all(name_char)
    {
        return Err(format!("dependency {word:?}: not a package name"));
    }
    let op_len = constraint
        .find(|c: char| !"<>=~".contains(c))
        .unwrap_or(constraint.len());
    let (op, version) = constraint.split_at(op_len);
    let mut bits = 0;
    for c in op.chars() {
        bits |= match c {
            '=' => EQUAL,
            '<' => LESS,
            '>' => GREATER,
            _ => FUZZY,
        };
    }
    if !op.is_empty() && (version.is_empty() || bits == LESS | GREATER) {
        return Err(format!("dependency {word:?}: no valid version constraint"));
    }
    let version = (!version.is_empty()).then(|| version.to_string());
    let matching = match (conflict, bits) {
        (true, 0) => Some(CONFLICT | ANY),
        (true, b) => Some(CONFLICT | b),
        (false, 0 | EQUAL) => None,
        (false, b) => Some(b),
    };
    Ok(Dependency {
        name: name.to_string(),
        version,
        matching,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dep(name: &str, version: Option<&str>, matching: Option<u32>) -> Dependency {
        Dependency {
            name: name.into(),
            version: version.map(Into::into),
            matching,
        }
    }

    #[test]
    fn words_become_sorted_unique_dependencies() {
        assert_eq!(
            parse_list("nftables-json libc\nuci>=2024 libc").unwrap(),
            [
                dep("libc", None, None),
                dep("nftables-json", None, None),
                dep("uci", Some("2024"), Some(GREATER | EQUAL)),
            ]
        );
        assert_eq!(
            parse_list("a=1 b<2 c~3 !d").unwrap(),
            [
                dep("a", Some("1"), None),
                dep("b", Some("2"), Some(LESS)),
                dep("c", Some("3"), Some(FUZZY)),
                dep("d", None, Some(CONFLICT | EQUAL | LESS | GREATER)),
            ]
        );
        assert_eq!(parse_list("  ").unwrap(), []);
    }

    #[test]
    fn opkg_forms_are_refused_not_guessed() {
        // opkg's "a, b (>= 1)" and OpenWrt's Makefile "+a" are not apk words.
        for bad in [
            "+nftables-json",
            "a (>=1)",
            "b>=",
            "<1",
            "x<>2",
            "-x",
            "a,b",
            "a, b",
        ] {
            assert!(parse_list(bad).is_err(), "{bad}");
        }
    }
}
