//! The options of a query's OPT record, read from their bytes by one function that both parsers
//! call: the fast parser on the common shape, the full parser on the OPT record it located. So
//! an option the one rejects, the other rejects too, and each rejection is answered FORMERR.
//!
//! - EDNS Client Subnet (RFC 7871 section 6): family 1 or 2, a source prefix within it, exactly
//!   the octets the prefix needs, no bit set past it, scope 0; at most one.
//! - COOKIE (RFC 7873 section 4): an 8-byte client cookie, alone or with an 8..=32-byte server
//!   cookie (16..=40 bytes in all); at most one (section 5.2.2: anything else is FORMERR).
//! - Other options are skipped; each must fit the record.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::cookie::{CLIENT_LEN, Cookie, Presented, SERVER_LEN};
use crate::wire::{OPTION_CLIENT_SUBNET, OPTION_COOKIE};

/// The options that change an answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Options {
    /// The ECS option, well formed.
    pub client_subnet: Option<ClientSubnet>,
    /// The COOKIE option, well formed.
    pub cookie: Option<Cookie>,
}

/// Why an OPT record's options are malformed: each is answered FORMERR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Malformed {
    /// An option runs past the end of the record.
    Layout,
    /// An ECS option RFC 7871 section 6 calls malformed, or two of them.
    ClientSubnet,
    /// A COOKIE option of a length RFC 7873 section 5.2.2 forbids, or two of them.
    Cookie,
}

/// An EDNS Client Subnet option (RFC 7871).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientSubnet {
    /// The address, with bits past `source_prefix` zero.
    pub address: IpAddr,
    /// How many leading bits of `address` the resolver gave (its SOURCE PREFIX-LENGTH).
    pub source_prefix: u8,
}

/// Reads the options of an OPT record's data.
pub(crate) fn parse_options(mut data: &[u8]) -> Result<Options, Malformed> {
    let mut options = Options::default();
    while !data.is_empty() {
        let [c0, c1, l0, l1, ..] = *data else {
            return Err(Malformed::Layout);
        };
        let len = usize::from(u16::from_be_bytes([l0, l1]));
        let body = data.get(4..4 + len).ok_or(Malformed::Layout)?;
        match u16::from_be_bytes([c0, c1]) {
            OPTION_CLIENT_SUBNET => {
                let subnet = parse_client_subnet(body).ok_or(Malformed::ClientSubnet)?;
                if options.client_subnet.replace(subnet).is_some() {
                    return Err(Malformed::ClientSubnet);
                }
            }
            OPTION_COOKIE => {
                let cookie = parse_cookie(body).ok_or(Malformed::Cookie)?;
                if options.cookie.replace(cookie).is_some() {
                    return Err(Malformed::Cookie);
                }
            }
            _ => {}
        }
        data = &data[4 + len..];
    }
    Ok(options)
}

/// Parses an ECS option body; `None` for anything RFC 7871 section 6 calls malformed.
pub(crate) fn parse_client_subnet(data: &[u8]) -> Option<ClientSubnet> {
    let [f0, f1, source_prefix, scope_prefix, ref bytes @ ..] = *data else {
        return None;
    };
    let (max_bits, width) = match u16::from_be_bytes([f0, f1]) {
        1 => (32u8, 4usize),
        2 => (128u8, 16usize),
        _ => return None,
    };
    let needed = usize::from(source_prefix).div_ceil(8);
    if source_prefix > max_bits || scope_prefix != 0 || bytes.len() != needed {
        return None;
    }
    let mut full = [0u8; 16];
    full[..needed].copy_from_slice(bytes);
    // Bits past the source prefix must be zero.
    if source_prefix % 8 != 0 {
        let mask = 0xFFu8 >> (source_prefix % 8);
        if full[needed - 1] & mask != 0 {
            return None;
        }
    }
    let address = if width == 4 {
        IpAddr::V4(Ipv4Addr::new(full[0], full[1], full[2], full[3]))
    } else {
        IpAddr::V6(Ipv6Addr::from(full))
    };
    Some(ClientSubnet {
        address,
        source_prefix,
    })
}

/// Parses a COOKIE option body; `None` for a length RFC 7873 forbids.
pub(crate) fn parse_cookie(data: &[u8]) -> Option<Cookie> {
    let client: [u8; CLIENT_LEN] = data.get(..CLIENT_LEN)?.try_into().ok()?;
    let server = match data.len() - CLIENT_LEN {
        0 => Presented::None,
        SERVER_LEN => Presented::Standard(data[CLIENT_LEN..].try_into().ok()?),
        8..=32 => Presented::Other,
        _ => return None,
    };
    Some(Cookie { client, server })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn option(code: u16, body: &[u8]) -> Vec<u8> {
        [
            &code.to_be_bytes()[..],
            &(body.len() as u16).to_be_bytes(),
            body,
        ]
        .concat()
    }

    #[test]
    fn malformed_client_subnets_are_refused() {
        assert!(parse_client_subnet(&[0, 1, 24, 0, 10, 1, 2]).is_some());
        assert!(parse_client_subnet(&[0, 1, 0, 0]).is_some(), "prefix 0");
        assert!(
            parse_client_subnet(&[0, 1, 24, 0, 10, 1]).is_none(),
            "short address"
        );
        assert!(
            parse_client_subnet(&[0, 1, 16, 0, 10, 1, 0]).is_none(),
            "long address"
        );
        assert!(
            parse_client_subnet(&[0, 1, 23, 0, 10, 1, 3]).is_none(),
            "bits past the prefix"
        );
        assert!(parse_client_subnet(&[0, 1, 23, 0, 10, 1, 2]).is_some());
        assert!(
            parse_client_subnet(&[0, 1, 24, 8, 10, 1, 2]).is_none(),
            "scope in a query"
        );
        assert!(
            parse_client_subnet(&[0, 3, 0, 0]).is_none(),
            "unknown family"
        );
        assert!(parse_client_subnet(&[0, 0, 0, 0]).is_none(), "family 0");
        assert!(
            parse_client_subnet(&[0, 1, 33, 0, 1, 2, 3, 4, 5]).is_none(),
            "prefix too long"
        );
        assert!(parse_client_subnet(&[0, 1, 24]).is_none(), "cut short");
        assert!(parse_client_subnet(&[]).is_none(), "empty");
    }

    #[test]
    fn cookie_lengths_follow_rfc_7873() {
        for len in 0..=48 {
            let body = vec![7u8; len];
            let parsed = parse_cookie(&body);
            match len {
                8 => assert_eq!(parsed.unwrap().server, Presented::None),
                24 => assert!(matches!(parsed.unwrap().server, Presented::Standard(_))),
                16..=40 => assert_eq!(parsed.unwrap().server, Presented::Other, "{len}"),
                _ => assert!(parsed.is_none(), "a {len}-byte cookie is malformed"),
            }
        }
    }

    #[test]
    fn options_are_read_once_each_and_must_fit() {
        let ecs = option(8, &[0, 1, 24, 0, 10, 1, 2]);
        let cookie = option(10, &[1; 8]);
        let padding = option(12, &[0; 5]);
        let all = [&padding[..], &ecs, &cookie].concat();
        let o = parse_options(&all).unwrap();
        assert_eq!(o.client_subnet.unwrap().source_prefix, 24);
        assert_eq!(o.cookie.unwrap().client, [1; 8]);
        assert_eq!(parse_options(&[]), Ok(Options::default()));
        let two = [&cookie[..], &cookie].concat();
        assert_eq!(parse_options(&two), Err(Malformed::Cookie));
        let two = [&ecs[..], &ecs].concat();
        assert_eq!(parse_options(&two), Err(Malformed::ClientSubnet));
        assert_eq!(parse_options(&all[..all.len() - 1]), Err(Malformed::Layout));
        assert_eq!(parse_options(&[0, 12, 0]), Err(Malformed::Layout));
        assert_eq!(parse_options(&option(10, &[1; 7])), Err(Malformed::Cookie));
        assert_eq!(parse_options(&option(10, &[1; 41])), Err(Malformed::Cookie));
    }
}
