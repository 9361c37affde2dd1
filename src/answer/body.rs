//! One body of a prepared response (its sections, where it lies in the snapshot's arena) and
//! the sizes every body must fit: what the builders, the signer and the snapshot share.

use std::ops::Range;

/// Room kept in every message for the OPT record and an ECS option.
pub(super) const OPT_RESERVE: usize = 11 + 4 + 20;
pub(super) const MAX_MESSAGE: usize = u16::MAX as usize;
/// The largest signed body that fits a message behind the longest question; a longer one is
/// sent without its additional section.
pub(super) const MAX_SIGNED_BODY: usize = MAX_MESSAGE - 12 - 255 - 4 - OPT_RESERVE;

/// One body of a prepared response: answer, authority and additional sections.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Body {
    /// Records in the answer section.
    pub answers: u16,
    /// Records in the authority section.
    pub authorities: u16,
    /// Records in the additional section, the OPT record not counted (each response adds its own);
    /// 0 is sent when the section is dropped to fit.
    pub additionals: u16,
    /// The sections, compressed against a lower-case question: where in the arena.
    pub(super) range: Range<u32>,
    /// Length of the body without the additional section (and its RRSIGs), which may be dropped
    /// to fit a UDP payload without setting TC (RFC 2181 section 9, RFC 4035 section 3.1.1).
    pub essential_len: u32,
    /// The RRSIG records of the answer section's first RRset, as offset and length in the body
    /// and their count: the answer to a query for type RRSIG.
    pub(super) answer_sigs: (u16, u16, u16),
}

impl Body {
    /// Where the sections are in the snapshot's byte arena.
    pub(super) fn span(&self) -> Range<usize> {
        self.range.start as usize..self.range.end as usize
    }
}

/// Which section records are being added to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Section {
    Answer,
    Authority,
    Additional,
}
