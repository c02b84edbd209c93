//! Upward export (SPEC §9 Outbound, 三级联网): alerts and their 督办 as the GB/T 39046-2020
//! 电子监察 dataset (table 11), one JSON object per line, keyed by the standard's own data-item
//! names. The same rendering serves `jiancha export` (a file from a store) and
//! `GET /api/v1/export/gb39046` (scoped like the history).
//!
//! ```text
//! stored alerts (a period, a jurisdiction) ─┐
//! stored actions (督办 = supervise) ─────────┴─► records() ─► NDJSON, oldest 状态产生时间 first
//! ```
//!
//! Choices (docs/API.md, "Upward export"), where the standard names items but gives no codes:
//! - One record per alert with its current state, and one more per 督办 issued on it.
//! - 监察编号 (an..20): the first 20 characters of the deterministic `alert_id`, so a repeated
//!   export sends the same number and the receiving system can overwrite.
//! - 监察预警类型代码 (n1, values not listed by the standard): Shandong's codes, 1 预警,
//!   2 黄牌, 5 红牌, and 0 正常 for an alert that no longer holds (retracted, or cleared).
//! - 状态产生时间: `fired_at` (the clearing instant for a cleared warning; the store keeps no
//!   retraction instant, so a retracted alert keeps `fired_at`); for a 督办, when it was issued.
//! - Times as the standard's 日期时间型, `YYYYMMDDhhmmss` in China Standard Time.
//! - 机构名称 (被督办机构): the service centre; 责任部门: the department; 事项类型代码 (A.1) is
//!   empty: the catalogue (`items.csv`) does not classify items by 事项类型.

use rules::alert::{AlertStatus, Level};
use rules::time::Instant;
use serde::Serialize;

use crate::backend::{Backend, BackendError, HistoryFilter};
use crate::model::{Action, ActionKind, AlertDoc};
use crate::web::Directory;

/// The dataset's name, as `jiancha export --format` and the endpoint call it.
pub const FORMAT: &str = "gb39046";

/// Length of 监察编号 (an..20).
const ID_LEN: usize = 20;

/// One record of the 电子监察 dataset, its items in the standard's order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Record {
    /// 办件编号.
    #[serde(rename = "办件编号")]
    pub case_id: String,
    /// 督办内容: the 督办's note (empty for an alert's own record).
    #[serde(rename = "督办内容")]
    pub supervision: String,
    /// 机构名称 (被督办机构): the service centre.
    #[serde(rename = "机构名称")]
    pub organisation: String,
    /// 事项类型代码 (A.1): not known to the catalogue, empty.
    #[serde(rename = "事项类型代码")]
    pub item_type: String,
    /// 督办发出时间.
    #[serde(rename = "督办发出时间")]
    pub supervised_at: String,
    /// 监察编号.
    #[serde(rename = "监察编号")]
    pub id: String,
    /// 监察规则编号: the rule's name.
    #[serde(rename = "监察规则编号")]
    pub rule: String,
    /// 监察预警类型代码.
    #[serde(rename = "监察预警类型代码")]
    pub level_code: String,
    /// 状态产生时间.
    #[serde(rename = "状态产生时间")]
    pub state_at: String,
    /// 监察结果描述: the engine's sentence (with the state when it no longer holds).
    #[serde(rename = "监察结果描述")]
    pub description: String,
    /// 责任部门.
    #[serde(rename = "责任部门")]
    pub department: String,
    /// 行政区划 (GB/T 2260), as the standard's other datasets carry it: the receiving level
    /// routes by it.
    #[serde(rename = "行政区划")]
    pub region: String,
}

/// The standard's 日期时间型: `YYYYMMDDhhmmss`, China Standard Time.
pub fn gb_time(t: Instant) -> String {
    let s = t.to_string(); // 2026-10-13T09:05:00+08:00
    s.get(..19)
        .unwrap_or_default()
        .chars()
        .filter(char::is_ascii_digit)
        .collect()
}

fn level_code(a: &AlertDoc) -> &'static str {
    match (a.status, a.level) {
        (AlertStatus::Retracted | AlertStatus::Cleared, _) => "0",
        (_, Level::Warning) => "1",
        (_, Level::Yellow) => "2",
        (_, Level::Red) => "5",
    }
}

/// The alert's record and one per 督办 in `actions` that names it; `actions` may hold other
/// alerts' actions (they are skipped). Records are sorted by 状态产生时间, then 监察编号,
/// the alert's own record before its 督办.
pub fn records(alerts: &[AlertDoc], actions: &[Action], names: &Directory) -> Vec<Record> {
    let mut out: Vec<(Instant, u8, Record)> = Vec::new();
    for a in alerts {
        let organisation = names
            .center_name(&a.center_id)
            .unwrap_or(a.center_id.clone());
        let department = a
            .department
            .as_deref()
            .map(|d| names.department_name(d).unwrap_or(d.to_string()))
            .unwrap_or_default();
        let (state_at, description) = match a.status {
            AlertStatus::Retracted => (a.fired_at, format!("已撤销：{}", a.message)),
            AlertStatus::Cleared => (
                a.cleared_at.unwrap_or(a.fired_at),
                format!("已自动解除：{}", a.message),
            ),
            _ => (a.fired_at, a.message.clone()),
        };
        let base = Record {
            case_id: a.case_id.clone().unwrap_or_default(),
            supervision: String::new(),
            organisation,
            item_type: String::new(),
            supervised_at: String::new(),
            id: a.alert_id.chars().take(ID_LEN).collect(),
            rule: a.rule.clone(),
            level_code: level_code(a).to_string(),
            state_at: gb_time(state_at),
            description,
            department,
            region: a.region.clone(),
        };
        for s in actions
            .iter()
            .filter(|x| x.alert_id == a.alert_id && x.action == ActionKind::Supervise)
        {
            out.push((
                s.at,
                1,
                Record {
                    supervision: s.note.clone(),
                    supervised_at: gb_time(s.at),
                    state_at: gb_time(s.at),
                    ..base.clone()
                },
            ));
        }
        out.push((state_at, 0, base));
    }
    out.sort_by(|x, y| (x.0, &x.2.id, x.1).cmp(&(y.0, &y.2.id, y.1)));
    out.into_iter().map(|(_, _, r)| r).collect()
}

/// The dataset of every stored alert `filter` matches (all pages: `limit` is the page size)
/// and of the 督办 on them. The filter's region prefix is the jurisdiction: alert ids include
/// the region, so the actions picked by alert id are that jurisdiction's too.
pub async fn from_backend(
    backend: &dyn Backend,
    filter: &HistoryFilter,
    names: &Directory,
) -> Result<Vec<Record>, BackendError> {
    let mut filter = filter.clone();
    filter.after = None;
    let mut alerts: Vec<AlertDoc> = Vec::new();
    loop {
        let page = backend.history(&filter).await?;
        let full = page.len() as u32 >= filter.limit;
        filter.after = page.last().map(|a| (a.fired_at.0, a.alert_id.clone()));
        alerts.extend(page);
        if !full || filter.after.is_none() {
            break;
        }
    }
    let ids: std::collections::HashSet<&str> = alerts.iter().map(|a| a.alert_id.as_str()).collect();
    let actions: Vec<Action> = backend
        .actions()
        .await?
        .into_iter()
        .filter(|x| ids.contains(x.alert_id.as_str()))
        .collect();
    Ok(records(&alerts, &actions, names))
}

/// The records as NDJSON, one line each.
pub fn ndjson(records: &[Record]) -> String {
    let mut out = String::new();
    for r in records {
        // A struct of strings always serialises.
        out.push_str(&serde_json::to_string(r).unwrap_or_default());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_the_standards_datetime_type_in_china_time() {
        let t = rules::time::parse_rfc3339("2026-10-13T01:05:09Z").unwrap();
        assert_eq!(gb_time(t), "20261013090509");
    }
}
