//! Keys from our own keygen, read back and checked; every damaged or misplaced key file named;
//! signing rules and the signature cache with explicit times; signatures checked with
//! hickory-proto's verifier.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use hickory_proto::dnssec::Verifier;
use hickory_proto::dnssec::rdata::DNSSECRData;
use hickory_proto::rr::RecordType;
use hickory_proto::rr::{DNSClass, Name, RData, Record};
use hickory_proto::serialize::binary::{BinDecoder, Restrict};

use super::key::FLAGS_ZSK;
use super::keyfile::{format_private, format_public, parse_private, parse_public};
use super::keygen::generate;
use super::sign::{Lifetime, SignatureCache, Signer};
use super::timing::Timing;
use super::*;
use crate::config::KeyAlgorithm;
use crate::wire::{fqdn, wire_name};

const NOW: u64 = 1_800_000_000;
const DAY: u64 = 86400;
const LIFETIME: Lifetime = Lifetime {
    validity: 14 * DAY,
    refresh: 7 * DAY,
};

fn origin() -> Name {
    fqdn("smarthost.internal").unwrap()
}

fn load(dir: &Path) -> Result<KeySet, crate::config::ConfigError> {
    KeySet::load(dir, &origin())
}

#[test]
fn generated_keys_of_both_algorithms_load_back_with_their_timing() {
    let dir = tempfile::tempdir().unwrap();
    let a = generate(dir.path(), &origin(), KeyAlgorithm::EcdsaP256Sha256, NOW).unwrap();
    let b = generate(dir.path(), &origin(), KeyAlgorithm::Ed25519, NOW).unwrap();
    let mode = std::fs::metadata(&a.private).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let set = load(dir.path()).unwrap();
    assert!(set.warnings.is_empty(), "{:?}", set.warnings);
    let tags: Vec<u16> = set.keys.iter().map(|k| k.tag).collect();
    assert!(tags.contains(&a.tag) && tags.contains(&b.tag));
    for key in &set.keys {
        assert!(key.is_ksk());
        assert_eq!(key.timing.activate, Some(NOW));
        let shown = format!("{key:?}");
        let private = std::fs::read_to_string(key.file.with_extension("private")).unwrap();
        let secret = parse_private(&private).unwrap().private_key;
        let secret = data_encoding::BASE64.encode(&secret);
        assert!(
            !shown.contains(&secret),
            "Debug shows no private key: {shown}"
        );
    }
    assert_eq!(set.signing(NOW).zone.len(), 2);
    assert_eq!(
        set.signing(NOW - 1).zone.len(),
        0,
        "not active before Activate"
    );
    assert_eq!(set.next_event(NOW - 10), Some(NOW));
}

#[test]
fn keygen_never_writes_through_a_planted_link_or_over_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("elsewhere");
    std::fs::write(&target, "precious").unwrap();
    let rng = ring::rand::SystemRandom::new();
    let (private, public) = super::keygen::material(KeyAlgorithm::Ed25519, &rng).unwrap();
    let key = Key::new(
        dir.path(),
        KeyAlgorithm::Ed25519,
        257,
        &public,
        &private,
        Timing::default(),
    )
    .unwrap();
    let stem = Key::file_stem(&origin(), 15, key.tag);
    // A link planted at the name the .private file would take.
    let planted = dir.path().join(format!("{stem}.private"));
    std::os::unix::fs::symlink(&target, &planted).unwrap();
    let e = super::keygen::write(dir.path(), &origin(), &key, &private).unwrap_err();
    assert!(e.to_string().contains(".private"), "{e}");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "precious");
    assert!(
        !dir.path().join(format!("{stem}.key")).exists(),
        "no half pair"
    );
    // An existing file is not overwritten either.
    std::fs::remove_file(&planted).unwrap();
    std::fs::write(&planted, "old key").unwrap();
    assert!(super::keygen::write(dir.path(), &origin(), &key, &private).is_err());
    assert_eq!(std::fs::read_to_string(&planted).unwrap(), "old key");
}

/// Writes a key pair by hand with the given fields, for the damaged-file cases.
fn write_pair(dir: &Path, stem: &str, public: &str, private: &str) {
    std::fs::write(dir.join(format!("{stem}.key")), public).unwrap();
    let p = dir.join(format!("{stem}.private"));
    std::fs::write(&p, private).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// A generated key's files, read back as text: (stem, .key text, .private text).
fn sample(algorithm: KeyAlgorithm) -> (String, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let g = generate(dir.path(), &origin(), algorithm, NOW).unwrap();
    let stem = g.public.file_stem().unwrap().to_string_lossy().into_owned();
    (
        stem,
        std::fs::read_to_string(&g.public).unwrap(),
        std::fs::read_to_string(&g.private).unwrap(),
    )
}

#[test]
fn every_key_file_problem_is_an_error_naming_the_file() {
    let (stem, public, private) = sample(KeyAlgorithm::EcdsaP256Sha256);
    let case = |f: &dyn Fn(&Path)| {
        let dir = tempfile::tempdir().unwrap();
        f(dir.path());
        load(dir.path()).unwrap_err()
    };
    let e = case(&|d| std::fs::write(d.join(format!("{stem}.key")), &public).unwrap());
    assert!(e.message.contains(".private is missing"), "{e}");
    assert!(e.file.ends_with(format!("{stem}.key")));
    let e = case(&|d| std::fs::write(d.join(format!("{stem}.private")), &private).unwrap());
    assert!(e.message.contains(".key is missing"), "{e}");
    // renamed to another tag
    let wrong = stem.replace(&stem[stem.len() - 5..], "00001");
    let e = case(&|d| write_pair(d, &wrong, &public, &private));
    assert!(e.message.contains("key tag"), "{e}");
    // another zone
    let other = stem.replace("smarthost.internal.", "example.com.");
    let e = case(&|d| write_pair(d, &other, &public, &private));
    assert!(e.message.contains("example.com."), "{e}");
    // a damaged public key line, named by its line
    let damaged = public.replace(" 13 ", " 13 !");
    let e = case(&|d| write_pair(d, &stem, &damaged, &private));
    assert_eq!(e.position.map(|p| p.0), Some(5), "{e}");
    // a private key of another pair
    let (_, _, other_private) = sample(KeyAlgorithm::EcdsaP256Sha256);
    let e = case(&|d| write_pair(d, &stem, &public, &other_private));
    assert!(e.message.contains("does not belong"), "{e}");
    assert!(e.file.ends_with(format!("{stem}.private")), "{e}");
    // an algorithm we do not sign with
    let rsa_stem = stem.replace("+013+", "+008+");
    let rsa = public.replace(" 257 3 13 ", " 257 3 8 ");
    let e = case(&|d| write_pair(d, &rsa_stem, &rsa, &private.replace("13 (", "8 (")));
    assert!(
        e.message.contains("RSASHA256") && e.message.contains("not supported"),
        "{e}"
    );
    // an empty folder, and none at all
    let e = case(&|_| {});
    assert!(e.message.contains("dnssec keygen"), "{e}");
    let e = load(Path::new("/nonexistent/keys")).unwrap_err();
    assert!(e.message.contains("cannot read the key folder"), "{e}");
}

#[test]
fn a_private_file_others_can_read_is_a_warning_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let g = generate(dir.path(), &origin(), KeyAlgorithm::Ed25519, NOW).unwrap();
    std::fs::set_permissions(&g.private, std::fs::Permissions::from_mode(0o644)).unwrap();
    let set = load(dir.path()).unwrap();
    assert_eq!(set.warnings.len(), 1);
    assert!(set.warnings[0].contains("chmod 600"), "{:?}", set.warnings);
    assert!(set.warnings[0].contains(&g.private.display().to_string()));
}

/// A key with the given flags and timing, written and read back through the key folder.
fn timed_key(dir: &Path, flags: u16, timing: Timing) {
    let (_, public, private) = sample(KeyAlgorithm::Ed25519);
    let p = parse_public(&public).unwrap();
    let s = parse_private(&private).unwrap();
    let key = Key::new(
        dir,
        KeyAlgorithm::Ed25519,
        flags,
        &p.public_key,
        &s.private_key,
        timing,
    )
    .unwrap();
    write_pair(
        dir,
        &Key::file_stem(&origin(), 15, key.tag),
        &format_public(
            &origin(),
            flags,
            15,
            &p.public_key,
            key.tag,
            &Timing::default(),
        ),
        &format_private(15, &s.private_key, &timing),
    );
}

#[test]
fn a_zsk_ksk_split_and_a_rollover_are_honoured_at_each_step() {
    let dir = tempfile::tempdir().unwrap();
    timed_key(dir.path(), 257, Timing::default());
    timed_key(dir.path(), FLAGS_ZSK, Timing::default());
    let set = load(dir.path()).unwrap();
    let s = set.signing(NOW);
    assert_eq!(s.dnskey.len(), 1);
    assert!(s.dnskey[0].is_ksk(), "the KSK signs the DNSKEY RRset");
    assert_eq!(s.zone.len(), 1);
    assert!(!s.zone[0].is_ksk(), "the ZSK signs the rest");

    // A combined key, and its successor: published at +1 d, active at +3 d; the old one
    // inactive at +4 d, deleted at +6 d.
    let dir = tempfile::tempdir().unwrap();
    timed_key(
        dir.path(),
        257,
        Timing {
            inactive: Some(NOW + 4 * DAY),
            delete: Some(NOW + 6 * DAY),
            ..Timing::default()
        },
    );
    timed_key(
        dir.path(),
        257,
        Timing {
            publish: Some(NOW + DAY),
            activate: Some(NOW + 3 * DAY),
            ..Timing::default()
        },
    );
    let set = load(dir.path()).unwrap();
    let at = |t: u64| {
        (
            set.published(t).count(),
            set.signing(t).zone.len(),
            set.next_event(t),
        )
    };
    assert_eq!(at(NOW), (1, 1, Some(NOW + DAY)));
    assert_eq!(at(NOW + DAY), (2, 1, Some(NOW + 3 * DAY)));
    assert_eq!(at(NOW + 3 * DAY), (2, 2, Some(NOW + 4 * DAY)), "both sign");
    assert_eq!(at(NOW + 4 * DAY), (2, 1, Some(NOW + 6 * DAY)));
    assert_eq!(at(NOW + 6 * DAY), (1, 1, None));
    assert!(set.timing_warnings(NOW).is_empty());
    // Before anything is active the operator is told.
    let dir = tempfile::tempdir().unwrap();
    timed_key(
        dir.path(),
        257,
        Timing {
            activate: Some(NOW + DAY),
            ..Timing::default()
        },
    );
    let set = load(dir.path()).unwrap();
    assert!(set.timing_warnings(NOW)[0].contains("no key is active"));
}

/// The A RRset of `www.smarthost.internal` with these addresses, as records and canonical data.
fn rrset(addresses: &[[u8; 4]]) -> Vec<Record> {
    addresses
        .iter()
        .map(|a| {
            Record::from_rdata(
                fqdn("www.smarthost.internal").unwrap(),
                300,
                RData::A(std::net::Ipv4Addr::from(*a).into()),
            )
        })
        .collect()
}

fn verify(set: &KeySet, records: &[Record], rrsig: &[u8]) {
    let mut d = BinDecoder::new(rrsig);
    let data = RData::read(&mut d, RecordType::RRSIG, Restrict::new(rrsig.len() as u16)).unwrap();
    let RData::DNSSEC(DNSSECRData::RRSIG(sig)) = data else {
        panic!("not an RRSIG: {data:?}")
    };
    let key = set
        .keys
        .iter()
        .find(|k| k.tag == sig.input().key_tag)
        .expect("a key with the signature's tag");
    key.dnskey_rdata()
        .verify_rrsig(&records[0].name, DNSClass::IN, &sig, records.iter())
        .expect("the signature verifies");
}

#[test]
fn signatures_verify_and_are_reused_until_their_refresh_point() {
    let dir = tempfile::tempdir().unwrap();
    generate(
        dir.path(),
        &origin(),
        KeyAlgorithm::EcdsaP256Sha256,
        NOW - DAY,
    )
    .unwrap();
    let set = load(dir.path()).unwrap();
    let owner = wire_name(&fqdn("www.smarthost.internal").unwrap());
    let records = rrset(&[[192, 0, 2, 2], [192, 0, 2, 1]]);
    let data = [[192u8, 0, 2, 1], [192, 0, 2, 2]];
    let mut cache = SignatureCache::default();
    let origin_wire = wire_name(&origin());
    let sign = |cache: &mut SignatureCache, now: u64, data: &[[u8; 4]]| {
        let mut s = Signer::new(&set, LIFETIME, now, &origin_wire, cache);
        let sigs: Vec<Vec<u8>> = s
            .sign(&owner, 1, 300, data.iter().map(|d| &d[..]))
            .map(<[u8]>::to_vec)
            .collect();
        (sigs, s.made, s.next_refresh())
    };
    let (first, made, refresh) = sign(&mut cache, NOW, &data);
    assert_eq!((first.len(), made), (1, 1));
    assert_eq!(refresh, Some(NOW + 14 * DAY - 7 * DAY));
    verify(&set, &records, &first[0]);
    // the inception an hour back, the expiration at now + validity
    let field = |at: usize| u32::from_be_bytes(first[0][at..at + 4].try_into().unwrap());
    assert_eq!(u64::from(field(8)), NOW + 14 * DAY);
    assert_eq!(u64::from(field(12)), NOW - 3600);

    let (again, made, _) = sign(&mut cache, NOW + 7 * DAY - 1, &[data[1], data[0]]);
    assert_eq!(
        (again.clone(), made),
        (first.clone(), 0),
        "same RRset, any order: cached"
    );
    let (renewed, made, refresh) = sign(&mut cache, NOW + 7 * DAY + 1, &data);
    assert_eq!(made, 1, "past the refresh point: made again");
    assert_ne!(renewed, first);
    assert_eq!(refresh, Some(NOW + 7 * DAY + 1 + 7 * DAY));
    verify(&set, &records, &renewed[0]);
    let (_, made, _) = sign(&mut cache, NOW + 7 * DAY + 2, &data[..1]);
    assert_eq!(made, 1, "other content: signed");
}

#[test]
fn the_cache_forgets_rrsets_no_build_serves() {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), &origin(), KeyAlgorithm::Ed25519, NOW).unwrap();
    let set = load(dir.path()).unwrap();
    let owner = wire_name(&origin());
    let mut cache = SignatureCache::default();
    for build in 0..40u8 {
        let mut s = Signer::new(&set, LIFETIME, NOW, &owner, &mut cache);
        let _ = s
            .sign(&owner, 16, 30, std::iter::once(&[build][..]))
            .count();
        let _ = s
            .sign(&owner, 16, 30, std::iter::once(&[255u8][..]))
            .count();
    }
    assert!(cache.len() <= 18, "{} entries kept", cache.len());
}
