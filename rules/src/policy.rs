//! `policy.toml`: every threshold of the rule catalogue (SPEC §6), with its default.
//!
//! The keys are exactly the names SPEC §6 gives in parentheses, flat at the top level of the
//! file. Unknown keys are refused (a typo must not silently fall back to a default).

use serde::Deserialize;

use crate::calendar::line_of;
use crate::reference::ReferenceError;

/// Thresholds and switches of the rules. `Policy::default()` is the SPEC's defaults.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    /// 预警: working days before the promised last day at which the warning fires (1 = at 00:00
    /// of the last day; 0 disables warnings).
    pub warn_before_working_days: u32,
    /// 督办: working days after the promised deadline until the supervision deadline (红牌).
    pub supervise_working_days: u32,
    /// Whether a 补正 after acceptance stops the clock (practice differs by province).
    pub pause_on_supplement: bool,
    /// 行政许可法 §32: working days to accept, reject or request 补正 after a submission.
    pub acceptance_working_days: u32,
    /// 以票管审: working days after a fee within which its case must be accepted in the hall.
    pub fee_match_working_days: u32,
    /// Minutes after a completion within which its acceptance must arrive.
    pub sequence_grace_minutes: u32,
    /// 事后补录: completions by one staff member that make a batch.
    pub batch_min_cases: u32,
    /// 事后补录: the sliding window, in minutes.
    pub batch_window_minutes: u32,
    /// 事后补录: a case counts if accepted less than this many seconds before completion.
    pub batch_max_case_seconds: u32,
    /// Hours between `occurred_at` and report beyond which an event is late (迟报).
    pub late_report_hours: u32,
    /// `data.corrected`: hours after the original's report within which a correction
    /// (`supersedes`, `event.withdrawn`) is an ordinary fix, not a finding.
    pub correction_grace_hours: u32,
    /// Working days to resolve a complaint.
    pub complaint_working_days: u32,
    /// Working days to rectify a bad evaluation (差评整改).
    pub rectify_working_days: u32,
    /// Substantiated complaints against one staff member within 365 days that make a red card.
    pub repeat_staff_count: u32,
    /// Complaints or bad evaluations against one window within 30 days that make a yellow card.
    pub repeat_window_count: u32,
    /// Number of latest evaluations of a window the satisfaction rate is taken over.
    pub satisfaction_sample: u32,
    /// Satisfaction rate (share of scores ≥ 4) below which a window is flagged.
    pub satisfaction_floor: f64,
    /// 空岗: minutes an opened window may stay without staff during office hours.
    pub unstaffed_minutes: u32,
    /// Office hours, e.g. `"09:00-12:00,13:30-17:30"`.
    pub office_hours: String,
    /// Minutes a queue ticket may wait before it is called.
    pub max_wait_minutes: u32,
    /// Minutes an `occurred_at` may lie in the future of its receipt before it is invalid.
    pub future_skew_minutes: u32,
    /// How many recent `event_id`s are remembered to drop duplicates (bounded memory).
    pub dedup_capacity: u32,
    /// Days a finished case is kept so late events and retractions still find it.
    pub closed_case_retention_days: u32,
    /// Days a forgotten case that was accepted in the hall is still remembered (12 bytes), so a
    /// fee charged later for it (e.g. at 出件) is matched (以票管审).
    pub fee_case_memory_days: u32,
    /// Days after its red card a complaint never resolved (or a rating never rectified) is still
    /// kept for a late resolution, before it is forgotten.
    pub stale_matter_days: u32,
    /// 绩效 monthly score: points deducted per 预警.
    pub score_warning_deduction: f64,
    /// Points deducted per 黄牌.
    pub score_yellow_deduction: f64,
    /// Points deducted per 红牌.
    pub score_red_deduction: f64,
    /// Points deducted per substantiated complaint (有效投诉).
    pub score_complaint_deduction: f64,
    /// 承诺提速率 from which the speed-up bonus is given.
    pub score_speedup_threshold: f64,
    /// Bonus at that threshold (+1 per further whole 10 %).
    pub score_speedup_bonus: f64,
    /// 提前办结率 from which a bonus of 1 is given (+1 per further whole 10 %).
    pub score_early_threshold: f64,
    /// Largest total bonus.
    pub score_bonus_cap: f64,
    /// 590: the 现场办结率 target.
    pub on_site_target: f64,
    /// Whether events may name a centre, window or staff member that the reference data does
    /// not list although it lists that kind (docs/RULES.md, "Jurisdiction"). `false` refuses
    /// them as `unknown_id`; `true` binds such an id to the centre of the first event that
    /// names it.
    pub accept_unlisted_ids: bool,
    /// Keep every event of each case held in memory (about 40 bytes an event), so a correction
    /// (`supersedes`, `event.withdrawn`) rebuilds the case as if the corrected event never
    /// happened (SPEC §3). `false` saves the memory and refuses corrections of applied events.
    pub case_history: bool,
    /// `source.silent` (SPEC §6, §10): minutes of office time without a report after which a
    /// source is silent; 0 turns it off.
    pub source_silence_minutes: u32,
    /// `source.not_live`: the share of a source's case events (completions aside) reported
    /// after their case's completion above which the source is not live.
    pub not_live_share: f64,
    /// `hall.stage_fabricated`: stages that all lie within this many seconds before their
    /// case's completion and were reported after it are 补录的审批环节.
    pub fabricated_stage_seconds: u32,
    /// `data.placeholder_staff`: staff ids that are nobody. An entry `X+` (one character and
    /// `+`) matches an id made only of that character (`0+`: `000000`); any other entry
    /// matches exactly.
    pub placeholder_staff: Vec<String>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            warn_before_working_days: 1,
            supervise_working_days: 3,
            pause_on_supplement: true,
            acceptance_working_days: 5,
            fee_match_working_days: 1,
            sequence_grace_minutes: 60,
            batch_min_cases: 5,
            batch_window_minutes: 10,
            batch_max_case_seconds: 120,
            late_report_hours: 24,
            correction_grace_hours: 24,
            complaint_working_days: 5,
            rectify_working_days: 5,
            repeat_staff_count: 2,
            repeat_window_count: 3,
            satisfaction_sample: 50,
            satisfaction_floor: 0.95,
            unstaffed_minutes: 15,
            office_hours: "09:00-12:00,13:30-17:30".to_string(),
            max_wait_minutes: 30,
            future_skew_minutes: 10,
            dedup_capacity: 1 << 20,
            closed_case_retention_days: 7,
            fee_case_memory_days: 30,
            stale_matter_days: 90,
            score_warning_deduction: 3.0,
            score_yellow_deduction: 5.0,
            score_red_deduction: 10.0,
            score_complaint_deduction: 10.0,
            score_speedup_threshold: 0.3,
            score_speedup_bonus: 3.0,
            score_early_threshold: 0.1,
            score_bonus_cap: 10.0,
            on_site_target: 0.9,
            accept_unlisted_ids: false,
            case_history: true,
            source_silence_minutes: 60,
            not_live_share: 0.5,
            fabricated_stage_seconds: 60,
            placeholder_staff: vec!["0+".into(), "8+".into(), "自动预审".into()],
        }
    }
}

/// Office hours as minutes after local midnight, `[start, end)` per span.
pub type OfficeHours = Vec<(u32, u32)>;

impl Policy {
    /// Parse and validate a `policy.toml`; `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<Policy, ReferenceError> {
        let policy: Policy = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
            ReferenceError::new(file, line, e.message().trim().to_string())
        })?;
        policy
            .validate()
            .map_err(|(key, reason)| ReferenceError::new(file, line_of(text, key), reason))?;
        Ok(policy)
    }

    /// Check values that parse but make no sense; returns the offending key and why.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if !(0.0..=1.0).contains(&self.satisfaction_floor) {
            return Err((
                "satisfaction_floor",
                format!(
                    "satisfaction_floor {} must be between 0 and 1",
                    self.satisfaction_floor
                ),
            ));
        }
        for (key, v) in [
            ("score_speedup_threshold", self.score_speedup_threshold),
            ("score_early_threshold", self.score_early_threshold),
            ("on_site_target", self.on_site_target),
            ("not_live_share", self.not_live_share),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err((key, format!("{key} {v} must be between 0 and 1")));
            }
        }
        for (key, v) in [
            ("score_warning_deduction", self.score_warning_deduction),
            ("score_yellow_deduction", self.score_yellow_deduction),
            ("score_red_deduction", self.score_red_deduction),
            ("score_complaint_deduction", self.score_complaint_deduction),
            ("score_speedup_bonus", self.score_speedup_bonus),
            ("score_bonus_cap", self.score_bonus_cap),
        ] {
            if !(0.0..=100.0).contains(&v) {
                return Err((key, format!("{key} {v} must be between 0 and 100 points")));
            }
        }
        let positive = [
            ("acceptance_working_days", self.acceptance_working_days),
            ("batch_min_cases", self.batch_min_cases),
            ("satisfaction_sample", self.satisfaction_sample),
            ("dedup_capacity", self.dedup_capacity),
            ("repeat_staff_count", self.repeat_staff_count),
            ("repeat_window_count", self.repeat_window_count),
        ];
        if let Some((key, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err((key, format!("{key} must be at least 1")));
        }
        self.office_hours().map_err(|e| ("office_hours", e))?;
        for entry in &self.placeholder_staff {
            let repeat = entry.strip_suffix('+');
            let ok = match repeat {
                Some(c) => c.chars().count() == 1,
                None => !entry.trim().is_empty() && entry.trim() == entry,
            };
            if !ok {
                return Err((
                    "placeholder_staff",
                    format!(
                        "placeholder_staff entry {entry:?}: expected a staff id, or one character \
                         followed by + (\"0+\" = ids made only of 0)"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Whether `staff_id` is a placeholder account (`placeholder_staff`): nobody.
    pub fn is_placeholder(&self, staff_id: &str) -> bool {
        self.placeholder_pattern(staff_id).is_some()
    }

    /// The `placeholder_staff` entry `staff_id` matches, if any.
    pub fn placeholder_pattern(&self, staff_id: &str) -> Option<&str> {
        // Nearly every id is a real one: an entry whose first byte differs cannot match it,
        // which one compare tells before the entry is read further.
        let first = staff_id.as_bytes().first()?;
        self.placeholder_staff
            .iter()
            .filter(|p| p.as_bytes().first() == Some(first))
            .find(|p| match p.strip_suffix('+') {
                // `c` repeated (`0+`: 0, 00, 000…). Compared chunk by chunk, not with
                // `split(c)`, whose substring searcher was 5 % of the engine's work per event.
                Some(c) if !c.is_empty() => {
                    !staff_id.is_empty()
                        && staff_id.len().is_multiple_of(c.len())
                        && staff_id
                            .as_bytes()
                            .chunks_exact(c.len())
                            .all(|chunk| chunk == c.as_bytes())
                }
                _ => p.as_str() == staff_id,
            })
            .map(String::as_str)
    }

    /// The parsed `office_hours`.
    pub fn office_hours(&self) -> Result<OfficeHours, String> {
        let hm = |s: &str| -> Option<u32> {
            let (h, m) = s.trim().split_once(':')?;
            let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
            (h <= 24 && m < 60 && h * 60 + m <= 24 * 60).then_some(h * 60 + m)
        };
        let mut spans = Vec::new();
        for span in self.office_hours.split(',') {
            let parsed = span
                .split_once('-')
                .and_then(|(a, b)| Some((hm(a)?, hm(b)?)))
                .filter(|(a, b)| a < b);
            match parsed {
                Some(s) if spans.last().is_none_or(|&(_, end)| end <= s.0) => spans.push(s),
                _ => {
                    return Err(format!(
                    "office_hours {:?}: expected ascending spans like \"09:00-12:00,13:30-17:30\"",
                    self.office_hours
                ))
                }
            }
        }
        Ok(spans)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_the_spec_defaults() {
        let p = Policy::parse("policy.toml", "").unwrap();
        assert_eq!(p, Policy::default());
        assert_eq!(p.warn_before_working_days, 1);
        assert_eq!(p.supervise_working_days, 3);
        assert_eq!(p.office_hours().unwrap(), vec![(540, 720), (810, 1050)]);
    }

    #[test]
    fn overrides_and_refuses_unknown_keys_with_line() {
        let p = Policy::parse("policy.toml", "warn_before_working_days = 2\n").unwrap();
        assert_eq!(p.warn_before_working_days, 2);
        let e = Policy::parse("policy.toml", "# c\nwarn_before_workdays = 2\n").unwrap_err();
        assert_eq!(e.line, Some(2));
        assert!(e.reason.contains("warn_before_workdays"), "{e}");
        let e = Policy::parse("policy.toml", "\n\nsupervise_working_days = \"x\"\n").unwrap_err();
        assert_eq!(e.line, Some(3), "{e}");
    }

    #[test]
    fn every_key_and_default_is_in_the_rules_document() {
        let doc = include_str!("../../docs/RULES.md");
        let defaults = serde_json::to_value(Policy::default()).unwrap();
        for (key, value) in defaults.as_object().unwrap() {
            let shown = match value {
                serde_json::Value::String(s) => format!("{s:?}"),
                other => other.to_string(),
            };
            let row = format!("| `{key}` | {shown} |");
            assert!(doc.contains(&row), "docs/RULES.md lacks the row {row}");
        }
    }

    #[test]
    fn placeholder_accounts_are_matched_by_pattern_or_exactly() {
        let p = Policy::default();
        for id in ["000000", "0", "888888", "自动预审"] {
            assert!(p.is_placeholder(id), "{id}");
        }
        for id in ["", "000800", "S001", "8888a", "自动预审1"] {
            assert!(!p.is_placeholder(id), "{id}");
        }
        assert_eq!(p.placeholder_pattern("0000"), Some("0+"));
        let e = Policy::parse("policy.toml", "\nplaceholder_staff = [\"00+\"]\n").unwrap_err();
        assert_eq!(e.line, Some(2), "{e}");
        let e = Policy::parse("policy.toml", "placeholder_staff = [\"\"]\n").unwrap_err();
        assert!(e.reason.contains("placeholder_staff"), "{e}");
    }

    #[test]
    fn refuses_values_that_make_no_sense() {
        let e = Policy::parse("policy.toml", "\nsatisfaction_floor = 95.0\n").unwrap_err();
        assert_eq!(e.line, Some(2));
        let e = Policy::parse("policy.toml", "office_hours = \"17:00-09:00\"\n").unwrap_err();
        assert!(e.reason.contains("office_hours"));
    }
}
