//! The answer path and the snapshot build, without sockets.
//!
//! `cargo bench --bench answers`. Targets: a snapshot rebuild for 10,000 hosts in 1,000 sites
//! in at most 10 ms; the answer path well under a microsecond per query.

use std::hint::black_box;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};
use smarthostd::answer::{self, Snapshot};
use smarthostd::config;
use smarthostd::health::{HealthView, State};
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

fn query(name: &str, rtype: RecordType, edns: bool) -> Vec<u8> {
    let mut m = Message::new(0x1234, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), rtype));
    if edns {
        m.set_edns(Edns::new());
    }
    m.to_vec().unwrap()
}

fn answer_path(c: &mut Criterion) {
    let snap = snapshot(3, 2);
    let src: SocketAddr = "127.0.0.1:5353".parse().unwrap();
    let mut out = Vec::with_capacity(4096);
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
                smarthostd::dns::answer_with(&snap, 1232, black_box(&q), src, false, &mut out)
            })
        });
    }
    // The full parser, for queries the fast one passes on (here: forced by a compressed name).
    let mut compressed = query("site0.smarthost.internal", RecordType::MX, false);
    compressed[5] = 2;
    compressed.extend_from_slice(&[0xC0, 12, 0, 15, 0, 1]);
    group.bench_function("full parser (2 questions: FORMERR)", |b| {
        b.iter(|| {
            smarthostd::dns::answer_with(&snap, 1232, black_box(&compressed), src, false, &mut out)
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

criterion_group!(benches, answer_path, build);
criterion_main!(benches);
