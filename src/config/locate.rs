//! Finds where a key path stands in the TOML text, so that errors found after deserializing
//! (cross-references, duplicates) still name a line.

use std::ops::Range;

use toml::de::{DeTable, DeValue};

/// One step of a key path: a table key or an array index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Step {
    Key(String),
    Index(usize),
}

/// A key path such as `sites.oxford.hosts[1].name`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct KeyPath(pub Vec<Step>);

impl KeyPath {
    pub(super) fn key(mut self, key: &str) -> Self {
        self.0.push(Step::Key(key.to_string()));
        self
    }

    pub(super) fn index(mut self, index: usize) -> Self {
        self.0.push(Step::Index(index));
        self
    }
}

impl std::fmt::Display for KeyPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, step) in self.0.iter().enumerate() {
            match step {
                Step::Key(k) if i == 0 => write!(f, "{k}")?,
                Step::Key(k) => write!(f, ".{k}")?,
                Step::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// The byte range of the value at `path`, or of its nearest ancestor that exists.
pub(super) fn span_of(text: &str, path: &KeyPath) -> Option<Range<usize>> {
    let root = DeTable::parse(text).ok()?;
    let mut best = None;
    let mut table: Option<&DeTable<'_>> = Some(root.get_ref());
    let mut array: Option<&[toml::Spanned<DeValue<'_>>]> = None;
    for step in &path.0 {
        let value = match step {
            Step::Key(k) => table.and_then(|t| t.get(k.as_str())),
            Step::Index(i) => array.and_then(|a| a.get(*i)),
        };
        let Some(value) = value else { break };
        best = Some(value.span());
        table = None;
        array = None;
        match value.get_ref() {
            DeValue::Table(t) => table = Some(t),
            DeValue::Array(a) => array = Some(a),
            _ => {}
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nested_values_in_inline_and_standard_tables() {
        let text = "[sites.oxford]\nhosts = [\n  { name = \"a\" },\n  { name = \"b\" },\n]\n";
        let path = KeyPath::default()
            .key("sites")
            .key("oxford")
            .key("hosts")
            .index(1)
            .key("name");
        let span = span_of(text, &path).unwrap();
        assert_eq!(&text[span], "\"b\"");
        assert_eq!(path.to_string(), "sites.oxford.hosts[1].name");
    }

    #[test]
    fn falls_back_to_the_nearest_ancestor() {
        let text = "[zone]\norigin = \"x\"\n";
        let path = KeyPath::default().key("zone").key("missing");
        let span = span_of(text, &path).unwrap();
        assert!(
            span.start < text.find('\n').unwrap(),
            "points at the [zone] table"
        );
    }
}
