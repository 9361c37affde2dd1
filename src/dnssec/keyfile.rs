//! BIND's key file format, read and written: `K<origin>.+<alg>+<tag>.key` holds the DNSKEY
//! record (and, from `dnssec-keygen`, the timing metadata as comments), `.private` the private
//! key and the timing metadata, as `dnssec-keygen`, `ldns-keygen` and `dnssec-settime` write
//! them.
//!
//! Errors name the line and what is wrong, never the text of a `.private` line: it may hold the
//! key.

use hickory_proto::rr::Name;

use super::timing::{Stamp, Timing};

/// A problem in one key file, at a line when one is to blame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileProblem {
    /// 1-based line.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

fn problem(line: Option<usize>, message: impl Into<String>) -> FileProblem {
    FileProblem {
        line,
        message: message.into(),
    }
}

/// What a `.key` file says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicFile {
    /// The DNSKEY record's owner: the zone.
    pub owner: Name,
    /// Its flags: 257 for a key-signing (SEP) key, 256 for a zone-signing key.
    pub flags: u16,
    /// Its protocol field (always 3).
    pub protocol: u8,
    /// Its algorithm number.
    pub algorithm: u8,
    /// The public key, as the DNSKEY record carries it.
    pub public_key: Vec<u8>,
    /// The timing metadata in its comments (`; Publish: ...`).
    pub timing: Timing,
    /// The line of the DNSKEY record.
    pub line: usize,
}

/// Parses a `.key` file.
pub(crate) fn parse_public(text: &str) -> Result<PublicFile, FileProblem> {
    let mut timing = Timing::default();
    let mut record = None;
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let trimmed = raw.trim();
        if let Some(comment) = trimmed.strip_prefix(';') {
            if let Some((field, value)) = comment.trim().split_once(':') {
                timing
                    .set(field.trim(), value.trim())
                    .map_err(|e| problem(Some(line), e))?;
            }
            continue;
        }
        // ldns-keygen appends `;{id = ..., size = ...}` to the record.
        let data = trimmed.split(';').next().unwrap_or_default().trim();
        if data.is_empty() {
            continue;
        }
        if record.is_some() {
            return Err(problem(
                Some(line),
                "a second record: a .key file holds one DNSKEY",
            ));
        }
        record = Some((line, data));
    }
    let (line, data) = record.ok_or_else(|| problem(None, "no DNSKEY record in it"))?;
    let at = |m: &str| problem(Some(line), m);
    let mut tokens = data.split_whitespace();
    let owner = tokens.next().ok_or_else(|| at("empty record"))?;
    let owner = Name::from_ascii(owner)
        .map_err(|_| at("the owner is not a domain name"))?
        .to_lowercase();
    // Optional TTL and class, in either order, before the type.
    let mut rtype = None;
    for token in tokens.by_ref() {
        if token.eq_ignore_ascii_case("IN") || token.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        rtype = Some(token);
        break;
    }
    if !rtype.is_some_and(|t| t.eq_ignore_ascii_case("DNSKEY")) {
        return Err(at("not a DNSKEY record"));
    }
    let mut number = |what: &str| -> Result<u16, FileProblem> {
        tokens
            .next()
            .and_then(|t| t.parse().ok())
            .ok_or_else(|| at(&format!("the DNSKEY's {what} is missing or not a number")))
    };
    let flags = number("flags")?;
    let protocol = u8::try_from(number("protocol")?).map_err(|_| at("bad protocol"))?;
    let algorithm = u8::try_from(number("algorithm")?).map_err(|_| at("bad algorithm"))?;
    let key: String = tokens.collect();
    let public_key = data_encoding::BASE64
        .decode(key.as_bytes())
        .map_err(|_| at("the public key is not base64"))?;
    Ok(PublicFile {
        owner,
        flags,
        protocol,
        algorithm,
        public_key,
        timing,
        line,
    })
}

/// What a `.private` file says. Its `Debug` leaves the key out.
#[derive(Clone, PartialEq, Eq)]
pub struct PrivateFile {
    /// The `Algorithm:` number.
    pub algorithm: u8,
    /// `PrivateKey:`: the ECDSA scalar or the Ed25519 seed.
    pub private_key: Vec<u8>,
    /// The timing metadata (`Publish: ...`).
    pub timing: Timing,
}

impl std::fmt::Debug for PrivateFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrivateFile")
            .field("algorithm", &self.algorithm)
            .field("private_key", &"(not shown)")
            .field("timing", &self.timing)
            .finish()
    }
}

/// Parses a `.private` file.
pub(crate) fn parse_private(text: &str) -> Result<PrivateFile, FileProblem> {
    let mut format = None;
    let mut algorithm = None;
    let mut private_key = None;
    let mut timing = Timing::default();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with(';') {
            continue;
        }
        let Some((field, value)) = trimmed.split_once(':') else {
            return Err(problem(Some(line), "not a `Field: value` line"));
        };
        let value = value.trim();
        match field.trim() {
            "Private-key-format" => format = Some(line),
            "Algorithm" => {
                let number = value.split_whitespace().next().and_then(|n| n.parse().ok());
                algorithm = Some(number.ok_or_else(|| {
                    problem(
                        Some(line),
                        "Algorithm: not a number (e.g. `13 (ECDSAP256SHA256)`)",
                    )
                })?);
            }
            "PrivateKey" => {
                let key = data_encoding::BASE64
                    .decode(value.replace(' ', "").as_bytes())
                    .map_err(|_| problem(Some(line), "PrivateKey: not base64"))?;
                private_key = Some(key);
            }
            other => {
                timing
                    .set(other, value)
                    .map_err(|e| problem(Some(line), e))?;
            }
        }
    }
    if format.is_none() {
        return Err(problem(
            None,
            "no `Private-key-format:` line: not a BIND private key file",
        ));
    }
    Ok(PrivateFile {
        algorithm: algorithm.ok_or_else(|| problem(None, "no `Algorithm:` line"))?,
        private_key: private_key.ok_or_else(|| problem(None, "no `PrivateKey:` line"))?,
        timing,
    })
}

/// The mnemonic of a DNSSEC algorithm number, for messages and files.
pub(crate) fn algorithm_name(number: u8) -> &'static str {
    match number {
        5 => "RSASHA1",
        7 => "NSEC3RSASHA1",
        8 => "RSASHA256",
        10 => "RSASHA512",
        13 => "ECDSAP256SHA256",
        14 => "ECDSAP384SHA384",
        15 => "ED25519",
        16 => "ED448",
        _ => "unknown",
    }
}

/// The `.key` file of a new key, as `dnssec-keygen` writes it.
pub(crate) fn format_public(
    origin: &Name,
    flags: u16,
    algorithm: u8,
    public_key: &[u8],
    tag: u16,
    timing: &Timing,
) -> String {
    let kind = if flags & 1 == 1 {
        "key-signing"
    } else {
        "zone-signing"
    };
    let mut text = format!("; This is a {kind} key, keyid {tag}, for {origin}\n");
    for (field, t) in timing.fields() {
        text.push_str(&format!("; {field}: {}\n", Stamp(t)));
    }
    text.push_str(&format!(
        "{origin} IN DNSKEY {flags} 3 {algorithm} {}\n",
        data_encoding::BASE64.encode(public_key)
    ));
    text
}

/// The `.private` file of a new key, as `dnssec-keygen` writes it.
pub(crate) fn format_private(algorithm: u8, private_key: &[u8], timing: &Timing) -> String {
    let mut text = format!(
        "Private-key-format: v1.3\nAlgorithm: {algorithm} ({})\nPrivateKey: {}\n",
        algorithm_name(algorithm),
        data_encoding::BASE64.encode(private_key)
    );
    for (field, t) in timing.fields() {
        text.push_str(&format!("{field}: {}\n", Stamp(t)));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    const BIND_KEY: &str = "; This is a key-signing key, keyid 10037, for smarthost.internal.\n\
; Created: 20261207174453 (Mon Dec  7 17:44:53 2026)\n\
; Publish: 20261207174453 (Mon Dec  7 17:44:53 2026)\n\
; Activate: 20261207174453 (Mon Dec  7 17:44:53 2026)\n\
smarthost.internal. IN DNSKEY 257 3 13 Sh+lALa2RVtdcs3tGSoQyJb8oCH+lliKjZlIh0pcuWdFyPJp7HCM7EF+ kApHEVJD9oAnOyDbAR61kdQpE6eA+Q==\n";
    const LDNS_KEY: &str = "smarthost.internal.\tIN\tDNSKEY\t257 3 15 Wo2TiwRc46uHM3EUB3deoOTCHinXlP0fnhzcsSAF7Bs= ;{id = 38688 (ksk), size = 256b}\n";
    const BIND_PRIVATE: &str = "Private-key-format: v1.3\nAlgorithm: 13 (ECDSAP256SHA256)\n\
PrivateKey: 5WRQcLXZmUj2Au64KFSn06aizHquJrkxI6rmNqCbTWY=\nCreated: 20261207174453\n\
Publish: 20261207174453\nActivate: 20261207174453\nInactive: 20270107174453\n";

    #[test]
    fn bind_and_ldns_public_files_parse() {
        let k = parse_public(BIND_KEY).unwrap();
        assert_eq!(k.owner.to_ascii(), "smarthost.internal.");
        assert_eq!((k.flags, k.protocol, k.algorithm), (257, 3, 13));
        assert_eq!(k.public_key.len(), 64, "the split base64 is joined");
        assert_eq!(k.line, 5);
        assert_eq!(k.timing.activate, Some(1_796_665_493));
        let l = parse_public(LDNS_KEY).unwrap();
        assert_eq!((l.flags, l.algorithm, l.public_key.len()), (257, 15, 32));
        assert_eq!(l.timing, Timing::default());
        let ttl = parse_public("Smarthost.Internal. 3600 IN DNSKEY 256 3 13 AAAA").unwrap();
        assert_eq!(ttl.owner.to_ascii(), "smarthost.internal.");
    }

    #[test]
    fn damaged_public_files_are_named_by_line() {
        let e = parse_public("; only comments\n").unwrap_err();
        assert!(e.message.contains("no DNSKEY"), "{e:?}");
        let e = parse_public("x. IN DS 1 13 2 00\n").unwrap_err();
        assert_eq!(e.line, Some(1));
        let e = parse_public("x. IN DNSKEY 257 3 13 !!!\n").unwrap_err();
        assert!(e.message.contains("base64"), "{e:?}");
        let e = parse_public("; Publish: tomorrow\nx. IN DNSKEY 257 3 13 AAAA\n").unwrap_err();
        assert_eq!(e.line, Some(1), "{e:?}");
        let e = parse_public(&format!("{LDNS_KEY}{LDNS_KEY}")).unwrap_err();
        assert_eq!(e.line, Some(2));
    }

    #[test]
    fn private_files_parse_and_never_show_the_key() {
        let p = parse_private(BIND_PRIVATE).unwrap();
        assert_eq!(p.algorithm, 13);
        assert_eq!(p.private_key.len(), 32);
        assert_eq!(p.timing.inactive, Some(1_796_665_493 + 31 * 86400));
        let shown = format!("{p:?}");
        assert!(!shown.contains("5WRQ") && !shown.contains("229"), "{shown}");
        let bad = BIND_PRIVATE.replace("PrivateKey: 5WRQ", "PrivateKey: %WRQ");
        let e = parse_private(&bad).unwrap_err();
        assert_eq!(e.line, Some(3));
        assert!(!e.message.contains("WRQ"), "the key is not echoed: {e:?}");
        assert!(parse_private("Algorithm: 13\nPrivateKey: AAAA\n").is_err());
        assert!(parse_private("Private-key-format: v1.2\nAlgorithm: 13\n").is_err());
    }

    #[test]
    fn written_files_read_back() {
        let origin = Name::from_ascii("smarthost.internal.").unwrap();
        let timing = Timing {
            created: Some(1_796_665_493),
            publish: Some(1_796_665_493),
            activate: Some(1_796_665_493),
            ..Timing::default()
        };
        let public = format_public(&origin, 257, 13, &[7; 64], 4242, &timing);
        let p = parse_public(&public).unwrap();
        assert_eq!((p.flags, p.algorithm, p.public_key), (257, 13, vec![7; 64]));
        assert_eq!(p.timing, timing);
        let private = parse_private(&format_private(13, &[9; 32], &timing)).unwrap();
        assert_eq!((private.algorithm, private.private_key), (13, vec![9; 32]));
        assert_eq!(private.timing, timing);
    }
}
