//! What a peer of a cluster sends, through the checks made where it enters
//! (`cluster::wire`): a view (JSON) and a drains table (the drained-hosts text), and a stamp.
//!
//! Errors are fine; panics and hangs are not. A view taken has no control character left in
//! its free text, nor has the error of one refused. A drains table taken reads back from its own text as the same registers,
//! and merging its registers is idempotent and does not depend on their order.

#![no_main]

use std::time::SystemTime;

use libfuzzer_sys::fuzz_target;
use smarthostd::cluster::wire::{View, parse_drains};
use smarthostd::state::drains::Drains;
use smarthostd::state::hlc::Stamp;

fuzz_target!(|data: &[u8]| {
    match View::parse(data) {
        Ok(view) => {
            let texts = (view.relays.iter())
                .filter_map(|r| r.reason.as_deref())
                .chain(
                    view.sites
                        .iter()
                        .flat_map(|s| s.answer.iter().map(String::as_str)),
                );
            for text in texts {
                assert!(!text.chars().any(char::is_control), "{text:?}");
            }
        }
        // A refusal may quote the peer's text: never raw.
        Err(e) => assert!(!e.chars().any(char::is_control), "{e:?}"),
    }
    match parse_drains(data) {
        Err(e) => assert!(!e.chars().any(char::is_control), "{e:?}"),
        Ok(drains) => {
            let back = parse_drains(drains.text().as_bytes()).expect("its own text reads back");
            assert_eq!(back, drains);
            let now = SystemTime::now();
            let entries: Vec<_> = drains
                .iter()
                .map(|(k, e)| (k.to_string(), e.clone()))
                .collect();
            let (mut forward, mut backward) = (Drains::default(), Drains::default());
            for (k, e) in &entries {
                forward.merge(k, e.clone(), now);
            }
            for (k, e) in entries.iter().rev() {
                backward.merge(k, e.clone(), now);
            }
            assert_eq!(forward, backward);
            for (k, e) in &entries {
                assert!(
                    !forward.merge(k, e.clone(), now),
                    "merging {k} twice changed it"
                );
            }
        }
    }
    if let Ok(text) = std::str::from_utf8(data)
        && let Some(stamp) = Stamp::parse(text)
    {
        assert_eq!(Stamp::parse(&stamp.to_string()), Some(stamp));
    }
});
