//! Config errors a person can act on: file, line, key path, problem.

use std::fmt;
use std::path::PathBuf;

/// One problem found in a config or zone file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file the problem is in.
    pub file: PathBuf,
    /// 1-based line and column, where the parser could tell.
    pub position: Option<(usize, usize)>,
    /// Dotted key path such as `sites.oxford.hosts[1].port`; empty when the problem is the file.
    pub key: String,
    /// What is wrong, in words.
    pub message: String,
}

impl ConfigError {
    /// A problem with no known position.
    pub fn new(
        file: impl Into<PathBuf>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            file: file.into(),
            position: None,
            key: key.into(),
            message: message.into(),
        }
    }

    /// Sets the position from a byte offset into `text`.
    pub fn at_offset(mut self, text: &str, offset: usize) -> Self {
        self.position = Some(line_column(text, offset));
        self
    }

    /// Sets the 1-based line.
    pub fn at_line(mut self, line: usize) -> Self {
        self.position = Some((line, 1));
        self
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some((line, column)) = self.position {
            write!(f, ":{line}:{column}")?;
        }
        if !self.key.is_empty() {
            write!(f, ": {}", self.key)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

/// 1-based line and column of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rfind('\n').map_or(offset, |nl| offset - nl - 1) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_are_one_based() {
        let text = "a = 1\nbb = 2\n";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 6), (2, 1));
        assert_eq!(line_column(text, 8), (2, 3));
    }

    #[test]
    fn display_names_file_line_key_and_problem() {
        let e = ConfigError::new("a.toml", "sites.x", "bad").at_line(3);
        assert_eq!(e.to_string(), "a.toml:3:1: sites.x: bad");
    }
}
