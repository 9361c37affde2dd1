//! The drained-hosts file: written, read back, damaged lines named and kept lines kept.

use super::*;

const DAY: Duration = Duration::from_secs(24 * 3600);

fn at(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
}

fn stamp(secs: u64, counter: u32, origin: &str) -> Stamp {
    Stamp {
        millis: secs * 1000,
        counter,
        origin: origin.into(),
    }
}

fn drained(until: Option<u64>, s: Stamp) -> Entry {
    Entry {
        drain: Some(Drain {
            until: until.map(at),
        }),
        stamp: s,
    }
}

fn undrained(s: Stamp) -> Entry {
    Entry {
        drain: None,
        stamp: s,
    }
}

const NOW: u64 = 1_800_000_000;

#[test]
fn registers_round_trip_through_the_text_with_end_times_stamps_and_undrains() {
    let mut d = Drains::default();
    let now = at(NOW);
    assert!(d.merge("Oxford/Mail1", drained(None, stamp(NOW, 0, "a:1")), now));
    assert!(d.merge(
        "cambridge/mail2",
        drained(Some(NOW + 60), stamp(NOW, 1, "a:1")),
        now
    ));
    assert!(d.merge("london/mail1", undrained(stamp(NOW, 2, "[::1]:8053")), now));
    let (again, dropped) = Drains::parse(d.text().as_bytes());
    assert!(dropped.is_empty(), "{dropped:?}");
    assert_eq!(again, d);
    assert_eq!(
        again.active("OXFORD/MAIL1", now),
        Some(Drain { until: None })
    );
    assert_eq!(again.active("london/mail1", now), None);
    assert_eq!(again.next_end(), Some(at(NOW + 60)));
    assert!(
        d.text().contains("london/mail1 undrained stamp="),
        "{}",
        d.text()
    );
}

#[test]
fn the_format_before_stamps_reads_as_stamp_zero_and_any_stamped_change_wins() {
    let (mut d, dropped) =
        Drains::parse(b"# old\noxford/mail1\ncambridge/mail1 until=2030-01-01T00:00:00Z\n");
    assert!(dropped.is_empty(), "{dropped:?}");
    assert_eq!(d.entry("oxford/mail1").unwrap().stamp, Stamp::ZERO);
    assert!(d.merge("oxford/mail1", undrained(stamp(1, 0, "b:1")), at(2)));
    assert_eq!(d.active("oxford/mail1", at(2)), None);
    assert!(
        d.text()
            .contains("cambridge/mail1 until=2030-01-01T00:00:00Z\n")
    );
}

#[test]
fn the_greater_stamp_wins_whatever_the_order_merges_come_in() {
    let now = at(NOW);
    let changes = [
        drained(None, stamp(NOW, 0, "a:1")),
        undrained(stamp(NOW, 1, "b:1")),
        drained(Some(NOW + 600), stamp(NOW - 5, 9, "c:1")),
    ];
    let mut seen = Vec::new();
    for order in [[0, 1, 2], [2, 1, 0], [1, 0, 2], [2, 0, 1]] {
        let mut d = Drains::default();
        for i in order {
            d.merge("oxford/mail1", changes[i].clone(), now);
            // Idempotent: the same change again changes nothing.
            assert!(!d.merge("oxford/mail1", changes[i].clone(), now));
        }
        seen.push(d);
    }
    assert!(seen.windows(2).all(|w| w[0] == w[1]), "{seen:?}");
    assert_eq!(seen[0].entry("oxford/mail1"), Some(&changes[1]));
}

#[test]
fn an_ended_window_becomes_an_undrain_with_its_own_stamp_which_wins_a_tie() {
    let s = stamp(NOW, 0, "a:1");
    let mut ended = Drains::default();
    ended.merge("a/b", drained(Some(NOW + 10), s.clone()), at(NOW));
    ended.merge("a/c", drained(None, s.clone()), at(NOW));
    assert_eq!(ended.expire(at(NOW + 9)), Vec::<String>::new());
    // Its time has come and it is not expired yet: still due, so the task expires it.
    assert_eq!(ended.next_end(), Some(at(NOW + 10)));
    assert_eq!(ended.expire(at(NOW + 10)), vec!["a/b".to_string()]);
    assert_eq!(ended.entry("a/b"), Some(&undrained(s.clone())));
    assert_eq!(ended.expire(at(NOW + 11)), Vec::<String>::new());
    assert_eq!(ended.next_end(), None);
    // An instance whose clock is behind still holds the drain: the undrain wins the tie,
    // and the drain does not come back the other way.
    let mut behind = Drains::default();
    behind.merge("a/b", drained(Some(NOW + 10), s.clone()), at(NOW));
    assert!(behind.merge("a/b", undrained(s.clone()), at(NOW + 9)));
    assert!(!ended.merge("a/b", drained(Some(NOW + 10), s), at(NOW + 9)));
}

#[test]
fn old_undrains_are_forgotten_and_not_taken_again_but_old_drains_stay() {
    let now = at(NOW);
    let old = stamp(NOW - 31 * 24 * 3600, 0, "a:1");
    let mut d = Drains::default();
    d.merge("a/old", undrained(old.clone()), now - 2 * DAY);
    d.merge("a/kept", drained(None, old.clone()), now - 2 * DAY);
    d.merge("a/new", undrained(stamp(NOW - 3600, 0, "a:1")), now);
    assert_eq!(d.purge(now), 1);
    let keys: Vec<&str> = d.iter().map(|(k, _)| k).collect();
    assert_eq!(keys, ["a/kept", "a/new"]);
    assert!(!d.merge("a/old", undrained(old), now));
}

#[test]
fn a_damaged_file_keeps_its_valid_lines_and_names_the_rest() {
    let bytes = b"oxford/mail1\n\xff\xfe/x\nnot a key\ncambridge/mail1 until=yesterday\n\
        london/mail1\nlondon/mail2 stamp=x\nlondon/mail3 undrained until=2030-01-01T00:00:00Z\n";
    let (d, dropped) = Drains::parse(bytes);
    let keys: Vec<&str> = d.iter().map(|(k, _)| k).collect();
    assert_eq!(keys, ["london/mail1", "oxford/mail1"]);
    assert_eq!(
        dropped,
        [
            "line 2 (4 bytes): not UTF-8 text",
            "line 3 (9 bytes): not site/host",
            "line 4 (31 bytes): bad time",
            "line 6 (20 bytes): bad stamp",
            "line 7 (49 bytes): an undrain has no end time",
        ]
    );
}

#[test]
fn a_missing_file_is_no_drains_and_a_folder_in_its_place_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE_NAME);
    assert_eq!(Drains::read(&path).unwrap().0, Drains::default());
    std::fs::create_dir(&path).unwrap();
    assert!(Drains::read(&path).is_err());
}
