//! The DNS wire format in one place: names in wire form, and the numbers of the types, the
//! class, the EDNS option and the response codes that config, topology, answers and the DNS
//! edge share (RFC 1035, RFC 6891, RFC 7871, RFC 7873). Plain constants rather than hickory-proto's
//! enums, because the answer path matches on them and builds headers from them byte by byte.

use hickory_proto::rr::Name;

/// A message's header is 12 bytes.
pub const HEADER_LEN: usize = 12;
/// Class IN.
pub const CLASS_IN: u16 = 1;
/// The start of authority record at the apex.
pub const TYPE_SOA: u16 = 6;
/// The EDNS pseudo-record (RFC 6891).
pub const TYPE_OPT: u16 = 41;
/// A delegation signer (RFC 4034): answered NODATA at the apex, which has no parent here.
pub const TYPE_DS: u16 = 43;
/// A signature (RFC 4034).
pub const TYPE_RRSIG: u16 = 46;
/// The next name and the types at a name: denial of existence (RFC 4034).
pub const TYPE_NSEC: u16 = 47;
/// The zone's public keys, at the apex (RFC 4034).
pub const TYPE_DNSKEY: u16 = 48;
/// A transaction signature (RFC 8945), always the last record of a message.
pub const TYPE_TSIG: u16 = 250;
/// Incremental zone transfer (RFC 1995), over TCP: the difference, or the whole zone.
pub const TYPE_IXFR: u16 = 251;
/// Full zone transfer: to secondaries of `[transfer]`, over TCP.
pub const TYPE_AXFR: u16 = 252;
/// ANY, answered with one RRset (RFC 8482).
pub const TYPE_ANY: u16 = 255;
/// EDNS Client Subnet (RFC 7871).
pub const OPTION_CLIENT_SUBNET: u16 = 8;
/// DNS cookies (RFC 7873).
pub const OPTION_COOKIE: u16 = 10;

/// Response codes (the low four bits in the header).
pub mod rcode {
    /// No error: an answer, or NODATA.
    pub const NOERROR: u8 = 0;
    /// A malformed query: unreadable, more than one question, a question of type OPT, or a
    /// malformed EDNS option (ECS, COOKIE).
    pub const FORMERR: u8 = 1;
    /// Server failure: a site's name whose answer names no host with a known address, so that
    /// resolvers retry and MTAs defer.
    pub const SERVFAIL: u8 = 2;
    /// No such name under the origin.
    pub const NXDOMAIN: u8 = 3;
    /// An opcode other than QUERY.
    pub const NOTIMP: u8 = 4;
    /// Not ours to answer: a name outside the zone, a zone transfer not allowed, a class other than IN, a
    /// client outside `server.allow_query`.
    pub const REFUSED: u8 = 5;
    /// BADVERS is 16: 0 in the header, 1 in the OPT record's extended RCODE.
    pub const BADVERS: u16 = 16;
    /// BADVERS's upper bits, in the OPT record's extended RCODE field.
    pub const BADVERS_EXTENDED: u8 = 1;
}

/// The wire form of `name`, lower case and uncompressed: how every name is compared and
/// looked up.
pub fn wire_name(name: &Name) -> Vec<u8> {
    let mut out = Vec::with_capacity(name.len() + 2);
    for label in name.iter() {
        out.push(label.len() as u8);
        out.extend(label.iter().map(u8::to_ascii_lowercase));
    }
    out.push(0);
    out
}

/// The wire form of `name` with its letter case as sent: a question is echoed as the client
/// wrote it.
pub fn case_kept_wire(name: &Name) -> Vec<u8> {
    let mut out = Vec::with_capacity(name.len() + 2);
    for label in name.iter() {
        out.push(label.len() as u8);
        out.extend_from_slice(label);
    }
    out.push(0);
    out
}

/// Parses `s` as a fully qualified, lower-case name.
pub fn fqdn(s: &str) -> Result<Name, hickory_proto::ProtoError> {
    let mut name = Name::from_ascii(s)?.to_lowercase();
    name.set_fqdn(true);
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_in_wire_form_lower_or_as_sent() {
        let name = Name::from_ascii("Mail1.Oxford.").unwrap();
        assert_eq!(wire_name(&name), b"\x05mail1\x06oxford\x00");
        assert_eq!(case_kept_wire(&name), b"\x05Mail1\x06Oxford\x00");
        assert_eq!(fqdn("A.b").unwrap().to_ascii(), "a.b.");
    }
}
