//! The event decoder (`ingest::decode`), which every Kafka message, NDJSON line and HTTP line
//! goes through. Any bytes: no panic, and
//! - an error is one of the stable reason codes, with a bounded message (`check_error`);
//! - `decode` on UTF-8 bytes equals `decode_str`, and decoding is deterministic;
//! - an accepted event satisfies SPEC §3 (non-blank ids ≤ 128 bytes in the id character set,
//!   a valid region, a `case_id` on `case.*`, `occurred_at` not beyond receipt + skew in live
//!   ingest);
//! - an accepted event, written back as canonical JSON, decodes to the same event.
#![no_main]

use ingest::decode::{check_id, decode, decode_str, DecodeOptions, Receipt, MAX_ID_LEN};
use jiancha_fuzz::{check_error, encode};
use libfuzzer_sys::fuzz_target;
use rules::event::is_valid_region;
use rules::time::Instant;
use rules::Event;

/// As in a file or replay: the event's own `reported_at` is its receipt.
const REPLAY: DecodeOptions = DecodeOptions {
    receipt: Receipt::ReportedAt,
    default_source: None,
    max_future_skew_secs: 600,
};

/// As in live ingest, received at 2026-10-01T12:00:00+08:00.
const LIVE: DecodeOptions = DecodeOptions {
    receipt: Receipt::At(Instant(1_790_827_200)),
    default_source: None,
    max_future_skew_secs: 600,
};

fn check_event(ev: &Event<'_>, opts: &DecodeOptions) {
    for id in [&ev.event_id, &ev.center_id] {
        assert!(!id.trim().is_empty() && id.len() <= MAX_ID_LEN, "{id:?}");
    }
    let optional = [
        &ev.department,
        &ev.window_id,
        &ev.staff_id,
        &ev.case_id,
        &ev.item_code,
    ];
    for id in [&ev.event_id, &ev.center_id]
        .into_iter()
        .chain(optional.into_iter().flatten())
    {
        assert!(
            check_id("id", id).is_ok(),
            "an accepted id outside the set: {id:?}"
        );
    }
    assert!(is_valid_region(&ev.region), "{:?}", ev.region);
    if ev.body.kind().is_case() {
        assert!(ev.case_id.is_some(), "case event without case_id");
    }
    let receipt = match opts.receipt {
        Receipt::At(t) => Some(t),
        Receipt::ReportedAt => ev.reported_at,
    };
    if let Some(t) = receipt {
        assert!(ev.occurred_at.0 <= t.0 + opts.max_future_skew_secs);
    }
    let expected_received = match opts.receipt {
        Receipt::At(t) => Some(t),
        Receipt::ReportedAt => None,
    };
    assert_eq!(ev.received_at, expected_received);
}

fuzz_target!(|data: &[u8]| {
    for opts in [&REPLAY, &LIVE] {
        let result = decode(data, opts);
        assert_eq!(result, decode(data, opts), "decoding is deterministic");
        if let Ok(text) = std::str::from_utf8(data) {
            assert_eq!(
                result,
                decode_str(text, opts),
                "decode and decode_str agree"
            );
        }
        match result {
            Err(e) => check_error(&e),
            Ok(ev) => {
                check_event(&ev, opts);
                let again = encode(&ev);
                match decode_str(&again, opts) {
                    Ok(back) => assert_eq!(back, ev, "re-encoded as {again}"),
                    Err(e) => panic!("re-encoded event refused ({e}): {again}"),
                }
            }
        }
    }
});
