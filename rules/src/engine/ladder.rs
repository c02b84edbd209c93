//! The discipline ladder (一告知二谈话三通报四辞退) of one staff member in one year, as a function
//! of the cards on record.
//!
//! **Invariant: the steps issued are those the cards on record give.** A step `k` is issued at
//! the `k`-th card in (`fired_at`, `alert_id`) order, with that card as its cause. Cards are kept
//! (a few per person and year), so when one is retracted or arrives out of order the ladder is
//! worked out again and only the differences come out: a step whose card changed is issued
//! again (same id, the new instant and cause, a higher revision), a step no longer reached is
//! retracted naming the card that took it away, and a step reached again fires again. Hence
//! whatever order the cards came in and whatever was retracted on the way, the last version of
//! every step equals what a replay of the corrected history issues (docs/RULES.md).

use std::cmp::Ordering;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::alert::{Alert, Level, Rule};

use super::case::{t32, T32};
use super::explain::revision;
use super::table::{Sym, Symbols, NONE};

/// The highest step (辞退建议).
pub const STEPS: usize = 4;

/// A card's id: an alert id (32 lowercase hex digits, kept as its 16 bytes: every yellow and
/// red card is one) or any other text (`complaint:<complaint_id>`). Ordered as its text is.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum CardId {
    Hex([u8; 16]),
    Text(Box<str>),
}

impl CardId {
    pub fn new(id: &str) -> CardId {
        let b = id.as_bytes();
        let digit = |c: u8| match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        };
        if b.len() == 32 {
            let mut bytes = [0u8; 16];
            let parsed = bytes.iter_mut().zip(b.chunks_exact(2)).all(|(out, pair)| {
                match (digit(pair[0]), digit(pair[1])) {
                    (Some(hi), Some(lo)) => {
                        *out = hi << 4 | lo;
                        true
                    }
                    _ => false,
                }
            });
            if parsed {
                return CardId::Hex(bytes);
            }
        }
        CardId::Text(id.into())
    }

    /// The id's text, written into `buf` for a hex id.
    fn text<'a>(&'a self, buf: &'a mut [u8; 32]) -> &'a str {
        match self {
            CardId::Text(t) => t,
            CardId::Hex(bytes) => {
                const DIGITS: &[u8; 16] = b"0123456789abcdef";
                for (i, b) in bytes.iter().enumerate() {
                    buf[2 * i] = DIGITS[usize::from(b >> 4)];
                    buf[2 * i + 1] = DIGITS[usize::from(b & 15)];
                }
                std::str::from_utf8(buf).unwrap_or_default()
            }
        }
    }
}

impl Ord for CardId {
    fn cmp(&self, other: &CardId) -> Ordering {
        match (self, other) {
            // Fixed-width lowercase hex orders as the bytes it spells.
            (CardId::Hex(a), CardId::Hex(b)) => a.cmp(b),
            _ => {
                let (mut x, mut y) = ([0u8; 32], [0u8; 32]);
                self.text(&mut x).cmp(other.text(&mut y))
            }
        }
    }
}

impl PartialOrd for CardId {
    fn partial_cmp(&self, other: &CardId) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq<str> for CardId {
    fn eq(&self, other: &str) -> bool {
        let mut buf = [0u8; 32];
        self.text(&mut buf) == other
    }
}

impl fmt::Display for CardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; 32];
        f.write_str(self.text(&mut buf))
    }
}

impl fmt::Debug for CardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.to_string())
    }
}

impl Serialize for CardId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            CardId::Hex(bytes) => s.serialize_newtype_variant("CardId", 0, "Hex", bytes),
            CardId::Text(t) => s.serialize_newtype_variant("CardId", 1, "Text", t),
        }
    }
}

impl<'de> Deserialize<'de> for CardId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        enum Repr {
            Hex([u8; 16]),
            Text(Box<str>),
        }
        Ok(match Repr::deserialize(d)? {
            Repr::Hex(bytes) => CardId::Hex(bytes),
            Repr::Text(t) => CardId::Text(t),
        })
    }
}

/// A card counted on the ladder: a yellow or red alert, or a substantiated complaint; what a
/// step alert needs to name its cause and to be attributed like the card. Where it happened
/// is kept as symbols ([`NONE`]: not known), and what it is in two bytes (a ladder keeps every
/// card of its year, so each byte counts: 64 bytes and its one string).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Card {
    pub at: T32,
    pub center_id: Sym,
    pub region: Sym,
    pub department: Sym,
    pub window_id: Sym,
    pub what: What,
    /// The alert's id, or `complaint:<complaint_id>`.
    pub id: CardId,
    /// The alert's case id, if it has one; the resolving event's id for a complaint.
    pub detail: Option<Box<str>>,
}

/// What a card is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum What {
    Alert { rule: Rule, level: Level },
    Complaint,
}

/// The prefix of a substantiated complaint's card id.
const COMPLAINT: &str = "complaint:";

/// Where a card happened, as the symbols of its centre, region, department and window
/// ([`NONE`]: not named), in that order.
pub fn place(
    symbols: &mut Symbols,
    center: &str,
    region: &str,
    department: Option<&str>,
    window: Option<&str>,
) -> [Sym; 4] {
    let mut sym = |s: Option<&str>| s.map_or(NONE, |s| symbols.intern(s));
    [
        sym(Some(center)),
        sym(Some(region)),
        sym(department),
        sym(window),
    ]
}

impl Card {
    pub fn of(alert: &Alert, symbols: &mut Symbols) -> Card {
        let [center_id, region, department, window_id] = place(
            symbols,
            &alert.center_id,
            &alert.region,
            alert.department.as_deref(),
            alert.window_id.as_deref(),
        );
        Card {
            at: t32(alert.fired_at),
            center_id,
            region,
            department,
            window_id,
            what: What::Alert {
                rule: alert.rule,
                level: alert.level,
            },
            id: CardId::new(&alert.alert_id),
            detail: alert.case_id.as_deref().map(Into::into),
        }
    }

    /// A substantiated complaint's card (`event_id`: the resolution's); `place` holds the
    /// symbols of its centre, region, department and window ([`place`]).
    pub fn complaint(at: T32, complaint_id: &str, event_id: Box<str>, place: [Sym; 4]) -> Card {
        let [center_id, region, department, window_id] = place;
        Card {
            at,
            center_id,
            region,
            department,
            window_id,
            what: What::Complaint,
            id: CardId::Text(format!("{COMPLAINT}{complaint_id}").into()),
            detail: Some(event_id),
        }
    }

    /// A complaint card's complaint id (the text of its id after the prefix).
    pub fn complaint_id(&self) -> String {
        let mut buf = [0u8; 32];
        let text = self.id.text(&mut buf);
        text.strip_prefix(COMPLAINT).unwrap_or(text).to_string()
    }

    fn key(&self) -> (T32, &CardId) {
        (self.at, &self.id)
    }
}

/// A step as last emitted: the card it was issued at (`None` once retracted) and the revision
/// of that emission.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Issued {
    card: Option<CardId>,
    revision: u8,
    /// Ever emitted (revision 0 is then taken).
    emitted: bool,
}

/// What changed on a ladder: a step to (re-)issue at a card, or to retract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepChange {
    /// Issue step `step` (1–4) at `card`, with this revision.
    Issue { step: u8, card: Card, revision: u8 },
    /// Retract step `step`, last issued at `card`, with this revision; `because` is the card
    /// whose retraction took the step away.
    Retract {
        step: u8,
        card: Card,
        revision: u8,
        because: Card,
    },
}

/// One staff member's ladder in one year.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Ladder {
    /// The cards on record, in (`fired_at`, `alert_id`) order.
    cards: Vec<Card>,
    steps: [Issued; STEPS],
}

impl Ladder {
    /// Count a card. An open card already counted changes nothing, unless it comes again at
    /// another instant (a correction moved it): it then moves to its new place.
    pub fn add(&mut self, card: Card, out: &mut Vec<StepChange>) {
        let pos = match self.position(&card) {
            Ok(i) if self.cards[i].key() == card.key() => return,
            Ok(i) => {
                self.cards.remove(i);
                // A step issued at the card is issued again at its new instant.
                for s in self.steps.iter_mut() {
                    if s.card.as_ref() == Some(&card.id) {
                        s.card = None;
                    }
                }
                self.cards.partition_point(|c| c.key() < card.key())
            }
            Err(pos) => pos,
        };
        if self.cards.len() == self.cards.capacity() {
            // The cards of a year are kept: grow by an eighth rather than double, so a busy
            // ladder holds ≈ 6 % spare room instead of ≈ 25 %; growth stays amortised O(1)
            // per card, beside the O(n) shift of a sorted insert.
            self.cards.reserve_exact(self.cards.len() / 8 + 4);
        }
        self.cards.insert(pos, card.clone());
        self.settle(&card, None, out);
    }

    /// Take a retracted card off the count.
    pub fn remove(&mut self, card: Card, out: &mut Vec<StepChange>) {
        let Ok(pos) = self.position(&card) else {
            return;
        };
        let gone = self.cards.remove(pos);
        self.settle(&card, Some(&gone), out);
    }

    fn position(&self, card: &Card) -> Result<usize, usize> {
        // Ids are unique per card; the instant only orders them.
        if let Some(i) = self.cards.iter().position(|c| c.id == card.id) {
            return Ok(i);
        }
        Err(self.cards.partition_point(|c| c.key() < card.key()))
    }

    /// Bring every step in line with the cards on record; `cause` is the card just added or
    /// taken off (`removed`, the record it had, which a step issued at it still names).
    fn settle(&mut self, cause: &Card, removed: Option<&Card>, out: &mut Vec<StepChange>) {
        let find = |cards: &[Card], id: Option<&CardId>| -> Card {
            cards
                .iter()
                .chain(removed)
                .find(|c| Some(&c.id) == id)
                .unwrap_or(cause)
                .clone()
        };
        for k in 0..STEPS {
            let want = self.cards.get(k).map(|c| c.id.clone());
            if want == self.steps[k].card {
                continue;
            }
            let issued = &self.steps[k];
            let revision = match (&want, issued.emitted) {
                (_, false) => 0,
                (Some(_), true) => revision::fired_after(issued.revision),
                (None, true) => revision::ended_after(issued.revision),
            };
            let step = (k + 1) as u8;
            let change = match &want {
                Some(id) => StepChange::Issue {
                    step,
                    card: find(&self.cards, Some(id)),
                    revision,
                },
                None => StepChange::Retract {
                    step,
                    card: find(&self.cards, issued.card.as_ref()),
                    revision,
                    because: cause.clone(),
                },
            };
            out.push(change);
            self.steps[k] = Issued {
                card: want,
                revision,
                emitted: true,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card(id: &str, at: T32) -> Card {
        Card {
            at,
            id: CardId::new(id),
            what: What::Alert {
                rule: Rule::AcceptedOutsideHall,
                level: Level::Yellow,
            },
            detail: None,
            center_id: 0,
            region: 1,
            department: NONE,
            window_id: NONE,
        }
    }

    fn summary(changes: &[StepChange]) -> Vec<String> {
        changes
            .iter()
            .map(|c| match c {
                StepChange::Issue {
                    step,
                    card,
                    revision,
                } => format!("issue {step} at {} r{revision}", card.id),
                StepChange::Retract {
                    step,
                    card,
                    revision,
                    because,
                } => format!(
                    "retract {step} (was {}) r{revision} because {}",
                    card.id, because.id
                ),
            })
            .collect()
    }

    #[test]
    fn a_card_stays_small() {
        // A ladder keeps every card of its year (issue 23: 80 bytes before, 64 now).
        assert!(
            std::mem::size_of::<Card>() <= 64,
            "{}",
            std::mem::size_of::<Card>()
        );
    }

    #[test]
    fn a_complaint_card_keeps_its_complaint_and_event_ids() {
        let c = Card::complaint(5, "TS-1:2", "ev-9".into(), [0, 1, NONE, 3]);
        assert_eq!(c.complaint_id(), "TS-1:2");
        assert_eq!(c.id.to_string(), "complaint:TS-1:2");
        assert_eq!(c.detail.as_deref(), Some("ev-9"));
        assert_eq!((c.department, c.window_id), (NONE, 3));
    }

    #[test]
    fn card_ids_keep_their_text_and_its_order() {
        let ids = [
            "00ff00000000000000000000000000ab",
            "c3000000000000000000000000000000",
            "complaint:TS-1",
            "ffffffffffffffffffffffffffffffff",
            "0123456789ABCDEF0123456789ABCDEF",
            "a",
        ];
        let parsed: Vec<CardId> = ids.iter().map(|i| CardId::new(i)).collect();
        for (id, p) in ids.iter().zip(&parsed) {
            assert_eq!(p.to_string(), *id);
            assert!(p == *id);
        }
        assert!(matches!(parsed[0], CardId::Hex(_)));
        assert!(
            matches!(parsed[4], CardId::Text(_)),
            "upper case is not an alert id"
        );
        for (a, pa) in ids.iter().zip(&parsed) {
            for (b, pb) in ids.iter().zip(&parsed) {
                assert_eq!(pa.cmp(pb), a.cmp(b), "{a} vs {b}");
            }
        }
    }

    /// A correction moves a card (same id, another instant): the steps follow its new place.
    #[test]
    fn a_moved_card_moves_its_steps() {
        let mut l = Ladder::default();
        let mut out = Vec::new();
        l.add(card("a", 10), &mut out);
        l.add(card("b", 20), &mut out);
        out.clear();
        // The same card again at its instant changes nothing.
        l.add(card("a", 10), &mut out);
        assert!(out.is_empty());
        // `a` moved after `b`: step 1 now sits at b, step 2 at a (re-issued, higher revisions).
        l.add(card("a", 30), &mut out);
        assert_eq!(summary(&out), ["issue 1 at b r3", "issue 2 at a r3"]);
        out.clear();
        // Moved within its place: the step issued at it is issued again at the new instant.
        l.add(card("a", 25), &mut out);
        assert_eq!(summary(&out), ["issue 2 at a r4"]);
    }

    #[test]
    fn steps_one_to_four_then_nothing() {
        let mut l = Ladder::default();
        let mut out = Vec::new();
        for (i, id) in ["a", "b", "c", "d", "e"].iter().enumerate() {
            l.add(card(id, 10 * i as T32), &mut out);
        }
        assert_eq!(
            summary(&out),
            [
                "issue 1 at a r0",
                "issue 2 at b r0",
                "issue 3 at c r0",
                "issue 4 at d r0"
            ]
        );
    }

    #[test]
    fn a_retracted_card_takes_back_the_step_it_reached_and_moves_the_later_ones() {
        let mut l = Ladder::default();
        let mut out = Vec::new();
        for (i, id) in ["a", "b", "c"].iter().enumerate() {
            l.add(card(id, 10 * i as T32), &mut out);
        }
        out.clear();
        l.remove(card("b", 10), &mut out);
        // Without b, step 2 is reached at c and step 3 not at all.
        assert_eq!(
            summary(&out),
            ["issue 2 at c r3", "retract 3 (was c) r2 because b"]
        );
        out.clear();
        l.add(card("d", 40), &mut out);
        assert_eq!(summary(&out), ["issue 3 at d r3"], "reached again");
    }

    #[test]
    fn late_cards_give_the_steps_in_order_of_time_whatever_the_arrival() {
        let ids = [("a", 5), ("b", 1), ("c", 9), ("d", 3)];
        let mut in_order = Ladder::default();
        let mut sorted = ids.to_vec();
        sorted.sort_by_key(|c| c.1);
        let mut sink = Vec::new();
        for (id, at) in sorted {
            in_order.add(card(id, at), &mut sink);
        }
        let mut late = Ladder::default();
        for (id, at) in ids {
            late.add(card(id, at), &mut sink);
        }
        let cards = |l: &Ladder| -> Vec<Option<String>> {
            l.steps
                .iter()
                .map(|s| s.card.as_ref().map(CardId::to_string))
                .collect()
        };
        assert_eq!(cards(&late), cards(&in_order));
        assert_eq!(
            cards(&late),
            [
                Some("b".into()),
                Some("d".into()),
                Some("a".into()),
                Some("c".into())
            ]
        );
    }
}
