//! The messages people read: zh-CN, with the level, rule, case or staff member, department,
//! centre and deadline, as markdown (robots) or plain text (SMS, text robots).

use std::collections::HashMap;

use crate::notice::Notice;

/// Display names from the reference data; codes are shown where a name is unknown.
#[derive(Debug, Clone, Default)]
pub struct Names {
    /// Centre id → name.
    pub centers: HashMap<String, String>,
    /// Department code → name.
    pub departments: HashMap<String, String>,
    /// Staff number → name.
    pub staff: HashMap<String, String>,
    /// Item code → name.
    pub items: HashMap<String, String>,
}

impl Names {
    /// From the loaded reference directory.
    pub fn from_reference(r: &rules::Reference) -> Names {
        Names {
            centers: r.center_names.clone(),
            departments: r.department_names.clone(),
            staff: r
                .staff
                .values()
                .map(|s| (s.staff_id.clone(), s.name.clone()))
                .collect(),
            items: r
                .items()
                .iter()
                .map(|i| (i.code.clone(), i.name.clone()))
                .collect(),
        }
    }

    fn named(map: &HashMap<String, String>, code: &str) -> String {
        match map.get(code) {
            Some(name) if name != code => format!("{name}（{code}）"),
            _ => code.to_string(),
        }
    }
}

/// 中文 name of a rule (SPEC §6).
pub fn rule_title(rule: &str) -> &str {
    match rule {
        "case.overdue" => "办件超时",
        "case.stage_overdue" => "审批环节超时",
        "case.special_overdue" => "特别程序超时",
        "case.acceptance_overdue" => "受理超时",
        "case.rejected_without_reason" => "不予受理未说明理由",
        "hall.fee_without_case" => "收费无对应办件（以票管审）",
        "hall.fee_irregular" => "收费与标准不符",
        "hall.completed_without_acceptance" => "办结无受理记录",
        "hall.accepted_outside_hall" => "厅外受理",
        "hall.back_office" => "前店后场",
        "hall.batch_entry" => "事后补录",
        "hall.missing_stages" => "审批未在线办理",
        "hall.late_report" => "数据迟报",
        "data.corrected" => "数据更正",
        "complaint.filed" => "群众投诉",
        "complaint.overdue" => "投诉超期未办结",
        "evaluation.bad" => "差评",
        "evaluation.unrectified" => "差评超期未整改",
        "complaint.repeated_staff" => "个人多次有效投诉",
        "complaint.repeated_window" => "窗口多次投诉差评",
        "evaluation.satisfaction_low" => "窗口满意率偏低",
        "discipline.ladder" => "效能问责",
        "window.unstaffed" => "窗口空岗",
        "window.long_wait" => "群众等候超时",
        other => other,
    }
}

/// 中文 name of a level.
pub fn level_title(level: &str) -> &str {
    match level {
        "warning" => "预警",
        "yellow" => "黄牌",
        "red" => "红牌",
        other => other,
    }
}

/// `2026-10-14T00:00:00+08:00` → `2026-10-14 00:00`.
fn short_time(rfc3339: &str) -> String {
    rfc3339.get(..16).unwrap_or(rfc3339).replacen('T', " ", 1)
}

/// The message of one alert, as a title and its lines.
pub struct Message {
    /// `【黄牌】办件超时`, or `【撤销】…` for a retraction.
    pub title: String,
    /// `label：value` lines, in reading order.
    pub lines: Vec<(&'static str, String)>,
    /// The link to the dashboards, if configured.
    pub link: Option<String>,
}

impl Message {
    /// Build the message of `n`.
    pub fn of(n: &Notice, names: &Names, dashboard_url: &str) -> Message {
        let level = level_title(&n.level);
        let title = if n.is_retraction() {
            format!("【撤销】{level} {}", rule_title(&n.rule))
        } else if n.is_clearing() {
            format!("【解除】{level} {}", rule_title(&n.rule))
        } else {
            format!("【{level}】{}", rule_title(&n.rule))
        };
        let mut lines = Vec::new();
        let mut place = Names::named(&names.centers, &n.center_id);
        if let Some(d) = n.department.as_deref().filter(|d| !d.is_empty()) {
            place.push_str(" · ");
            place.push_str(&Names::named(&names.departments, d));
        }
        if let Some(w) = n.window_id.as_deref().filter(|w| !w.is_empty()) {
            place.push_str(&format!(" · 窗口 {w}"));
        }
        lines.push(("单位", place));
        if let Some(c) = n.case_id.as_deref().filter(|c| !c.is_empty()) {
            let item = n
                .item_code
                .as_deref()
                .map(|i| format!("（{}）", names.items.get(i).map_or(i, |s| s.as_str())))
                .unwrap_or_default();
            lines.push(("办件", format!("{c}{item}")));
        }
        if let Some(s) = n.staff_id.as_deref().filter(|s| !s.is_empty()) {
            lines.push(("人员", Names::named(&names.staff, s)));
        }
        if let Some(d) = n.deadline() {
            lines.push(("期限", short_time(&d)));
        }
        lines.push(("时间", short_time(&n.fired_at)));
        if n.is_retraction() {
            lines.push(("说明", "后续事件表明该告警不成立，已撤销".to_string()));
        } else if n.is_clearing() {
            let when = short_time(&rules::time::Instant(n.end_secs()).to_string());
            lines.push((
                "说明",
                format!("办件已于 {when} 在承诺时限内办结，预警已由系统自动解除"),
            ));
        } else if !n.message.is_empty() {
            lines.push(("说明", n.message.clone()));
        }
        lines.push(("编号", n.alert_id.clone()));
        let link = (!dashboard_url.is_empty()).then(|| dashboard_url.to_string());
        Message { title, lines, link }
    }

    /// Plain text: the title, then one `label：value` line each.
    pub fn text(&self) -> String {
        let mut out = self.title.clone();
        for (label, value) in &self.lines {
            out.push_str(&format!("\n{label}：{value}"));
        }
        if let Some(link) = &self.link {
            out.push_str(&format!("\n查看：{link}"));
        }
        out
    }

    /// Markdown: a bold title, then the lines as a list.
    pub fn markdown(&self) -> String {
        let mut out = format!("**{}**\n", self.title);
        for (label, value) in &self.lines {
            out.push_str(&format!("\n> {label}：{value}"));
        }
        if let Some(link) = &self.link {
            out.push_str(&format!("\n\n[查看详情]({link})"));
        }
        out
    }
}

/// What was held back on a channel by its storm limit, for the summary message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Suppressed {
    /// Count per level rank (预警, 黄牌, 红牌).
    pub by_level: [u32; 3],
    /// Count of retractions.
    pub retractions: u32,
}

impl Suppressed {
    /// Nothing held back.
    pub fn is_empty(&self) -> bool {
        self.total() == 0
    }

    /// How many.
    pub fn total(&self) -> u32 {
        self.by_level.iter().sum::<u32>() + self.retractions
    }

    /// Count one more.
    pub fn add(&mut self, n: &Notice) {
        if n.is_retraction() {
            self.retractions += 1;
        } else {
            self.by_level[usize::from(n.level_rank())] += 1;
        }
    }

    /// The summary message.
    pub fn message(&self, dashboard_url: &str) -> Message {
        let mut parts = Vec::new();
        for (rank, name) in [(2, "红牌"), (1, "黄牌"), (0, "预警")] {
            if self.by_level[rank] > 0 {
                parts.push(format!("{name} {} 条", self.by_level[rank]));
            }
        }
        if self.retractions > 0 {
            parts.push(format!("撤销 {} 条", self.retractions));
        }
        Message {
            title: format!("【汇总】另有 {} 条告警未逐条推送", self.total()),
            lines: vec![
                ("明细", parts.join("，")),
                ("原因", "告警过于密集，已按频率限制合并".to_string()),
                ("处理", "请登录电子监察系统查看完整告警队列".to_string()),
            ],
            link: (!dashboard_url.is_empty()).then(|| dashboard_url.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_yellow_card_reads_as_an_inspector_expects() {
        let n = Notice::from_value(serde_json::json!({
            "alert_id": "a1", "rule": "case.overdue", "level": "yellow", "status": "open",
            "fired_at": "2026-10-14T00:00:00+08:00", "center_id": "PJ", "region": "430626",
            "department": "ZJ", "window_id": "PJ-W02", "staff_id": "PJ0012",
            "case_id": "PJ2026-0928-002", "item_code": "I1",
            "message": "黄牌：承诺时限已过", "evidence": {"deadline_date": "2026-10-13"}
        }))
        .expect("alert");
        let mut names = Names::default();
        names
            .centers
            .insert("PJ".into(), "平江县政务服务中心".into());
        names.departments.insert("ZJ".into(), "住建局".into());
        names.staff.insert("PJ0012".into(), "李明".into());
        names.items.insert("I1".into(), "建设工程规划许可".into());
        let m = Message::of(&n, &names, "");
        assert_eq!(
            m.text(),
            "【黄牌】办件超时\n单位：平江县政务服务中心（PJ） · 住建局（ZJ） · 窗口 PJ-W02\n\
             办件：PJ2026-0928-002（建设工程规划许可）\n人员：李明（PJ0012）\n期限：2026-10-13\n\
             时间：2026-10-14 00:00\n说明：黄牌：承诺时限已过\n编号：a1"
        );
        let mut s = Suppressed::default();
        s.add(&n);
        s.add(&n);
        assert_eq!(
            s.message("").text(),
            "【汇总】另有 2 条告警未逐条推送\n明细：黄牌 2 条\n原因：告警过于密集，已按频率限制合并\n\
             处理：请登录电子监察系统查看完整告警队列"
        );
    }
}
