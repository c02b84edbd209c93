//! `gb39046`: the national platform's 办件 tables `up_pro_accept/process/special_procedure/
//! result` (keyed by `project_no`, synchronised with `cd_operation`/`cd_time`) and the GB/T
//! 39046-2020 datasets the tables lack — 表9 绩效评价 (`gb_evaluation`), 表10 投诉
//! (`gb_complaint`), 表14 支付信息 (`gb_payment`) — whose columns are the standard's own item
//! names (it names items in Chinese only). source-formats.md §4.

use crate::codes::{Column, Domain};
use crate::{dead, Adapter, Dead, Event, Head, Row, IGNORE};

pub(crate) const TABLES: &[&str] = &[
    "up_pro_accept",
    "up_pro_process",
    "up_pro_special_procedure",
    "up_pro_result",
    "gb_evaluation",
    "gb_complaint",
    "gb_payment",
];

pub(crate) const COLUMNS: &[Column] = &[
    Column {
        name: "apply_type",
        column: "apply_type",
        domain: Domain::Channel,
        by_name: false,
        defaults: &[
            ("1", "hall"),
            ("2", "online"),
            ("3", "mobile"),
            ("4", "office"),
            ("9", "office"),
        ],
        doc: "up_pro_accept 申请类型, read as GB A.5 办理形式",
    },
    Column {
        name: "project_type",
        column: "project_type",
        domain: Domain::CaseType,
        by_name: false,
        defaults: &[("1", "instant"), ("2", "promised"), ("9", "promised")],
        doc: "up_pro_accept 办理类型, read as GB A.6 办件类型",
    },
    Column {
        name: "process_name",
        column: "process_name",
        domain: Domain::Stage,
        by_name: true,
        defaults: &[
            ("承办", "undertake"),
            ("受理审查", "undertake"),
            ("初审", "undertake"),
            ("审核", "review"),
            ("复审", "review"),
            ("审查", "review"),
            ("批准", "approve"),
            ("审批", "approve"),
            ("决定", "approve"),
            ("签发", "approve"),
        ],
        doc: "up_pro_process 办理环节名称 (free text)",
    },
    Column {
        name: "event_name",
        column: "event_name",
        domain: Domain::StageResult,
        by_name: false,
        defaults: &[
            ("1", "agree"),
            ("2", "disagree"),
            ("3", "return"),
            ("通过", "agree"),
            ("不通过", "disagree"),
            ("退回", "return"),
        ],
        doc: "up_pro_process 业务动作 (GB: 通过、退回、其他; codes unpublished)",
    },
    Column {
        name: "special_type",
        column: "special_type",
        domain: Domain::Action(&["extended", "special"]),
        by_name: false,
        defaults: &[("1", "extended"), ("2", "special")],
        doc: "up_pro_special_procedure 特别程序种类 (GB A.7)",
    },
    Column {
        name: "special_name",
        column: "special_name",
        domain: Domain::Procedure,
        by_name: true,
        defaults: &[
            ("听证", "hearing"),
            ("招标", "tender"),
            ("拍卖", "auction"),
            ("检验", "inspection"),
            ("核查", "inspection"),
            ("检测", "testing"),
            ("检疫", "quarantine"),
            ("鉴定", "appraisal"),
            ("专家评审", "expert_review"),
            ("公示", "publicity"),
            ("", "other"),
        ],
        doc: "up_pro_special_procedure 特别程序种类名称 (free text; anything else is other)",
    },
    Column {
        name: "result_type",
        column: "result_type",
        domain: Domain::Completion,
        by_name: false,
        defaults: &[
            ("0", "approved"),
            ("1", "denied"),
            ("2", "returned"),
            ("3", "voided"),
            ("4", "forwarded"),
        ],
        doc: "up_pro_result 办结结果 (codes unpublished: confirm with the site)",
    },
    Column {
        name: "满意度代码",
        column: "满意度代码",
        domain: Domain::Score,
        by_name: false,
        defaults: &[("1", "5"), ("2", "4"), ("3", "3"), ("4", "2"), ("5", "1")],
        doc: "表9 满意度代码 (GB A.8: 1 非常满意 … 5 非常不满意, the reverse of score)",
    },
    Column {
        name: "投诉标题",
        column: "投诉标题",
        domain: Domain::Action(&["attitude", "efficiency", "fee", "integrity", "other"]),
        by_name: true,
        defaults: &[
            ("态度", "attitude"),
            ("效率", "efficiency"),
            ("超期", "efficiency"),
            ("拖延", "efficiency"),
            ("收费", "fee"),
            ("乱收费", "fee"),
            ("廉政", "integrity"),
            ("吃拿卡要", "integrity"),
            ("索贿", "integrity"),
            ("", "other"),
        ],
        doc: "表10 投诉标题 → complaint category (free text)",
    },
    Column {
        name: "是否属实",
        column: "是否属实",
        domain: Domain::Action(&["true", "false"]),
        by_name: false,
        defaults: &[
            ("1", "true"),
            ("0", "false"),
            ("是", "true"),
            ("否", "false"),
        ],
        doc: "表10 投诉 substantiated (not a GB item: sites add it; without it a resolution \
              is not sent)",
    },
];

/// Map one row; `Ok(true)` when it is a deletion (`cd_operation` D).
pub(crate) fn map(
    a: &Adapter<'_>,
    table: &'static str,
    row: &Row<'_>,
    out: &mut Vec<Event>,
) -> Result<bool, Dead> {
    let deleted = row
        .get("cd_operation")
        .is_some_and(|o| o.eq_ignore_ascii_case("D"));
    let national = table.starts_with("up_pro_");
    let case = if national {
        Some(a.req(row, "project_no", table)?.to_string())
    } else if table == "gb_complaint" {
        row.get("办件编号").map(str::to_string)
    } else {
        Some(a.req(row, "办件编号", table)?.to_string())
    };
    let case_key = case.clone().unwrap_or_default();
    let department = a.department(row, &["org_code", "收费单位", "被投诉单位"], &case_key);
    let center = a.place(
        None,
        row.first(&["行政区划", "region_code"]).map(|(_, v)| v),
        department.as_deref(),
        case.as_deref(),
    )?;
    let mut head = Head {
        item: a.item(
            row,
            &["task_code", "task_handle_item", "实施编码"],
            &case_key,
        ),
        case,
        department,
        window: None,
        center,
        reported_at: a.opt_time(row, "cd_time")?,
        staff: (None, None),
    };
    let row_key = |fallback: &str| {
        row.get("row_guid")
            .map_or_else(|| fallback.to_string(), str::to_string)
    };
    match table {
        "up_pro_accept" => {
            head.staff = a.staff_by_name(row.get("handle_user_name"), head.department.as_deref());
            if head.item.is_none() {
                a.req(row, "task_code", table)?;
            }
            let key = row_key(&case_key);
            let channel = a.req_code(row, "apply_type", table)?;
            let mut submitted = a.event(
                &head,
                a.identity(table, &[&key], None, ":apply")?,
                "case.submitted",
                a.time(row, "apply_date", table)?,
            );
            let mut accepted = a.event(
                &head,
                a.identity(table, &[&key], None, "")?,
                "case.accepted",
                a.time(row, "accept_date", table)?,
            );
            if channel != IGNORE {
                submitted.channel = Some(channel.to_string());
                accepted.channel = Some(channel.to_string());
            } else {
                return Ok(deleted);
            }
            submitted.staff_id = None;
            submitted.staff_note = None;
            accepted.case_type = a
                .code(row, "project_type")?
                .filter(|t| *t != IGNORE)
                .map(str::to_string);
            accepted.source_deadline = a.opt_time(row, "promise_date")?;
            out.push(submitted);
            out.push(accepted);
        }
        "up_pro_process" => {
            head.staff = a.staff_by_name(row.get("handle_user_name"), head.department.as_deref());
            let at = a.time(row, "event_end_time", table)?;
            let key = row_key(&format!("{case_key}:{}", &at[..19]));
            let stage = a.req_code(row, "process_name", table)?;
            let result = a.req_code(row, "event_name", table)?;
            if stage == IGNORE || result == IGNORE {
                return Ok(deleted);
            }
            let mut ev = a.event(
                &head,
                a.identity(table, &[&key], None, "")?,
                "case.stage",
                at,
            );
            ev.stage = Some(stage.to_string());
            ev.result = Some(result.to_string());
            out.push(ev);
        }
        "up_pro_special_procedure" => {
            head.staff = a.staff_by_name(row.get("handle_user"), head.department.as_deref());
            let start = a.time(row, "special_time", table)?;
            let key = row_key(&format!("{case_key}:{}", &start[..19]));
            match a.req_code(row, "special_type", table)? {
                IGNORE => return Ok(deleted),
                "extended" => {
                    let days = a.number(row, "extend_days")?.ok_or_else(|| {
                        dead(
                            "missing_column",
                            Some("extend_days"),
                            "special_type 1 (延长审批) needs the extension's working days, which \
                             up_pro_special_procedure does not carry: add a column extend_days",
                        )
                    })?;
                    let mut ev = a.event(
                        &head,
                        a.identity(table, &[&key], None, "")?,
                        "case.extended",
                        start,
                    );
                    ev.extra_days = Some(days);
                    out.push(ev);
                }
                _ => {
                    let mut ev = a.event(
                        &head,
                        a.identity(table, &[&key], None, "")?,
                        "case.special_started",
                        start.clone(),
                    );
                    ev.procedure =
                        Some(a.code(row, "special_name")?.unwrap_or("other").to_string());
                    ev.reason = row.get("special_reason").map(str::to_string);
                    out.push(ev);
                    if let Some(end) = a.opt_time(row, "end_time")?.filter(|e| *e > start) {
                        out.push(a.event(
                            &head,
                            a.identity(table, &[&key], None, ":end")?,
                            "case.special_ended",
                            end,
                        ));
                    }
                }
            }
        }
        "up_pro_result" => {
            head.staff = a.staff_by_name(row.get("handle_user_name"), head.department.as_deref());
            let key = row_key(&case_key);
            let result = a.req_code(row, "result_type", table)?;
            let at = a.time(row, "result_date", table)?;
            let mut ev = match result {
                IGNORE => return Ok(deleted),
                "rejected" => a.event(
                    &head,
                    a.identity(table, &[&key], None, "")?,
                    "case.rejected",
                    at,
                ),
                r => {
                    let mut ev = a.event(
                        &head,
                        a.identity(table, &[&key], None, "")?,
                        "case.completed",
                        at,
                    );
                    ev.result = Some(r.to_string());
                    ev
                }
            };
            ev.reason = row.get("result_explain").map(str::to_string);
            out.push(ev);
        }
        "gb_evaluation" => {
            let n = row.get("评价次数").unwrap_or("1");
            let score = a.req_code(row, "满意度代码", table)?;
            if score == IGNORE {
                return Ok(deleted);
            }
            let mut ev = a.event(
                &head,
                a.identity(table, &[&case_key, n], None, "")?,
                "evaluation.submitted",
                a.time(row, "评价时间", table)?,
            );
            ev.evaluation_id = Some(format!("{case_key}:{n}"));
            ev.score = score.parse().ok();
            ev.item_code = None;
            out.push(ev);
        }
        "gb_complaint" => {
            head.staff = a.staff_by_name(row.get("被投诉人"), head.department.as_deref());
            let at = a.time(row, "投诉时间", table)?;
            let target = row
                .first(&["被投诉人", "被投诉单位"])
                .map_or("", |(_, v)| v);
            let complaint = row.get("投诉编号").map_or_else(
                || format!("{}:{target}", at[..19].replace([':', '-', 'T'], "")),
                str::to_string,
            );
            head.item = None;
            let category = a.code(row, "投诉标题")?.unwrap_or("other");
            let mut filed = a.event(
                &head,
                a.identity(table, &[&complaint], None, "")?,
                "complaint.filed",
                at,
            );
            filed.complaint_id = Some(complaint.clone());
            filed.category = Some(category.to_string());
            out.push(filed);
            if let Some(answered) = a.opt_time(row, "反馈时间")? {
                if let Some(s) = a.code(row, "是否属实")?.filter(|s| *s != IGNORE) {
                    let mut done = a.event(
                        &head,
                        a.identity(table, &[&complaint], None, ":resolved")?,
                        "complaint.resolved",
                        answered,
                    );
                    done.complaint_id = Some(complaint);
                    done.substantiated = Some(s == "true");
                    out.push(done);
                }
            }
        }
        _ => {
            // gb_payment
            let receipt = a.req(row, "缴款单号", table)?.to_string();
            if head.item.is_none() {
                return Err(dead(
                    "missing_column",
                    Some("实施编码"),
                    format!("no item for case {case_key}: its acceptance was not seen and the row has no 实施编码"),
                ));
            }
            let mut ev = a.event(
                &head,
                a.identity(table, &[&case_key, &receipt], None, "")?,
                "fee.charged",
                a.time(row, "收费时间", table)?,
            );
            ev.receipt_no = Some(receipt);
            ev.amount_fen = Some(a.fen(row, "收费金额")?.ok_or_else(|| {
                dead(
                    "missing_column",
                    Some("收费金额"),
                    "gb_payment rows need 收费金额",
                )
            })?);
            ev.payer_id = Some(a.req(row, "缴款人", table)?.to_string());
            out.push(ev);
        }
    }
    Ok(deleted)
}
