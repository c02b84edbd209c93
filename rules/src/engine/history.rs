//! A case's history: every event that reached the case, kept compactly, so that a correction
//! (SPEC §3 Corrections: `supersedes`, `event.withdrawn`) can rebuild the case as a replay of
//! the corrected stream would have built it (`correct.rs`).
//!
//! Each entry is one event as the engine received it, with the engine clock at its arrival (the
//! timers that had fired before it) and its state: live, superseded or withdrawn. Entries are
//! bytes in one buffer per case — a state byte, the payload's length, then the payload:
//!
//! ```text
//! clock − occurred (varint) · occurred (zigzag varint) · flags (1) · kind (1)
//! · event_id (string) · centre (symbol) · [reported, received (zigzag deltas)] · [department,
//! window, staff, item, source (symbols)] · [supersedes (string)] · the kind's fields
//! ```
//!
//! Region and case id are the case's own. Window, staff, item, department, centre and source
//! ids repeat across cases and are interned symbols (a few bytes); only the event id and free
//! text are stored whole. About 25–50 bytes an event (docs/BENCHMARKS.md). An entry is found
//! by its event's duplicate-filter id, which is not stored but computed again from the entry's
//! event id and source (and the case's region) when a correction looks for it: 8 bytes an
//! event less, for a few hashes per correction.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::event::{
    Body, CaseType, Channel, CompletionResult, Event, Kind, LimitOverrides, Procedure, Stage,
    StageResult, Unit,
};
use crate::reference::Limit;
use crate::time::Instant;

use super::table::{Dedup, Sym, Symbols};

/// The state of an entry.
pub mod state {
    /// Part of the history.
    pub const LIVE: u8 = 0;
    /// Replaced by a later version (`supersedes`).
    pub const SUPERSEDED: u8 = 1;
    /// Removed (`event.withdrawn`).
    pub const WITHDRAWN: u8 = 2;
}

thread_local! {
    /// Where [`History::record`] encodes an entry before appending it: one buffer reused,
    /// instead of one allocated and freed per event.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// One case's history (empty until the case's first event when corrections are kept).
/// One exact-size allocation (a case gets a few events in its life, so an append that copies
/// the buffer costs less than a `Vec`'s slack on a million cases).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct History(Option<Box<[u8]>>);

/// An entry, decoded.
pub struct Entry<'a> {
    /// [`state`].
    pub state: u8,
    /// The engine clock when it arrived.
    pub clock: Instant,
    /// The event.
    pub event: Event<'a>,
}

const REPORTED: u8 = 1;
const RECEIVED: u8 = 2;
const DEPARTMENT: u8 = 4;
const WINDOW: u8 = 8;
const STAFF: u8 = 16;
const ITEM: u8 = 32;
const SOURCE: u8 = 64;
const SUPERSEDES: u8 = 128;

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Bytes [`varint`] writes for `v`.
fn varint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

fn zigzag(out: &mut Vec<u8>, v: i64) {
    varint(out, ((v << 1) ^ (v >> 63)) as u64);
}

fn string(out: &mut Vec<u8>, s: &str) {
    varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

fn opt_string(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => {
            out.push(1);
            string(out, s);
        }
        None => out.push(0),
    }
}

fn limit(out: &mut Vec<u8>, l: Option<Limit>) {
    match l {
        Some(l) => {
            out.push(1 + l.unit.index() as u8);
            varint(out, u64::from(l.days));
        }
        None => out.push(0),
    }
}

/// A wire enum as a byte: 0 for none, else its index + 1.
fn opt_index(i: Option<usize>) -> u8 {
    i.map_or(0, |i| i as u8 + 1)
}

impl History {
    /// Append `ev` (which reached the case at engine clock `clock`), live. `known` is the
    /// case's attribution so far: an event usually names the centre, window, staff member and
    /// item its case already has, whose symbols are then confirmed by one string compare
    /// instead of a hash lookup each.
    pub fn record(
        &mut self,
        ev: &Event<'_>,
        clock: Instant,
        symbols: &mut Symbols,
        named: &super::explain::Who,
    ) {
        SCRATCH.with_borrow_mut(|p| {
            p.clear();
            self.append(p, ev, clock, symbols, named);
        });
    }

    /// [`record`](Self::record), with `p` to encode the entry in.
    fn append(
        &mut self,
        p: &mut Vec<u8>,
        ev: &Event<'_>,
        clock: Instant,
        symbols: &mut Symbols,
        named: &super::explain::Who,
    ) {
        varint(p, (clock.0 - ev.occurred_at.0).max(0) as u64);
        zigzag(p, ev.occurred_at.0);
        let mut flags = 0;
        let fields = [
            (REPORTED, ev.reported_at.is_some()),
            (RECEIVED, ev.received_at.is_some()),
            (DEPARTMENT, ev.department.is_some()),
            (WINDOW, ev.window_id.is_some()),
            (STAFF, ev.staff_id.is_some()),
            (ITEM, ev.item_code.is_some()),
            (SOURCE, ev.source.is_some()),
            (SUPERSEDES, ev.supersedes.is_some()),
        ];
        for (bit, on) in fields {
            if on {
                flags |= bit;
            }
        }
        p.push(flags);
        p.push(ev.body.kind().index() as u8);
        string(p, &ev.event_id);
        varint(p, u64::from(named.center));
        for t in [ev.reported_at, ev.received_at].into_iter().flatten() {
            zigzag(p, t.0 - ev.occurred_at.0);
        }
        // `named` holds a symbol for each of these the event names.
        let syms = [
            (named.department, ev.department.is_some()),
            (named.window, ev.window_id.is_some()),
            (named.staff, ev.staff_id.is_some()),
            (named.item, ev.item_code.is_some()),
        ];
        for (sym, on) in syms {
            if on {
                varint(p, u64::from(sym));
            }
        }
        if let Some(s) = &ev.source {
            varint(p, u64::from(symbols.intern(s)));
        }
        if let Some(s) = &ev.supersedes {
            string(p, s);
        }
        body(p, &ev.body);
        // Exactly sized: one copy per event of a case that gets a few in its life.
        let len = p.len() as u64;
        let mut buf = self.0.take().unwrap_or_default().into_vec();
        buf.reserve_exact(1 + varint_len(len) + p.len());
        buf.push(state::LIVE);
        varint(&mut buf, len);
        buf.extend_from_slice(p);
        debug_assert_eq!(buf.len(), buf.capacity());
        self.0 = Some(buf.into_boxed_slice());
    }

    /// Start loading the entries (their first lines: an append copies them), for the
    /// engine's lookahead.
    pub fn prefetch(&self) {
        if let Some(bytes) = &self.0 {
            super::table::prefetch_slice(bytes, 256);
        }
    }

    /// The entry of the event whose duplicate-filter id ([`Dedup::hash`] of the case's
    /// `region`, its source and its event id) is `id`: its offset and state.
    pub fn find(&self, id: u64, region: &str, symbols: &Symbols) -> Option<(usize, u8)> {
        // The case id is not part of the id: the entries are decoded without it.
        self.entries_from(0, region, "", symbols)
            .find(|(_, e)| {
                let source = e.event.source.as_deref().unwrap_or("");
                Dedup::hash(region, source, &e.event.event_id).0 == id
            })
            .map(|(at, e)| (at, e.state))
    }

    /// Mark the entry at `at` (from [`History::find`]).
    pub fn set_state(&mut self, at: usize, st: u8) {
        if let Some(b) = self.0.as_mut().and_then(|v| v.get_mut(at)) {
            *b = st;
        }
    }

    /// The entry at offset `at` (from [`History::find`]), decoded.
    pub fn entry_at<'a>(
        &'a self,
        at: usize,
        region: &'a str,
        case_id: &'a str,
        symbols: &'a Symbols,
    ) -> Option<Entry<'a>> {
        let buf = self.0.as_deref()?;
        let mut r = Reader { buf, pos: at };
        let st = r.u8();
        r.varint();
        r.entry(st, region, case_id, symbols)
    }

    /// Every entry in arrival order, decoded with the case's region and id.
    #[cfg(test)]
    pub fn entries<'a>(
        &'a self,
        region: &'a str,
        case_id: &'a str,
        symbols: &'a Symbols,
    ) -> impl Iterator<Item = Entry<'a>> + 'a {
        self.entries_from(0, region, case_id, symbols)
            .map(|(_, e)| e)
    }

    /// The entries from offset `from` (an entry's, or [`History::end`] before a record) on,
    /// each with its offset.
    pub fn entries_from<'a>(
        &'a self,
        from: usize,
        region: &'a str,
        case_id: &'a str,
        symbols: &'a Symbols,
    ) -> impl Iterator<Item = (usize, Entry<'a>)> + 'a {
        let buf = self.0.as_deref().unwrap_or_default();
        let mut r = Reader { buf, pos: from };
        std::iter::from_fn(move || {
            if r.pos >= buf.len() {
                return None;
            }
            let at = r.pos;
            let st = r.u8();
            let len = r.varint() as usize;
            let end = r.pos + len;
            let entry = r.entry(st, region, case_id, symbols);
            r.pos = end;
            Some((at, entry?))
        })
    }

    /// The state of the entry at offset `at`.
    pub fn state_at(&self, at: usize) -> Option<u8> {
        self.0.as_deref()?.get(at).copied()
    }

    /// The offset where the next entry goes.
    pub fn end(&self) -> usize {
        self.0.as_deref().map_or(0, <[u8]>::len)
    }
}

fn body(p: &mut Vec<u8>, body: &Body<'_>) {
    match body {
        Body::CaseSubmitted { channel } => p.push(opt_index(channel.map(Channel::index))),
        Body::CaseAccepted { channel, overrides } => {
            p.push(channel.index() as u8);
            p.push(opt_index(overrides.case_type.map(CaseType::index)));
            limit(p, overrides.promised);
            limit(p, overrides.legal);
            // The source's deadline date, days + 1 (0: none).
            varint(
                p,
                overrides.source_deadline.map_or(0, |d| u64::from(d.0) + 1),
            );
        }
        Body::CaseRejected { reason }
        | Body::SupplementRequested { reason }
        | Body::CaseSuspended { reason }
        | Body::CaseResumed { reason } => opt_string(p, reason.as_deref()),
        Body::CaseStage { stage, result } => {
            p.push(stage.index() as u8);
            p.push(result.index() as u8);
        }
        Body::CaseTransferred { to_department } => string(p, to_department),
        Body::SpecialStarted {
            procedure,
            limit: l,
        } => {
            p.push(procedure.index() as u8);
            limit(p, *l);
        }
        Body::CaseExtended { extra_days } => varint(p, u64::from(*extra_days)),
        Body::CaseCompleted { result } => p.push(result.index() as u8),
        Body::FeeCharged {
            receipt_no,
            amount_fen,
            payer_id,
        } => {
            string(p, receipt_no);
            varint(p, *amount_fen);
            string(p, payer_id);
        }
        // Nothing else reaches a case; those with no fields of their own.
        _ => {}
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn u8(&mut self) -> u8 {
        let b = self.buf.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }

    fn varint(&mut self) -> u64 {
        let mut v = 0u64;
        let mut shift = 0;
        loop {
            let b = self.u8();
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 || shift > 56 {
                return v;
            }
            shift += 7;
        }
    }

    fn zigzag(&mut self) -> i64 {
        let v = self.varint();
        (v >> 1) as i64 ^ -((v & 1) as i64)
    }

    fn string(&mut self) -> &'a str {
        let len = self.varint() as usize;
        let s = self.buf.get(self.pos..self.pos + len).unwrap_or_default();
        self.pos += len;
        // Written from a `&str`: always UTF-8.
        std::str::from_utf8(s).unwrap_or_default()
    }

    fn opt_string(&mut self) -> Option<Cow<'a, str>> {
        (self.u8() == 1).then(|| Cow::Borrowed(self.string()))
    }

    fn sym(&mut self, symbols: &'a Symbols) -> Cow<'a, str> {
        let sym = Sym::try_from(self.varint()).unwrap_or_default();
        Cow::Borrowed(symbols.get(sym).unwrap_or_default())
    }

    fn limit(&mut self) -> Option<Limit> {
        let unit = self.u8();
        let unit = Unit::ALL.get(usize::from(unit.checked_sub(1)?))?;
        let days = u16::try_from(self.varint()).unwrap_or(u16::MAX);
        Some(Limit { days, unit: *unit })
    }

    fn pick<T: Copy>(&mut self, all: &[T]) -> T {
        let i = usize::from(self.u8());
        all[i.min(all.len() - 1)]
    }

    fn opt_pick<T: Copy>(&mut self, all: &[T]) -> Option<T> {
        let i = usize::from(self.u8());
        all.get(i.checked_sub(1)?).copied()
    }

    fn entry(
        &mut self,
        st: u8,
        region: &'a str,
        case_id: &'a str,
        symbols: &'a Symbols,
    ) -> Option<Entry<'a>> {
        let lag = self.varint() as i64;
        let occurred = self.zigzag();
        let flags = self.u8();
        let kind = *Kind::ALL.get(usize::from(self.u8()))?;
        let event_id = Cow::Borrowed(self.string());
        let center_id = self.sym(symbols);
        let on = |bit: u8| flags & bit != 0;
        let delta = |r: &mut Self, bit| on(bit).then(|| Instant(occurred + r.zigzag()));
        let reported_at = delta(self, REPORTED);
        let received_at = delta(self, RECEIVED);
        let sym = |r: &mut Self, bit| on(bit).then(|| r.sym(symbols));
        let department = sym(self, DEPARTMENT);
        let window_id = sym(self, WINDOW);
        let staff_id = sym(self, STAFF);
        let item_code = sym(self, ITEM);
        let source = sym(self, SOURCE);
        let supersedes = on(SUPERSEDES).then(|| Cow::Borrowed(self.string()));
        let body = match kind {
            Kind::CaseSubmitted => Body::CaseSubmitted {
                channel: self.opt_pick(Channel::ALL),
            },
            Kind::CaseAccepted => Body::CaseAccepted {
                channel: self.pick(Channel::ALL),
                overrides: LimitOverrides {
                    case_type: self.opt_pick(CaseType::ALL),
                    promised: self.limit(),
                    legal: self.limit(),
                    source_deadline: u32::try_from(self.varint())
                        .ok()
                        .and_then(|d| d.checked_sub(1))
                        .map(crate::time::Day),
                },
            },
            Kind::CaseRejected => Body::CaseRejected {
                reason: self.opt_string(),
            },
            Kind::SupplementRequested => Body::SupplementRequested {
                reason: self.opt_string(),
            },
            Kind::SupplementReceived => Body::SupplementReceived,
            Kind::CaseStage => Body::CaseStage {
                stage: self.pick(Stage::ALL),
                result: self.pick(StageResult::ALL),
            },
            Kind::CaseTransferred => Body::CaseTransferred {
                to_department: Cow::Borrowed(self.string()),
            },
            Kind::SpecialStarted => Body::SpecialStarted {
                procedure: self.pick(Procedure::ALL),
                limit: self.limit(),
            },
            Kind::SpecialEnded => Body::SpecialEnded,
            Kind::CaseSuspended => Body::CaseSuspended {
                reason: self.opt_string(),
            },
            Kind::CaseResumed => Body::CaseResumed {
                reason: self.opt_string(),
            },
            Kind::CaseExtended => Body::CaseExtended {
                extra_days: u16::try_from(self.varint()).unwrap_or(u16::MAX),
            },
            Kind::CaseCompleted => Body::CaseCompleted {
                result: self.pick(CompletionResult::ALL),
            },
            Kind::CaseDelivered => Body::CaseDelivered,
            Kind::CaseArchived => Body::CaseArchived,
            Kind::FeeCharged => Body::FeeCharged {
                receipt_no: Cow::Borrowed(self.string()),
                amount_fen: self.varint(),
                payer_id: Cow::Borrowed(self.string()),
            },
            _ => return None,
        };
        Some(Entry {
            state: st,
            clock: Instant(occurred + lag),
            event: Event {
                event_id,
                occurred_at: Instant(occurred),
                reported_at,
                received_at,
                center_id,
                region: Cow::Borrowed(region),
                department,
                window_id,
                staff_id,
                case_id: Some(Cow::Borrowed(case_id)),
                item_code,
                source,
                supersedes,
                body,
            },
        })
    }
}

/// An entry's event, owning its strings (a rebuild applies it while interning symbols).
pub fn into_owned(ev: Event<'_>) -> Event<'static> {
    fn own(s: Cow<'_, str>) -> Cow<'static, str> {
        Cow::Owned(s.into_owned())
    }
    let body = match ev.body {
        Body::CaseSubmitted { channel } => Body::CaseSubmitted { channel },
        Body::CaseAccepted { channel, overrides } => Body::CaseAccepted { channel, overrides },
        Body::CaseRejected { reason } => Body::CaseRejected {
            reason: reason.map(own),
        },
        Body::SupplementRequested { reason } => Body::SupplementRequested {
            reason: reason.map(own),
        },
        Body::SupplementReceived => Body::SupplementReceived,
        Body::CaseStage { stage, result } => Body::CaseStage { stage, result },
        Body::CaseTransferred { to_department } => Body::CaseTransferred {
            to_department: own(to_department),
        },
        Body::SpecialStarted { procedure, limit } => Body::SpecialStarted { procedure, limit },
        Body::SpecialEnded => Body::SpecialEnded,
        Body::CaseSuspended { reason } => Body::CaseSuspended {
            reason: reason.map(own),
        },
        Body::CaseResumed { reason } => Body::CaseResumed {
            reason: reason.map(own),
        },
        Body::CaseExtended { extra_days } => Body::CaseExtended { extra_days },
        Body::CaseCompleted { result } => Body::CaseCompleted { result },
        Body::CaseDelivered => Body::CaseDelivered,
        Body::FeeCharged {
            receipt_no,
            amount_fen,
            payer_id,
        } => Body::FeeCharged {
            receipt_no: own(receipt_no),
            amount_fen,
            payer_id: own(payer_id),
        },
        // Nothing else is kept in a history.
        _ => Body::CaseArchived,
    };
    Event {
        event_id: own(ev.event_id),
        occurred_at: ev.occurred_at,
        reported_at: ev.reported_at,
        received_at: ev.received_at,
        center_id: own(ev.center_id),
        region: own(ev.region),
        department: ev.department.map(own),
        window_id: ev.window_id.map(own),
        staff_id: ev.staff_id.map(own),
        case_id: ev.case_id.map(own),
        item_code: ev.item_code.map(own),
        source: ev.source.map(own),
        supersedes: ev.supersedes.map(own),
        body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::parse_rfc3339;

    fn at(s: &str) -> Instant {
        parse_rfc3339(s).expect("time")
    }

    fn base(id: &'static str, body: Body<'static>) -> Event<'static> {
        Event {
            event_id: Cow::Borrowed(id),
            occurred_at: at("2026-03-02T10:00:00+08:00"),
            reported_at: Some(at("2026-03-02T09:00:00+08:00")),
            received_at: Some(at("2026-03-03T10:00:00+08:00")),
            center_id: Cow::Borrowed("C0"),
            region: Cow::Borrowed("430620"),
            department: Some(Cow::Borrowed("D1")),
            window_id: Some(Cow::Borrowed("W1")),
            staff_id: None,
            case_id: Some(Cow::Borrowed("K1")),
            item_code: Some(Cow::Borrowed("I001")),
            source: Some(Cow::Borrowed("sdjc:a")),
            supersedes: Some(Cow::Borrowed("e0")),
            body,
        }
    }

    #[test]
    fn varint_len_is_what_varint_writes() {
        for v in [
            0,
            1,
            127,
            128,
            300,
            16_383,
            16_384,
            u64::from(u32::MAX),
            u64::MAX,
        ] {
            let mut out = Vec::new();
            varint(&mut out, v);
            assert_eq!(varint_len(v), out.len(), "{v}");
        }
    }

    /// Every kind that reaches a case comes back exactly as it went in, with its clock and
    /// state, and can be found and marked by its id.
    #[test]
    fn every_case_event_round_trips() {
        let limit = Some(Limit {
            days: 3,
            unit: Unit::WorkingHours,
        });
        let bodies = vec![
            Body::CaseSubmitted { channel: None },
            Body::CaseSubmitted {
                channel: Some(Channel::Mobile),
            },
            Body::CaseAccepted {
                channel: Channel::Hall,
                overrides: LimitOverrides {
                    case_type: Some(CaseType::Joint),
                    promised: limit,
                    legal: None,
                    source_deadline: crate::time::Day::parse("2026-03-20"),
                },
            },
            Body::CaseRejected { reason: None },
            Body::SupplementRequested {
                reason: Some(Cow::Borrowed("缺身份证复印件")),
            },
            Body::SupplementReceived,
            Body::CaseStage {
                stage: Stage::Approve,
                result: StageResult::Return,
            },
            Body::CaseTransferred {
                to_department: Cow::Borrowed("D2"),
            },
            Body::SpecialStarted {
                procedure: Procedure::ExpertReview,
                limit,
            },
            Body::SpecialEnded,
            Body::CaseSuspended { reason: None },
            Body::CaseResumed {
                reason: Some(Cow::Borrowed("x")),
            },
            Body::CaseExtended { extra_days: 400 },
            Body::CaseCompleted {
                result: CompletionResult::Forwarded,
            },
            Body::CaseDelivered,
            Body::CaseArchived,
            Body::FeeCharged {
                receipt_no: Cow::Borrowed("R1"),
                amount_fen: 1_000_000_007,
                payer_id: Cow::Borrowed("P1"),
            },
        ];
        let mut symbols = Symbols::default();
        let mut h = History::default();
        let events: Vec<Event<'static>> = bodies
            .into_iter()
            .enumerate()
            .map(|(i, b)| {
                let mut e = base("e", b);
                e.event_id = Cow::Owned(format!("e{i}"));
                e.occurred_at = Instant(e.occurred_at.0 + i as i64 * 3600);
                if i % 2 == 0 {
                    e.reported_at = None;
                    e.supersedes = None;
                    e.department = None;
                    e.source = None;
                }
                e
            })
            .collect();
        // As the engine records: with the case's attribution so far as the hint (the previous
        // event's ids, or none yet), which the round trip below must not depend on.
        let mut who = super::super::explain::Who::UNKNOWN;
        for (i, e) in events.iter().enumerate() {
            let clock = Instant(e.occurred_at.0 + i as i64 * 7);
            let named = who.named(e, &mut symbols);
            h.record(e, clock, &mut symbols, &named);
            let mut recorded = who;
            recorded.record(e, &mut symbols, true);
            who.take(&named);
            assert_eq!(who, recorded, "take(named) is record(…, true)");
            if i == 1 {
                // A hint naming another string: the event's own id is recorded.
                who.staff = symbols.intern("someone else");
            }
        }
        let back: Vec<Entry<'_>> = h.entries("430620", "K1", &symbols).collect();
        assert_eq!(back.len(), events.len());
        for (i, (got, want)) in back.iter().zip(&events).enumerate() {
            assert_eq!(&got.event, want);
            assert_eq!(got.clock, Instant(want.occurred_at.0 + i as i64 * 7));
            assert_eq!(got.state, state::LIVE);
        }
        // Entries are found by the duplicate filter's id of region, source and event id,
        // which is computed again from what the entry holds.
        let id =
            |region: &str, source: &str, event_id: &str| Dedup::hash(region, source, event_id).0;
        let find = |h: &History, id: u64| h.find(id, "430620", &symbols);
        let (at, st) = find(&h, id("430620", "sdjc:a", "e3")).expect("recorded");
        assert_eq!(st, state::LIVE);
        h.set_state(at, state::WITHDRAWN);
        assert_eq!(
            find(&h, id("430620", "sdjc:a", "e3")),
            Some((at, state::WITHDRAWN))
        );
        let (at4, st4) = find(&h, id("430620", "", "e4")).expect("no source");
        assert_eq!(st4, state::LIVE);
        assert!(at4 > at);
        assert_eq!(
            find(&h, id("430620", "", "e3")),
            None,
            "e3 came from a source"
        );
        assert_eq!(
            find(&h, id("430620", "sdjc:b", "e3")),
            None,
            "another source"
        );
        assert_eq!(
            find(&h, id("430621", "sdjc:a", "e3")),
            None,
            "another region"
        );
        assert_eq!(find(&h, id("430620", "sdjc:a", "e99")), None);
    }
}
