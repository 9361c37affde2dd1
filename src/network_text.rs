//! Text from the network, made safe where it enters the program: relay replies, blocklist
//! reasons, resolver errors, and (in the CLI) what the admin API returns.
//!
//! Such text goes on to log lines, the status page, JSON, events and a terminal. A carriage
//! return or line feed in it would forge a log line; an escape sequence would rewrite a terminal
//! (`journalctl -f`); a bidirectional override would make a reason read backwards. [`clean`]
//! writes each such character as visible text (`\r`, `\n`, `\u{1b}`, `\u{202e}`) and bounds the
//! length, once, at entry; every later sink may then print the text as it is.
//!
//! The backslash itself is left alone, so that cleaning is idempotent: text cleaned twice (at
//! entry, and again by the CLI before a terminal) reads the same as text cleaned once.

/// The ellipsis that ends text cut at its bound.
const CUT: char = '…';

/// `text` with every control, format (invisible, bidirectional) and line- or paragraph-separating
/// character escaped visibly, at most `max_chars` characters long (text cut there ends in `…`).
pub(crate) fn clean(text: &str, max_chars: usize) -> String {
    if max_chars == 0 {
        return String::new();
    }
    let mut out = String::with_capacity(text.len().min(max_chars.saturating_mul(4)));
    let mut chars = 0usize;
    // Where the text would be cut: the longest prefix, in whole characters or escapes, that
    // leaves room for the ellipsis.
    let mut cut_at = 0usize;
    let mut piece = String::new();
    for c in text.chars() {
        piece.clear();
        if needs_escape(c) {
            piece.extend(c.escape_default());
        } else {
            piece.push(c);
        }
        let len = piece.chars().count();
        if chars + len > max_chars {
            out.truncate(cut_at);
            out.push(CUT);
            return out;
        }
        out.push_str(&piece);
        chars += len;
        if chars < max_chars {
            cut_at = out.len();
        }
    }
    out
}

/// [`clean`] of bytes that should be UTF-8 text; invalid sequences become U+FFFD.
pub(crate) fn clean_bytes(bytes: &[u8], max_chars: usize) -> String {
    clean(&String::from_utf8_lossy(bytes), max_chars)
}

/// Characters that are not shown as themselves: controls (C0, DEL, C1), and the invisible and
/// direction-changing format characters and separators a reader or a terminal would act on.
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00ad}'                      // soft hyphen
            | '\u{061c}'                    // Arabic letter mark
            | '\u{180e}'                    // Mongolian vowel separator
            | '\u{200b}'..='\u{200f}'       // zero-width spaces and joiners, LRM, RLM
            | '\u{2028}'..='\u{202e}'       // line and paragraph separators, bidi embeddings and overrides
            | '\u{2060}'..='\u{206f}'       // word joiner, invisible operators, bidi isolates
            | '\u{feff}'                    // zero-width no-break space (BOM)
            | '\u{fff9}'..='\u{fffb}'       // interlinear annotation
            | '\u{1bca0}'..='\u{1bca3}'     // shorthand format controls
            | '\u{1d173}'..='\u{1d17a}'     // musical format controls
            | '\u{e0000}'..='\u{e007f}' // tags
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_and_invisible_characters_are_shown_as_text() {
        let forged = "spam\r\n2026-01-01T00:00:00Z  INFO smarthostd: forged\x1b[2J";
        assert_eq!(
            clean(forged, 200),
            "spam\\r\\n2026-01-01T00:00:00Z  INFO smarthostd: forged\\u{1b}[2J"
        );
        assert_eq!(
            clean("a\0b\tc\x7fd\u{85}e\u{9b}f", 200),
            "a\\u{0}b\\tc\\u{7f}d\\u{85}e\\u{9b}f"
        );
        assert_eq!(
            clean("evil\u{202e}txt.exe\u{2066}\u{200b}\u{2028}\u{feff}", 200),
            "evil\\u{202e}txt.exe\\u{2066}\\u{200b}\\u{2028}\\u{feff}"
        );
        assert_eq!(
            clean("relay.example ESMTP — prêt, 準備完了", 200),
            "relay.example ESMTP — prêt, 準備完了",
            "printable text of any script is kept"
        );
    }

    #[test]
    fn text_is_bounded_and_never_cut_inside_an_escape() {
        assert_eq!(clean("abcdef", 6), "abcdef");
        assert_eq!(clean("abcdefg", 6), "abcde…");
        assert_eq!(
            clean("abc\x1bdef", 6),
            "abc…",
            "the escape does not fit whole"
        );
        let long = "\x1b".repeat(1000);
        let cleaned = clean(&long, 100);
        assert!(cleaned.chars().count() <= 100, "{cleaned}");
        assert!(cleaned.ends_with("\\u{1b}…"), "{cleaned}");
        assert_eq!(clean("", 0), "");
        assert_eq!(clean("x", 0), "");
    }

    #[test]
    fn cleaning_twice_is_cleaning_once() {
        for text in [
            "spam\r\n\x1b[2J",
            "already \\u{1b} escaped",
            "\u{202e}\u{0}\\r",
            &"é\x07".repeat(80),
        ] {
            for max in [5, 20, 200, usize::MAX] {
                let once = clean(text, max);
                assert_eq!(clean(&once, max), once, "{text:?} at {max}");
            }
        }
    }

    #[test]
    fn invalid_bytes_become_replacement_characters() {
        assert_eq!(clean_bytes(b"ok\xff\r", 20), "ok\u{fffd}\\r");
    }
}
