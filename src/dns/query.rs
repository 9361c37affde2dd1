//! A query as the answer path needs it, and the fast parser for the common shape.
//!
//! The fast parser accepts exactly one shape: a standard query with one uncompressed question
//! and at most one OPT record, nothing else. Anything else — and anything it cannot vouch
//! for — goes to hickory-server's full parser in [`slow`](super::slow), which yields the same
//! [`Query`] or an error response.

use super::cookie::Cookie;
use super::options::{ClientSubnet, parse_options};
use crate::wire::TYPE_OPT;

/// The longest wire name (RFC 1035 section 2.3.4).
pub const MAX_NAME: usize = 255;
pub use crate::wire::HEADER_LEN;

/// A parsed query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// The message ID, echoed in the response.
    pub id: u16,
    /// The OPCODE, echoed in the response: always QUERY here (others get NOTIMP).
    pub opcode: u8,
    /// The RD flag, echoed in the response; nothing is resolved recursively.
    pub recursion_desired: bool,
    /// The CD flag, echoed in the response.
    pub checking_disabled: bool,
    /// The question as the client sent it (name, type, class), letter case kept, uncompressed.
    pub question: QuestionBuf,
    /// Length of the name within `question`.
    pub qname_len: usize,
    /// The name in lower case.
    pub qname_lower: [u8; MAX_NAME],
    /// The type asked for, as its number (1 A, 15 MX, 28 AAAA, …).
    pub qtype: u16,
    /// The class asked for; anything but IN is refused.
    pub qclass: u16,
    /// The OPT record; `None` for a client without EDNS, whose UDP answers must fit 512 bytes.
    pub edns: Option<Edns>,
}

/// Question bytes without a heap allocation: a name of at most 255 bytes, type and class.
pub type QuestionBuf = heapless_question::Buf;

/// What the client said in its OPT record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edns {
    /// The largest UDP response the client accepts, in bytes (at least 512, RFC 6891); UDP answers
    /// fit the smaller of this and our own payload.
    pub payload: u16,
    /// The EDNS version; any but 0 gets BADVERS.
    pub version: u8,
    /// The DO bit, echoed in the response (RFC 3225).
    pub dnssec_ok: bool,
    /// The client's subnet, as a resolver passed it on; believed only from
    /// `server.trusted_resolvers`.
    pub client_subnet: Option<ClientSubnet>,
    /// The client's DNS cookie, and ours if it holds one (RFC 7873).
    pub cookie: Option<Cookie>,
}

impl Query {
    /// The lower-case wire name.
    pub fn qname(&self) -> &[u8] {
        &self.qname_lower[..self.qname_len]
    }
}

/// What the fast parser made of a datagram.
// The query stays on the stack: boxing it would allocate on every query.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Fast {
    /// The common shape, parsed: answer it.
    Query(Query),
    /// Not the common shape: let the full parser decide.
    Unusual,
    /// Too short to carry an ID, or a response: no answer at all.
    Drop,
}

/// Parses the common query shape without allocating.
pub fn parse_fast(raw: &[u8]) -> Fast {
    if raw.len() < HEADER_LEN || raw[2] & 0x80 != 0 {
        return Fast::Drop;
    }
    let opcode = (raw[2] >> 3) & 0x0F;
    let count = |i: usize| u16::from_be_bytes([raw[i], raw[i + 1]]);
    if opcode != 0 || count(4) != 1 || count(6) != 0 || count(8) != 0 || count(10) > 1 {
        return Fast::Unusual;
    }
    let mut qname_lower = [0u8; MAX_NAME];
    let mut at = HEADER_LEN;
    loop {
        let Some(&len) = raw.get(at) else {
            return Fast::Unusual;
        };
        let len = usize::from(len);
        if len > 63 || at - HEADER_LEN + len + 1 > MAX_NAME {
            return Fast::Unusual;
        }
        let Some(label) = raw.get(at..=at + len) else {
            return Fast::Unusual;
        };
        for (dst, src) in qname_lower[at - HEADER_LEN..].iter_mut().zip(label) {
            *dst = src.to_ascii_lowercase();
        }
        at += len + 1;
        if len == 0 {
            break;
        }
    }
    let qname_len = at - HEADER_LEN;
    let Some(tc) = raw.get(at..at + 4) else {
        return Fast::Unusual;
    };
    let qtype = u16::from_be_bytes([tc[0], tc[1]]);
    let qclass = u16::from_be_bytes([tc[2], tc[3]]);
    let question_end = at + 4;
    let edns = if count(10) == 1 {
        match parse_opt(&raw[question_end..]) {
            Some(edns) => Some(edns),
            None => return Fast::Unusual,
        }
    } else if raw.len() != question_end {
        return Fast::Unusual;
    } else {
        None
    };
    Fast::Query(Query {
        id: u16::from_be_bytes([raw[0], raw[1]]),
        opcode,
        recursion_desired: raw[2] & 0x01 != 0,
        checking_disabled: raw[3] & 0x10 != 0,
        question: QuestionBuf::from_slice(&raw[HEADER_LEN..question_end]),
        qname_len,
        qname_lower,
        qtype,
        qclass,
        edns,
    })
}

/// Parses an OPT record that must fill `rest` exactly.
fn parse_opt(rest: &[u8]) -> Option<Edns> {
    // root name, type, class (payload), ttl (ext rcode, version, flags), rdlength
    if rest.len() < 11 || rest[0] != 0 || u16::from_be_bytes([rest[1], rest[2]]) != TYPE_OPT {
        return None;
    }
    // Values under 512 are treated as 512 (RFC 6891 section 6.2.5), as hickory-proto does.
    let payload = u16::from_be_bytes([rest[3], rest[4]]).max(512);
    let version = rest[6];
    let dnssec_ok = rest[7] & 0x80 != 0;
    let rdlen = usize::from(u16::from_be_bytes([rest[9], rest[10]]));
    let options = rest.get(11..)?;
    if options.len() != rdlen {
        return None;
    }
    // A malformed option is for the full parser to answer FORMERR.
    let options = parse_options(options).ok()?;
    Some(Edns {
        payload,
        version,
        dnssec_ok,
        client_subnet: options.client_subnet,
        cookie: options.cookie,
    })
}

/// A fixed-capacity byte buffer for one question.
pub mod heapless_question {
    /// Name (up to 255 bytes) plus type and class.
    #[derive(Clone, PartialEq, Eq)]
    pub struct Buf {
        bytes: [u8; super::MAX_NAME + 4],
        len: usize,
    }

    impl Buf {
        /// Copies `src`, which the parsers bound to 259 bytes.
        pub fn from_slice(src: &[u8]) -> Self {
            let mut bytes = [0u8; super::MAX_NAME + 4];
            bytes[..src.len()].copy_from_slice(src);
            Self {
                bytes,
                len: src.len(),
            }
        }

        /// The question's bytes as the client sent them: name, type, class.
        pub fn as_slice(&self) -> &[u8] {
            &self.bytes[..self.len]
        }
    }

    impl std::fmt::Debug for Buf {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "{:?}", self.as_slice())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &[u8], qtype: u16, opt: Option<&[u8]>) -> Vec<u8> {
        let mut q = vec![
            0x12,
            0x34,
            0x01,
            0x00,
            0,
            1,
            0,
            0,
            0,
            0,
            0,
            u8::from(opt.is_some()),
        ];
        q.extend_from_slice(name);
        q.extend_from_slice(&qtype.to_be_bytes());
        q.extend_from_slice(&[0, 1]);
        if let Some(opt) = opt {
            q.extend_from_slice(opt);
        }
        q
    }

    const NAME: &[u8] = b"\x06OxFord\x09smarthost\x08internal\x00";

    #[test]
    fn the_common_shape_parses_with_case_kept_and_lowered() {
        let Fast::Query(q) = parse_fast(&query(NAME, 15, None)) else {
            panic!()
        };
        assert_eq!(q.id, 0x1234);
        assert!(q.recursion_desired);
        assert_eq!(&q.question.as_slice()[..NAME.len()], NAME);
        assert_eq!(q.qname(), b"\x06oxford\x09smarthost\x08internal\x00");
        assert_eq!((q.qtype, q.qclass), (15, 1));
        assert_eq!(q.edns, None);
    }

    #[test]
    fn edns_and_client_subnet_are_read() {
        let opt = b"\x00\x00\x29\x04\xd0\x00\x00\x80\x00\x00\x0b\x00\x08\x00\x07\x00\x01\x18\x00\x0a\x01\x02";
        let Fast::Query(q) = parse_fast(&query(NAME, 1, Some(opt))) else {
            panic!()
        };
        let edns = q.edns.unwrap();
        assert_eq!(edns.payload, 1232);
        assert!(edns.dnssec_ok);
        let ecs = edns.client_subnet.unwrap();
        assert_eq!(ecs.address, "10.1.2.0".parse::<std::net::IpAddr>().unwrap());
        assert_eq!(ecs.source_prefix, 24);
    }

    #[test]
    fn odd_shapes_go_to_the_full_parser_and_responses_are_dropped() {
        let mut compressed = query(b"\xc0\x0c", 1, None);
        assert!(matches!(parse_fast(&compressed), Fast::Unusual));
        compressed[2] |= 0x80;
        assert!(matches!(parse_fast(&compressed), Fast::Drop));
        assert!(matches!(parse_fast(&[0; 11]), Fast::Drop));
        let mut trailing = query(NAME, 1, None);
        trailing.push(0);
        assert!(matches!(parse_fast(&trailing), Fast::Unusual));
        let mut two = query(NAME, 1, None);
        two[5] = 2;
        assert!(matches!(parse_fast(&two), Fast::Unusual));
        let mut notify = query(NAME, 6, None);
        notify[2] = 4 << 3;
        assert!(matches!(parse_fast(&notify), Fast::Unusual));
        let long_label = [&[64u8][..], &[b'a'; 64], &[0]].concat();
        assert!(matches!(
            parse_fast(&query(&long_label, 1, None)),
            Fast::Unusual
        ));
    }
}
