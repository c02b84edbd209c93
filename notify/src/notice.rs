//! An alert as notifications see it: the SPEC §7 JSON (from the alerts topic, or the engine's
//! `Alert` serialised), with the few fields routing and messages need pulled out. The wire
//! format is the boundary: `dashboard_api::model::AlertDoc` reads the same JSON for the API, and
//! this crate reads it without depending on the API crate (or the API on this one).

use serde::Deserialize;

/// One alert line (a firing, a retraction or a clearing; or a firing sent again with its case's
/// new state, which de-duplicates as the firing it revises).
#[derive(Debug, Clone, Deserialize)]
pub struct Notice {
    /// Deterministic id (rule, level, subject).
    pub alert_id: String,
    /// Rule name (`case.overdue`).
    pub rule: String,
    /// `warning`, `yellow` or `red`.
    pub level: String,
    /// `open`, `retracted` or `cleared`.
    pub status: String,
    /// RFC 3339, event time.
    pub fired_at: String,
    /// Service centre.
    pub center_id: String,
    /// GB/T 2260 code.
    pub region: String,
    /// Department code.
    #[serde(default)]
    pub department: Option<String>,
    /// Window.
    #[serde(default)]
    pub window_id: Option<String>,
    /// Staff number (工号).
    #[serde(default)]
    pub staff_id: Option<String>,
    /// Case number (办件编号).
    #[serde(default)]
    pub case_id: Option<String>,
    /// Item code (事项编码).
    #[serde(default)]
    pub item_code: Option<String>,
    /// The engine's zh-CN sentence.
    #[serde(default)]
    pub message: String,
    /// The computation (deadline, limits).
    #[serde(default)]
    pub evidence: serde_json::Value,
    /// The engine's revision (0 fired, 1 the same alert with its case's new state, 2+ ended,
    /// 3+ fired again, e.g. a ladder step reached again).
    #[serde(default)]
    pub revision: u8,
    /// A revision numbered above 1 (the engine's `Alert::restated`): the same firing with its
    /// subject's new state, never a message of its own.
    #[serde(default)]
    pub restated: bool,
    /// The whole alert as received (the generic webhook forwards it).
    #[serde(skip)]
    pub raw: serde_json::Value,
}

impl Notice {
    /// Parse the SPEC §7 JSON.
    pub fn from_json(bytes: &[u8]) -> Result<Notice, serde_json::Error> {
        let raw: serde_json::Value = serde_json::from_slice(bytes)?;
        Notice::from_value(raw)
    }

    /// From an already parsed alert.
    pub fn from_value(raw: serde_json::Value) -> Result<Notice, serde_json::Error> {
        let mut n: Notice = serde_json::from_value(raw.clone())?;
        n.raw = raw;
        Ok(n)
    }

    /// The level's rank: 预警 0, 黄牌 1, 红牌 2 (unknown levels rank as 预警).
    pub fn level_rank(&self) -> u8 {
        match self.level.as_str() {
            "red" => 2,
            "yellow" => 1,
            _ => 0,
        }
    }

    /// The status as the delivery ledger keys it: the status, with the revision once the alert
    /// has fired again (3 or more), so a step reached again — and its later retraction — is a
    /// message of its own, while a re-delivery or a state revision of the same line (revision
    /// 1, or `restated`) is not.
    pub fn ledger_status(&self) -> String {
        if self.revision >= 3 && !self.restated {
            format!("{}@{}", self.status, self.revision)
        } else {
            self.status.clone()
        }
    }

    /// Whether this line retracts an alert.
    pub fn is_retraction(&self) -> bool {
        self.status == "retracted"
    }

    /// Whether this line clears a warning (系统自动解除: its case finished in time).
    pub fn is_clearing(&self) -> bool {
        self.status == "cleared"
    }

    /// Whether this line ends its alert (retracted or cleared): Alertmanager gets `endsAt`.
    pub fn ends(&self) -> bool {
        self.is_retraction() || self.is_clearing()
    }

    /// When the alert ended, for a retraction or a clearing (Unix seconds, event time).
    pub fn end_secs(&self) -> i64 {
        if self.is_clearing() {
            let cleared = self
                .raw
                .get("cleared_at")
                .or_else(|| {
                    self.evidence
                        .get("cleared_by")
                        .and_then(|c| c.get("occurred_at"))
                })
                .and_then(|t| t.as_str())
                .and_then(|t| rules::time::parse_rfc3339(t).ok());
            if let Some(t) = cleared {
                return t.0;
            }
        }
        crate::payload::retraction_end(self)
    }

    /// The alert without what a re-send does not need: of the evidence only the deadline, of
    /// the raw JSON only `source`. What an Alertmanager channel keeps per active alert, which
    /// in a province can be a hundred thousand.
    pub fn slim(&self) -> Notice {
        let keep = |v: &serde_json::Value, keys: &[&str]| -> serde_json::Value {
            keys.iter()
                .filter_map(|k| v.get(*k).map(|x| ((*k).to_string(), x.clone())))
                .collect::<serde_json::Map<_, _>>()
                .into()
        };
        Notice {
            evidence: keep(&self.evidence, &["deadline_date", "deadline"]),
            raw: keep(&self.raw, &["source"]),
            ..self.clone()
        }
    }

    /// The deadline the alert is about, when its evidence names one (a date, or an instant).
    pub fn deadline(&self) -> Option<String> {
        let e = &self.evidence;
        e.get("deadline_date")
            .or_else(|| e.get("deadline"))
            .and_then(|v| v.as_str())
            .map(|s| s.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::Notice;

    fn notice(revision: u8, restated: bool) -> Notice {
        Notice::from_value(serde_json::json!({
            "alert_id": "a", "rule": "case.overdue", "level": "yellow", "status": "open",
            "fired_at": "2026-03-10T09:00:00+08:00", "center_id": "C", "region": "430626",
            "revision": revision, "restated": restated,
        }))
        .expect("notice")
    }

    #[test]
    fn a_restated_line_is_keyed_as_the_firing_it_restates() {
        assert_eq!(notice(0, false).ledger_status(), "open");
        assert_eq!(notice(1, false).ledger_status(), "open", "a state revision");
        assert_eq!(notice(4, false).ledger_status(), "open@4", "fired again");
        assert_eq!(
            notice(4, true).ledger_status(),
            "open",
            "the same firing with its case's new state, after a correction"
        );
    }
}
