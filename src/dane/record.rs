//! One TLSA record (RFC 6698) as smarthostd takes it: certificate usage, selector, matching
//! type and data, read from the presentation form `3 1 1 <hex>` and checked for what SMTP
//! allows (RFC 7672).

use std::fmt;
use std::str::FromStr;

use data_encoding::HEXLOWER_PERMISSIVE;
use ring::digest;
use rustls_pki_types::{CertificateDer, SubjectPublicKeyInfoDer};
use serde::Deserialize;

/// The certificate usages SMTP can use (RFC 7672 section 3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Usage {
    /// DANE-TA(2): a trust anchor the relay's chain must lead to, with its names checked.
    DaneTa = 2,
    /// DANE-EE(3): the relay's own certificate or key; names and expiry are not looked at.
    DaneEe = 3,
}

/// What of a certificate a record is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Selector {
    /// Cert(0): the whole certificate, DER.
    Cert = 0,
    /// SPKI(1): its SubjectPublicKeyInfo, DER: the key alone, which survives a renewal.
    Spki = 1,
}

/// How the selected bytes appear in the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Matching {
    /// Full(0): the bytes themselves.
    Full = 0,
    /// SHA2-256(1): their SHA-256 digest, 32 bytes.
    Sha256 = 1,
    /// SHA2-512(2): their SHA-512 digest, 64 bytes.
    Sha512 = 2,
}

impl Matching {
    /// The selected bytes as this matching type records them.
    pub fn apply(self, selected: &[u8]) -> Vec<u8> {
        match self {
            Matching::Full => selected.to_vec(),
            Matching::Sha256 => digest::digest(&digest::SHA256, selected).as_ref().to_vec(),
            Matching::Sha512 => digest::digest(&digest::SHA512, selected).as_ref().to_vec(),
        }
    }
}

/// The longest data a TLSA record holds: its RDATA is at most 65,535 bytes, three of which
/// are the usage, selector and matching type.
const MAX_DATA: usize = 65_535 - 3;

/// Hex digits of the data kept when a record is named in a reason or a log line.
const SHORT_HEX: usize = 16;

/// One TLSA record.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tlsa {
    /// DANE-TA(2) or DANE-EE(3).
    pub usage: Usage,
    /// The certificate or its key.
    pub selector: Selector,
    /// The bytes, or their digest.
    pub matching: Matching,
    /// The certificate association data.
    pub data: Box<[u8]>,
}

impl Tlsa {
    /// `3 1 1`: DANE-EE, the SHA-256 digest of the key `spki` (a DER SubjectPublicKeyInfo),
    /// the record RFC 7671 recommends: it names the relay's key alone, survives a certificate
    /// renewal with the same key, and ignores names and expiry.
    pub fn dane_ee_spki_sha256(spki: &[u8]) -> Self {
        Self {
            usage: Usage::DaneEe,
            selector: Selector::Spki,
            matching: Matching::Sha256,
            data: Matching::Sha256.apply(spki).into(),
        }
    }

    /// Whether `selected` (a certificate, or a SubjectPublicKeyInfo, as the selector says)
    /// matches this record's data.
    pub fn matches(&self, selected: &[u8]) -> bool {
        self.matching.apply(selected) == *self.data
    }

    /// The record's RDATA in wire form (RFC 6698 section 2.1): what an answer carries.
    pub fn rdata(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(3 + self.data.len());
        out.extend([self.usage as u8, self.selector as u8, self.matching as u8]);
        out.extend_from_slice(&self.data);
        out
    }

    /// The record with its data cut to a few hex digits (`3 1 1 0a1b2c3d4e5f6a7b…`), to name it
    /// in a reason or a log line.
    pub fn short(&self) -> String {
        let hex = HEXLOWER_PERMISSIVE.encode(&self.data);
        let (usage, selector, matching) = self.numbers();
        if hex.len() <= SHORT_HEX {
            return self.to_string();
        }
        format!("{usage} {selector} {matching} {}…", &hex[..SHORT_HEX])
    }

    fn numbers(&self) -> (u8, u8, u8) {
        (self.usage as u8, self.selector as u8, self.matching as u8)
    }
}

impl fmt::Display for Tlsa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (usage, selector, matching) = self.numbers();
        let hex = HEXLOWER_PERMISSIVE.encode(&self.data);
        write!(f, "{usage} {selector} {matching} {hex}")
    }
}

impl FromStr for Tlsa {
    type Err = String;

    /// Reads `usage selector matching data`, the data as hexadecimal (white space inside it is
    /// allowed, as in a zone file), and checks each field for SMTP.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut fields = text.split_whitespace();
        let shape = || {
            "not a TLSA record: write it as \"3 1 1 <hex>\" (certificate usage, selector, matching type, data)"
                .to_string()
        };
        let mut number = || -> Result<u8, String> {
            fields
                .next()
                .and_then(|f| f.parse::<u8>().ok())
                .ok_or_else(shape)
        };
        let (usage, selector, matching) = (number()?, number()?, number()?);
        let hex: String = fields.collect();
        if hex.is_empty() {
            return Err(shape());
        }
        let usage = match usage {
            2 => Usage::DaneTa,
            3 => Usage::DaneEe,
            0 | 1 => {
                let name = if usage == 0 { "PKIX-TA" } else { "PKIX-EE" };
                return Err(format!(
                    "certificate usage {usage} ({name}) is refused: SMTP clients treat PKIX-TA(0) and PKIX-EE(1) records as unusable (RFC 7672 section 3.1.3), since an MTA has no common set of public CAs to check them against; use 3 (DANE-EE) for the relay's own key, or 2 (DANE-TA) for the CA that issues the relays' certificates"
                ));
            }
            n => {
                return Err(format!(
                    "certificate usage {n} is not one SMTP can use: 2 (DANE-TA) or 3 (DANE-EE)"
                ));
            }
        };
        let selector = match selector {
            0 => Selector::Cert,
            1 => Selector::Spki,
            n => {
                return Err(format!(
                    "selector {n} is unknown: 0 (the full certificate) or 1 (its SubjectPublicKeyInfo)"
                ));
            }
        };
        let matching = match matching {
            0 => Matching::Full,
            1 => Matching::Sha256,
            2 => Matching::Sha512,
            n => {
                return Err(format!(
                    "matching type {n} is unknown: 0 (the data itself), 1 (SHA-256) or 2 (SHA-512)"
                ));
            }
        };
        let data = HEXLOWER_PERMISSIVE
            .decode(hex.as_bytes())
            .map_err(|e| format!("the certificate association data is not hexadecimal: {e}"))?;
        check_data(selector, matching, &data)?;
        Ok(Self {
            usage,
            selector,
            matching,
            data: data.into(),
        })
    }
}

/// Checks that `data` is what the matching type says: a digest of its length, or (full
/// data) a certificate or SubjectPublicKeyInfo that parses.
fn check_data(selector: Selector, matching: Matching, data: &[u8]) -> Result<(), String> {
    let digest = |name: &str, len: usize| {
        if data.len() == len {
            Ok(())
        } else {
            Err(format!(
                "a {name} digest (matching type {}) is {len} bytes, {} hex digits; this data is {} bytes",
                matching as u8,
                len * 2,
                data.len()
            ))
        }
    };
    match (matching, selector) {
        (Matching::Sha256, _) => digest("SHA-256", 32),
        (Matching::Sha512, _) => digest("SHA-512", 64),
        (Matching::Full, _) if data.len() > MAX_DATA => Err(format!(
            "the data is {} bytes; a TLSA record holds at most {MAX_DATA}",
            data.len()
        )),
        (Matching::Full, Selector::Cert) => {
            let cert = CertificateDer::from(data);
            webpki::anchor_from_trusted_cert(&cert).map(|_| ()).map_err(|e| {
                format!("with selector 0 and matching type 0 the data is a whole certificate (DER), and this is not one: {e:?}")
            })
        }
        (Matching::Full, Selector::Spki) => {
            let spki = SubjectPublicKeyInfoDer::from(data);
            webpki::RawPublicKeyEntity::try_from(&spki).map(|_| ()).map_err(|e| {
                format!("with selector 1 and matching type 0 the data is a SubjectPublicKeyInfo (DER), and this is not one: {e:?}")
            })
        }
    }
}

impl<'de> Deserialize<'de> for Tlsa {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "0c72ac70b745ac19998811b131d662c9ac69dbdbe7cb23e5b514b56664c5d3d6";

    #[test]
    fn the_presentation_form_reads_and_prints_back() {
        let record: Tlsa = format!("3 1 1 {}", DIGEST.to_uppercase()).parse().unwrap();
        assert_eq!(record.usage, Usage::DaneEe);
        assert_eq!(record.selector, Selector::Spki);
        assert_eq!(record.matching, Matching::Sha256);
        assert_eq!(record.to_string(), format!("3 1 1 {DIGEST}"));
        assert_eq!(record.short(), "3 1 1 0c72ac70b745ac19…");
        let rdata = record.rdata();
        assert_eq!(&rdata[..3], &[3, 1, 1]);
        assert_eq!(rdata.len(), 35);
        // White space inside the data, as zone files split it.
        let split: Tlsa = format!("2  0 1 {} {}", &DIGEST[..20], &DIGEST[20..])
            .parse()
            .unwrap();
        assert_eq!((split.usage, split.data), (Usage::DaneTa, record.data));
    }

    #[test]
    fn pkix_usages_are_refused_with_the_rfc_that_says_why() {
        for (usage, name) in [(0, "PKIX-TA"), (1, "PKIX-EE")] {
            let e = format!("{usage} 1 1 {DIGEST}").parse::<Tlsa>().unwrap_err();
            assert!(
                e.contains(name) && e.contains("RFC 7672 section 3.1.3"),
                "{e}"
            );
        }
        let e = format!("4 1 1 {DIGEST}").parse::<Tlsa>().unwrap_err();
        assert!(e.contains("2 (DANE-TA) or 3 (DANE-EE)"), "{e}");
    }

    #[test]
    fn each_field_is_checked() {
        let e = |text: &str| text.parse::<Tlsa>().unwrap_err();
        assert!(e("3 1").starts_with("not a TLSA record"));
        assert!(e("3 1 1").starts_with("not a TLSA record"));
        assert!(e("three 1 1 00").starts_with("not a TLSA record"));
        assert!(e(&format!("3 2 1 {DIGEST}")).starts_with("selector 2 is unknown"));
        assert!(e(&format!("3 1 3 {DIGEST}")).starts_with("matching type 3 is unknown"));
        assert!(e("3 1 1 0g").contains("not hexadecimal"));
        let short = e(&format!("3 1 1 {}", &DIGEST[2..]));
        assert!(
            short.contains("32 bytes") && short.contains("31 bytes"),
            "{short}"
        );
        let sha512 = e(&format!("3 1 2 {DIGEST}"));
        assert!(sha512.contains("64 bytes, 128 hex digits"), "{sha512}");
        assert!(e("3 0 0 3082").contains("not one"));
        assert!(e("3 1 0 3082").contains("not one"));
    }

    #[test]
    fn full_data_must_be_the_certificate_or_key_it_claims() {
        use rcgen::PublicKeyData;
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["relay.test".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let hex = |b: &[u8]| HEXLOWER_PERMISSIVE.encode(b);
        let full_cert: Tlsa = format!("3 0 0 {}", hex(cert.der())).parse().unwrap();
        assert!(full_cert.matches(cert.der()));
        let full_key: Tlsa = format!("3 1 0 {}", hex(&key.subject_public_key_info()))
            .parse()
            .unwrap();
        assert!(full_key.matches(&key.subject_public_key_info()));
        // Each given where the other belongs.
        assert!(
            format!("3 0 0 {}", hex(&key.subject_public_key_info()))
                .parse::<Tlsa>()
                .is_err()
        );
        assert!(
            format!("3 1 0 {}", hex(cert.der()))
                .parse::<Tlsa>()
                .is_err()
        );
    }

    #[test]
    fn a_digest_matches_the_bytes_it_was_made_from_and_nothing_else() {
        let spki = b"not really a key, but bytes all the same";
        let record = Tlsa::dane_ee_spki_sha256(spki);
        assert!(record.matches(spki));
        assert!(!record.matches(b"other bytes"));
        let sha512 = Tlsa {
            matching: Matching::Sha512,
            data: Matching::Sha512.apply(spki).into(),
            ..record
        };
        assert_eq!(sha512.data.len(), 64);
        assert!(sha512.matches(spki));
    }
}
