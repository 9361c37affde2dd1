//! The static part of the zone: an RFC 1035 master file parsed with hickory-proto.
//!
//! It must hold the apex SOA and NS; anything else in it is served as is. Owner names are
//! lower-cased; checks that need the topology (a static record at a synthesized name) live in
//! the snapshot builder's caller, [`check_against`].

mod locate;

use std::collections::BTreeMap;
use std::path::Path;

use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_proto::serialize::txt::Parser;

use crate::config::ConfigError;
use crate::topology::Topology;

/// Why a zone file may not hold DNSSEC records.
const DNSSEC_MADE_HERE: &str = "DNSSEC records are made by smarthostd from the keys in [dnssec] key_dir (and a private zone has no delegation to sign): remove it from the zone file";

/// Records by owner (lower case) and type.
pub type RecordMap = BTreeMap<Name, BTreeMap<RecordType, Vec<Record>>>;

/// The zone file's records, checked.
#[derive(Debug, Clone)]
pub struct StaticZone {
    /// The zone's apex (`zone.origin`), fully qualified.
    pub origin: Name,
    /// The apex SOA record as written; the served serial replaces its serial.
    pub soa: Record,
    /// Every record of the file, SOA and NS included.
    pub records: RecordMap,
    /// The file's text, kept to name lines in later errors.
    text: String,
    path: std::path::PathBuf,
}

impl StaticZone {
    /// Reads the zone file at `path` for the zone `origin`.
    pub fn load(path: &Path, origin: &Name) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::new(path, "", format!("cannot read the zone file: {e}")))?;
        Self::parse(path, text, origin)
    }

    /// Parses zone `text` for `origin`, reporting errors against `path`.
    pub fn parse(path: &Path, text: String, origin: &Name) -> Result<Self, ConfigError> {
        let fail = |line: Option<usize>, message: String| {
            let e = ConfigError::new(path, "", message);
            match line {
                Some(l) => e.at_line(l),
                None => e,
            }
        };
        if let Some((line, other)) = locate::foreign_origin(&text, origin) {
            return Err(fail(
                Some(line),
                format!("$ORIGIN {other} is outside the zone {origin} named in the config"),
            ));
        }
        let parser = Parser::new(
            text.as_str(),
            Some(path.to_path_buf()),
            Some(origin.clone()),
        );
        let (_, sets) = parser.parse().map_err(|e| {
            fail(
                locate::parse_error_line(&text, path, origin),
                format!("zone file syntax: {e}"),
            )
        })?;
        let mut records = RecordMap::new();
        for (_, set) in sets {
            if let Some(sig) = set.rrsigs().first() {
                let e =
                    ConfigError::new(path, "", format!("{} RRSIG: {DNSSEC_MADE_HERE}", sig.name));
                return Err(match locate::owner_line(&text, &sig.name, origin) {
                    Some(line) => e.at_line(line),
                    None => e,
                });
            }
            for record in set.records_without_rrsigs() {
                let mut record = record.clone();
                record.name = record.name.to_lowercase();
                records
                    .entry(record.name.clone())
                    .or_default()
                    .entry(record.record_type())
                    .or_default()
                    .push(record);
            }
        }
        let zone = Self {
            origin: origin.clone(),
            soa: Record::from_rdata(Name::root(), 0, RData::Update0(RecordType::SOA)),
            records,
            text,
            path: path.to_path_buf(),
        };
        zone.check()
    }

    fn error_at(&self, owner: &Name, message: String) -> ConfigError {
        let e = ConfigError::new(&self.path, "", message);
        match locate::owner_line(&self.text, owner, &self.origin) {
            Some(line) => e.at_line(line),
            None => e,
        }
    }

    fn check(mut self) -> Result<Self, ConfigError> {
        let apex = self.records.get(&self.origin);
        let soa = apex
            .and_then(|a| a.get(&RecordType::SOA))
            .cloned()
            .unwrap_or_default();
        let ns = apex
            .and_then(|a| a.get(&RecordType::NS))
            .map_or(0, Vec::len);
        if soa.len() != 1 {
            return Err(ConfigError::new(
                &self.path,
                "",
                format!(
                    "needs exactly one SOA record at the apex {}, found {}",
                    self.origin,
                    soa.len()
                ),
            ));
        }
        if ns == 0 {
            return Err(ConfigError::new(
                &self.path,
                "",
                format!("needs NS records at the apex {}", self.origin),
            ));
        }
        self.soa = soa[0].clone();
        for (owner, rrsets) in &self.records {
            if !self.origin.zone_of(owner) {
                return Err(self.error_at(
                    owner,
                    format!(
                        "{owner} is outside the zone {} (is the file's origin another zone?)",
                        self.origin
                    ),
                ));
            }
            if owner.is_wildcard() {
                return Err(self.error_at(owner, format!("{owner}: wildcards are not supported")));
            }
            if owner != &self.origin {
                for t in [RecordType::SOA, RecordType::NS] {
                    if rrsets.contains_key(&t) {
                        return Err(self.error_at(
                            owner,
                            format!("{owner} {t}: only the apex may hold {t} records (delegation is not supported)"),
                        ));
                    }
                }
            }
            for record in rrsets.values().flatten() {
                if let Err(e) = encodable(record) {
                    return Err(self.error_at(
                        owner,
                        format!("{owner} {}: cannot be served: {e}", record.record_type()),
                    ));
                }
            }
            for dnssec in [
                RecordType::DNSKEY,
                RecordType::NSEC,
                RecordType::NSEC3,
                RecordType::NSEC3PARAM,
                RecordType::DS,
                RecordType::CDS,
                RecordType::CDNSKEY,
            ] {
                if rrsets.contains_key(&dnssec) {
                    return Err(
                        self.error_at(owner, format!("{owner} {dnssec}: {DNSSEC_MADE_HERE}"))
                    );
                }
            }
            for alias in [RecordType::CNAME, RecordType::DNAME] {
                if rrsets.contains_key(&alias) {
                    return Err(self.error_at(
                        owner,
                        format!(
                            "{owner} {alias}: aliases are not served, as they would put a static name between senders and the live answers; name a site's pseudo-domain directly, or list a shared name in views.names"
                        ),
                    ));
                }
            }
        }
        Ok(self)
    }

    /// The file's text as read.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The serial written in the zone file.
    pub fn soa_serial(&self) -> u32 {
        match &self.soa.data {
            RData::SOA(soa) => soa.serial,
            _ => 0,
        }
    }

    /// Rejects static records at names the topology synthesizes.
    pub fn check_against(&self, topology: &Topology) -> Result<(), ConfigError> {
        let apex = self.records.get(&self.origin);
        for rtype in [RecordType::MX, RecordType::A, RecordType::AAAA] {
            if topology.views_enabled && apex.is_some_and(|r| r.contains_key(&rtype)) {
                return Err(self.error_at(
                    &self.origin,
                    format!("static {rtype} at the apex {}, which views answer per client site: remove it from the zone file", self.origin),
                ));
            }
        }
        let site_names = topology.sites.iter().map(|s| (&s.domain, "site"));
        let host_names = topology.hosts.iter().map(|h| (&h.fqdn, "smart host"));
        let view_names = topology.view_names.iter().map(|n| (n, "shared view"));
        let tlsa_names = topology
            .tlsa
            .iter()
            .map(|t| (&t.owner, "pinned relay's TLSA"));
        for (name, what) in site_names
            .chain(host_names)
            .chain(view_names)
            .chain(tlsa_names)
        {
            if let Some(rrsets) = self.records.get(name) {
                let types: Vec<String> = rrsets.keys().map(ToString::to_string).collect();
                return Err(self.error_at(
                    name,
                    format!(
                        "static {} at {name}, which smarthostd answers as a {what} name: remove it from the zone file",
                        types.join("/")
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// Whether a record's data can be written to the wire: the parser accepts some that cannot
/// (a TXT string over 255 bytes, say), and serving must never fail.
fn encodable(record: &Record) -> Result<(), hickory_proto::ProtoError> {
    use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};
    let mut bytes = Vec::new();
    record.data.emit(&mut BinEncoder::new(&mut bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::fqdn;

    const GOOD: &str = "$ORIGIN smarthost.internal.\n$TTL 30\n\
        @ IN SOA ns1 hostmaster ( 1 3600 600 86400 30 )\n\
        @ IN NS ns1\n\
        ns1 IN A 127.0.0.1\n";

    fn parse(text: &str) -> Result<StaticZone, ConfigError> {
        StaticZone::parse(
            Path::new("z.zone"),
            text.to_string(),
            &fqdn("smarthost.internal").unwrap(),
        )
    }

    #[test]
    fn a_good_zone_parses_with_its_soa_and_ns() {
        let zone = parse(GOOD).unwrap();
        assert_eq!(zone.soa.record_type(), RecordType::SOA);
        assert_eq!(zone.records.len(), 2);
    }

    #[test]
    fn a_missing_soa_or_ns_is_named() {
        let no_soa = GOOD.replace("@ IN SOA ns1 hostmaster ( 1 3600 600 86400 30 )\n", "");
        let e = parse(&no_soa).unwrap_err();
        assert!(e.message.contains("SOA"), "{e}");
        let no_ns = GOOD.replace("@ IN NS ns1\n", "");
        let e = parse(&no_ns).unwrap_err();
        assert!(e.message.contains("NS records"), "{e}");
    }

    #[test]
    fn another_origin_is_named_with_its_line() {
        let e = parse(&GOOD.replace("$ORIGIN smarthost.internal.", "$ORIGIN example.com."))
            .unwrap_err();
        assert_eq!(e.position, Some((1, 1)));
        assert!(e.message.contains("example.com."), "{e}");
    }

    #[test]
    fn a_syntax_error_names_its_line() {
        let e = parse(&format!("{GOOD}bad IN A not-an-address\n")).unwrap_err();
        assert_eq!(e.position.map(|p| p.0), Some(6), "{e}");
    }

    #[test]
    fn records_that_cannot_be_encoded_or_sit_above_the_zone_are_errors_not_panics() {
        let long = format!("{GOOD}long IN TXT \"{}\"\n", "a".repeat(256));
        let e = parse(&long).unwrap_err();
        assert!(e.message.contains("cannot be served"), "{e}");
        assert_eq!(e.position, Some((6, 1)));
        let e = parse(&format!("{GOOD}com. IN A 192.0.2.1\n")).unwrap_err();
        assert!(e.message.contains("outside the zone"), "{e}");
    }

    #[test]
    fn a_late_syntax_error_in_a_long_zone_is_named() {
        // The line is found by a binary search over entry boundaries (a logarithmic number of
        // parses, see `locate::parse_error_line`); its speed is not timed here.
        let mut text = GOOD.to_string();
        for i in 0..3000 {
            text.push_str(&format!("h{i} IN A 192.0.2.{}\n", i % 250));
        }
        text.push_str("bad IN A x\n");
        let e = parse(&text).unwrap_err();
        assert_eq!(e.position.map(|p| p.0), Some(3006));
    }

    #[test]
    fn dnssec_records_in_the_zone_file_are_refused_with_their_line() {
        // hickory-proto's parser refuses DNSKEY, NSEC and RRSIG itself ("should be
        // dynamically generated"); the others are ours to refuse, with the reason.
        for extra in [
            "@ IN DNSKEY 257 3 13 AAAA\n",
            "ns1 IN NSEC smarthost.internal. A RRSIG NSEC\n",
            "ns1 IN RRSIG A 13 3 30 20300101000000 20200101000000 1 smarthost.internal. AAAA\n",
            "@ IN CDS 1 13 2 00ff\n",
            "sub IN DS 1 13 2 00ff\n",
        ] {
            let e = parse(&format!("{GOOD}{extra}")).unwrap_err();
            assert!(
                e.message.contains("[dnssec] key_dir")
                    || e.message.contains("dynamically generated"),
                "{e}"
            );
            assert_eq!(e.position.map(|p| p.0), Some(6), "{e}");
        }
        let e = parse(&format!("{GOOD}sub IN DS 1 13 2 00ff\n")).unwrap_err();
        assert!(e.message.contains("[dnssec] key_dir"), "{e}");
    }

    #[test]
    fn delegations_and_wildcards_are_refused() {
        assert!(parse(&format!("{GOOD}sub IN NS ns1\n")).is_err());
        assert!(parse(&format!("{GOOD}* IN A 127.0.0.2\n")).is_err());
    }
}
