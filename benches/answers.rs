//! The answer path and the snapshot build, without sockets.
//!
//! `cargo bench --bench answers`. Targets: a snapshot rebuild for 10,000 hosts in 1,000 sites
//! in at most 10 ms; the answer path well under a microsecond per query; a signed rebuild of
//! 1,000 relays in 100 sites with 3 view names well under a second with no cached signature
//! (cold), and a fraction of that after one relay's change (warm).

use std::hint::black_box;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::rdata::opt::EdnsOption;
use hickory_proto::rr::{Name, RecordType};
use smarthostd::answer::{self, Snapshot};
use smarthostd::answer::{HealthView, State};
use smarthostd::config;
use smarthostd::dns::cookie::{Cookie, Cookies, Presented};
use smarthostd::dnssec;
use smarthostd::topology::Topology;
use smarthostd::zone::StaticZone;

const ZONE: &str = "$ORIGIN smarthost.internal.\n$TTL 30\n\
@ IN SOA ns1 hostmaster ( 1 3600 600 86400 30 )\n@ IN NS ns1\nns1 IN A 127.0.0.1\n";

/// `sites` sites of `per_site` hosts, each falling back to the next two sites.
fn config_text(sites: usize, per_site: usize) -> String {
    let mut text = String::from("[zone]\norigin = \"smarthost.internal\"\nfile = \"z.zone\"\n");
    for s in 0..sites {
        text.push_str(&format!("[sites.site{s}]\nhosts = ["));
        for h in 0..per_site {
            let n = s * per_site + h;
            text.push_str(&format!(
                "{{ name = \"mail{h}\", addresses = [\"10.{}.{}.{}\"] }},",
                n / 65536,
                (n / 256) % 256,
                n % 256
            ));
        }
        text.push_str("]\n");
        if sites > 2 {
            text.push_str(&format!(
                "fallback = [\"site{}\", \"site{}\"]\n",
                (s + 1) % sites,
                (s + 2) % sites
            ));
        }
    }
    text
}

fn inputs(sites: usize, per_site: usize) -> (Arc<Topology>, StaticZone) {
    let config = config::parse(Path::new("bench.toml"), &config_text(sites, per_site)).unwrap();
    let topology = Arc::new(Topology::from_config(&config).unwrap());
    let zone = StaticZone::parse(Path::new("z.zone"), ZONE.to_string(), &topology.origin).unwrap();
    (topology, zone)
}

fn snapshot(sites: usize, per_site: usize) -> Snapshot {
    let (topology, zone) = inputs(sites, per_site);
    let health = Arc::new(HealthView::unknown(&topology));
    answer::build(topology, &zone, health, &Default::default(), 1, 1, None).unwrap()
}

/// The zone's keys: one new key, in a folder of its own under the system's temporary folder.
fn zone_keys(topology: &Topology, now: u64) -> dnssec::ZoneKeys {
    let dir = std::env::temp_dir().join(format!(
        "smarthostd-bench-keys-{}-{}",
        std::process::id(),
        topology.hosts.len()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dnssec::keygen::generate(
        &dir,
        &topology.origin,
        config::KeyAlgorithm::EcdsaP256Sha256,
        now - 60,
    )
    .unwrap();
    let keys = dnssec::KeySet::load(&dir, &topology.origin).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    dnssec::ZoneKeys {
        keys,
        lifetime: dnssec::Lifetime {
            validity: 14 * 86400,
            refresh: 7 * 86400,
        },
        dir,
    }
}

fn signed_snapshot(sites: usize, per_site: usize) -> Snapshot {
    let (topology, zone) = inputs(sites, per_site);
    let now = 1_800_000_000;
    let keys = zone_keys(&topology, now);
    let health = Arc::new(HealthView::all_up(&topology));
    let signing = answer::Signing {
        keys: &keys,
        now,
        cache: &mut dnssec::SignatureCache::default(),
    };
    answer::build(
        topology,
        &zone,
        health,
        &Default::default(),
        1,
        1,
        Some(signing),
    )
    .unwrap()
}

fn query(name: &str, rtype: RecordType, edns: bool) -> Vec<u8> {
    query_do(name, rtype, edns, false)
}

fn query_do(name: &str, rtype: RecordType, edns: bool, dnssec_ok: bool) -> Vec<u8> {
    let mut m = Message::new(0x1234, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), rtype));
    if edns {
        let mut e = Edns::new();
        e.set_dnssec_ok(dnssec_ok);
        m.set_edns(e);
    }
    m.to_vec().unwrap()
}

/// `query` with a COOKIE option of `cookie` (8 bytes, or 24 with a server cookie).
fn with_cookie(name: &str, rtype: RecordType, cookie: &[u8]) -> Vec<u8> {
    let mut m = Message::from_vec(&query(name, rtype, true)).unwrap();
    let mut e = Edns::new();
    e.options_mut()
        .insert(EdnsOption::Unknown(10, cookie.to_vec()));
    m.set_edns(e);
    m.to_vec().unwrap()
}

fn answer_path(c: &mut Criterion) {
    let snap = snapshot(3, 2);
    let src: SocketAddr = "127.0.0.1:5353".parse().unwrap();
    let mut out = Vec::with_capacity(4096);
    let cookies = Cookies::new(&[[0x5a; 16]]).unwrap();
    let first = Cookie {
        client: [7; 8],
        server: Presented::None,
    };
    let ours = cookies.reply(&first, src.ip()).data;
    let mut group = c.benchmark_group("answer");
    for (label, name, rtype, edns) in [
        ("site MX", "site0.smarthost.internal", RecordType::MX, true),
        (
            "host A",
            "mail0.site0.smarthost.internal",
            RecordType::A,
            true,
        ),
        ("NXDOMAIN", "nope.smarthost.internal", RecordType::A, false),
        ("REFUSED", "example.com", RecordType::A, false),
    ] {
        let q = query(name, rtype, edns);
        group.bench_function(label, |b| {
            b.iter(|| {
                smarthostd::dns::answer_with(
                    &snap,
                    1232,
                    &cookies,
                    black_box(&q),
                    src,
                    false,
                    &mut out,
                )
            })
        });
    }
    // A client cookie gets a fresh server cookie; a valid one is checked (and kept).
    for (label, cookie) in [
        ("site MX, client cookie", &ours[..8]),
        ("site MX, valid server cookie", &ours[..]),
    ] {
        let q = with_cookie("site0.smarthost.internal", RecordType::MX, cookie);
        group.bench_function(label, |b| {
            b.iter(|| {
                smarthostd::dns::answer_with(
                    &snap,
                    1232,
                    &cookies,
                    black_box(&q),
                    src,
                    false,
                    &mut out,
                )
            })
        });
    }
    // Signed answers, to queries with DO: the same copy, of a larger body; an NXDOMAIN's two
    // NSEC proofs are found by binary search per query.
    let signed = signed_snapshot(3, 2);
    for (label, name, rtype) in [
        ("site MX, DO", "site0.smarthost.internal", RecordType::MX),
        (
            "host A, DO",
            "mail0.site0.smarthost.internal",
            RecordType::A,
        ),
        ("NXDOMAIN, DO", "nope.smarthost.internal", RecordType::A),
    ] {
        let q = query_do(name, rtype, true, true);
        group.bench_function(label, |b| {
            b.iter(|| {
                smarthostd::dns::answer_with(
                    &signed,
                    1232,
                    &cookies,
                    black_box(&q),
                    src,
                    false,
                    &mut out,
                )
            })
        });
    }
    // The full parser, for queries the fast one passes on (here: forced by a compressed name).
    let mut compressed = query("site0.smarthost.internal", RecordType::MX, false);
    compressed[5] = 2;
    compressed.extend_from_slice(&[0xC0, 12, 0, 15, 0, 1]);
    group.bench_function("full parser (2 questions: FORMERR)", |b| {
        b.iter(|| {
            smarthostd::dns::answer_with(
                &snap,
                1232,
                &cookies,
                black_box(&compressed),
                src,
                false,
                &mut out,
            )
        })
    });
    group.finish();
}

fn build(c: &mut Criterion) {
    let mut group = c.benchmark_group("snapshot build");
    group.sample_size(20);
    for (sites, per_site) in [(3, 2), (100, 10), (1000, 10)] {
        let (topology, zone) = inputs(sites, per_site);
        let mut health = HealthView::unknown(&topology);
        // A realistic mix: some hosts down, some pending.
        for h in (0..topology.hosts.len()).step_by(7) {
            health.set_host(h, State::Down);
        }
        let health = Arc::new(health);
        let label = format!("{} hosts in {sites} sites", sites * per_site);
        group.bench_function(label, |b| {
            b.iter(|| {
                answer::build(
                    topology.clone(),
                    &zone,
                    health.clone(),
                    &Default::default(),
                    2,
                    2,
                    None,
                )
                .unwrap()
            })
        });
    }
    group.finish();
}

/// 100 sites of 10 relays, each site with client networks (views), and two `views.names`
/// besides the apex: three names answered per view.
fn views_config() -> String {
    let mut text = config_text(100, 10);
    text.push_str("[views]\nnames = [\"relay\", \"mail\"]\n");
    for s in 0..100 {
        text = text.replace(
            &format!("[sites.site{s}]\n"),
            &format!("[sites.site{s}]\nclients = [\"172.16.{s}.0/24\"]\n"),
        );
    }
    text
}

fn signed_build(c: &mut Criterion) {
    let config = config::parse(Path::new("bench.toml"), &views_config()).unwrap();
    let topology = Arc::new(Topology::from_config(&config).unwrap());
    let zone = StaticZone::parse(Path::new("z.zone"), ZONE.to_string(), &topology.origin).unwrap();
    let now = 1_800_000_000;
    let dir = std::env::temp_dir().join(format!("smarthostd-bench-keys-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dnssec::keygen::generate(
        &dir,
        &topology.origin,
        config::KeyAlgorithm::EcdsaP256Sha256,
        now - 60,
    )
    .unwrap();
    let keys = dnssec::ZoneKeys {
        keys: dnssec::KeySet::load(&dir, &topology.origin).unwrap(),
        lifetime: dnssec::Lifetime {
            validity: 14 * 86400,
            refresh: 7 * 86400,
        },
        dir: dir.clone(),
    };
    let all_up = Arc::new(HealthView::all_up(&topology));
    let build = |health: &Arc<HealthView>, cache: &mut dnssec::SignatureCache, serial: u32| {
        let signing = answer::Signing {
            keys: &keys,
            now,
            cache,
        };
        answer::build(
            topology.clone(),
            &zone,
            health.clone(),
            &Default::default(),
            serial,
            u64::from(serial),
            Some(signing),
        )
        .unwrap()
    };
    let mut group = c.benchmark_group("signed build, 1000 relays in 100 sites, 3 view names");
    group.sample_size(10);
    group.bench_function("cold (no cached signature)", |b| {
        b.iter(|| build(&all_up, &mut dnssec::SignatureCache::default(), 2))
    });
    let mut relay = 0;
    group.bench_function("warm (one relay changed)", |b| {
        b.iter_batched(
            || {
                // The generation before: every relay up, its signatures cached.
                let mut cache = dnssec::SignatureCache::default();
                build(&all_up, &mut cache, 2);
                relay = (relay + 7) % topology.hosts.len();
                let mut health = HealthView::all_up(&topology);
                health.set_host(relay, State::Down);
                (cache, Arc::new(health))
            },
            |(mut cache, health)| build(&health, &mut cache, 3),
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, answer_path, build, signed_build);
criterion_main!(benches);
