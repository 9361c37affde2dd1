//! Metric names in PromQL, and what a scrape exports: enough of both to check that alert rules
//! and dashboards name only metrics the server has (see `monitoring`).

use std::collections::{BTreeMap, BTreeSet};

/// Prometheus's own series, recorded for every target: not the server's to export.
const PROMETHEUS_SERIES: &[&str] = &["up"];

/// PromQL words that can stand where a metric name could: binary and set operators, modifiers,
/// aggregation operators (which may be followed by `by (...)` rather than a parenthesis), and
/// the special float values.
const NOT_METRICS: &[&str] = &[
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "limitk",
    "limit_ratio",
    "inf",
    "nan",
];

/// Keywords followed by a parenthesized list of label names, not of expressions.
const LABEL_LISTS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

/// The metric names a PromQL expression reads. String literals, label matchers, ranges and
/// Grafana variables are dropped first; then every identifier that is not a function (followed
/// by `(`), a keyword or a label list is a metric name.
pub(crate) fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut cleaned = String::with_capacity(expr.len());
    let mut chars = expr.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' | '\'' | '`' => {
                while let Some(d) = chars.next() {
                    if d == '\\' && c != '`' {
                        chars.next();
                    } else if d == c {
                        break;
                    }
                }
                cleaned.push(' ');
            }
            '{' | '[' => {
                let close = if c == '{' { '}' } else { ']' };
                for d in chars.by_ref() {
                    if d == close {
                        break;
                    }
                }
                cleaned.push(' ');
            }
            '$' => {
                // $var, ${var} or ${var:format}.
                if chars.peek() == Some(&'{') {
                    for d in chars.by_ref() {
                        if d == '}' {
                            break;
                        }
                    }
                } else {
                    while chars
                        .peek()
                        .is_some_and(|d| d.is_ascii_alphanumeric() || *d == '_')
                    {
                        chars.next();
                    }
                }
                cleaned.push(' ');
            }
            '#' => {
                for d in chars.by_ref() {
                    if d == '\n' {
                        break;
                    }
                }
                cleaned.push(' ');
            }
            _ => cleaned.push(c),
        }
    }

    let bytes = cleaned.as_bytes();
    let mut names = BTreeSet::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_digit() || c == b'.' {
            // A number or a duration: 0.95, 5m, 1e3, 0x1f.
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'.') {
                i += 1;
            }
        } else if c.is_ascii_alphabetic() || c == b'_' || c == b':' {
            let start = i;
            while i < bytes.len()
                && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_' || bytes[i] == b':')
            {
                i += 1;
            }
            let word = &cleaned[start..i];
            let mut next = i;
            while next < bytes.len() && bytes[next].is_ascii_whitespace() {
                next += 1;
            }
            let before_paren = bytes.get(next) == Some(&b'(');
            if LABEL_LISTS.contains(&word) && before_paren {
                // Skip the list of label names.
                i = next;
                while i < bytes.len() && bytes[i] != b')' {
                    i += 1;
                }
            } else if !before_paren && !NOT_METRICS.contains(&word.to_ascii_lowercase().as_str()) {
                names.insert(word.to_string());
            }
        } else {
            i += 1;
        }
    }
    names
}

/// What a scrape exports: each family with its type (`# TYPE`), and each sample name.
#[derive(Debug, Default)]
pub(crate) struct Exported {
    pub families: BTreeMap<String, String>,
    samples: BTreeSet<String>,
}

impl Exported {
    pub(crate) fn parse(scrape: &str) -> Self {
        let mut exported = Self::default();
        for line in scrape.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let mut parts = rest.split_whitespace();
                if let (Some(name), Some(kind)) = (parts.next(), parts.next()) {
                    exported.families.insert(name.into(), kind.into());
                }
            } else if !line.starts_with('#') && !line.trim().is_empty() {
                let end = line.find(['{', ' ']).unwrap_or(line.len());
                exported.samples.insert(line[..end].to_string());
            }
        }
        exported
    }

    /// Whether `name` is a family, a sample seen, or a sample its family's type implies
    /// (`_total` of a counter, `_bucket`/`_sum`/`_count` of a histogram, `_info` of an info).
    fn has(&self, name: &str) -> bool {
        if self.samples.contains(name) || self.families.contains_key(name) {
            return true;
        }
        let implied: &[(&str, &[&str])] = &[
            ("_total", &["counter"]),
            ("_bucket", &["histogram", "gaugehistogram"]),
            ("_sum", &["histogram", "summary"]),
            ("_count", &["histogram", "summary"]),
            ("_created", &["counter", "histogram", "summary"]),
            ("_info", &["info"]),
        ];
        implied.iter().any(|(suffix, kinds)| {
            name.strip_suffix(suffix)
                .and_then(|family| self.families.get(family))
                .is_some_and(|kind| kinds.contains(&kind.as_str()))
        })
    }

    /// `(expression, name)` for every name in `exprs` that is not exported.
    pub(crate) fn missing<'a>(&self, exprs: &'a [String]) -> Vec<(&'a str, String)> {
        exprs
            .iter()
            .flat_map(|e| metric_names(e).into_iter().map(move |n| (e.as_str(), n)))
            .filter(|(_, n)| !PROMETHEUS_SERIES.contains(&n.as_str()) && !self.has(n))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_names_are_read_from_promql_without_functions_labels_or_variables() {
        let names = |e: &str| -> Vec<String> { metric_names(e).into_iter().collect() };
        assert_eq!(
            names(
                r#"histogram_quantile(0.95, sum by (le, site) (rate(a_seconds_bucket{site=~"$site", x="y{z}"}[$__rate_interval])))"#
            ),
            ["a_seconds_bucket"]
        );
        assert_eq!(
            names(
                "b == 0 unless on (instance, site, host) c == 1 or vector(0) > bool 2 * inf offset 5m"
            ),
            ["b", "c"]
        );
        assert_eq!(
            names(
                "sum without (address) (increase(d_total[15m:1m])) / ignoring (x) group_left (y) e\n# f g\n"
            ),
            ["d_total", "e"]
        );
        assert_eq!(
            names(r#"label_replace(up, "dst", "$1", "src", "(.*)") and time() - k:recorded"#),
            ["k:recorded", "up"]
        );
        assert_eq!(names("count(topk(3, h)) by (site)"), ["h"]);
    }

    #[test]
    fn a_metric_the_scrape_lacks_is_reported() {
        let scrape = "# TYPE s_queries counter\ns_queries_total{q=\"MX\"} 1\n\
                      # TYPE s_seconds histogram\ns_seconds_sum 0\ns_seconds_count 0\n\
                      # TYPE s_mode gauge\n# TYPE s_build info\ns_build_info{v=\"1\"} 1\n";
        let exported = Exported::parse(scrape);
        let exprs: Vec<String> = [
            "rate(s_queries_total[5m])",
            "histogram_quantile(0.5, rate(s_seconds_bucket[5m])) + s_seconds_count",
            "s_mode == 2 and on () s_build_info and up == 1",
            // A rename: the dashboard still says `s_mode_old`, a gauge is not a counter.
            "s_mode_old > 0 or s_mode_total",
        ]
        .map(String::from)
        .to_vec();
        let missing: Vec<String> = exported
            .missing(&exprs)
            .into_iter()
            .map(|(_, n)| n)
            .collect();
        assert_eq!(missing, ["s_mode_old", "s_mode_total"]);
    }
}
