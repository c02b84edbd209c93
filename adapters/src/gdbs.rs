//! `gdbs`: the Guangdong-lineage 办事过程 records `EX_GDBS_*` (source-formats.md §2), one table
//! per event type, keyed by `SBLSH` (申办流水号), versioned by `VERSION` (`SJBBH` in the MQ
//! objects). Newer 受理 rows name the hall (`BJDTBM`) and window (`BJCKBM`); 审批 rows name
//! the approver only by name (`SPRXM`), resolved through staff.csv.

use crate::codes::{Column, Domain};
use crate::{dead, Adapter, Dead, Event, Head, Row, IGNORE};

pub(crate) const TABLES: &[&str] = &[
    "EX_GDBS_SB",
    "EX_GDBS_WSYSL",
    "EX_GDBS_SL",
    "EX_GDBS_SPCL",
    "EX_GDBS_BJ",
    "EX_GDBS_TBCXSQ",
    "EX_GDBS_TBCXJG",
    "EX_GDBS_BJGZ",
    "EX_GDBS_BJSL",
    "EX_GDBS_LQDJ",
];

const UNITS: &[(&str, &str)] = &[
    ("G", "working"),
    ("g", "working"),
    ("Z", "natural"),
    ("z", "natural"),
];

pub(crate) const COLUMNS: &[Column] = &[
    Column {
        name: "WSSBQD",
        column: "WSSBQD",
        domain: Domain::Channel,
        by_name: false,
        defaults: &[
            ("0", "online"),
            ("1", "mobile"),
            ("2", "mobile"),
            ("3", "mobile"),
            ("4", "mobile"),
            ("9", "online"),
        ],
        doc: "SB 网上申办渠道",
    },
    Column {
        name: "TJFS",
        column: "TJFS",
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
        doc: "SB/SL 提交方式 (codes not published; the defaults are Shandong's SUBMIT)",
    },
    Column {
        name: "YSLZTDM",
        column: "YSLZTDM",
        domain: Domain::Action(&["submitted", "rejected", "supplement_requested"]),
        by_name: false,
        defaults: &[
            ("1", "submitted"),
            ("2", "rejected"),
            ("3", "supplement_requested"),
        ],
        doc: "WSYSL 预受理状态代码",
    },
    Column {
        name: "SLZTDM",
        column: "SLZTDM",
        domain: Domain::Action(&["accepted", "rejected", "supplement_requested"]),
        by_name: false,
        defaults: &[
            ("1", "accepted"),
            ("2", "rejected"),
            ("3", "supplement_requested"),
            ("4", "rejected"),
        ],
        doc: "SL 受理状态代码",
    },
    Column {
        name: "GDBLSXDW",
        column: "GDBLSXDW",
        domain: Domain::Unit,
        by_name: false,
        defaults: UNITS,
        doc: "SL 规定办理时限单位 (the limit is taken as 法定时限)",
    },
    Column {
        name: "SPHJDM",
        column: "SPHJDM",
        domain: Domain::Stage,
        by_name: false,
        defaults: &[
            ("1", "undertake"),
            ("2", "review"),
            ("3", "approve"),
            ("0001", "undertake"),
        ],
        doc: "SPCL 审批环节代码",
    },
    Column {
        name: "SPHJZTDM",
        column: "SPHJZTDM",
        domain: Domain::StageResult,
        by_name: false,
        defaults: &[("1", "agree"), ("2", "disagree"), ("3", "return")],
        doc: "SPCL 审批环节状态代码 (meaning unpublished; 9 其他 is left unmapped)",
    },
    Column {
        name: "TBCXZL",
        column: "TBCXZL",
        domain: Domain::Action(&["extended", "special"]),
        by_name: false,
        defaults: &[("A", "extended"), ("B", "special")],
        doc: "TBCXSQ 特别程序种类 (A 延长审批, B 除延长审批之外)",
    },
    Column {
        name: "TBCXZLMC",
        column: "TBCXZLMC",
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
        doc: "TBCXSQ 特别程序种类名称 (free text; anything else is other)",
    },
    Column {
        name: "TBCXSXDW",
        column: "TBCXSXDW",
        domain: Domain::Unit,
        by_name: false,
        defaults: UNITS,
        doc: "TBCXSQ 特别程序时限单位",
    },
    Column {
        name: "BJJGDM",
        column: "BJJGDM",
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
        doc: "BJ 办结结果代码",
    },
];

/// Map one row; GDBS marks no deletions (a deleted case is 办结 code 3).
pub(crate) fn map(
    a: &Adapter<'_>,
    table: &'static str,
    row: &Row<'_>,
    out: &mut Vec<Event>,
) -> Result<bool, Dead> {
    let (_, case) = row.first(&["SBLSH", "SBLSH_SHORT"]).ok_or_else(|| {
        dead(
            "missing_column",
            Some("SBLSH"),
            format!("{table} rows need SBLSH"),
        )
    })?;
    let case = case.to_string();
    let version = row.first(&["VERSION", "SJBBH"]).map(|(_, v)| v);
    let department = a.department(
        row,
        &[
            "SLBMZZJGDM",
            "SLBMZZJDDM",
            "YSLBMZZJGDM",
            "SPBMZZJDMD",
            "SPBMZZJGDM",
            "BJBMZZJGDM",
            "BJBMZZJDDM",
        ],
        &case,
    );
    let center = a.place(
        row.get("BJDTBM"),
        row.get("XZQHDM"),
        department.as_deref(),
        Some(&case),
    )?;
    let mut head = Head {
        item: a.item(row, &["SXBM", "SXBM_SHORT"], &case),
        case: Some(case.clone()),
        department,
        window: row.get("BJCKBM").map(str::to_string),
        center,
        reported_at: a.opt_time(row, "INSERTTIME")?,
        staff: (None, None),
    };
    let short = table.trim_start_matches("EX_GDBS_");
    let id = |sub: Option<&str>, suffix: &str| {
        let mut k = vec![case.as_str()];
        k.extend(sub);
        a.identity(short, &k, version, suffix)
    };
    let need_item = |head: &Head| {
        head.item.is_some().then_some(()).ok_or_else(|| {
            dead(
                "missing_column",
                Some("SXBM"),
                format!("{table} rows need SXBM"),
            )
        })
    };
    match table {
        "EX_GDBS_SB" => {
            need_item(&head)?;
            let mut ev = a.event(
                &head,
                id(None, "")?,
                "case.submitted",
                a.time(row, "SBSJ", table)?,
            );
            ev.channel = match a.code(row, "WSSBQD")? {
                Some(c) => Some(c.to_string()),
                None => a.code(row, "TJFS")?.map(str::to_string),
            };
            out.push(ev);
        }
        "EX_GDBS_WSYSL" => {
            head.staff = staff(a, row, &head);
            let action = a.req_code(row, "YSLZTDM", table)?;
            let at = a.time(row, "YSLSJ", table)?;
            // One case may have several 预受理 records (补正, then 通过): keyed by time.
            let step = at[..19].replace([':', '-'], "");
            let id = |suffix: &str| id(Some(&step), suffix);
            let mut ev = match action {
                IGNORE => return Ok(false),
                "submitted" => {
                    need_item(&head)?;
                    let mut ev = a.event(&head, id("")?, "case.submitted", at);
                    ev.channel = Some("online".into());
                    ev
                }
                "rejected" => a.event(&head, id("")?, "case.rejected", at),
                _ => a.event(&head, id("")?, "case.supplement_requested", at),
            };
            ev.reason = row.first(&["BSLYY", "BJBZSM"]).map(|(_, v)| v.to_string());
            out.push(ev);
        }
        "EX_GDBS_SL" => {
            head.staff = staff(a, row, &head);
            let action = a.req_code(row, "SLZTDM", table)?;
            let at = a.time(row, "SLSJ", table)?;
            // 补齐补正 first, 受理 later: two SL records of one case, keyed by time.
            let step = at[..19].replace([':', '-'], "");
            let id = |_: Option<&str>, suffix: &str| id(Some(&step), suffix);
            let mut ev = match action {
                IGNORE => return Ok(false),
                "accepted" => {
                    need_item(&head)?;
                    let mut ev = a.event(&head, id(None, "")?, "case.accepted", at);
                    ev.channel =
                        Some(match a.code(row, "TJFS")? {
                            Some(c) => c.to_string(),
                            None if head.window.is_some() => "hall".to_string(),
                            None => return Err(dead(
                                "missing_column",
                                Some("TJFS"),
                                "an acceptance needs its channel: TJFS, or BJCKBM (a window: hall)",
                            )),
                        });
                    if let Some(days) = a.number(row, "GDBLSX")? {
                        let unit = a.req_code(row, "GDBLSXDW", table)?;
                        if unit != IGNORE {
                            ev.legal_days = Some(days);
                            ev.legal_unit = Some(unit.to_string());
                        }
                    }
                    ev
                }
                "rejected" => a.event(&head, id(None, "")?, "case.rejected", at),
                _ => a.event(&head, id(None, "")?, "case.supplement_requested", at),
            };
            if ev.kind != "case.accepted" {
                ev.reason = row.first(&["BSLYY", "BLYJ"]).map(|(_, v)| v.to_string());
            }
            out.push(ev);
        }
        "EX_GDBS_SPCL" => {
            head.staff = a.staff_by_name(row.get("SPRXM"), head.department.as_deref());
            let at = a.time(row, "SPSJ", table)?;
            let step = row
                .get("SPBZH")
                .map_or_else(|| at[..19].replace([':', '-'], ""), str::to_string);
            let stage = a.req_code(row, "SPHJDM", table)?;
            let result = a.req_code(row, "SPHJZTDM", table)?;
            if stage == IGNORE || result == IGNORE {
                return Ok(false);
            }
            let mut ev = a.event(&head, id(Some(&step), "")?, "case.stage", at);
            ev.stage = Some(stage.to_string());
            ev.result = Some(result.to_string());
            out.push(ev);
        }
        "EX_GDBS_BJ" => {
            head.staff = match row.get("SPRDM") {
                Some(code) => a.staff_by_id(Some(code)),
                None => a.staff_by_name(row.get("SPRXM"), head.department.as_deref()),
            };
            let result = a.req_code(row, "BJJGDM", table)?;
            let at = a.time(row, "BJSJ", table)?;
            if result == IGNORE {
                return Ok(false);
            }
            let mut ev = if result == "rejected" {
                a.event(&head, id(None, "")?, "case.rejected", at.clone())
            } else {
                let mut ev = a.event(&head, id(None, "")?, "case.completed", at.clone());
                ev.result = Some(result.to_string());
                ev
            };
            ev.reason = row.get("ZFHTHYY").map(str::to_string);
            out.push(ev);
            if let Some(fen) = a.fen(row, "SFJE")?.filter(|&f| f > 0) {
                need_item(&head)?;
                let mut fee = a.event(&head, id(None, ":fee")?, "fee.charged", at);
                fee.receipt_no = Some(format!("{case}:BJ"));
                fee.amount_fen = Some(fen);
                fee.payer_id = Some(format!("{case}:applicant"));
                out.push(fee);
            }
        }
        "EX_GDBS_TBCXSQ" => {
            let xh = a.req(row, "XH", table)?;
            let kind = a.req_code(row, "TBCXZL", table)?;
            let at = a.time(row, "TBCXKSRQ", table)?;
            let days = a.number(row, "TBCXSX")?;
            match kind {
                IGNORE => return Ok(false),
                "extended" => {
                    let days = days.ok_or_else(|| {
                        dead(
                            "missing_column",
                            Some("TBCXSX"),
                            "an extension (TBCXZL A) needs its days",
                        )
                    })?;
                    if let Some(u) = a.code(row, "TBCXSXDW")?.filter(|u| *u != "working") {
                        return Err(dead(
                            "bad_value",
                            Some("TBCXSXDW"),
                            format!("an extension counts working days (SPEC §3 case.extended); TBCXSXDW means {u}"),
                        ));
                    }
                    let mut ev = a.event(&head, id(Some(xh), "")?, "case.extended", at);
                    ev.extra_days = Some(days);
                    out.push(ev);
                }
                _ => {
                    let mut ev = a.event(&head, id(Some(xh), "")?, "case.special_started", at);
                    ev.procedure = Some(a.code(row, "TBCXZLMC")?.unwrap_or("other").to_string());
                    if let Some(d) = days.filter(|&d| d > 0) {
                        ev.limit_days = Some(d);
                        ev.limit_unit = Some(a.req_code(row, "TBCXSXDW", table)?.to_string());
                    }
                    ev.reason = row.get("TBCXQDLY").map(str::to_string);
                    out.push(ev);
                }
            }
        }
        "EX_GDBS_TBCXJG" => {
            let xh = a.req(row, "XH", table)?;
            let ev = a.event(
                &head,
                id(Some(xh), "")?,
                "case.special_ended",
                a.time(row, "TBCXJSRQ", table)?,
            );
            out.push(ev);
        }
        "EX_GDBS_BJGZ" => {
            let at = a.time(row, "BZGZSJ", table)?;
            let step = at[..19].replace([':', '-'], "");
            let mut ev = a.event(&head, id(Some(&step), "")?, "case.supplement_requested", at);
            ev.reason = row.get("BZGZYY").map(str::to_string);
            out.push(ev);
        }
        "EX_GDBS_BJSL" => {
            let at = a.time(row, "BZSJ", table)?;
            let step = row
                .get("XH")
                .map_or_else(|| at[..19].replace([':', '-'], ""), str::to_string);
            out.push(a.event(&head, id(Some(&step), "")?, "case.supplement_received", at));
        }
        _ => {
            // EX_GDBS_LQDJ
            out.push(a.event(
                &head,
                id(None, "")?,
                "case.delivered",
                a.time(row, "LQSJ", table)?,
            ));
        }
    }
    Ok(false)
}

/// Who acted on a 受理/预受理 row: the 工号, else the name.
fn staff(a: &Adapter<'_>, row: &Row<'_>, head: &Head) -> (Option<String>, Option<String>) {
    match row.get("BLRGH") {
        Some(code) => a.staff_by_id(Some(code)),
        None => a.staff_by_name(row.get("BLRXM"), head.department.as_deref()),
    }
}
