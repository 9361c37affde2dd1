//! Text for a terminal: what came from the server (and from relays) with its control characters
//! escaped, and tables with columns padded to their widest cell.

use crate::network_text;

/// Text from the server made safe for a terminal, by the same helper that cleans the network's
/// text where it enters the server ([`network_text::clean`]): text the server already cleaned
/// comes out unchanged, anything else (an older server, a stranger on the admin port) escaped.
pub(super) fn printable(text: &str) -> String {
    network_text::clean(text, usize::MAX)
}

/// `rows` (the first one a header) as aligned lines, each cell made printable.
pub(super) fn render<const N: usize>(rows: &[[String; N]]) -> String {
    let rows: Vec<Vec<String>> = rows.iter().map(|row| row.to_vec()).collect();
    render_rows(&rows)
}

/// As [`render`], for rows of as many cells as the first one has (columns known at run time:
/// one per instance of a cluster).
pub(super) fn render_rows(rows: &[Vec<String>]) -> String {
    let n = rows.first().map_or(0, Vec::len);
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            (0..n)
                .map(|i| printable(row.get(i).map_or("", String::as_str)))
                .collect()
        })
        .collect();
    let widths: Vec<usize> = (0..n)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in &rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::render;

    #[test]
    fn text_the_server_already_escaped_is_not_escaped_again() {
        let once = super::printable("421 busy\x1b[2J\u{202e}");
        assert_eq!(once, "421 busy\\u{1b}[2J\\u{202e}");
        assert_eq!(super::printable(&once), once);
    }

    #[test]
    fn columns_line_up_and_control_characters_are_escaped() {
        let rows = [
            ["A".to_string(), "B".to_string()],
            ["long cell".to_string(), "x\x1b[2J".to_string()],
        ];
        assert_eq!(render(&rows), "A          B\nlong cell  x\\u{1b}[2J\n");
    }
}
