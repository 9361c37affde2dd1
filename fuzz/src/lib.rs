//! Shared fixtures for smarthostd's fuzz targets: one snapshot built the way the server builds
//! it, client addresses chosen by the first input byte, and checks on response bytes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use hickory_proto::op::Message;
use smarthostd::answer::Snapshot;
use smarthostd::dns::cookie::Cookies;
use smarthostd::dns::query::{Fast, parse_fast};

/// The config the `request` targets serve: four sites with IPv4 and IPv6 relays, one of them with
/// 40 hosts (answers that must be cut or truncated), an ordered fallback, a warm share, views
/// with client networks and trusted resolvers (ECS).
pub const CONFIG: &str = r#"
[server]
listen = ["127.0.0.1:5353"]
trusted_resolvers = ["192.0.2.53/32", "2001:db8:53::/64"]

[zone]
origin = "smarthost.internal"
file = "smarthost.internal.zone"
ttl = "30s"
degraded_ttl = "10s"
local_preference = 10
fallback_preference = 20
fallback_step = 10

[probe]
ehlo = "fuzz.example.org"

[views]
names = ["mx", "relay.smarthost.internal."]
default = "all"

[sites.oxford]
hosts = [
  { name = "mail1", addresses = ["10.1.25.11"] },
  { name = "Mail2", addresses = ["10.1.25.12", "2001:db8:1:25::12"], port = 587 },
]
fallback = ["cambridge", "london"]
warm_share = 0.25
clients = ["10.1.0.0/16", "2001:db8:1::/48"]

[sites.cambridge]
hosts = [
  { name = "mail1", addresses = ["10.2.25.11", "2001:db8:2:25::11"] },
  { name = "mail2", addresses = ["2001:db8:2:25::12"] },
]
clients = ["10.2.0.0/16", "10.2.7.0/24", "2001:db8:2::/48"]

[sites.london]
hosts = [
  { name = "mail1", addresses = ["10.3.25.11", "2001:db8:3:25::11"], timeout = "2s" },
  { name = "isp1", fqdn = "relay1.isp.example" },
]
fallback = ["oxford"]
clients = ["10.3.0.0/16"]

[sites.big]
hosts = [
  { name = "m01", addresses = ["10.4.25.1", "2001:db8:4:25::1"] },
  { name = "m02", addresses = ["10.4.25.2", "2001:db8:4:25::2"] },
  { name = "m03", addresses = ["10.4.25.3", "2001:db8:4:25::3"] },
  { name = "m04", addresses = ["10.4.25.4", "2001:db8:4:25::4"] },
  { name = "m05", addresses = ["10.4.25.5", "2001:db8:4:25::5"] },
  { name = "m06", addresses = ["10.4.25.6", "2001:db8:4:25::6"] },
  { name = "m07", addresses = ["10.4.25.7", "2001:db8:4:25::7"] },
  { name = "m08", addresses = ["10.4.25.8", "2001:db8:4:25::8"] },
  { name = "m09", addresses = ["10.4.25.9", "2001:db8:4:25::9"] },
  { name = "m10", addresses = ["10.4.25.10", "2001:db8:4:25::10"] },
  { name = "m11", addresses = ["10.4.25.11", "2001:db8:4:25::11"] },
  { name = "m12", addresses = ["10.4.25.12", "2001:db8:4:25::12"] },
  { name = "m13", addresses = ["10.4.25.13", "2001:db8:4:25::13"] },
  { name = "m14", addresses = ["10.4.25.14", "2001:db8:4:25::14"] },
  { name = "m15", addresses = ["10.4.25.15", "2001:db8:4:25::15"] },
  { name = "m16", addresses = ["10.4.25.16", "2001:db8:4:25::16"] },
  { name = "m17", addresses = ["10.4.25.17", "2001:db8:4:25::17"] },
  { name = "m18", addresses = ["10.4.25.18", "2001:db8:4:25::18"] },
  { name = "m19", addresses = ["10.4.25.19", "2001:db8:4:25::19"] },
  { name = "m20", addresses = ["10.4.25.20", "2001:db8:4:25::20"] },
  { name = "m21", addresses = ["10.4.25.21", "2001:db8:4:25::21"] },
  { name = "m22", addresses = ["10.4.25.22", "2001:db8:4:25::22"] },
  { name = "m23", addresses = ["10.4.25.23", "2001:db8:4:25::23"] },
  { name = "m24", addresses = ["10.4.25.24", "2001:db8:4:25::24"] },
  { name = "m25", addresses = ["10.4.25.25", "2001:db8:4:25::25"] },
  { name = "m26", addresses = ["10.4.25.26", "2001:db8:4:25::26"] },
  { name = "m27", addresses = ["10.4.25.27", "2001:db8:4:25::27"] },
  { name = "m28", addresses = ["10.4.25.28", "2001:db8:4:25::28"] },
  { name = "m29", addresses = ["10.4.25.29", "2001:db8:4:25::29"] },
  { name = "m30", addresses = ["10.4.25.30", "2001:db8:4:25::30"] },
  { name = "m31", addresses = ["10.4.25.31", "2001:db8:4:25::31"] },
  { name = "m32", addresses = ["10.4.25.32", "2001:db8:4:25::32"] },
  { name = "m33", addresses = ["10.4.25.33", "2001:db8:4:25::33"] },
  { name = "m34", addresses = ["10.4.25.34", "2001:db8:4:25::34"] },
  { name = "m35", addresses = ["10.4.25.35", "2001:db8:4:25::35"] },
  { name = "m36", addresses = ["10.4.25.36", "2001:db8:4:25::36"] },
  { name = "m37", addresses = ["10.4.25.37", "2001:db8:4:25::37"] },
  { name = "m38", addresses = ["10.4.25.38", "2001:db8:4:25::38"] },
  { name = "m39", addresses = ["10.4.25.39", "2001:db8:4:25::39"] },
  { name = "m40", addresses = ["10.4.25.40", "2001:db8:4:25::40"] },
]
fallback = ["cambridge"]
clients = ["2001:db8:4::/48"]
"#;

/// The static part of the zone: SOA, NS with in-zone targets (A and AAAA), an MX to an in-zone
/// host, TXT (one RRset larger than a plain UDP answer), and types hickory encodes.
pub const ZONE: &str = r#"$ORIGIN smarthost.internal.
$TTL 300
@       IN SOA  ns1.smarthost.internal. hostmaster.smarthost.internal. (
                7 3600 600 86400 30 )
@       IN NS   ns1.smarthost.internal.
@       IN NS   NS2
@       IN TXT  "v=spf1 -all"
ns1     IN A    192.0.2.1
ns1     IN AAAA 2001:db8::1
ns2     IN A    192.0.2.2
mailer  IN MX   10 relay-a
mailer  IN MX   20 ns1.smarthost.internal.
relay-a IN A    192.0.2.25
relay-a IN AAAA 2001:db8::25
_smtp._tcp IN SRV 10 5 25 relay-a.smarthost.internal.
@       IN CAA  0 issue "ca.example.net"
deep.a.b IN TXT "empty non-terminals above"
1.2.0.192.in-addr IN PTR ns1
bigtxt  IN TXT  "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789" "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"
bigtxt  IN TXT  "1123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789" "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"
bigtxt  IN TXT  "2123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789" "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"
bigtxt  IN TXT  "3123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789" "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"
bigtxt  IN TXT  "4123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789" "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"
bigtxt  IN TXT  "5123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789" "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"
bigtxt  IN TXT  "6123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789" "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"
"#;

/// The server cookie secret of the `request` targets (RFC 9018's example secret), and their
/// clock: `gen_corpus.py` makes seeds with server cookies that are valid under both.
pub const COOKIE_SECRET: [u8; 16] = [
    0xe5, 0xe9, 0x73, 0xe5, 0xa6, 0xb2, 0xa4, 0x3f, 0x48, 0xe7, 0xdc, 0x84, 0x9e, 0x37, 0xbf, 0xcf,
];
/// Seconds since the epoch as the `request` targets' server sees them.
pub const COOKIE_NOW: u32 = 1_700_000_000;

/// What the `request` targets answer from, built once.
pub struct Fixture {
    pub snapshot: Snapshot,
    /// `server.edns_udp_payload` of [`CONFIG`].
    pub edns_payload: u16,
    /// Cookies made with [`COOKIE_SECRET`] at [`COOKIE_NOW`], so that an input's answer never
    /// depends on when it runs.
    pub cookies: Cookies,
}

/// The snapshot of [`CONFIG`] and [`ZONE`], loaded from files by `smarthostd::loaded::load` and
/// built by `smarthostd::answer::build` with every host up (the largest answers), signed with a
/// key made for it (`[dnssec]`): queries with DO get the signed answers and NXDOMAIN proofs.
pub fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = scratch_dir();
        let now = 1_800_000_000;
        let config = format!("{CONFIG}\n[dnssec]\nkey_dir = \"keys\"\n");
        std::fs::write(dir.join("smarthost.toml"), config).expect("write config");
        std::fs::write(dir.join("smarthost.internal.zone"), ZONE).expect("write zone");
        let origin = smarthostd::wire::fqdn("smarthost.internal").expect("a name");
        smarthostd::dnssec::keygen::generate(
            &dir.join("keys"),
            &origin,
            smarthostd::config::KeyAlgorithm::Ed25519,
            now,
        )
        .expect("a key");
        let loaded = smarthostd::loaded::load(&dir.join("smarthost.toml"))
            .unwrap_or_else(|e| panic!("the fuzz config does not load: {e}"));
        let _ = std::fs::remove_dir_all(&dir);
        let health = Arc::new(smarthostd::answer::HealthView::all_up(&loaded.topology));
        let keys = loaded.keys.as_deref().expect("signed");
        let mut cache = smarthostd::dnssec::SignatureCache::default();
        let signing = smarthostd::answer::Signing {
            keys,
            now: now + 60,
            cache: &mut cache,
        };
        let snapshot = smarthostd::answer::build(
            loaded.topology.clone(),
            &loaded.zone,
            health,
            &smarthostd::answer::Demotions::none(),
            1,
            1,
            Some(signing),
        )
        .unwrap_or_else(|e| panic!("the fuzz config does not build: {e}"));
        Fixture {
            snapshot,
            edns_payload: loaded.config.server.edns_udp_payload,
            cookies: Cookies::with_clock(&[COOKIE_SECRET], || COOKIE_NOW)
                .expect("cookies from a fixed secret"),
        }
    })
}

fn scratch_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("smarthostd-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

/// Client addresses, indexed by bits 1..=4 of the first input byte: inside and outside every
/// site's client networks, trusted resolvers (whose ECS option is believed), IPv4-mapped IPv6.
pub const SOURCES: [IpAddr; 16] = [
    IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3)),   // oxford client
    IpAddr::V4(Ipv4Addr::new(10, 2, 7, 9)),   // cambridge client, in its /24
    IpAddr::V4(Ipv4Addr::new(10, 3, 0, 1)),   // london client
    IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7)), // no site: default view
    IpAddr::V4(Ipv4Addr::new(192, 0, 2, 53)), // trusted resolver
    IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 5)), // oxford client
    IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 4, 0, 0, 0, 0, 0xabcd)), // big client
    IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0x53, 0, 0, 0, 0, 1)), // trusted resolver
    IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0xffff, 0, 0, 0, 0, 1)), // no site
    IpAddr::V6(Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0xc000, 0x0235)), // ::ffff:192.0.2.53, trusted
    IpAddr::V6(Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0x0a01, 0x0203)), // ::ffff:10.1.2.3, oxford
    IpAddr::V4(Ipv4Addr::LOCALHOST),
    IpAddr::V6(Ipv6Addr::LOCALHOST),
    IpAddr::V4(Ipv4Addr::new(10, 2, 200, 1)), // cambridge client, in its /16 only
    IpAddr::V4(Ipv4Addr::new(192, 0, 2, 54)), // next to the trusted resolver: not trusted
    IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0x53, 0, 1, 0, 0, 1)), // outside the trusted /64
];

/// Transport and client taken from the first input byte: bit 0 is TCP, bits 1..=4 the source.
pub fn transport(selector: u8) -> (bool, SocketAddr) {
    let tcp = selector & 1 != 0;
    let ip = SOURCES[usize::from((selector >> 1) & 0x0F)];
    (tcp, SocketAddr::new(ip, 40053))
}

/// Upper bound on a UDP response to `raw`: max(512, min(client payload, ours)), the client's
/// payload read by hickory-proto when it can parse the query, else by the fast parser.
pub fn udp_limit(raw: &[u8], ours: u16) -> usize {
    let client = match Message::from_vec(raw) {
        Ok(m) => m.edns.as_ref().map(|e| e.max_payload()),
        Err(_) => match parse_fast(raw) {
            Fast::Query(q) => q.edns.map(|e| e.payload),
            _ => None,
        },
    };
    match client {
        Some(p) => usize::from(p.min(ours)).max(512),
        None => 512,
    }
}

/// Lower-case hex, for reproducers in panic messages.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SMARTHOSTD_FUZZ_STRICT=1: forgive none of the known, reported differences (see the targets).
pub fn strict() -> bool {
    static STRICT: OnceLock<bool> = OnceLock::new();
    *STRICT.get_or_init(|| std::env::var_os("SMARTHOSTD_FUZZ_STRICT").is_some_and(|v| v == "1"))
}
