//! Every ECS and COOKIE option, valid or not, through the whole answer path twice: in the shape
//! the fast parser takes, and in shapes only the full parser takes. Both must give the same
//! RCODE, the same ECS and COOKIE echo, the same bytes, and the RCODE the RFCs ask for:
//! FORMERR for a malformed option (RFC 7871 section 6, RFC 7873 section 5.2.2).

use std::net::SocketAddr;

use hickory_proto::op::Message;
use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};

use super::answer_with;
use super::query::{Fast, parse_fast};
use super::tests::{CONFIG, ZONE, fixed_cookies};
use crate::test_support::snapshot;

/// `relay.smarthost.internal MX`, the question of every message here: a shared name, answered
/// per view, which a trusted resolver's ECS option chooses.
const QUESTION: &[u8] = b"\x05relay\x09smarthost\x08internal\x00\x00\x0f\x00\x01";

fn option(code: u16, body: &[u8]) -> Vec<u8> {
    [
        &code.to_be_bytes()[..],
        &(body.len() as u16).to_be_bytes(),
        body,
    ]
    .concat()
}

fn opt_record(options: &[u8]) -> Vec<u8> {
    let mut r = vec![0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0];
    r.extend_from_slice(&(options.len() as u16).to_be_bytes());
    r.extend_from_slice(options);
    r
}

/// An A record whose owner is a pointer to the question's name: legal in a query's authority
/// or additional section, and a shape the fast parser does not take.
const EXTRA_RECORD: &[u8] = &[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1];

/// The same query with `options` in the fast parser's shape, and in two shapes only the full
/// parser takes: a record in the authority section, and one in the additional section
/// before the OPT record.
fn shapes(options: &[u8]) -> [(&'static str, Vec<u8>); 3] {
    let header = |ns: u8, ar: u8| vec![0xbe, 0xef, 1, 0, 0, 1, 0, 0, 0, ns, 0, ar];
    let opt = opt_record(options);
    [
        (
            "fast",
            [header(0, 1), QUESTION.to_vec(), opt.clone()].concat(),
        ),
        (
            "authority record",
            [
                header(1, 1),
                QUESTION.to_vec(),
                EXTRA_RECORD.to_vec(),
                opt.clone(),
            ]
            .concat(),
        ),
        (
            "additional record",
            [header(0, 2), QUESTION.to_vec(), EXTRA_RECORD.to_vec(), opt].concat(),
        ),
    ]
}

/// ECS option bodies: families 0 to 3, prefix lengths across every boundary, the exact octets
/// the prefix needs, a bit set past the prefix, an octet short, an octet over, a scope in a
/// query, and the empty option. Each with whether RFC 7871 section 6 allows it in a query.
fn ecs_corpus() -> Vec<(String, Vec<u8>, bool)> {
    let mut corpus = vec![("empty".to_string(), vec![], false)];
    for family in 0u16..=3 {
        let max = match family {
            1 => Some(32u8),
            2 => Some(128),
            _ => None,
        };
        for prefix in [0u8, 1, 7, 8, 23, 24, 32, 33, 64, 128, 129] {
            let fits = max.is_some_and(|m| prefix <= m);
            let needed = usize::from(prefix).div_ceil(8);
            // Address octets 0x0a, 0x01, 0x02, ... with the bits past the prefix cleared.
            let mut octets: Vec<u8> = (0..needed as u8).map(|i| 0x0a + i).collect();
            if prefix % 8 != 0 {
                octets[needed - 1] &= 0xFFu8 << (8 - prefix % 8);
            }
            let body = |scope: u8, octets: &[u8]| {
                [&family.to_be_bytes()[..], &[prefix, scope], octets].concat()
            };
            let name = |what: &str| format!("family {family} /{prefix} {what}");
            corpus.push((name("exact"), body(0, &octets), fits));
            corpus.push((name("scope 8"), body(8, &octets), false));
            corpus.push((
                name("an octet over"),
                body(0, &[&octets[..], &[0]].concat()),
                false,
            ));
            if needed > 0 {
                corpus.push((
                    name("an octet short"),
                    body(0, &octets[..needed - 1]),
                    false,
                ));
            }
            if prefix % 8 != 0 {
                let mut extra = octets.clone();
                extra[needed - 1] |= 1;
                corpus.push((name("a bit past the prefix"), body(0, &extra), false));
            }
        }
    }
    // The example: 10.1.3.0/23 has bit 24 set.
    corpus.push(("10.1.3.0/23".into(), vec![0, 1, 23, 0, 10, 1, 3], false));
    corpus.push(("10.1.2.0/23".into(), vec![0, 1, 23, 0, 10, 1, 2], true));
    corpus
}

/// What an answer says about the options: RCODE (with the extended bits), the ECS echo as
/// (address, source, scope), the COOKIE echo.
type Echo = (u16, Option<(String, u8, u8)>, Option<Vec<u8>>);

fn echo(response: &[u8]) -> Echo {
    let m = Message::from_vec(response).expect("the answer parses");
    let edns = m.edns.as_ref();
    let ecs = edns.and_then(|e| match e.option(EdnsCode::Subnet) {
        Some(EdnsOption::Subnet(s)) => {
            Some((s.addr().to_string(), s.source_prefix(), s.scope_prefix()))
        }
        _ => None,
    });
    let cookie = edns.and_then(|e| match e.option(EdnsCode::Cookie) {
        Some(EdnsOption::Unknown(10, data)) => Some(data.clone()),
        _ => None,
    });
    (u16::from(m.metadata.response_code), ecs, cookie)
}

/// Answers `options` in every shape from every source; returns the fast shape's echo after
/// checking that every other shape agrees with it to the byte.
fn through_every_shape(what: &str, options: &[u8], sources: &[SocketAddr]) -> Vec<Echo> {
    let snap = snapshot(CONFIG, ZONE);
    let cookies = fixed_cookies();
    let mut echoes = Vec::new();
    for &src in sources {
        let mut answers = Vec::new();
        for (shape, raw) in shapes(options) {
            if shape != "fast" {
                assert!(
                    matches!(parse_fast(&raw), Fast::Unusual),
                    "{what}: the {shape} shape must take the full parser"
                );
            }
            let mut out = Vec::new();
            let outcome = answer_with(&snap, 1232, &cookies, &raw, src, false, &mut out)
                .unwrap_or_else(|| panic!("{what} ({shape}): no answer"));
            answers.push((shape, out, outcome.warm));
        }
        let (_, fast, fast_warm) = &answers[0];
        for (shape, out, warm) in &answers[1..] {
            assert_eq!(echo(out), echo(fast), "{what} from {src}: {shape} vs fast");
            // A warm-standby pick adds a site's hosts: compare the bytes of the others.
            if !(warm | fast_warm) {
                assert_eq!(out, fast, "{what} from {src}: {shape} vs fast, bytes");
            }
        }
        echoes.push(echo(fast));
    }
    echoes
}

#[test]
fn every_client_subnet_gets_the_same_answer_on_every_path() {
    // A trusted resolver, whose option chooses the view, and a client whose option is ignored.
    let sources: [SocketAddr; 2] = [
        "127.9.0.1:5000".parse().unwrap(),
        "127.10.0.1:5000".parse().unwrap(),
    ];
    let (mut valid, mut invalid) = (0, 0);
    for (what, body, allowed) in ecs_corpus() {
        let options = option(8, &body);
        for (rcode, ecs, _) in through_every_shape(&what, &options, &sources) {
            if allowed {
                assert_eq!(rcode, 0, "{what}: answered");
                let (_, source, _) = ecs.unwrap_or_else(|| panic!("{what}: ECS echoed"));
                assert_eq!(source, body[2], "{what}: the client's source prefix echoed");
                valid += 1;
            } else {
                assert_eq!(rcode, 1, "{what}: FORMERR (RFC 7871 section 6)");
                assert_eq!(ecs, None, "{what}: a malformed option is not echoed");
                invalid += 1;
            }
        }
    }
    assert!(
        valid >= 20 && invalid >= 100,
        "{valid} valid, {invalid} invalid"
    );
    // Two options, each fine alone: FORMERR too.
    let one = option(8, &[0, 1, 24, 0, 10, 1, 2]);
    for (rcode, _, _) in through_every_shape("two ECS", &[one.clone(), one].concat(), &sources) {
        assert_eq!(rcode, 1);
    }
}

#[test]
fn every_cookie_gets_the_same_answer_on_every_path() {
    let sources: [SocketAddr; 2] = [
        "127.10.0.1:5000".parse().unwrap(),
        "[2001:db8:10::1]:5000".parse().unwrap(),
    ];
    for len in 0..=42usize {
        let body: Vec<u8> = (0..len as u8).collect();
        let what = format!("a {len}-byte COOKIE option");
        for (rcode, _, cookie) in through_every_shape(&what, &option(10, &body), &sources) {
            if len == 8 || (16..=40).contains(&len) {
                assert_eq!(rcode, 0, "{what}: answered");
                let cookie = cookie.unwrap_or_else(|| panic!("{what}: a cookie back"));
                assert_eq!(
                    cookie.len(),
                    24,
                    "{what}: the client cookie and a 16-byte one of ours"
                );
                assert_eq!(cookie[..8], body[..8], "{what}: the client cookie echoed");
                assert_eq!(cookie[8..12], [1, 0, 0, 0], "{what}: version 1, reserved 0");
            } else {
                assert_eq!(rcode, 1, "{what}: FORMERR (RFC 7873 section 5.2.2)");
                assert_eq!(cookie, None, "{what}");
            }
        }
    }
    let one = option(10, &[1; 8]);
    for (rcode, _, _) in through_every_shape("two COOKIE", &[one.clone(), one].concat(), &sources) {
        assert_eq!(rcode, 1, "two COOKIE options: FORMERR");
    }
    // Beside other options, in any order, and beside ECS.
    let ecs = option(8, &[0, 1, 24, 0, 10, 1, 2]);
    let padding = option(12, &[0; 7]);
    let mixed = [padding, ecs, option(10, &[1; 8])].concat();
    for (rcode, ecs, cookie) in through_every_shape("padding, ECS, COOKIE", &mixed, &sources) {
        assert_eq!(rcode, 0);
        assert!(ecs.is_some() && cookie.is_some());
    }
    // An option that runs past the record: FORMERR.
    let cut = &option(10, &[1; 8])[..10];
    for (rcode, _, _) in through_every_shape("an option cut short", cut, &sources) {
        assert_eq!(rcode, 1);
    }
}
