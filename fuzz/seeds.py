#!/usr/bin/env python3
"""Writes the committed seed corpus, fuzz/corpus/<target>/, from SPEC §3 and the golden scenarios.

Run from the repository root: `python3 fuzz/seeds.py`. Deterministic; it replaces only the files
it names (seed-*), so inputs a fuzz run found and someone committed stay.

- decode: one valid event of every kind (all optional fields set), every golden event, and
  malformed samples of each reason code (and of the things around them: escapes, deep nesting,
  huge numbers, extreme timestamp offsets).
- replay: every golden scenario's events as NDJSON (the harness's defaults filled in), the
  bundled pingjiang example, all kinds in one stream, and streams with hostile timestamps.
- http_ingest: byte 0 = content type, byte 1 = caller and sink state (see the target), then
  the body: NDJSON batches with valid, invalid, blank and out-of-scope lines, one JSON event.
"""

import json
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent
CORPUS = ROOT / "fuzz" / "corpus"

BASE = {
    "event_id": "seed-1",
    "occurred_at": "2026-09-28T10:00:00+08:00",
    "reported_at": "2026-09-28T10:00:05+08:00",
    "center_id": "PJ-ZWFW",
    "region": "430626",
    "department": "BDC",
    "window_id": "PJ-W01",
    "staff_id": "PJ0101",
}

# One event of every kind (SPEC §3), with its kind-specific fields.
KINDS = {
    "case.submitted": {"case_id": "C1", "item_code": "P5", "channel": "hall"},
    "case.accepted": {
        "case_id": "C1", "item_code": "P5", "channel": "hall", "case_type": "promised",
        "promised_days": 3, "promised_unit": "working", "legal_days": 20, "legal_unit": "natural",
    },
    "case.rejected": {"case_id": "C1", "reason": "材料不全"},
    "case.supplement_requested": {"case_id": "C1", "reason": "缺少身份证明"},
    "case.supplement_received": {"case_id": "C1"},
    "case.stage": {"case_id": "C1", "stage": "review", "result": "agree"},
    "case.transferred": {"case_id": "C1", "to_department": "ZJ"},
    "case.special_started": {
        "case_id": "C1", "procedure": "hearing", "limit_days": 10, "limit_unit": "working",
    },
    "case.special_ended": {"case_id": "C1"},
    "case.suspended": {"case_id": "C1", "reason": "等待鉴定"},
    "case.resumed": {"case_id": "C1", "reason": "鉴定完成"},
    "case.extended": {"case_id": "C1", "extra_days": 10},
    "case.completed": {"case_id": "C1", "result": "approved"},
    "case.delivered": {"case_id": "C1"},
    "case.archived": {"case_id": "C1"},
    "fee.charged": {
        "case_id": "C1", "item_code": "P5", "receipt_no": "R1", "amount_fen": 8000, "payer_id": "A1",
    },
    "complaint.filed": {"complaint_id": "T1", "category": "attitude", "case_id": "C1"},
    "complaint.resolved": {"complaint_id": "T1", "substantiated": True},
    "evaluation.submitted": {"evaluation_id": "V1", "score": 1, "case_id": "C1"},
    "evaluation.rectified": {"evaluation_id": "V1"},
    "staff.signed_in": {},
    "staff.signed_out": {},
    "window.opened": {},
    "window.paused": {},
    "window.closed": {},
    "queue.ticket_issued": {"ticket_no": "A001"},
    "queue.ticket_called": {"ticket_no": "A001"},
}


def event(kind, n=1, **extra):
    ev = dict(BASE, event_id=f"seed-{n}", kind=kind, **KINDS[kind])
    ev.update(extra)
    return json.dumps(ev, ensure_ascii=False)


def every_kind():
    return [event(kind, n) for n, kind in enumerate(KINDS, 1)]


def accepted(**over):
    ev = dict(BASE, kind="case.accepted", **KINDS["case.accepted"])
    ev.update(over)
    return ev


# Malformed and borderline single events, by what they exercise.
MALFORMED = {
    "not_json": b"{not json",
    "truncated": event("case.accepted").encode()[:-7],
    "not_object": b"[1,2,3]",
    "string": b'"case.accepted"',
    "empty_object": b"{}",
    "not_utf8": b'{"event_id":"\xff\xfe","kind":"case.accepted"}',
    "unknown_kind": json.dumps(accepted(kind="case.teleported")).encode(),
    "missing_case_id": json.dumps({k: v for k, v in accepted().items() if k != "case_id"}).encode(),
    "mistyped_case_id": json.dumps(accepted(case_id=7)).encode(),
    "blank_event_id": json.dumps(accepted(event_id="  \t")).encode(),
    "long_event_id": json.dumps(accepted(event_id="x" * 129)).encode(),
    "long_reason": event("case.rejected", reason="理" * 1400).encode(),
    "bad_region": json.dumps(accepted(region="990626")).encode(),
    "region_5_digits": json.dumps(accepted(region="43062")).encode(),
    "no_offset": json.dumps(accepted(occurred_at="2026-09-28T10:00:00")).encode(),
    "offset_plus_2359": json.dumps(accepted(occurred_at="2000-01-01T00:00:00+23:59")).encode(),
    "offset_minus_2359": json.dumps(accepted(occurred_at="2099-12-31T23:59:59-23:59")).encode(),
    "leap_second": json.dumps(accepted(occurred_at="2026-12-31T23:59:60Z")).encode(),
    "fraction": json.dumps(accepted(occurred_at="2026-09-28T10:00:00.123456789+08:00")).encode(),
    "year_1999": json.dumps(accepted(occurred_at="1999-12-31T23:59:59+08:00")).encode(),
    "feb_30": json.dumps(accepted(occurred_at="2026-02-30T10:00:00+08:00")).encode(),
    "future": json.dumps(accepted(reported_at="2026-09-28T09:00:00+08:00")).encode(),
    "days_too_many": json.dumps(accepted(promised_days=100000)).encode(),
    "days_float": json.dumps(accepted(promised_days=1.5)).encode(),
    "days_negative": json.dumps(accepted(promised_days=-1)).encode(),
    "days_without_unit": json.dumps({k: v for k, v in accepted().items() if k != "promised_unit"}).encode(),
    "amount_huge": event("fee.charged", amount_fen=18446744073709551615).encode(),
    "amount_string": event("fee.charged", amount_fen="80").encode(),
    "score_6": event("evaluation.submitted", score=6).encode(),
    "substantiated_string": event("complaint.resolved", substantiated="true").encode(),
    "channel_fax": json.dumps(accepted(channel="fax")).encode(),
    "null_fields": json.dumps(accepted(department=None, window_id=None, reported_at=None)).encode(),
    "nested_unknown": json.dumps(accepted(extra={"a": [1, {"b": [None, True]}]})).encode(),
    "deep_nesting": b'{"x":' + b"[" * 200 + b"]" * 200 + b"}",
    "escapes": json.dumps(accepted(event_id="\\u0065\\n\u00e9\U0001F600", case_id="C\u0000")).encode(),
    "surrogate_lone": b'{"event_id":"\\ud800","kind":"case.accepted"}',
    "duplicate_keys": b'{"kind":"case.accepted","kind":"window.opened"}',
    "bom": b"\xef\xbb\xbf" + event("window.opened").encode(),
    "trailing": event("window.opened").encode() + b" {}",
    "staff_without_window": json.dumps(
        {k: v for k, v in json.loads(event("staff.signed_in")).items() if k != "window_id"}
    ).encode(),
}


def golden_scenarios():
    """(name, [event line]) of every golden scenario, with the harness's defaults filled in."""
    for path in sorted((ROOT / "tests" / "golden").glob("*.scn")):
        section, lines = None, []
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.startswith("[") and line.rstrip().endswith("]"):
                section = line.strip()
                continue
            if section != "[events]" or not line.strip() or line.startswith("#"):
                continue
            ev = json.loads(line)
            ev.setdefault("event_id", f"ev-{n}")
            ev.setdefault("center_id", "PJ")
            ev.setdefault("region", "430626")
            lines.append(json.dumps(ev, ensure_ascii=False))
        yield path.stem, lines


def write(target, name, data):
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    (d / f"seed-{name}").write_bytes(data)


def main():
    for target in ("decode", "replay", "http_ingest"):
        for old in (CORPUS / target).glob("seed-*"):
            old.unlink()
    kinds = every_kind()
    for kind, line in zip(KINDS, kinds):
        write("decode", f"kind-{kind}", line)
    for name, data in MALFORMED.items():
        write("decode", f"bad-{name}", data)
    golden = list(golden_scenarios())
    # Golden events of a shape (kind and field names) not seen yet: the rest add nothing.
    seen = set()
    for name, lines in golden:
        for i, line in enumerate(lines, 1):
            ev = json.loads(line)
            shape = (ev["kind"], tuple(sorted(ev)))
            if shape not in seen:
                seen.add(shape)
                write("decode", f"golden-{name[:3]}-{i}", line)
        write("replay", f"golden-{name}", "\n".join(lines) + "\n")
    demo = (ROOT / "demo" / "pingjiang" / "events.ndjson").read_text(encoding="utf-8")
    write("replay", "pingjiang", demo)
    write("replay", "every-kind", "\n".join(kinds) + "\n")
    hostile = [
        json.dumps(accepted(event_id="h1", occurred_at="2000-01-01T00:00:00+23:59")),
        json.dumps(accepted(event_id="h2", case_id="C2", occurred_at="2099-12-31T23:59:59-23:59")),
        json.dumps(accepted(event_id="h3", case_id="C3", promised_days=3650, legal_days=3650)),
        event("case.extended", 4, case_id="C3", extra_days=3650),
        event("case.completed", 5, case_id="C2", occurred_at="2000-01-01T00:00:00+23:59"),
        event("fee.charged", 6, case_id=None, amount_fen=9223372036854775807),
        event("evaluation.submitted", 7, score=1, occurred_at="2099-12-31T23:59:59Z"),
    ]
    write("replay", "hostile-times", "\n".join(hostile) + "\n")
    # http_ingest: [content type][caller | sink down << 2] body
    ndjson, json_ct, none_ct, text_ct = 1, 2, 0, 4
    pj, yy, admin, inspector = 0, 1, 2, 3
    batch = "\n".join(
        [event("queue.ticket_issued", 1), "{not json", "", "   ",
         event("queue.ticket_issued", 2, region="430624"),
         event("window.opened", 3, region="431000"),
         MALFORMED["missing_case_id"].decode(), event("case.accepted", 4)]
    ) + "\n"
    write("http_ingest", "ndjson-batch-pj", bytes([ndjson, pj]) + batch.encode())
    write("http_ingest", "ndjson-batch-city", bytes([ndjson, yy]) + batch.encode())
    write("http_ingest", "ndjson-batch-admin-crlf", bytes([none_ct, admin]) + batch.replace("\n", "\r\n").encode())
    write("http_ingest", "ndjson-every-kind", bytes([text_ct, pj]) + "\n".join(kinds).encode())
    write("http_ingest", "json-one", bytes([json_ct, pj]) + event("case.accepted").encode())
    write("http_ingest", "json-two-lines", bytes([json_ct, pj]) + "\n".join(kinds[:2]).encode())
    write("http_ingest", "sink-down", bytes([ndjson, pj | 4]) + kinds[0].encode())
    write("http_ingest", "inspector", bytes([ndjson, inspector]) + kinds[0].encode())
    write("http_ingest", "empty", bytes([ndjson, pj]) + b"\n \n\t\n")
    write("http_ingest", "not-utf8", bytes([ndjson, pj]) + MALFORMED["not_utf8"] + b"\n" + kinds[1].encode())
    first = golden[0][1]
    write("http_ingest", "golden-001", bytes([ndjson, pj]) + "\n".join(first).encode())


if __name__ == "__main__":
    main()
