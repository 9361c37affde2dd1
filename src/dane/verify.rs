//! Matching a relay's certificate chain against its TLSA records as a DANE sender does (RFC
//! 7672 section 3.1, RFC 7671): one usable record that matches authenticates the relay.
//!
//! - DANE-EE(3): the end-entity certificate (selector 0) or its key (selector 1), as the
//!   matching type gives it, equals the data. Names and expiry are not looked at: the record
//!   is the binding (RFC 7672 section 3.1.1).
//! - DANE-TA(2): a certificate of the chain the relay presents, above its own, matches the
//!   record (for `2 0 0`, the record's certificate itself may serve), and the end entity chains
//!   to it with valid signatures and dates, as PKIX path validation checks them with that
//!   certificate's subject and key as the trust anchor (the anchor's own validity period is not
//!   part of path validation, RFC 5280 section 6.1.1); and the end entity carries the name a
//!   sender looks the records up for: the MX exchange (RFC 7672 sections 3.1.2 and 3.2.2).
//!
//! Pure: the time comes in as an argument. The handshake signature, which proves the relay
//! holds the key of the certificate it showed, is checked by the TLS layer before this.

use rustls_pki_types::{CertificateDer, ServerName, TrustAnchor, UnixTime};

use super::key::spki_of;
use super::record::{Matching, Selector, Tlsa, Usage};
use crate::network_text;

/// Why a chain authenticates with none of the records: a reason an operator can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mismatch {
    /// Which records were tried, what the relay showed (its key's `3 1 1`), and why each
    /// DANE-TA record whose anchor was found did not pass.
    pub reason: String,
}

/// The longest mismatch reason kept.
const REASON_CHARS: usize = 600;

/// The record that authenticates `chain` (end entity first, as the relay sent it) for the
/// reference name `name` at `now`, or why none does.
pub(crate) fn authenticate<'r>(
    records: &'r [Tlsa],
    chain: &[CertificateDer<'_>],
    name: &str,
    now: UnixTime,
) -> Result<&'r Tlsa, Mismatch> {
    let Some(ee) = chain.first() else {
        return Err(mismatch(records, "no certificate", &[]));
    };
    let ee_spki = spki_of(ee).ok();
    let mut notes = Vec::new();
    for record in records {
        match record.usage {
            Usage::DaneEe => {
                if selected(record, ee, ee_spki.as_deref()).is_some_and(|s| record.matches(s)) {
                    return Ok(record);
                }
            }
            Usage::DaneTa => match trust_anchor(record, chain, name, now) {
                Ok(()) => return Ok(record),
                Err(Some(note)) => notes.push(format!("{}: {note}", record.short())),
                Err(None) => {}
            },
        }
    }
    let shown = match &ee_spki {
        Some(spki) => format!("a key whose record is 3 1 1 {}", hex(spki)),
        None => "a certificate whose key cannot be read".to_string(),
    };
    Err(mismatch(records, &shown, &notes))
}

fn hex(spki: &[u8]) -> String {
    data_encoding::HEXLOWER.encode(&Matching::Sha256.apply(spki))
}

fn mismatch(records: &[Tlsa], shown: &str, notes: &[String]) -> Mismatch {
    let names: Vec<String> = records.iter().map(Tlsa::short).collect();
    let mut reason = format!(
        "certificate matches none of its TLSA records: a DANE sender would refuse it (records: {}; shown: {shown}",
        names.join(", ")
    );
    for note in notes {
        reason.push_str("; ");
        reason.push_str(note);
    }
    reason.push(')');
    Mismatch {
        reason: network_text::clean(&reason, REASON_CHARS),
    }
}

/// What of `cert` the record's selector is about.
fn selected<'a>(record: &Tlsa, cert: &'a [u8], spki: Option<&'a [u8]>) -> Option<&'a [u8]> {
    match record.selector {
        Selector::Cert => Some(cert),
        Selector::Spki => spki,
    }
}

/// Checks a DANE-TA record: `Err(None)` when no trust anchor it names is at hand, `Err(Some)`
/// with the reason when one is and the chain does not pass with it.
fn trust_anchor(
    record: &Tlsa,
    chain: &[CertificateDer<'_>],
    name: &str,
    now: UnixTime,
) -> Result<(), Option<String>> {
    let mut found: Vec<CertificateDer<'_>> = chain[1..]
        .iter()
        .filter(|c| {
            let spki = spki_of(c).ok();
            selected(record, c, spki.as_deref()).is_some_and(|s| record.matches(s))
        })
        .cloned()
        .collect();
    if record.selector == Selector::Cert && record.matching == Matching::Full {
        // The anchor is in the record: the relay need not send it (RFC 7671 section 5.2.2).
        found.push(CertificateDer::from(record.data.to_vec()));
    }
    let anchors: Vec<TrustAnchor<'_>> = found
        .iter()
        .filter_map(|c| webpki::anchor_from_trusted_cert(c).ok())
        .collect();
    if anchors.is_empty() {
        return Err(None);
    }
    let ee = webpki::EndEntityCert::try_from(&chain[0])
        .map_err(|e| Some(format!("its certificate cannot be read: {e:?}")))?;
    let algorithms = rustls::crypto::ring::default_provider()
        .signature_verification_algorithms
        .all;
    ee.verify_for_usage(
        algorithms,
        &anchors,
        &chain[1..],
        now,
        webpki::KeyUsage::server_auth(),
        None,
        None,
    )
    .map_err(|e| {
        Some(format!(
            "the trust anchor is in the chain, but the certificate does not chain to it with valid signatures and dates ({e:?})"
        ))
    })?;
    let reference = ServerName::try_from(name)
        .map_err(|_| Some(format!("{name} is not a name a certificate can carry")))?;
    ee.verify_is_valid_for_subject_name(&reference)
        .map_err(|_| {
            Some(format!(
                "the certificate chains to the trust anchor but does not carry the name {name}, which a DANE-TA record requires (RFC 7672 section 3.2.2)"
            ))
        })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair, PublicKeyData,
    };

    use super::*;

    const NAME: &str = "mail1.oxford.smarthost.internal";

    fn now() -> UnixTime {
        UnixTime::since_unix_epoch(Duration::from_secs(1_780_000_000))
    }

    fn ca() -> CertifiedIssuer<'static, KeyPair> {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
    }

    /// A relay certificate for `names`, issued by `issuer`, and its key.
    fn leaf(
        issuer: &CertifiedIssuer<'_, KeyPair>,
        names: &[&str],
        expired: bool,
    ) -> (CertificateDer<'static>, KeyPair) {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        if expired {
            params.not_after = rcgen::date_time_ymd(2001, 1, 1);
        }
        (params.signed_by(&key, issuer).unwrap().der().clone(), key)
    }

    fn record(text: String) -> Tlsa {
        text.parse().unwrap()
    }

    fn ee_record(key: &KeyPair) -> Tlsa {
        Tlsa::dane_ee_spki_sha256(&key.subject_public_key_info())
    }

    #[test]
    fn dane_ee_matches_the_key_and_ignores_names_and_expiry() {
        let issuer = ca();
        let (cert, key) = leaf(&issuer, &["some.other.name"], true);
        let records = [ee_record(&key)];
        assert_eq!(
            authenticate(&records, std::slice::from_ref(&cert), NAME, now()),
            Ok(&records[0])
        );
        let full = record(format!(
            "3 0 1 {}",
            data_encoding::HEXLOWER.encode(&Matching::Sha256.apply(&cert))
        ));
        assert!(authenticate(std::slice::from_ref(&full), &[cert], NAME, now()).is_ok());
    }

    #[test]
    fn another_key_is_refused_with_the_records_and_the_key_shown() {
        let issuer = ca();
        let (_, pinned) = leaf(&issuer, &[NAME], false);
        let (impostor, impostor_key) = leaf(&issuer, &[NAME], false);
        let records = [ee_record(&pinned)];
        let e = authenticate(&records, &[impostor], NAME, now()).unwrap_err();
        assert!(
            e.reason.starts_with(
                "certificate matches none of its TLSA records: a DANE sender would refuse it (records: 3 1 1 "
            ),
            "{}",
            e.reason
        );
        assert!(e.reason.contains(&records[0].short()), "{}", e.reason);
        let shown = ee_record(&impostor_key).to_string();
        assert!(
            e.reason
                .contains(&format!("shown: a key whose record is {shown})")),
            "{}",
            e.reason
        );
    }

    #[test]
    fn a_rollover_with_two_records_passes_with_either_key() {
        let issuer = ca();
        let (old, old_key) = leaf(&issuer, &[NAME], false);
        let (new, new_key) = leaf(&issuer, &[NAME], false);
        let (third, _) = leaf(&issuer, &[NAME], false);
        let records = [ee_record(&old_key), ee_record(&new_key)];
        assert_eq!(authenticate(&records, &[old], NAME, now()), Ok(&records[0]));
        assert_eq!(authenticate(&records, &[new], NAME, now()), Ok(&records[1]));
        assert!(authenticate(&records, &[third], NAME, now()).is_err());
    }

    #[test]
    fn dane_ta_passes_a_chain_from_the_anchor_that_carries_the_name() {
        let issuer = ca();
        let (cert, _) = leaf(&issuer, &[NAME], false);
        let ca_der = issuer.der().clone();
        let by_cert = record(format!(
            "2 0 1 {}",
            data_encoding::HEXLOWER.encode(&Matching::Sha256.apply(&ca_der))
        ));
        let by_key = record(format!(
            "2 1 1 {}",
            data_encoding::HEXLOWER
                .encode(&Matching::Sha256.apply(&issuer.key().subject_public_key_info()))
        ));
        let chain = [cert.clone(), ca_der.clone()];
        for r in [&by_cert, &by_key] {
            assert!(
                authenticate(std::slice::from_ref(r), &chain, NAME, now()).is_ok(),
                "{r}"
            );
        }
        // Only the record's own full certificate may stand in for one the relay left out.
        assert!(
            authenticate(
                std::slice::from_ref(&by_cert),
                std::slice::from_ref(&cert),
                NAME,
                now()
            )
            .is_err()
        );
        let full = record(format!("2 0 0 {}", data_encoding::HEXLOWER.encode(&ca_der)));
        assert!(authenticate(&[full], &[cert], NAME, now()).is_ok());
    }

    #[test]
    fn dane_ta_refuses_another_ca_a_wrong_name_and_an_expired_certificate() {
        let issuer = ca();
        let ca_der = issuer.der().clone();
        let records = [record(format!(
            "2 0 1 {}",
            data_encoding::HEXLOWER.encode(&Matching::Sha256.apply(&ca_der))
        ))];
        let other = ca();
        let (foreign, _) = leaf(&other, &[NAME], false);
        let e = authenticate(&records, &[foreign, other.der().clone()], NAME, now()).unwrap_err();
        assert!(
            e.reason.contains("shown: a key whose record is 3 1 1"),
            "{}",
            e.reason
        );

        let (misnamed, _) = leaf(&issuer, &["mail2.oxford.smarthost.internal"], false);
        let e = authenticate(&records, &[misnamed, ca_der.clone()], NAME, now()).unwrap_err();
        assert!(
            e.reason
                .contains(&format!("does not carry the name {NAME}")),
            "{}",
            e.reason
        );

        let (expired, _) = leaf(&issuer, &[NAME], true);
        let e = authenticate(&records, &[expired, ca_der.clone()], NAME, now()).unwrap_err();
        assert!(e.reason.contains("CertExpired"), "{}", e.reason);

        // A wildcard name covers the one label it stands for (RFC 7672 section 3.2.3).
        let (wild, _) = leaf(&issuer, &["*.oxford.smarthost.internal"], false);
        assert!(authenticate(&records, &[wild, ca_der], NAME, now()).is_ok());
    }

    #[test]
    fn a_relay_that_shows_no_certificate_matches_nothing() {
        let records = [Tlsa::dane_ee_spki_sha256(b"key")];
        let e = authenticate(&records, &[], NAME, now()).unwrap_err();
        assert!(e.reason.contains("shown: no certificate"), "{}", e.reason);
    }
}
