//! Jurisdiction: every id an event carries belongs to a region and a centre, and an event whose
//! ids cross jurisdictions is refused before it can change anything.
//!
//! ```text
//! event ─ center_id ∈ region? ─ window_id ∈ centre? ─ staff_id ∈ centre? ─ case / complaint /
//!          (windows.csv)          (windows.csv)         (staff.csv)          rating opened here?
//! ```
//! A publisher is trusted for the regions its account covers, and that is checked on the event's
//! `region` field only (dashboard-api). So the region field must decide everything the event can
//! reach; this module makes it so:
//! - **Listed ids are bound by the reference.** A centre belongs to the region of its windows, a
//!   window to its centre, a staff member to their home centre ([`crate::reference::Staff`]:
//!   window, `center_id` column, or the one centre of their department). Naming another
//!   jurisdiction's centre, window or staff member is `region_mismatch`.
//! - **Unlisted ids** of a kind the reference lists are refused (`unknown_id`) unless the policy
//!   says `accept_unlisted_ids = true`; then, as for every id of a kind the reference does not
//!   list at all, the first accepted event binds the id to its centre ([`Bindings`]), and later
//!   events from another centre are refused. (First use binds: whoever names an unlisted id first
//!   owns it, which is why listing them is the default.)
//! - **Cases, complaints and ratings are keyed within their region** (`Keyed::scope`), so the same
//!   办件编号 sent by two regions names two cases: no event of one region can reach, complete or
//!   retract another region's case, whatever id it carries. Refusing instead would let one region
//!   squat another's future case ids. Within a region, a case belongs to the centre of its first
//!   event; another centre's event for it is refused (a transfer to another department stays
//!   possible, since departments are not jurisdictions).
//! - **Event ids** are unique per (region, source) ([`super::table::Dedup::hash`]): re-using
//!   another region's or source's `event_id` makes nothing a duplicate.
//!
//! Alert ids include the region (`crate::alert::alert_id`), so stores that keep one row per
//! alert id never let one region's alert replace another's.

use hashbrown::HashMap;

use crate::event::{Body, Event};

use super::table::{Sym, NONE};
use super::{Engine, Rejection};

/// What kind of id a binding is for.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
enum Tag {
    /// A centre, bound to a region.
    #[default]
    Center,
    /// A window, bound to a centre.
    Window,
    /// A staff member, bound to a centre.
    Staff,
}

/// Jurisdictions learnt from events for ids the reference does not list: id → owner (a region
/// for a centre, a centre for a window or staff member), as symbols. Part of the snapshot.
#[derive(Debug, Clone, Default)]
pub struct Bindings(HashMap<(Tag, Sym), Sym>);

impl serde::Serialize for Bindings {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut entries: Vec<(Tag, Sym, Sym)> =
            self.0.iter().map(|(&(t, id), &o)| (t, id, o)).collect();
        // Sorted, so that equal states give equal snapshots.
        entries.sort_unstable_by_key(|&(t, id, _)| (t as u8, id));
        entries.serialize(s)
    }
}

impl<'de> serde::Deserialize<'de> for Bindings {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let entries = Vec::<(Tag, Sym, Sym)>::deserialize(d)?;
        Ok(Bindings(
            entries.into_iter().map(|(t, id, o)| ((t, id), o)).collect(),
        ))
    }
}

fn mismatch(field: &'static str, message: String) -> Rejection {
    Rejection::RegionMismatch { field, message }
}

/// Ids of an event the reference does not list, with the owner each would be bound to: the
/// bindings the event makes if it is accepted ([`Engine::bind_unlisted`]).
#[derive(Debug, Default)]
pub struct Unlisted<'e> {
    items: [(Tag, &'e str, &'e str, &'static str); 3],
    len: usize,
}

impl<'e> Unlisted<'e> {
    fn push(&mut self, tag: Tag, id: &'e str, owner: &'e str, field: &'static str) {
        // One entry per kind of id (centre, window, staff): never more than three.
        if self.len < self.items.len() {
            self.items[self.len] = (tag, id, owner, field);
            self.len += 1;
        }
    }

    fn iter(&self) -> impl Iterator<Item = &(Tag, &'e str, &'e str, &'static str)> {
        self.items[..self.len].iter()
    }
}

/// The checks that need only the reference data: the event's `center_id` in its `region`, its
/// `window_id` and `staff_id` in its centre, in the order of SPEC §3's fields. An id the
/// reference does not list is refused (`unknown_id`) where the reference lists that kind and
/// `accept_unlisted` is false; otherwise it is returned, to be bound by the engine. The
/// dashboard API runs this at the door (with `accept_unlisted`, leaving unlisted ids to the
/// engine's policy), so a publisher hears of a mismatch in its answer.
pub fn check_listed<'e>(
    reference: &crate::Reference,
    accept_unlisted: bool,
    ev: &'e Event<'_>,
) -> Result<Unlisted<'e>, Rejection> {
    check_listed_but(reference, accept_unlisted, |_| false, ev)
}

/// [`check_listed`], with staff ids that `nobody` names (placeholder accounts, policy
/// `placeholder_staff`) left unchecked and unbound: they are nobody's, in any centre.
pub fn check_listed_but<'e>(
    reference: &crate::Reference,
    accept_unlisted: bool,
    nobody: impl Fn(&str) -> bool,
    ev: &'e Event<'_>,
) -> Result<Unlisted<'e>, Rejection> {
    let mut unlisted = Unlisted::default();
    let (region, center): (&'e str, &'e str) = (&ev.region, &ev.center_id);

    // center_id: the region of its windows. A listed window of this centre and region
    // vouches for it (below), which saves a look-up on most events.
    let window = ev.window_id.as_deref();
    let vouched = window
        .and_then(|w| reference.windows.get(w))
        .is_some_and(|w| w.center_id == center && w.region == region);
    if !vouched {
        match reference.center_region(center) {
            Some(r) if r == region => {}
            Some(r) => {
                return Err(mismatch(
                    "center_id",
                    format!("centre {center} belongs to region {r}, not to {region}"),
                ))
            }
            None if reference.lists_centers() && !accept_unlisted => {
                return Err(unlisted_id(
                    "center_id",
                    format!("centre {center} has no window in windows.csv"),
                ))
            }
            None => unlisted.push(Tag::Center, center, region, "center_id"),
        }
    }

    // window_id: its centre.
    if let Some(window) = window.filter(|_| !vouched) {
        match reference.windows.get(window) {
            Some(w) if w.center_id == center => {}
            Some(w) => {
                return Err(mismatch(
                    "window_id",
                    format!(
                        "window {window} belongs to centre {} (region {}), not to {center}",
                        w.center_id, w.region
                    ),
                ))
            }
            None if !reference.windows.is_empty() && !accept_unlisted => {
                return Err(unlisted_id(
                    "window_id",
                    format!("window {window} is not in windows.csv"),
                ))
            }
            None => unlisted.push(Tag::Window, window, center, "window_id"),
        }
    }

    // staff_id: their home centre.
    if let Some(staff) = ev.staff_id.as_deref().filter(|s| !nobody(s)) {
        match reference.staff.get(staff).map(|s| s.center_id.as_deref()) {
            Some(Some(home)) if home == center => {}
            Some(Some(home)) => {
                return Err(mismatch(
                    "staff_id",
                    format!(
                        "staff member {staff} works for centre {home}{}, not for {center}",
                        reference
                            .center_region(home)
                            .map(|r| format!(" (region {r})"))
                            .unwrap_or_default()
                    ),
                ))
            }
            None if !reference.staff.is_empty() && !accept_unlisted => {
                return Err(unlisted_id(
                    "staff_id",
                    format!("staff member {staff} is not in staff.csv"),
                ))
            }
            Some(None) | None => unlisted.push(Tag::Staff, staff, center, "staff_id"),
        }
    }
    Ok(unlisted)
}

impl Engine {
    /// Check every id of `ev` against the jurisdiction of its `region` and `center_id`, in the
    /// order of SPEC §3's fields: what the reference binds ([`check_listed`]), then what
    /// earlier events bound, then the case, complaint or rating. Returns the unlisted ids, to
    /// be bound if the event is accepted.
    pub(super) fn check_jurisdiction<'e>(
        &self,
        ev: &'e Event<'_>,
        case_hash: Option<super::table::KeyHash>,
    ) -> Result<Unlisted<'e>, Rejection> {
        let policy = &self.policy;
        let nobody = |s: &str| policy.is_placeholder(s);
        let unlisted = check_listed_but(&self.reference, policy.accept_unlisted_ids, nobody, ev)?;
        for &(tag, id, owner, field) in unlisted.iter() {
            self.check_binding(tag, id, owner, field)?;
        }
        let center = &*ev.center_id;

        // The case, complaint or rating: opened by this centre, if opened at all.
        let (center_sym, region_sym) = (self.center, self.region);
        let opened_by = match &ev.body {
            Body::ComplaintFiled { complaint_id, .. }
            | Body::ComplaintResolved { complaint_id, .. } => {
                let key = super::matter::key('c', complaint_id);
                self.matters
                    .find(&key, region_sym)
                    .and_then(|slot| self.matters.get(slot))
                    .map(|m| ("complaint_id", complaint_id.as_ref(), m.who.center))
            }
            Body::EvaluationSubmitted { evaluation_id, .. }
            | Body::EvaluationRectified { evaluation_id } => {
                let key = super::matter::key('e', evaluation_id);
                self.matters
                    .find(&key, region_sym)
                    .and_then(|slot| self.matters.get(slot))
                    .map(|m| ("evaluation_id", evaluation_id.as_ref(), m.who.center))
            }
            body if body.kind().is_case() || matches!(body, Body::FeeCharged { .. }) => ev
                .case_id
                .as_deref()
                .and_then(|id| {
                    // A case event's hash is computed once, in `on_event`; a fee's here.
                    let slot = match case_hash {
                        Some(h) => self.cases.find_hashed(h, id, region_sym),
                        None => self.cases.find(id, region_sym),
                    };
                    Some((id, slot?))
                })
                .and_then(|(id, slot)| Some(("case_id", id, self.cases.get(slot)?.who.center))),
            _ => None,
        };
        if let Some((field, id, owner)) = opened_by {
            if owner != NONE && owner != center_sym {
                let owner = self.symbols.get(owner).unwrap_or_default();
                return Err(mismatch(
                    field,
                    format!("{id} belongs to centre {owner}, not to {center}"),
                ));
            }
        }
        Ok(unlisted)
    }

    /// Check `id` (of kind `tag`) against what earlier events bound it to.
    fn check_binding(
        &self,
        tag: Tag,
        id: &str,
        owner: &str,
        field: &'static str,
    ) -> Result<(), Rejection> {
        let bound = self
            .symbols
            .lookup(id)
            .and_then(|id| self.bound.0.get(&(tag, id)))
            .and_then(|&o| self.symbols.get(o));
        match bound {
            Some(first) if first != owner => {
                let what = match tag {
                    Tag::Center => "region",
                    Tag::Window | Tag::Staff => "centre",
                };
                Err(mismatch(
                    field,
                    format!(
                        "{id} is not in the reference data and was first used by {what} {first}, \
                         not {owner}; list it in the reference to say where it belongs"
                    ),
                ))
            }
            _ => Ok(()),
        }
    }

    /// Bind the unlisted ids of an accepted event to their owners (the first binding stays).
    pub(super) fn bind_unlisted(&mut self, unlisted: &Unlisted<'_>) {
        for &(tag, id, owner, _) in unlisted.iter() {
            let id = self.symbols.intern(id);
            let owner = self.symbols.intern(owner);
            self.bound.0.entry((tag, id)).or_insert(owner);
        }
    }
}

fn unlisted_id(field: &'static str, message: String) -> Rejection {
    Rejection::UnlistedId {
        field,
        message: format!(
            "{message}; ids of this kind must be listed in the reference data (or set \
             accept_unlisted_ids = true in policy.toml)"
        ),
    }
}
