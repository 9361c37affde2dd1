//! What `smarthostd dnssec ds` prints for each published key with the SEP bit: its DNSKEY and DS
//! records for a parent zone, and trust anchors ready to paste into unbound, BIND, Knot
//! Resolver and PowerDNS Recursor (the versions Debian 12 ships), for a private zone that no
//! signed parent vouches for.

use hickory_proto::rr::Name;

use super::key::Key;
use crate::wire::wire_name;

/// The SHA-256 digest type of a DS record (RFC 4509).
pub(crate) const DIGEST_SHA256: u8 = 2;

/// The DS record data of `key` at `origin`: tag, algorithm, digest type, digest (hex).
pub(crate) fn ds(origin: &Name, key: &Key) -> (u16, u8, u8, String) {
    let mut data = wire_name(origin);
    data.extend_from_slice(&key.dnskey);
    let digest = ring::digest::digest(&ring::digest::SHA256, &data);
    (
        key.tag,
        key.algorithm.number(),
        DIGEST_SHA256,
        data_encoding::HEXUPPER.encode(digest.as_ref()),
    )
}

/// The DS record as a zone file line.
pub(crate) fn ds_line(origin: &Name, key: &Key) -> String {
    let (tag, alg, digest_type, digest) = ds(origin, key);
    format!(
        "{} IN DS {tag} {alg} {digest_type} {digest}",
        origin.to_ascii()
    )
}

/// The DNSKEY record as a zone file line, with `ttl`.
pub(crate) fn dnskey_line(origin: &Name, key: &Key, ttl: u32) -> String {
    format!(
        "{} {ttl} IN DNSKEY {} 3 {} {}",
        origin.to_ascii(),
        key.flags,
        key.algorithm.number(),
        data_encoding::BASE64.encode(key.public_key())
    )
}

/// The whole report for `keys` (the published SEP keys).
pub(crate) fn report(origin: &Name, keys: &[&Key], dnskey_ttl: u32) -> String {
    let zone = origin.to_ascii();
    let bare = zone.trim_end_matches('.');
    let mut out = String::new();
    let mut section = |title: &str, body: String| {
        out.push_str(&format!("; {title}\n{body}\n"));
    };
    let each = |f: &dyn Fn(&Key) -> String| keys.iter().map(|k| f(k)).collect::<String>();
    section(
        "DNSKEY records (what the zone serves)",
        each(&|k| {
            format!(
                "{}   ; key {} ({}), {}\n",
                dnskey_line(origin, k, dnskey_ttl),
                k.tag,
                k.algorithm.mnemonic(),
                k.file.display()
            )
        }),
    );
    section(
        "DS records (SHA-256) for a signed parent zone, if the zone is delegated from one",
        each(&|k| format!("{}\n", ds_line(origin, k))),
    );
    section(
        "unbound (server: clause), a trust anchor per key",
        each(&|k| format!("    trust-anchor: \"{}\"\n", ds_line(origin, k))),
    );
    section(
        "unbound, as a file for trust-anchor-file: (or delv -a's zone-file form)",
        each(&|k| format!("{}\n", ds_line(origin, k))),
    );
    section(
        "BIND 9.18 named.conf (and delv -a FILE +root=ZONE)",
        format!(
            "trust-anchors {{\n{}}};\n",
            each(&|k| {
                let (tag, alg, dt, digest) = ds(origin, k);
                format!("    \"{zone}\" static-ds {tag} {alg} {dt} \"{digest}\";\n")
            })
        ),
    );
    section(
        "Knot Resolver 5 (kresd.conf)",
        each(&|k| format!("trust_anchors.add('{}')\n", ds_line(origin, k))),
    );
    section(
        "PowerDNS Recursor 4.8 (lua-config-file)",
        each(&|k| {
            let (tag, alg, dt, digest) = ds(origin, k);
            format!("addTA('{bare}', '{tag} {alg} {dt} {digest}')\n")
        }),
    );
    out
}
