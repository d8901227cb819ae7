//! `/etc/config/wilife`: the model (`model.rs`), the parsers of single values (`values.rs`), the UCI
//! syntax (`uci.rs`) and the validation that turns sections into the model (`validate.rs`). Pure: text
//! in, a `Config` or every error of the file out, each naming the file, line, section and option and
//! saying what would be valid.

mod api_access;
mod model;
pub mod uci;
mod validate;
mod values;

pub use api_access::{api_access, read_token, ApiAccess};
pub use model::*;
pub use values::*;

use std::fmt;
use std::path::Path;

/// A configuration error, located.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    pub line: Option<usize>,
    pub section: Option<String>,
    pub option: Option<String>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
        }
        write!(f, ": ")?;
        match (&self.section, &self.option) {
            (Some(s), Some(o)) => write!(f, "{s}, option '{o}': ")?,
            (Some(s), None) => write!(f, "{s}: ")?,
            (None, Some(o)) => write!(f, "option '{o}': ")?,
            (None, None) => {}
        }
        write!(f, "{}", self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Values given on the command line that take precedence over the file (the OpenWrt init script
/// resolves the logical `wan`/`lan` networks to devices and passes them here).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub wan_device: Option<String>,
    pub lan_devices: Vec<String>,
}

/// Every error of a file, in file order (never empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl std::ops::Deref for ConfigErrors {
    type Target = [ConfigError];
    fn deref(&self) -> &[ConfigError] {
        &self.0
    }
}

/// One error per line, as a compiler prints them.
impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl From<ConfigError> for ConfigErrors {
    fn from(e: ConfigError) -> Self {
        ConfigErrors(vec![e])
    }
}

/// Reads and validates a config file. The API token (a file of its own) is left to the caller:
/// `check` refuses an unusable one, the daemon runs on with API writes off.
pub fn load(path: &Path, overrides: &Overrides) -> Result<Config, ConfigErrors> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: path.display().to_string(),
        line: None,
        section: None,
        option: None,
        message: format!("cannot read the file: {e}"),
    })?;
    parse(&text, path, overrides)
}

/// Validates config text (`path` is used in messages only). Syntax errors are reported alone (the
/// sections they break cannot be read); otherwise every validation error of the file.
pub fn parse(text: &str, path: &Path, overrides: &Overrides) -> Result<Config, ConfigErrors> {
    let file = path.display().to_string();
    let sections = uci::parse(text).map_err(|errors| {
        ConfigErrors(
            errors
                .into_iter()
                .map(|e| ConfigError {
                    file: file.clone(),
                    line: Some(e.line),
                    section: None,
                    option: None,
                    message: e.message,
                })
                .collect(),
        )
    })?;
    validate::validate(&file, &sections, path, overrides).map_err(ConfigErrors)
}

#[cfg(test)]
mod tests;
