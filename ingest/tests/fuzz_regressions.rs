//! Inputs the fuzz targets (`fuzz/`, docs/RELIABILITY.md "Fuzzing") found failing, kept here
//! once fixed so the normal test suite guards them without cargo-fuzz.

use ingest::{decode, DecodeOptions, Reason, Receipt};

const REPLAY: DecodeOptions = DecodeOptions {
    receipt: Receipt::ReportedAt,
    default_source: None,
    max_future_skew_secs: 600,
};

fn acceptance(occurred_at: &str) -> String {
    format!(
        r#"{{"event_id":"e1","kind":"case.accepted","occurred_at":"{occurred_at}","center_id":"PJ","region":"430626","case_id":"C1","item_code":"P5","channel":"hall"}}"#
    )
}

/// Target `decode`: `2000-01-01T00:00:00+23:59` was accepted although it is 1999-12-31 in
/// China: the engine clamped its date to 2000-01-01, and the event, written back in `+08:00`,
/// was refused. The supported years are now those of the local date.
#[test]
fn an_offset_that_moves_the_local_date_out_of_2000_2099_is_a_bad_timestamp() {
    for outside in ["2000-01-01T00:00:00+23:59", "2099-12-31T23:59:59-23:59"] {
        let text = acceptance(outside);
        let e = decode(text.as_bytes(), &REPLAY).expect_err(outside);
        assert_eq!(
            (e.code, e.field),
            (Reason::BadTimestamp, Some("occurred_at"))
        );
        assert!(e.message.contains("2000-2099"), "{}", e.message);
    }
    // The first and last local seconds, written with offsets that cross a year in UTC.
    for inside in ["1999-12-31T16:00:00Z", "2100-01-01T00:59:59+09:00"] {
        let text = acceptance(inside);
        let ev = decode(text.as_bytes(), &REPLAY).expect(inside);
        let back = acceptance(&ev.occurred_at.to_string());
        let again = decode(back.as_bytes(), &REPLAY).expect(&back);
        assert_eq!(again.occurred_at, ev.occurred_at);
    }
}
