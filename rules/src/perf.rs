//! 绩效评估: the counts a store aggregates per department, window, staff member or item over a
//! period, the rates derived from them, the monthly 100-point score and the "590" check
//! (domain-notes §5; 德阳's 590 targets). Pure arithmetic: stores count, this module judges.

use serde::Serialize;

use crate::policy::Policy;

/// What a store counts for one key over a period (see each field for its source).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// The department, window, staff member or item ("" = not attributed).
    pub key: String,
    /// 受理数: cases accepted in the period.
    pub accepted: u64,
    /// 办结数: cases finished in the period (any result).
    pub completed: u64,
    /// Of those, finished before the promised deadline instant (按时).
    pub on_time: u64,
    /// Of those, finished before the promised last day (提前).
    pub early: u64,
    /// Of those, finished on the day of acceptance (现场办结).
    pub on_site: u64,
    /// 超时件数: finished after the promised deadline.
    pub late: u64,
    /// Working days used by the finished cases, summed (pauses excluded).
    pub days_used: u64,
    /// 承诺件 finished with a known legal limit (the base of 承诺提速率).
    pub speedup_cases: u64,
    /// Their legal days, summed.
    pub legal_days: u64,
    /// Their promised days, summed.
    pub promised_days: u64,
    /// 预警 alerts fired in the period (not retracted; ladder steps excluded).
    pub warnings: u64,
    /// 黄牌 alerts.
    pub yellows: u64,
    /// 红牌 alerts.
    pub reds: u64,
    /// 投诉数: complaints filed in the period.
    pub complaints: u64,
    /// 有效投诉数: complaints resolved as substantiated in the period.
    pub substantiated: u64,
    /// Ratings (好差评) given in the period.
    pub evaluations: u64,
    /// Of those, scored 4 or 5 (满意).
    pub satisfied: u64,
}

/// Rates derived from [`Counts`]; `None` where the base is zero.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Rates {
    /// 办结率 = completed / accepted.
    pub completion: Option<f64>,
    /// 按时办结率 = on_time / completed.
    pub on_time: Option<f64>,
    /// 提前办结率 = early / completed.
    pub early: Option<f64>,
    /// 现场办结率 = on_site / accepted.
    pub on_site: Option<f64>,
    /// 承诺提速率 = Σ(legal − promised) / Σ legal over 承诺件 with a legal limit.
    pub speedup: Option<f64>,
    /// Average working days used per finished case.
    pub avg_days_used: Option<f64>,
    /// 满意率 = satisfied / evaluations.
    pub satisfaction: Option<f64>,
}

fn ratio(n: u64, d: u64) -> Option<f64> {
    (d > 0).then(|| n as f64 / d as f64)
}

impl Counts {
    /// Add `c`'s counts to these (for totals; the key is kept).
    pub fn add(&mut self, c: &Counts) {
        self.accepted += c.accepted;
        self.completed += c.completed;
        self.on_time += c.on_time;
        self.early += c.early;
        self.on_site += c.on_site;
        self.late += c.late;
        self.days_used += c.days_used;
        self.speedup_cases += c.speedup_cases;
        self.legal_days += c.legal_days;
        self.promised_days += c.promised_days;
        self.warnings += c.warnings;
        self.yellows += c.yellows;
        self.reds += c.reds;
        self.complaints += c.complaints;
        self.substantiated += c.substantiated;
        self.evaluations += c.evaluations;
        self.satisfied += c.satisfied;
    }

    /// The rates.
    pub fn rates(&self) -> Rates {
        Rates {
            completion: ratio(self.completed, self.accepted),
            on_time: ratio(self.on_time, self.completed),
            early: ratio(self.early, self.completed),
            on_site: ratio(self.on_site, self.accepted),
            speedup: ratio(
                self.legal_days.saturating_sub(self.promised_days),
                self.legal_days,
            ),
            avg_days_used: ratio(self.days_used, self.completed),
            satisfaction: ratio(self.satisfied, self.evaluations),
        }
    }
}

/// A monthly score: 100 less deductions (not below 0), plus bonuses (capped).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Score {
    /// The score on the 100-point scale: 100 less the deductions, never below 0.
    pub score: f64,
    /// Points deducted for alerts and substantiated complaints.
    pub deducted: f64,
    /// Bonus for 承诺提速 and 提前办结 (at most `score_bonus_cap`), shown beside the score, never
    /// added into it: the score stays on its documented 100-point scale.
    pub bonus: f64,
}

/// Bonus for `rate` reaching `threshold`: `first`, plus `step` per further whole 10 %.
fn bonus(rate: Option<f64>, threshold: f64, first: f64, step: f64) -> f64 {
    match rate {
        Some(r) if r + 1e-9 >= threshold => first + step * ((r - threshold + 1e-9) / 0.1).floor(),
        _ => 0.0,
    }
}

/// The monthly 100-point score of `c` under the policy's `score_*` weights (domain-notes §5:
/// 预警 −3, 黄牌 −5, 红牌 −10; 承诺提速 ≥ 30 % +3 and +1 per further 10 %; 提前办结 ≥ 10 % +1
/// and +1 per further 10 %).
pub fn score(c: &Counts, p: &Policy) -> Score {
    let deducted = c.warnings as f64 * p.score_warning_deduction
        + c.yellows as f64 * p.score_yellow_deduction
        + c.reds as f64 * p.score_red_deduction
        + c.substantiated as f64 * p.score_complaint_deduction;
    let r = c.rates();
    let bonus = (bonus(
        r.speedup,
        p.score_speedup_threshold,
        p.score_speedup_bonus,
        1.0,
    ) + bonus(r.early, p.score_early_threshold, 1.0, 1.0))
    .min(p.score_bonus_cap);
    Score {
        score: (100.0 - deducted).max(0.0),
        deducted,
        bonus,
    }
}

/// 德阳's "590": every case on time (5 = 按时办结率 100 %), 现场办结率 ≥ 90 %, no 有效投诉 (0).
/// A target without a base (nothing finished, nothing accepted) is not judged (`None`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Check590 {
    /// 按时办结率 = 100 %.
    pub all_on_time: Option<bool>,
    /// 现场办结率 ≥ the policy's `on_site_target`.
    pub on_site: Option<bool>,
    /// 有效投诉 = 0.
    pub no_substantiated_complaints: bool,
    /// Every judged target met.
    pub pass: bool,
}

/// The 590 check of `c`.
pub fn check_590(c: &Counts, p: &Policy) -> Check590 {
    let r = c.rates();
    let all_on_time = r.on_time.map(|_| c.on_time == c.completed);
    let on_site = r.on_site.map(|x| x + 1e-9 >= p.on_site_target);
    let no_substantiated_complaints = c.substantiated == 0;
    Check590 {
        pass: all_on_time != Some(false) && on_site != Some(false) && no_substantiated_complaints,
        all_on_time,
        on_site,
        no_substantiated_complaints,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yulin_speedup_and_scores_by_hand() {
        // 玉林: average legal 23.98 days, promised 13.8 → (23.98 − 13.8) / 23.98 = 42.45 %.
        let c = Counts {
            speedup_cases: 100,
            legal_days: 2398,
            promised_days: 1380,
            accepted: 40,
            completed: 20,
            on_time: 19,
            early: 5,
            on_site: 36,
            late: 1,
            warnings: 2,
            yellows: 1,
            reds: 1,
            substantiated: 0,
            ..Counts::default()
        };
        let r = c.rates();
        assert!((r.speedup.unwrap() - 0.4245).abs() < 1e-4);
        assert_eq!(r.completion, Some(0.5));
        assert_eq!(r.on_site, Some(0.9));
        let p = Policy::default();
        // Deducted 2×3 + 5 + 10 = 21 → 79. Bonus: 提速 42.45 % ≥ 30 % → 3 + 1 (one further
        // whole 10 %); 提前 5/20 = 25 % ≥ 10 % → 1 + 1: 6, shown beside the 79, not in it.
        let s = score(&c, &p);
        assert_eq!((s.deducted, s.bonus, s.score), (21.0, 6.0, 79.0));
        // 590: one case late → fails; on-site exactly 90 % passes; no substantiated complaint.
        let k = check_590(&c, &p);
        assert_eq!(
            (
                k.all_on_time,
                k.on_site,
                k.no_substantiated_complaints,
                k.pass
            ),
            (Some(false), Some(true), true, false)
        );
    }

    #[test]
    fn scores_do_not_go_below_zero_and_empty_bases_are_not_judged() {
        let c = Counts {
            reds: 20,
            ..Counts::default()
        };
        let p = Policy::default();
        assert_eq!(score(&c, &p).score, 0.0);
        assert_eq!(c.rates(), Rates::default());
        let k = check_590(&c, &p);
        assert_eq!((k.all_on_time, k.on_site, k.pass), (None, None, true));
    }
}
