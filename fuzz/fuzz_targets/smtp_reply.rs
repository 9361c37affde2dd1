//! SMTP reply bytes through `smarthostd::probe::reply::ReplyReader::feed`, as the probe reads
//! them from a relay: in chunks of 1 to 1024 bytes (the probe's read buffer), chosen by the
//! first two input bytes, then `feed(&[])` for replies already buffered.
//!
//! Checked:
//! - every reply has a code in 200..=599, 1..=MAX_LINES lines, and no line longer than the
//!   reader accepts (MAX_LINE bytes on the wire, CRLF included);
//! - the replies do not depend on how the bytes were chunked (up to the first error, after
//!   which the reader drops what it had buffered, which depends on the chunking);
//! - the reader never holds a growing line: with no newline in MAX_LINE bytes it errors;
//! - once per process, megabytes without a newline, in probe-sized chunks, give errors and no
//!   growth (the run's -rss_limit_mb catches growth).

#![no_main]

use libfuzzer_sys::fuzz_target;
use smarthostd::probe::reply::{MAX_LINE, MAX_LINES, Reply, ReplyError, ReplyReader};
use smarthostd_fuzz::strict;
use std::sync::Once;

type Item = Result<Reply, ReplyError>;

/// The probe's read buffer.
const CHUNK_MAX: usize = 1024;

fn check(reply: &Item, input: &[u8]) {
    let Ok(reply) = reply else { return };
    assert!(
        (200..=599).contains(&reply.code),
        "reply code {} from {:?}",
        reply.code,
        String::from_utf8_lossy(input)
    );
    assert!(
        !reply.lines.is_empty() && reply.lines.len() <= MAX_LINES,
        "{} lines",
        reply.lines.len()
    );
    for line in &reply.lines {
        // Each line's text is what followed "NNN-" on a wire line of at most MAX_LINE bytes,
        // CRLF included. Known and reported: invalid UTF-8 becomes U+FFFD (3 bytes) per bad
        // sequence, so the text can reach about 3 x MAX_LINE bytes; its length in chars stays
        // within the wire line. SMARTHOSTD_FUZZ_STRICT=1 checks bytes instead.
        let chars = line.chars().count();
        assert!(
            chars + 4 <= MAX_LINE,
            "a line of {chars} chars ({} bytes) got through: {line:?}",
            line.len()
        );
        if strict() {
            assert!(
                line.len() + 4 <= MAX_LINE,
                "a line of {} bytes ({chars} chars) got through: {line:?}",
                line.len()
            );
        }
    }
    let _ = reply.summary();
    let _ = reply.has_extension("STARTTLS");
}

/// Feeds `chunks` and drains buffered replies after each; stops after the first error.
fn read_all<'a>(chunks: impl Iterator<Item = &'a [u8]>, input: &[u8]) -> Vec<Item> {
    let mut reader = ReplyReader::default();
    let mut out = Vec::new();
    let mut since_result = 0usize;
    for chunk in chunks {
        since_result += chunk.len();
        let mut next = reader.feed(chunk);
        while let Some(item) = next {
            since_result = 0;
            check(&item, input);
            let failed = item.is_err();
            out.push(item);
            if failed {
                return out;
            }
            next = reader.feed(&[]);
        }
        // Bytes held without a result: the lines of one unfinished reply (at most MAX_LINES,
        // each at most MAX_LINE) and a partial line shorter than MAX_LINE.
        assert!(
            since_result <= MAX_LINE * (MAX_LINES + 1),
            "{since_result} bytes held without a reply or an error"
        );
    }
    out
}

/// A deterministic chunking from a 16-bit seed (xorshift).
fn chunks(data: &[u8], seed: u16) -> Vec<&[u8]> {
    let mut state = u32::from(seed) | 0x1_0000;
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        // Mostly small chunks, sometimes a full read buffer.
        let size = match state % 8 {
            0 => CHUNK_MAX,
            1..=3 => 1 + (state >> 8) as usize % 16,
            _ => 1 + (state >> 8) as usize % CHUNK_MAX,
        };
        let (head, tail) = rest.split_at(size.min(rest.len()));
        out.push(head);
        rest = tail;
    }
    out
}

/// Megabytes with no newline, in probe-sized reads: the reader must keep erroring, not grow.
fn megabytes_without_newlines() {
    let chunk = [b'2'; CHUNK_MAX];
    let mut reader = ReplyReader::default();
    let mut errors = 0usize;
    let mut since_error = 0usize;
    for _ in 0..(16 << 20) / CHUNK_MAX {
        since_error += CHUNK_MAX;
        match reader.feed(&chunk) {
            Some(Err(ReplyError::LineTooLong)) => {
                errors += 1;
                since_error = 0;
            }
            None => assert!(since_error < MAX_LINE + CHUNK_MAX, "{since_error} bytes held"),
            other => panic!("unexpected {other:?} from a line with no end"),
        }
    }
    assert!(errors > 0);
}

fuzz_target!(|data: &[u8]| {
    static ONCE: Once = Once::new();
    ONCE.call_once(megabytes_without_newlines);

    let Some((seed, input)) = data.split_first_chunk::<2>() else {
        return;
    };
    let seed = u16::from_be_bytes(*seed);
    let whole = read_all(std::iter::once(input), input);
    let pieces = read_all(chunks(input, seed).into_iter(), input);
    assert_eq!(
        whole, pieces,
        "chunking changed the replies (seed {seed:#06x}) for {:?}",
        String::from_utf8_lossy(input)
    );
});
