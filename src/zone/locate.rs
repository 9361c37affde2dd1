//! Line numbers for zone file errors. hickory-proto's parser reports what is wrong but not
//! where, so these helpers find the line from the text.

use std::path::Path;

use hickory_proto::rr::Name;
use hickory_proto::serialize::txt::Parser;

/// The first `$ORIGIN` directive naming a zone other than `origin` or a name under it.
pub(super) fn foreign_origin(text: &str, origin: &Name) -> Option<(usize, String)> {
    for (i, line) in text.lines().enumerate() {
        let mut words = line.split_whitespace();
        if !words
            .next()
            .is_some_and(|w| w.eq_ignore_ascii_case("$ORIGIN"))
        {
            continue;
        }
        let Some(word) = words.next() else { continue };
        let inside = Name::from_ascii(word).is_ok_and(|mut n| {
            n.set_fqdn(true);
            origin.zone_of(&n)
        });
        if !inside {
            return Some((i + 1, word.to_string()));
        }
    }
    None
}

/// The line of the first record the parser rejects: the shortest prefix of whole entries that
/// fails to parse ends there. A prefix that fails stays failing as lines are added, so a binary
/// search over the entry boundaries finds it in a logarithmic number of parses.
pub(super) fn parse_error_line(text: &str, path: &Path, origin: &Name) -> Option<usize> {
    // Byte offset just after each line that ends an entry (outside parentheses), and its number.
    let mut boundaries = Vec::new();
    let mut depth = 0i32;
    let mut offset = 0;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        offset += line.len();
        let code = line.split(';').next().unwrap_or("");
        depth += code.matches('(').count() as i32 - code.matches(')').count() as i32;
        if depth <= 0 {
            boundaries.push((offset, i + 1));
        }
    }
    let fails = |end: usize| {
        let mut prefix = text[..end].to_string();
        if !prefix.ends_with('\n') {
            prefix.push('\n');
        }
        Parser::new(
            prefix.as_str(),
            Some(path.to_path_buf()),
            Some(origin.clone()),
        )
        .parse()
        .is_err()
    };
    let first_failing = boundaries.partition_point(|&(end, _)| !fails(end));
    boundaries.get(first_failing).map(|&(_, line)| line)
}

/// The line where records for `owner` start, by its first word (absolute or relative).
pub(super) fn owner_line(text: &str, owner: &Name, origin: &Name) -> Option<usize> {
    let absolute = owner.to_ascii().to_ascii_lowercase();
    let relative = if owner == origin {
        "@".to_string()
    } else {
        // An owner outside the zone (even above it) has no relative form.
        let keep = usize::from(owner.num_labels().saturating_sub(origin.num_labels()));
        let labels: Vec<String> = owner
            .iter()
            .take(keep)
            .map(|l| String::from_utf8_lossy(l).to_ascii_lowercase())
            .collect();
        labels.join(".")
    };
    text.lines()
        .position(|line| {
            line.split_whitespace().next().is_some_and(|w| {
                let w = w.to_ascii_lowercase();
                !line.starts_with(char::is_whitespace) && (w == absolute || w == relative)
            })
        })
        .map(|i| i + 1)
}
