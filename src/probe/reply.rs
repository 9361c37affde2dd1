//! SMTP replies (RFC 5321 section 4.2): `250-first line`, `250 last line`, bounded in size.
//!
//! This is where a relay's words enter the program: each line's text is made safe here
//! ([`network_text::clean`]), once, for every log line, status, event and page it reaches.

use std::fmt;

use crate::network_text;

/// The longest reply line accepted, CRLF included (RFC 5321 section 4.5.3.1.5).
pub const MAX_LINE: usize = 512;
/// The most lines one reply may have; EHLO replies list one extension per line.
pub const MAX_LINES: usize = 100;
/// The longest [`Reply::summary`], which goes into probe failure reasons and log lines.
pub const SUMMARY_CHARS: usize = 120;
/// The longest text kept of one line: what follows `NNN-` on a line of [`MAX_LINE`] bytes.
const LINE_TEXT_CHARS: usize = MAX_LINE - 4;
/// The longest text of a malformed line quoted in its error.
const MALFORMED_CHARS: usize = 80;

/// A complete reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The three-digit reply code (220, 250, …).
    pub code: u16,
    /// The text of each line, without code and separator.
    pub lines: Vec<String>,
}

impl Reply {
    /// The reply as a person would quote it: code and first line, at most
    /// [`SUMMARY_CHARS`] characters (the text was made safe as it arrived).
    pub fn summary(&self) -> String {
        let first = self.lines.first().map_or("", String::as_str);
        let text = if first.is_empty() {
            self.code.to_string()
        } else {
            format!("{} {}", self.code, first)
        };
        // Only bounds: cleaning clean text changes nothing.
        network_text::clean(&text, SUMMARY_CHARS)
    }

    /// Whether an EHLO reply advertises the extension `keyword` (case-insensitive).
    pub fn has_extension(&self, keyword: &str) -> bool {
        self.lines.iter().skip(1).any(|l| {
            l.split_whitespace()
                .next()
                .is_some_and(|k| k.eq_ignore_ascii_case(keyword))
        })
    }
}

/// Why bytes are not a valid reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyError {
    /// A line does not start with a three-digit code and a separator (its start, made safe).
    Malformed(String),
    /// A continuation line carries another code than the first.
    MixedCodes(u16, u16),
    /// A line longer than [`MAX_LINE`] bytes.
    LineTooLong,
    /// More than [`MAX_LINES`] lines.
    TooManyLines,
}

impl fmt::Display for ReplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed(line) => write!(f, "malformed reply line \"{line}\""),
            Self::MixedCodes(a, b) => write!(f, "reply mixes codes {a} and {b}"),
            Self::LineTooLong => write!(f, "reply line longer than {MAX_LINE} bytes"),
            Self::TooManyLines => write!(f, "reply longer than {MAX_LINES} lines"),
        }
    }
}

/// Collects bytes until a reply is complete.
#[derive(Debug, Default)]
pub struct ReplyReader {
    pending: Vec<u8>,
    code: Option<u16>,
    lines: Vec<String>,
}

impl ReplyReader {
    /// Takes more bytes; returns the reply once its last line has arrived. Bytes after it are
    /// kept for the next reply.
    pub fn feed(&mut self, data: &[u8]) -> Option<Result<Reply, ReplyError>> {
        self.pending.extend_from_slice(data);
        self.next_reply()
    }

    fn next_reply(&mut self) -> Option<Result<Reply, ReplyError>> {
        loop {
            let Some(end) = self.pending.iter().position(|&b| b == b'\n') else {
                if self.pending.len() >= MAX_LINE {
                    return Some(Err(self.fail(ReplyError::LineTooLong)));
                }
                return None;
            };
            if end + 1 > MAX_LINE {
                return Some(Err(self.fail(ReplyError::LineTooLong)));
            }
            let parsed = {
                let line = String::from_utf8_lossy(&self.pending[..=end]);
                let line = line.trim_end_matches(['\r', '\n']);
                parse_line(line).map(|(code, last, text)| {
                    (code, last, network_text::clean(text, LINE_TEXT_CHARS))
                })
            };
            self.pending.drain(..=end);
            let (code, last, text) = match parsed {
                Ok(parts) => parts,
                Err(e) => return Some(Err(self.fail(e))),
            };
            if let Some(first) = self.code
                && first != code
            {
                return Some(Err(self.fail(ReplyError::MixedCodes(first, code))));
            }
            self.code = Some(code);
            self.lines.push(text);
            if self.lines.len() > MAX_LINES {
                return Some(Err(self.fail(ReplyError::TooManyLines)));
            }
            if last {
                let reply = Reply {
                    code,
                    lines: std::mem::take(&mut self.lines),
                };
                self.code = None;
                return Some(Ok(reply));
            }
        }
    }

    /// Bytes received after the last complete reply and not yet part of one. A relay that
    /// waits for each command (RFC 5321 section 4.2) leaves none before the next is sent.
    pub fn buffered(&self) -> &[u8] {
        &self.pending
    }

    fn fail(&mut self, e: ReplyError) -> ReplyError {
        self.pending.clear();
        self.lines.clear();
        self.code = None;
        e
    }
}

/// Splits `250-text` into (250, false, "text"); `250 text` and a bare `250` end a reply.
fn parse_line(line: &str) -> Result<(u16, bool, &str), ReplyError> {
    let malformed = || ReplyError::Malformed(network_text::clean(line, MALFORMED_CHARS));
    let bytes = line.as_bytes();
    if bytes.len() < 3
        || !bytes[..3].iter().all(u8::is_ascii_digit)
        || !(b'2'..=b'5').contains(&bytes[0])
    {
        return Err(malformed());
    }
    let code: u16 = line[..3].parse().map_err(|_| malformed())?;
    match bytes.get(3) {
        None => Ok((code, true, "")),
        Some(b' ') => Ok((code, true, &line[4..])),
        Some(b'-') => Ok((code, false, &line[4..])),
        Some(_) => Err(malformed()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(bytes: &[u8]) -> Option<Result<Reply, ReplyError>> {
        ReplyReader::default().feed(bytes)
    }

    #[test]
    fn a_single_line_reply() {
        let r = read(b"220 relay.example ESMTP ready\r\n").unwrap().unwrap();
        assert_eq!(r.code, 220);
        assert_eq!(r.summary(), "220 relay.example ESMTP ready");
    }

    #[test]
    fn a_multi_line_reply_arriving_in_pieces() {
        let mut reader = ReplyReader::default();
        assert_eq!(reader.feed(b"250-relay.example\r\n250-PIPELIN"), None);
        assert_eq!(reader.feed(b"ING\r\n250-STARTTLS\r\n"), None);
        let r = reader.feed(b"250 8BITMIME\r\n").unwrap().unwrap();
        assert_eq!(
            r.lines,
            vec!["relay.example", "PIPELINING", "STARTTLS", "8BITMIME"]
        );
        assert!(r.has_extension("starttls"));
        assert!(
            !r.has_extension("relay.example"),
            "the first line is the greeting, not an extension"
        );
    }

    #[test]
    fn bare_lf_and_a_bare_code_are_accepted() {
        let r = read(b"221\n").unwrap().unwrap();
        assert_eq!((r.code, r.summary()), (221, "221".to_string()));
    }

    #[test]
    fn bytes_after_a_reply_wait_for_the_next() {
        let mut reader = ReplyReader::default();
        let first = reader.feed(b"220 hi\r\n250 ok\r\n").unwrap().unwrap();
        assert_eq!(first.code, 220);
        assert_eq!(reader.feed(b"").unwrap().unwrap().code, 250);
    }

    #[test]
    fn malformed_replies_are_named() {
        assert_eq!(
            read(b"HTTP/1.1 400 Bad\r\n"),
            Some(Err(ReplyError::Malformed("HTTP/1.1 400 Bad".into())))
        );
        assert!(matches!(
            read(b"22 x\r\n"),
            Some(Err(ReplyError::Malformed(_)))
        ));
        assert!(matches!(
            read(b"220x\r\n"),
            Some(Err(ReplyError::Malformed(_)))
        ));
        assert!(matches!(
            read(b"999 x\r\n"),
            Some(Err(ReplyError::Malformed(_)))
        ));
        assert_eq!(
            read(b"250-a\r\n251 b\r\n"),
            Some(Err(ReplyError::MixedCodes(250, 251)))
        );
    }

    #[test]
    fn a_relays_text_is_made_safe_as_it_arrives() {
        let r = read(b"421 busy\x1b[2J\rINFO forged \xe2\x80\xae\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(r.lines, ["busy\\u{1b}[2J\\rINFO forged \\u{202e}"]);
        assert_eq!(r.summary(), "421 busy\\u{1b}[2J\\rINFO forged \\u{202e}");
        let e = read(b"\x1b]0;owned\x07\r\n").unwrap().unwrap_err();
        assert_eq!(
            e.to_string(),
            "malformed reply line \"\\u{1b}]0;owned\\u{7}\""
        );
        let long = format!("250 {}\r\n", "\x1b".repeat(200));
        let r = read(long.as_bytes()).unwrap().unwrap();
        assert!(r.lines[0].chars().count() <= MAX_LINE - 4, "bounded");
        assert!(r.summary().chars().count() <= SUMMARY_CHARS);
    }

    #[test]
    fn bytes_after_a_reply_stay_buffered_until_read() {
        let mut reader = ReplyReader::default();
        assert!(reader.feed(b"220 hi\r\n").is_some());
        assert!(reader.buffered().is_empty());
        assert!(reader.feed(b"220 hi\r\n250 early").is_some());
        assert_eq!(reader.buffered(), b"250 early");
    }

    #[test]
    fn oversized_replies_are_cut_off() {
        let long = vec![b'2'; MAX_LINE + 1];
        assert_eq!(read(&long), Some(Err(ReplyError::LineTooLong)));
        let mut many = Vec::new();
        for _ in 0..=MAX_LINES {
            many.extend_from_slice(b"250-x\r\n");
        }
        assert_eq!(read(&many), Some(Err(ReplyError::TooManyLines)));
    }
}
