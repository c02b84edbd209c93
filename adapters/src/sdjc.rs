//! `sdjc`: the Shandong-style 电子监察前置库 (source-formats.md §3).
//!
//! Every table carries `PROJID` (申办号, the case), `ORGBUSNO` (the source's record id),
//! `DATAVER` (数据版本号), `MAKETIME` (row written: `reported_at`), `REGION_ID`, and newer rows
//! `CD_OPERATION` (`D`: deleted). One row per step; a special node (特殊环节) row carries both
//! its start and, once `NODEENDTIME` passes `NODESTARTTIME`, its end.

use crate::codes::{Column, Domain};
use crate::{Adapter, Dead, Event, Head, Row, IGNORE};

pub(crate) const TABLES: &[&str] = &[
    "PRE_APASINFO",
    "EA_JC_STEP_BASICINFO",
    "EA_JC_STEP_PROC",
    "EA_JC_STEP_SPECIALNODE",
    "EA_JC_STEP_DONE",
    "EA_JC_FEEINFO",
    "EA_JC_SERVEVAL",
];

const PROC_ACTIONS: &[&str] = &[
    "stage_agree",
    "stage_disagree",
    "stage_return",
    "accepted",
    "rejected",
    "supplement_requested",
    "suspended",
];

const SPECIAL_ACTIONS: &[&str] = &[
    "supplement",
    "suspend",
    "hearing",
    "tender",
    "auction",
    "inspection",
    "testing",
    "quarantine",
    "appraisal",
    "expert_review",
    "publicity",
    "other",
];

pub(crate) const COLUMNS: &[Column] = &[
    Column {
        name: "APPLYFROM",
        column: "APPLYFROM",
        domain: Domain::Channel,
        by_name: true,
        defaults: &[
            ("网上", "online"),
            ("窗口", "hall"),
            ("其它", "office"),
            ("其他", "office"),
        ],
        doc: "PRE_APASINFO 申报来源 (text)",
    },
    Column {
        name: "SUBMIT",
        column: "SUBMIT",
        domain: Domain::Channel,
        by_name: false,
        defaults: &[
            ("0", "hall"),
            ("1", "online"),
            ("2", "office"),
            ("3", "office"),
            ("4", "office"),
            ("5", "office"),
            ("6", "office"),
            ("7", "office"),
            ("8", "office"),
        ],
        doc: "BASICINFO 业务归类 (提交方式)",
    },
    Column {
        name: "DATASOURCES",
        column: "DATASOURCES",
        domain: Domain::Channel,
        by_name: false,
        defaults: &[("1", "online"), ("2", "hall"), ("9", "office")],
        doc: "BASICINFO (JSON interface) 数据来源, used when SUBMIT is absent",
    },
    Column {
        name: "APPROVALTYPE",
        column: "APPROVALTYPE",
        domain: Domain::CaseType,
        by_name: false,
        defaults: &[
            ("1", "instant"),
            ("2", "promised"),
            ("3", "joint"),
            ("4", "reported"),
        ],
        doc: "BASICINFO 办件类型",
    },
    Column {
        name: "PROMISETIMEUNIT",
        column: "PROMISETIMEUNIT",
        domain: Domain::Unit,
        by_name: false,
        defaults: &[
            ("1", "working"),
            ("2", "natural"),
            ("3", "working_hours"),
            ("4", "working_minutes"),
            ("5", "months"),
        ],
        doc: "BASICINFO 承诺时限单位",
    },
    Column {
        name: "TIMEUNIT",
        column: "TIMEUNIT",
        domain: Domain::Unit,
        by_name: false,
        defaults: &[
            ("G", "working"),
            ("g", "working"),
            ("Z", "natural"),
            ("z", "natural"),
        ],
        doc: "BASICINFO 法定时限单位",
    },
    Column {
        name: "PROC_NODERESULT",
        column: "NODERESULT",
        domain: Domain::Action(PROC_ACTIONS),
        by_name: false,
        defaults: &[
            ("0", "stage_disagree"),
            ("1", "stage_agree"),
            ("2", "rejected"),
            ("3", "rejected"),
            ("4", IGNORE),
            ("5", "supplement_requested"),
            ("6", "suspended"),
            ("7", "stage_return"),
        ],
        doc: "EA_JC_STEP_PROC 环节结果 (4 受理 is ignored: the acceptance is BASICINFO's)",
    },
    Column {
        name: "NODESTATE",
        column: "NODESTATE",
        domain: Domain::Action(&["done"]),
        by_name: false,
        defaults: &[("01", IGNORE), ("02", "done"), ("1", IGNORE), ("2", "done")],
        doc: "EA_JC_STEP_PROC 环节状态 (待办 rows are not steps yet)",
    },
    Column {
        name: "NODENAME",
        column: "NODENAME",
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
        doc: "EA_JC_STEP_PROC 环节名称 (free text, matched by containment)",
    },
    Column {
        name: "SPECIALNODE_NODERESULT",
        column: "NODERESULT",
        domain: Domain::Action(SPECIAL_ACTIONS),
        by_name: false,
        defaults: &[
            ("1", "supplement"),
            ("2", "hearing"),
            ("3", "publicity"),
            ("4", "inspection"),
            ("5", "suspend"),
            ("6", "supplement"),
        ],
        doc: "EA_JC_STEP_SPECIALNODE 特殊环节 kind",
    },
    Column {
        name: "DONERESULT",
        column: "DONERESULT",
        domain: Domain::Completion,
        by_name: false,
        defaults: &[
            ("0", "approved"),
            ("1", "returned"),
            ("2", "voided"),
            ("3", "voided"),
            ("4", "forwarded"),
            ("5", "returned"),
            ("6", "approved"),
        ],
        doc: "EA_JC_STEP_DONE 办结结果 (old list; the newer list differs: configure it)",
    },
    Column {
        name: "STATE",
        column: "STATE",
        domain: Domain::Action(&["paid"]),
        by_name: false,
        defaults: &[("1", "paid"), ("2", IGNORE)],
        doc: "EA_JC_FEEINFO 缴费状态",
    },
    Column {
        name: "EVALRESULT",
        column: "EVALRESULT",
        domain: Domain::Score,
        by_name: false,
        defaults: &[("1", "1"), ("2", "2"), ("3", "3"), ("4", "4"), ("5", "5")],
        doc: "EA_JC_SERVEVAL 评价结果 (the deployment's EA_JC_SERVEVAL_DICT; 5 = 非常满意)",
    },
];

/// Map one row; `Ok(true)` when the row is a deletion.
pub(crate) fn map(
    a: &Adapter<'_>,
    table: &'static str,
    row: &Row<'_>,
    out: &mut Vec<Event>,
) -> Result<bool, Dead> {
    let case = a.req(row, "PROJID", table)?.to_string();
    let orgbusno = a.req(row, "ORGBUSNO", table)?;
    let version = row.get("DATAVER");
    let deleted = row
        .get("CD_OPERATION")
        .is_some_and(|o| o.eq_ignore_ascii_case("D"))
        || (table == "PRE_APASINFO" && row.get("DATASTATE") == Some("0"));
    let department = a.department(
        row,
        &[
            "ACCEPTDEPTID",
            "DEPTID",
            "PROCUNIT",
            "PROCUNITID",
            "FEEORGID",
        ],
        &case,
    );
    let center = a.place(
        None,
        row.get("REGION_ID"),
        department.as_deref(),
        Some(&case),
    )?;
    let mut head = Head {
        item: a.item(row, &["ITEMNO", "TASKCODE", "TASKHANDLEITEM"], &case),
        case: Some(case.clone()),
        department,
        window: None,
        center,
        reported_at: a.opt_time(row, "MAKETIME")?,
        staff: (None, None),
    };
    let id = |sn: Option<&str>, suffix: &str| match sn {
        Some(sn) => a.identity(table, &[&case, orgbusno, sn], version, suffix),
        None => a.identity(table, &[&case, orgbusno], version, suffix),
    };
    match table {
        "PRE_APASINFO" => {
            head.staff = a.staff_by_id(row.get("RECEIVE_USEID"));
            let mut ev = a.event(
                &head,
                id(None, "")?,
                "case.submitted",
                a.time(row, "RECEIVETIME", table)?,
            );
            ev.channel = a.code(row, "APPLYFROM")?.map(str::to_string);
            out.push(ev);
        }
        "EA_JC_STEP_BASICINFO" => {
            head.staff = a.staff_by_name(row.get("TRANSACTOR"), head.department.as_deref());
            if head.item.is_none() {
                a.req(row, "ITEMNO", table)?;
            }
            let channel = match a.code(row, "SUBMIT")? {
                Some(c) => c,
                None => a.code(row, "DATASOURCES")?.ok_or_else(|| {
                    crate::dead(
                        "missing_column",
                        Some("SUBMIT"),
                        format!("{table} rows need SUBMIT (or datasources)"),
                    )
                })?,
            };
            let mut ev = a.event(
                &head,
                id(None, "")?,
                "case.accepted",
                a.time(row, "OCCURTIME", table)?,
            );
            ev.channel = Some(channel.to_string());
            ev.case_type = a.code(row, "APPROVALTYPE")?.map(str::to_string);
            (ev.promised_days, ev.promised_unit) =
                limit(a, row, "PROMISETIMELIMIT", "PROMISETIMEUNIT")?;
            (ev.legal_days, ev.legal_unit) = limit(a, row, "TIMELIMIT", "TIMEUNIT")?;
            ev.source_deadline = a.opt_time(row, "PROMISEDATE")?;
            out.push(ev);
        }
        "EA_JC_STEP_PROC" => {
            let sn = a.req(row, "SN", table)?;
            if a.code(row, "NODESTATE")? == Some(IGNORE) {
                return Ok(deleted);
            }
            head.staff = a.staff_by_id(row.get("NODEPROCER"));
            let action = a.req_code(row, "PROC_NODERESULT", table)?;
            let end = a.time(row, "NODEENDTIME", table)?;
            let (kind, stage_result) = match action {
                IGNORE => return Ok(deleted),
                "stage_agree" => ("case.stage", "agree"),
                "stage_disagree" => ("case.stage", "disagree"),
                "stage_return" => ("case.stage", "return"),
                "accepted" => {
                    return Err(crate::dead(
                        "bad_value",
                        Some("NODERESULT"),
                        "an acceptance needs its item and limits: map it from \
                         EA_JC_STEP_BASICINFO and set PROC_NODERESULT \"4\" = \"ignore\"",
                    ))
                }
                "rejected" => ("case.rejected", ""),
                "supplement_requested" => ("case.supplement_requested", ""),
                _ => ("case.suspended", ""),
            };
            let at = if kind == "case.suspended" {
                a.time(row, "NODESTARTTIME", table)?
            } else {
                end.clone()
            };
            let mut ev = a.event(&head, id(Some(sn), "")?, kind, at.clone());
            if kind == "case.stage" {
                ev.stage = Some(a.req_code(row, "NODENAME", table)?.to_string());
                ev.result = Some(stage_result.to_string());
                if ev.stage.as_deref() == Some(IGNORE) {
                    return Ok(deleted);
                }
            } else {
                ev.reason = row.get("NODEADV").map(str::to_string);
            }
            out.push(ev);
            if kind == "case.suspended" && end > at {
                out.push(a.event(&head, id(Some(sn), ":end")?, "case.resumed", end));
            }
        }
        "EA_JC_STEP_SPECIALNODE" => {
            let sn = a.req(row, "SN", table)?;
            head.staff = a.staff_by_id(row.get("PROCERID"));
            let action = a.req_code(row, "SPECIALNODE_NODERESULT", table)?;
            let start = a.time(row, "NODESTARTTIME", table)?;
            let end = a.opt_time(row, "NODEENDTIME")?.filter(|e| *e > start);
            let (open, close) = match action {
                IGNORE => return Ok(deleted),
                "supplement" => ("case.supplement_requested", "case.supplement_received"),
                "suspend" => ("case.suspended", "case.resumed"),
                _ => ("case.special_started", "case.special_ended"),
            };
            let mut ev = a.event(&head, id(Some(sn), "")?, open, start);
            if open == "case.special_started" {
                ev.procedure = Some(action.to_string());
            } else {
                ev.reason = row.get("NODEPROCADV").map(str::to_string);
            }
            out.push(ev);
            if let Some(end) = end {
                out.push(a.event(&head, id(Some(sn), ":end")?, close, end));
            }
        }
        "EA_JC_STEP_DONE" => {
            head.staff = a.staff_by_name(row.get("TRANSACTOR"), head.department.as_deref());
            let result = a.req_code(row, "DONERESULT", table)?;
            let at = a.time(row, "OCCURTIME", table)?;
            let mut ev = match result {
                IGNORE => return Ok(deleted),
                "rejected" => a.event(&head, id(None, "")?, "case.rejected", at),
                r => {
                    let mut ev = a.event(&head, id(None, "")?, "case.completed", at);
                    ev.result = Some(r.to_string());
                    ev
                }
            };
            ev.reason = row.get("EXITRES").map(str::to_string);
            out.push(ev);
        }
        "EA_JC_FEEINFO" => {
            let sn = row.get("SN");
            if a.req_code(row, "STATE", table)? == IGNORE {
                return Ok(deleted);
            }
            if head.item.is_none() {
                return Err(crate::dead(
                    "missing_column",
                    Some("ITEMNO"),
                    format!("no item for case {case}: its BASICINFO row was not seen and the fee row has no ITEMNO"),
                ));
            }
            let mut ev = a.event(
                &head,
                id(sn, "")?,
                "fee.charged",
                a.time(row, "PAYTIME", table)?,
            );
            ev.receipt_no = Some(row.get("BILLNUM").map_or_else(
                || format!("{case}:{orgbusno}:{}", sn.unwrap_or("")),
                str::to_string,
            ));
            ev.amount_fen = Some(a.fen(row, "FEETOTAL")?.ok_or_else(|| {
                crate::dead(
                    "missing_column",
                    Some("FEETOTAL"),
                    "EA_JC_FEEINFO rows need FEETOTAL",
                )
            })?);
            ev.payer_id = Some(a.req(row, "PAYPERSON", table)?.to_string());
            out.push(ev);
        }
        _ => {
            // EA_JC_SERVEVAL
            let score = a.req_code(row, "EVALRESULT", table)?;
            if score == IGNORE {
                return Ok(deleted);
            }
            let sn = row.get("SN");
            let mut ev = a.event(
                &head,
                id(sn, "")?,
                "evaluation.submitted",
                a.time(row, "EVALDATE", table)?,
            );
            ev.evaluation_id = Some(format!("{case}:{orgbusno}:{}", sn.unwrap_or("1")));
            ev.score = score.parse().ok();
            ev.item_code = None;
            out.push(ev);
        }
    }
    Ok(deleted)
}

/// A limit: days and the unit's meaning, both or neither.
#[allow(clippy::type_complexity)]
fn limit(
    a: &Adapter<'_>,
    row: &Row<'_>,
    days: &'static str,
    unit: &'static str,
) -> Result<(Option<u32>, Option<String>), Dead> {
    let d = a.number(row, days)?;
    let u = a.code(row, unit)?.filter(|u| *u != IGNORE);
    Ok(match (d, u) {
        (Some(d), Some(u)) => (Some(d), Some(u.to_string())),
        (Some(_), None) => {
            return Err(crate::dead(
                "missing_column",
                Some(unit),
                format!("{days} is given without its unit {unit}"),
            ))
        }
        _ => (None, None),
    })
}
