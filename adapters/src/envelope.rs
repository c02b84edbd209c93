//! Change streams of the formats' tables (SPEC §9 Transports (c)): a Kafka message written by
//! Kafka Connect's JDBC source or by Debezium, with or without the JSON converter's schema
//! envelope, as a row for [`Adapter`] — and a deletion as the withdrawal of what the row gave.
//!
//! ```text
//! {"schema":…,"payload":…} ─┐  JDBC source: payload = the row            ─▶ Upsert(row)
//!                            │    (`__deleted: "true"` / `__op: "d"`: Debezium flattened ─▶ Delete)
//! {…} (schemas.enable=false)┘  Debezium: {before, after, source, op}
//!                                c / r / u ─▶ Upsert(after)   d ─▶ Delete(before)
//!                                t, m, tombstone (no value) ─▶ nothing
//! Upsert(row) ─ Adapter ─▶ events (a higher data version supersedes: the correction)
//! Delete(row) ─ Adapter ─▶ events ─ Event::withdrawal ─▶ event.withdrawn of each
//! ```
//!
//! Why the choices:
//! - **Values as the adapter reads them.** Connect encodes times as numbers and decimals as
//!   bytes. With the schema envelope each field names its logical type, so a `Timestamp`
//!   (milliseconds), `MicroTimestamp`, `NanoTimestamp`, `Date` (days), `ZonedTimestamp` or
//!   `Decimal` (base64, scale in the schema) becomes the text a database export would hold.
//!   Epoch values are the database's wall-clock time read as UTC — Debezium's convention for
//!   columns without a zone, and the JDBC source's with its default `db.timezone` — so
//!   `1762074000000` is `2026-11-02 09:00:00` China time as the 前置库 wrote it.
//! - **Without the envelope** nothing says which number is a time. The adapter does: a whole
//!   number it refuses as `bad_timestamp` is read by its magnitude (days, seconds, ms, µs, ns
//!   since the epoch: unambiguous for any date after 1973) and the row mapped again. Decimals
//!   need the connector to send them as numbers or text (`decimal.handling.mode=string`,
//!   `numeric.mapping=best_fit`); base64 bytes are a `bad_value` dead letter.
//! - **Corrections come from versions.** An update maps its new row; the row's data version
//!   (`DATAVER`, `VERSION`) makes it a correction superseding the version below, as the formats
//!   define a correction (SPEC §9). An update that keeps the version keeps the event id and
//!   is dropped as a duplicate, as a re-read row is.

use serde_json::{Map, Value};

use crate::{dead, Adapter, Dead, Event};

/// How a topic's messages are wrapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Envelope {
    /// Kafka Connect JDBC source: the value is the row.
    Jdbc,
    /// Debezium change events: `before`, `after`, `source`, `op`.
    Debezium,
}

impl Envelope {
    /// Parse a configuration name (`jdbc`, `debezium`).
    pub fn parse(s: &str) -> Option<Envelope> {
        match s {
            "jdbc" => Some(Envelope::Jdbc),
            "debezium" => Some(Envelope::Debezium),
            _ => None,
        }
    }
}

/// What one message asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// A row created, read in a snapshot, or updated: its events.
    Upsert(Map<String, Value>),
    /// A row deleted: the withdrawal of its events.
    Delete(Map<String, Value>),
    /// Nothing (a tombstone, a truncation, a logical message).
    Skip,
}

impl Event {
    /// The `event.withdrawn` of this event (SPEC §3): id `<event_id>:withdrawn`.
    pub fn withdrawal(&self) -> Event {
        Event {
            event_id: format!("{}:withdrawn", self.event_id),
            kind: "event.withdrawn",
            occurred_at: self.occurred_at.clone(),
            reported_at: self.reported_at.clone(),
            center_id: self.center_id.clone(),
            region: self.region.clone(),
            case_id: self.case_id.clone(),
            source: self.source.clone(),
            withdraws: Some(self.event_id.clone()),
            ..Event::default()
        }
    }
}

fn bad(message: impl Into<String>) -> Dead {
    dead("not_json", None, message)
}

/// Read one message value. `table`: the configured table (a JDBC topic carries one); a
/// Debezium message names its own in `source.table`, which the configured one overrides.
pub fn unwrap(envelope: Envelope, value: &[u8], table: Option<&str>) -> Result<Change, Dead> {
    if value.is_empty() {
        return Ok(Change::Skip);
    }
    let mut v: Value = serde_json::from_slice(value)
        .map_err(|e| bad(format!("the message value is not JSON: {e}")))?;
    if v.is_null() {
        return Ok(Change::Skip);
    }
    // The JSON converter's envelope: {"schema": …, "payload": …}.
    let schema = match v.as_object_mut() {
        Some(o) if o.len() == 2 && o.contains_key("schema") && o.contains_key("payload") => {
            let schema = o.remove("schema").unwrap_or(Value::Null);
            v = o.remove("payload").unwrap_or(Value::Null);
            Some(schema)
        }
        _ => None,
    };
    let Value::Object(mut payload) = v else {
        return Err(bad("the message value is not a JSON object"));
    };
    let (change, fields) = match envelope {
        // Debezium flattened by its ExtractNewRecordState transform (`delete.handling.mode =
        // rewrite`, `add.fields = op`) looks like a JDBC row that says it was deleted.
        Envelope::Jdbc
            if payload.get("__deleted").and_then(Value::as_str) == Some("true")
                || payload.get("__op").and_then(Value::as_str) == Some("d") =>
        {
            (Change::Delete(Map::new()), schema.as_ref())
        }
        Envelope::Jdbc => (Change::Upsert(Map::new()), schema.as_ref()),
        Envelope::Debezium => {
            let op = payload
                .get("op")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let side = match op.as_str() {
                "c" | "r" | "u" => "after",
                "d" => "before",
                "t" | "m" => return Ok(Change::Skip),
                other => {
                    return Err(dead(
                        "bad_value",
                        Some("op"),
                        format!(
                            "a Debezium change event's op is c, r, u, d, t or m, found {other:?} \
                             (is this topic's envelope \"jdbc\"?)"
                        ),
                    ))
                }
            };
            let source_table = payload
                .get("source")
                .and_then(|s| s.get("table"))
                .and_then(Value::as_str)
                .map(str::to_string);
            let Some(Value::Object(row)) = payload.remove(side) else {
                return Err(dead(
                    "missing_column",
                    Some(side),
                    format!(
                        "op {op:?} needs the row in {side:?} (a delete needs the table's full \
                         before image: REPLICA IDENTITY FULL, supplemental logging)"
                    ),
                ));
            };
            payload = row;
            if table.is_none() {
                if let Some(t) = source_table {
                    payload.insert("_table".into(), t.into());
                }
            }
            let fields = schema.as_ref().and_then(|s| struct_field(s, side));
            let change = if side == "before" {
                Change::Delete(Map::new())
            } else {
                Change::Upsert(Map::new())
            };
            (change, fields)
        }
    };
    if let Some(fields) = fields
        .and_then(|f| f.get("fields"))
        .and_then(Value::as_array)
    {
        for f in fields {
            let Some(name) = f.get("field").and_then(Value::as_str) else {
                continue;
            };
            if let Some(value) = payload.get_mut(name) {
                *value = logical(f, value.take())?;
            }
        }
    }
    if let Some(t) = table {
        payload.insert("_table".into(), t.into());
    }
    Ok(match change {
        Change::Delete(_) => Change::Delete(payload),
        _ => Change::Upsert(payload),
    })
}

/// The schema of field `name` of a struct schema.
fn struct_field<'a>(schema: &'a Value, name: &str) -> Option<&'a Value> {
    schema
        .get("fields")?
        .as_array()?
        .iter()
        .find(|f| f.get("field").and_then(Value::as_str) == Some(name))
}

/// A value of a Connect logical type as the text a database export would hold.
fn logical(field: &Value, value: Value) -> Result<Value, Dead> {
    let column = field.get("field").and_then(Value::as_str).unwrap_or("");
    let Some(name) = field.get("name").and_then(Value::as_str) else {
        return Ok(value);
    };
    if value.is_null() {
        return Ok(value);
    }
    let bad_value = |what: &str| {
        dead(
            "bad_value",
            Some(column),
            format!("{column} = {value} is not a {what} ({name})"),
        )
    };
    let per_second: Option<i64> = match name {
        "org.apache.kafka.connect.data.Timestamp" | "io.debezium.time.Timestamp" => Some(1_000),
        "io.debezium.time.MicroTimestamp" => Some(1_000_000),
        "io.debezium.time.NanoTimestamp" => Some(1_000_000_000),
        "org.apache.kafka.connect.data.Date" | "io.debezium.time.Date" => Some(0),
        _ => None,
    };
    if let Some(per_second) = per_second {
        let n = value.as_i64().ok_or_else(|| bad_value("whole number"))?;
        let secs = if per_second == 0 {
            n * 86_400
        } else {
            n.div_euclid(per_second)
        };
        return Ok(wall_clock(secs).into());
    }
    match name {
        "io.debezium.time.ZonedTimestamp" => {
            let s = value.as_str().ok_or_else(|| bad_value("time"))?;
            let at = rules::time::parse_rfc3339(s).map_err(|_| bad_value("time"))?;
            let text = at.to_string();
            Ok(text.get(..19).unwrap_or(&text).replacen('T', " ", 1).into())
        }
        "org.apache.kafka.connect.data.Decimal" => {
            let scale = field
                .get("parameters")
                .and_then(|p| p.get("scale"))
                .and_then(|s| s.as_str().and_then(|s| s.parse().ok()).or(s.as_u64()))
                .unwrap_or(0) as u32;
            let s = value.as_str().ok_or_else(|| bad_value("base64 decimal"))?;
            decimal(s, scale)
                .map(Value::from)
                .ok_or_else(|| bad_value("base64 decimal"))
        }
        "io.debezium.data.VariableScaleDecimal" => {
            let scale = value.get("scale").and_then(Value::as_u64).unwrap_or(0) as u32;
            let s = value
                .get("value")
                .and_then(Value::as_str)
                .ok_or_else(|| bad_value("decimal"))?;
            decimal(s, scale)
                .map(Value::from)
                .ok_or_else(|| bad_value("decimal"))
        }
        _ => Ok(value),
    }
}

/// Seconds since the epoch, read as the database's wall clock: `YYYY-MM-DD hh:mm:ss`.
fn wall_clock(secs: i64) -> String {
    // Instant prints China time (UTC+08:00); the value is a wall clock read as UTC.
    let text = rules::Instant(secs - 8 * 3600).to_string();
    text.get(..19).unwrap_or(&text).replacen('T', " ", 1)
}

/// A whole number in a time column read by its magnitude: days, seconds, milliseconds,
/// microseconds or nanoseconds since the epoch (for dates from 1973 to 2200 the ranges do
/// not overlap).
fn epoch_by_magnitude(n: i64) -> Option<String> {
    let secs = match n {
        0..=200_000 => n * 86_400,
        100_000_000..=7_300_000_000 => n,
        100_000_000_000..=7_300_000_000_000 => n / 1_000,
        100_000_000_000_000..=7_300_000_000_000_000 => n / 1_000_000,
        100_000_000_000_000_000..=i64::MAX => n / 1_000_000_000,
        _ => return None,
    };
    Some(wall_clock(secs))
}

/// A big-endian two's-complement integer (base64) with `scale` decimals, as text.
fn decimal(b64: &str, scale: u32) -> Option<String> {
    let bytes = base64_decode(b64)?;
    if bytes.is_empty() || bytes.len() > 16 {
        return None;
    }
    let mut n: i128 = if bytes[0] & 0x80 != 0 { -1 } else { 0 };
    for b in bytes {
        n = (n << 8) | i128::from(b);
    }
    let negative = n < 0;
    let digits = n.unsigned_abs().to_string();
    let scale = scale as usize;
    let digits = format!("{digits:0>width$}", width = scale + 1);
    let (whole, frac) = digits.split_at(digits.len() - scale);
    let sign = if negative { "-" } else { "" };
    Some(if scale == 0 {
        format!("{sign}{whole}")
    } else {
        format!("{sign}{whole}.{frac}")
    })
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes().filter(|&c| c != b'=') {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

impl Adapter<'_> {
    /// Map one change: an upsert's events, a deletion's withdrawals. A whole number in a
    /// column the adapter reads as a time (a schemaless message) is read as an epoch value.
    pub fn adapt_change(&mut self, change: Change, out: &mut Vec<Event>) -> Result<(), Dead> {
        let (mut row, delete) = match change {
            Change::Skip => return Ok(()),
            Change::Upsert(row) => (row, false),
            Change::Delete(row) => (row, true),
        };
        let start = out.len();
        // Each retry converts one more column; a row has few time columns.
        for _ in 0..8 {
            let line = Value::Object(row.clone()).to_string();
            match self.adapt_line(&line, out) {
                Ok(()) => {
                    if delete {
                        for ev in &mut out[start..] {
                            if ev.kind != "event.withdrawn" {
                                *ev = ev.withdrawal();
                            }
                        }
                    }
                    return Ok(());
                }
                Err(d) if d.reason == "bad_timestamp" => {
                    let converted = d.column.as_deref().and_then(|c| {
                        let key = row.keys().find(|k| k.eq_ignore_ascii_case(c))?.clone();
                        let text = epoch_by_magnitude(row.get(&key)?.as_i64()?)?;
                        Some((key, text))
                    });
                    match converted {
                        Some((key, text)) => {
                            row.insert(key, text.into());
                        }
                        None => return Err(d),
                    }
                }
                Err(d) => return Err(d),
            }
        }
        Err(dead(
            "bad_timestamp",
            None,
            "too many time columns to convert",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn envelopes_unwrap_with_and_without_schemas() {
        let row = json!({"PROJID":"K1","MAKETIME":1762074000000i64});
        let jdbc = unwrap(
            Envelope::Jdbc,
            row.to_string().as_bytes(),
            Some("EA_JC_FEEINFO"),
        )
        .expect("jdbc");
        let Change::Upsert(r) = jdbc else {
            panic!("upsert")
        };
        assert_eq!(r["_table"], "EA_JC_FEEINFO");
        assert_eq!(
            r["MAKETIME"], 1762074000000i64,
            "no schema: left for the adapter"
        );

        let schema = json!({"type":"struct","fields":[
            {"field":"PROJID","type":"string"},
            {"field":"MAKETIME","type":"int64","name":"org.apache.kafka.connect.data.Timestamp"},
            {"field":"FEETOTAL","type":"bytes","name":"org.apache.kafka.connect.data.Decimal","parameters":{"scale":"2"}},
            {"field":"D","type":"int32","name":"org.apache.kafka.connect.data.Date"}]});
        // 8050 (80.50) as two bytes: 0x1F72.
        let msg = json!({"schema": schema, "payload": {"PROJID":"K1","MAKETIME":1762074000000i64,"FEETOTAL":"H3I=","D":20394}});
        let Change::Upsert(r) = unwrap(Envelope::Jdbc, msg.to_string().as_bytes(), Some("T"))
            .expect("jdbc with schema")
        else {
            panic!("upsert")
        };
        assert_eq!(r["MAKETIME"], "2025-11-02 09:00:00");
        assert_eq!(r["FEETOTAL"], "80.50");
        assert_eq!(r["D"], "2025-11-02 00:00:00");

        let before = json!({"PROJID":"K1","MAKETIME":1762074000000000i64});
        let deb = json!({"schema": {"type":"struct","fields":[
                {"field":"before","type":"struct","fields":[{"field":"MAKETIME","type":"int64","name":"io.debezium.time.MicroTimestamp"}]},
                {"field":"after","type":"struct","fields":[]}]},
            "payload": {"before": before, "after": null, "op": "d", "source": {"table":"EA_JC_STEP_DONE"}}});
        let Change::Delete(r) =
            unwrap(Envelope::Debezium, deb.to_string().as_bytes(), None).expect("debezium")
        else {
            panic!("delete")
        };
        assert_eq!(r["_table"], "EA_JC_STEP_DONE");
        assert_eq!(r["MAKETIME"], "2025-11-02 09:00:00");
        assert_eq!(unwrap(Envelope::Debezium, b"", None), Ok(Change::Skip));
        let flattened = unwrap(
            Envelope::Jdbc,
            br#"{"PROJID":"K1","__deleted":"true"}"#,
            Some("EA_JC_STEP_DONE"),
        )
        .expect("flattened delete");
        assert!(matches!(flattened, Change::Delete(r) if r["PROJID"] == "K1"));
        let bad = unwrap(Envelope::Debezium, br#"{"PROJID":"K1"}"#, None).expect_err("no op");
        assert_eq!(
            (bad.reason, bad.column.as_deref()),
            ("bad_value", Some("op"))
        );
    }

    fn reference() -> rules::Reference {
        let file = |name: &str, text: &str| Some((name.to_string(), text.to_string()));
        rules::Reference::parse(&rules::ReferenceFiles {
            items: file("items.csv", "item_code,item_name,department,case_type,legal_days,legal_unit,promised_days,promised_unit,stage_undertake_days,stage_review_days,stage_approve_days,in_hall,channels,fee_fen,window_authority\nP5,登记,BDC,promised,20,working,5,working,,,,true,hall,,accept\n"),
            windows: file("windows.csv", "window_id,center_id,region,department,in_hall\nW01,PJ,430626,BDC,true\n"),
            ..Default::default()
        })
        .expect("reference")
    }

    #[test]
    fn changes_map_to_events_withdrawals_and_epoch_times() {
        let reference = reference();
        let mut a = Adapter::new(
            crate::Format::Gdbs,
            crate::Codes::defaults(crate::Format::Gdbs),
            &reference,
            None,
            None,
        )
        .expect("adapter");
        // A schemaless row whose time is epoch milliseconds: read as the wall clock.
        let row = json!({"_table":"EX_GDBS_BJGZ","SBLSH":"G1","SXBM":"P5","BJBMZZJGDM":"BDC",
            "BZGZYY":"缺材料","BZGZSJ":1762074000000i64,"INSERTTIME":1762074060i64});
        let Value::Object(row) = row else {
            panic!("object")
        };
        let mut out = Vec::new();
        a.adapt_change(Change::Upsert(row.clone()), &mut out)
            .expect("mapped");
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].occurred_at, "2025-11-02T09:00:00+08:00");
        assert_eq!(
            out[0].reported_at.as_deref(),
            Some("2025-11-02T09:01:00+08:00")
        );
        // gdbs marks no deletions itself: the delete of the row withdraws its event.
        let mut gone = Vec::new();
        a.adapt_change(Change::Delete(row), &mut gone)
            .expect("mapped");
        assert_eq!(gone, [out[0].withdrawal()]);
        assert_eq!(gone[0].withdraws.as_deref(), Some(out[0].event_id.as_str()));
        // A number that is no time at all stays a dead letter.
        let bad = json!({"_table":"EX_GDBS_BJGZ","SBLSH":"G1","SXBM":"P5","BJBMZZJGDM":"BDC","BZGZSJ":5_000_000});
        let Value::Object(bad) = bad else {
            panic!("object")
        };
        let e = a
            .adapt_change(Change::Upsert(bad), &mut Vec::new())
            .expect_err("dead");
        assert_eq!(
            (e.reason, e.column.as_deref()),
            ("bad_timestamp", Some("BZGZSJ"))
        );
    }

    #[test]
    fn epoch_values_by_magnitude_and_decimals() {
        let t = "2025-11-02 09:00:00";
        for n in [
            1762074000i64,
            1762074000000,
            1762074000000000,
            1762074000000000000,
        ] {
            assert_eq!(epoch_by_magnitude(n).as_deref(), Some(t), "{n}");
        }
        assert_eq!(
            epoch_by_magnitude(20394).as_deref(),
            Some("2025-11-02 00:00:00")
        );
        assert_eq!(epoch_by_magnitude(5_000_000), None, "ambiguous: refused");
        assert_eq!(decimal("/w==", 0).as_deref(), Some("-1"));
        assert_eq!(decimal("AQ==", 2).as_deref(), Some("0.01"));
    }
}
