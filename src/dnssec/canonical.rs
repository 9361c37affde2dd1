//! DNSSEC's canonical forms (RFC 4034 section 6) on lower-case wire names: name order, label
//! counts, and the type bitmaps of NSEC records (section 4.1.2).
//!
//! Allocation-free: the name order is used at query time to find the NSEC records that prove
//! a name does not exist.

use std::cmp::Ordering;

/// The most labels a wire name can have (255 bytes, one per empty label plus length).
const MAX_LABELS: usize = 128;

/// Where each label of a lower-case wire name starts, leftmost first; the count.
fn label_starts(name: &[u8], starts: &mut [u8; MAX_LABELS]) -> usize {
    let mut n = 0;
    let mut at = 0;
    while at < name.len() && name[at] != 0 && n < MAX_LABELS {
        starts[n] = at as u8;
        n += 1;
        at += usize::from(name[at]) + 1;
    }
    n
}

/// Canonical order of two lower-case wire names (RFC 4034 section 6.1): label by label from the
/// rightmost, each label as an unsigned octet string, a name before the names under it.
pub(crate) fn canonical_cmp(a: &[u8], b: &[u8]) -> Ordering {
    let mut sa = [0u8; MAX_LABELS];
    let mut sb = [0u8; MAX_LABELS];
    let (na, nb) = (label_starts(a, &mut sa), label_starts(b, &mut sb));
    for i in 1..=na.min(nb) {
        let la = label(a, sa[na - i]);
        let lb = label(b, sb[nb - i]);
        match la.cmp(lb) {
            Ordering::Equal => {}
            other => return other,
        }
    }
    na.cmp(&nb)
}

fn label(name: &[u8], start: u8) -> &[u8] {
    let at = usize::from(start);
    &name[at + 1..at + 1 + usize::from(name[at])]
}

/// The longest key [`canonical_key_below`] writes: two bytes per name byte.
pub(crate) const MAX_KEY: usize = 2 * 255;

/// Writes into `out` a key of the labels of the lower-case wire name `name` before its last
/// `suffix` bytes (a name it is under, the root's 1 byte at least) whose byte order (as slices
/// compare) is the canonical order of the names: the labels from the rightmost, each byte as
/// `1, byte` and each label's end as `0` (so a label sorts before the labels it is a prefix of,
/// and a name before the names under it). Returns the key's length. A name's key is a prefix of
/// the keys of every name under it; its key below a suffix is the end of its whole key, after
/// the suffix's.
pub(crate) fn canonical_key_below(name: &[u8], suffix: usize, out: &mut [u8; MAX_KEY]) -> usize {
    let mut starts = [0u8; MAX_LABELS];
    let n = label_starts(&name[..name.len() - suffix], &mut starts);
    let mut len = 0;
    for i in (0..n).rev() {
        for &b in label(name, starts[i]) {
            out[len] = 1;
            out[len + 1] = b;
            len += 2;
        }
        out[len] = 0;
        len += 1;
    }
    len
}

/// The number of labels of a wire name, the root not counted (an RRSIG's Labels field).
pub(crate) fn label_count(name: &[u8]) -> u8 {
    let mut starts = [0u8; MAX_LABELS];
    label_starts(name, &mut starts) as u8
}

/// The NSEC type bitmap of `types` (any order, duplicates allowed): window blocks of the types
/// present, each as long as its highest type needs (RFC 4034 section 4.1.2).
pub(crate) fn type_bitmap(types: &[u16]) -> Vec<u8> {
    let mut sorted = types.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut out = Vec::with_capacity(2 + 32);
    let mut i = 0;
    while i < sorted.len() {
        let window = (sorted[i] >> 8) as u8;
        let mut bits = [0u8; 32];
        let mut len = 0;
        while i < sorted.len() && (sorted[i] >> 8) as u8 == window {
            let low = (sorted[i] & 0xFF) as usize;
            bits[low / 8] |= 0x80 >> (low % 8);
            len = low / 8 + 1;
            i += 1;
        }
        out.push(window);
        out.push(len as u8);
        out.extend_from_slice(&bits[..len]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A wire name from dotted labels, where `\NNN` is one octet.
    fn w(s: &str) -> Vec<u8> {
        let mut out = Vec::new();
        for label in s.split('.') {
            let bytes: Vec<u8> = match label.strip_prefix('\\') {
                Some(octal) => vec![octal.parse().unwrap()],
                None => label.bytes().collect(),
            };
            out.push(bytes.len() as u8);
            out.extend(bytes);
        }
        out.push(0);
        out
    }

    #[test]
    fn names_sort_as_rfc_4034_lists_them() {
        // RFC 4034 section 6.1's example, in order.
        let names = [
            "example",
            "a.example",
            "yljkjljk.a.example",
            "z.a.example",
            "zabc.a.example",
            "z.example",
            "\\001.z.example",
            "*.z.example",
            "\\200.z.example",
        ];
        let wires: Vec<Vec<u8>> = names.iter().map(|n| w(n)).collect();
        for pair in wires.windows(2) {
            assert_eq!(
                canonical_cmp(&pair[0], &pair[1]),
                Ordering::Less,
                "{pair:?}"
            );
            assert_eq!(canonical_cmp(&pair[1], &pair[0]), Ordering::Greater);
        }
        assert_eq!(canonical_cmp(&wires[3], &wires[3]), Ordering::Equal);
        assert_eq!(label_count(&wires[2]), 3);
        assert_eq!(label_count(&[0]), 0);
    }

    #[test]
    fn keys_sort_as_the_names_do() {
        let names = [
            "example",
            "a.example",
            "yljkjljk.a.example",
            "z.a.example",
            "zabc.a.example",
            "z.example",
            "\\0.z.example",
            "\\1.z.example",
            "*.z.example",
            "\\200.z.example",
            "\\255.\\0.z.example",
        ];
        let key = |n: &str| {
            let mut k = [0u8; MAX_KEY];
            let len = canonical_key_below(&w(n), 1, &mut k);
            k[..len].to_vec()
        };
        for a in names {
            for b in names {
                assert_eq!(
                    key(a).cmp(&key(b)),
                    canonical_cmp(&w(a), &w(b)),
                    "{a} and {b}"
                );
            }
        }
        assert!(key("a.example").starts_with(&key("example")));
        assert!(key("").is_empty());
        let mut below = [0u8; MAX_KEY];
        let len = canonical_key_below(&w("b.a.example"), w("example").len(), &mut below);
        assert_eq!(below[..len], key("b.a.example")[key("example").len()..]);
    }

    #[test]
    fn bitmaps_as_rfc_4034_shows_them() {
        // RFC 4034 section 4.3: A MX RRSIG NSEC TYPE1234.
        assert_eq!(
            type_bitmap(&[1, 15, 46, 47, 1234, 1]),
            [
                0x00, 0x06, 0x40, 0x01, 0x00, 0x00, 0x00, 0x03, 0x04, 0x1b, 0x00, 0x00, 0x00, 0x00,
                0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x20
            ]
        );
    }
}
