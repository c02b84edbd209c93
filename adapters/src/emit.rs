//! The other direction, for the simulator and tests: a §3 event as rows of a format, so a
//! simulated hall can feed `jiancha adapt` as an approval system's 前置库 would (SPEC §9,
//! issue 19 part 7). Codes are the default tables' (the first code of each meaning).
//!
//! Lossy where the formats are: an event no table carries (windows, staff, queues,
//! rectifications; complaints outside gb39046; fees and ratings without a case) gives no row
//! and is counted by the caller; a channel a format has no code for becomes the nearest it has
//! (`self_service` → hall, `mobile` → online in sdjc), an end that needs its start (补正受理,
//! 解挂 in sdjc's one-row special nodes) is left out. `tests/adapters.rs` holds what survives to
//! the native alerts.

use serde_json::{json, Map, Value};

use crate::{Codes, Format};

/// An RFC 3339 time in +08:00 as the formats write it (`YYYY-MM-DD hh:mm:ss`).
fn local(t: &str) -> String {
    match rules::time::parse_rfc3339(t) {
        Ok(i) => {
            let s = i.to_string(); // RFC 3339 in +08:00
            s.get(..19).unwrap_or(&s).replace('T', " ")
        }
        Err(_) => t.to_string(),
    }
}

/// The first code of `name`'s default table that means `meaning`.
fn code(codes: &Codes, format: Format, name: &str, meaning: &str) -> Option<String> {
    format
        .columns()
        .iter()
        .find(|c| c.name == name)?
        .defaults
        .iter()
        .find(|(k, m)| *m == meaning && !k.is_empty() && codes.lookup(name, k) == Some(meaning))
        .map(|(k, _)| (*k).to_string())
}

/// Writes events as rows of one format, remembering what a later row needs (gb39046's
/// acceptance row carries the application's time).
pub struct Emitter {
    format: Format,
    codes: Codes,
    /// case → its application time, until its acceptance row is written
    applied: std::collections::HashMap<String, String>,
}

impl Emitter {
    /// An emitter of `format` with its default code tables.
    pub fn new(format: Format) -> Emitter {
        Emitter {
            format,
            codes: Codes::defaults(format),
            applied: std::collections::HashMap::new(),
        }
    }

    /// The rows that carry `event` (a §3 event as JSON), with `name_of` giving a staff
    /// member's name for formats that carry names only. Empty when no table carries it.
    pub fn rows(&mut self, event: &Value, name_of: &dyn Fn(&str) -> Option<String>) -> Vec<Value> {
        let applied = match (self.format, event.get("kind").and_then(Value::as_str)) {
            (Format::Gb39046, Some("case.submitted")) => {
                if let (Some(c), Some(t)) = (
                    event.get("case_id").and_then(Value::as_str),
                    event.get("occurred_at").and_then(Value::as_str),
                ) {
                    self.applied.insert(c.to_string(), local(t));
                }
                return Vec::new();
            }
            (Format::Gb39046, Some("case.accepted")) => event
                .get("case_id")
                .and_then(Value::as_str)
                .and_then(|c| self.applied.remove(c)),
            _ => None,
        };
        rows(self.format, &self.codes, event, name_of, applied)
    }
}

fn rows(
    format: Format,
    codes: &Codes,
    event: &Value,
    name_of: &dyn Fn(&str) -> Option<String>,
    applied: Option<String>,
) -> Vec<Value> {
    let s = |k: &str| event.get(k).and_then(Value::as_str).map(str::to_string);
    let (Some(kind), Some(at)) = (s("kind"), s("occurred_at")) else {
        return Vec::new();
    };
    let at = local(&at);
    let id = s("event_id").unwrap_or_default();
    let case = s("case_id");
    let staff = s("staff_id");
    let name = staff.as_deref().and_then(name_of);
    let mut row = Map::new();
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            row.insert(k.to_string(), v);
        }
    };
    let code_of = |name: &str, meaning: Option<String>| {
        meaning
            .and_then(|m| code(codes, format, name, &m))
            .map(Value::from)
    };
    let int = |k: &str| event.get(k).and_then(Value::as_u64);
    let ch = s("channel").map(|c| match (format, c.as_str()) {
        (_, "self_service") => "hall".to_string(),
        (Format::Sdjc, "mobile") => "online".to_string(),
        _ => c,
    });
    let table = match format {
        Format::Sdjc => {
            let Some(case) = case.clone() else {
                return Vec::new();
            };
            put("PROJID", Some(case.clone().into()));
            put("ORGBUSNO", Some(case.into()));
            put("DATAVER", Some(1.into()));
            put(
                "REGION_ID",
                s("region").map(|r| format!("{r}000000").into()),
            );
            put("MAKETIME", s("reported_at").map(|t| local(&t).into()));
            match kind.as_str() {
                "case.submitted" => {
                    put("ITEMNO", s("item_code").map(Into::into));
                    put("DEPTID", s("department").map(Into::into));
                    put(
                        "APPLYFROM",
                        ch.map(|c| match c.as_str() {
                            "hall" => "窗口".into(),
                            "online" | "mobile" => "网上".into(),
                            _ => "其它".into(),
                        }),
                    );
                    put("RECEIVE_USEID", staff.map(Into::into));
                    put("RECEIVETIME", Some(at.into()));
                    "PRE_APASINFO"
                }
                "case.accepted" => {
                    put("ITEMNO", s("item_code").map(Into::into));
                    put("ACCEPTDEPTID", s("department").map(Into::into));
                    put("SUBMIT", code_of("SUBMIT", ch));
                    put("APPROVALTYPE", code_of("APPROVALTYPE", s("case_type")));
                    put("PROMISETIMELIMIT", int("promised_days").map(Into::into));
                    put(
                        "PROMISETIMEUNIT",
                        code_of("PROMISETIMEUNIT", s("promised_unit")),
                    );
                    put("TIMELIMIT", int("legal_days").map(Into::into));
                    put("TIMEUNIT", code_of("TIMEUNIT", s("legal_unit")));
                    put("TRANSACTOR", name.map(Into::into));
                    put("OCCURTIME", Some(at.into()));
                    "EA_JC_STEP_BASICINFO"
                }
                "case.stage" | "case.rejected" | "case.supplement_requested" => {
                    let (node, result) = match kind.as_str() {
                        "case.stage" => (
                            match s("stage").as_deref() {
                                Some("undertake") => "承办",
                                Some("review") => "审核",
                                _ => "批准",
                            },
                            match s("result").as_deref() {
                                Some("agree") => "1",
                                Some("disagree") => "0",
                                _ => "7",
                            },
                        ),
                        "case.rejected" => ("受理", "3"),
                        _ => ("补正", "5"),
                    };
                    put("SN", Some(id.into()));
                    put("NODENAME", Some(node.into()));
                    put("NODESTATE", Some("02".into()));
                    put("NODERESULT", Some(result.into()));
                    put("NODEPROCER", staff.map(Into::into));
                    put("PROCUNIT", s("department").map(Into::into));
                    put("NODEADV", s("reason").map(Into::into));
                    put("NODESTARTTIME", Some(at.clone().into()));
                    put("NODEENDTIME", Some(at.into()));
                    "EA_JC_STEP_PROC"
                }
                "case.completed" => {
                    put("DONERESULT", code_of("DONERESULT", s("result")));
                    put("TRANSACTOR", name.map(Into::into));
                    put("OCCURTIME", Some(at.into()));
                    "EA_JC_STEP_DONE"
                }
                "fee.charged" => {
                    put("SN", Some(id.into()));
                    put("ITEMNO", s("item_code").map(Into::into));
                    put("FEEORGID", s("department").map(Into::into));
                    put("BILLNUM", s("receipt_no").map(Into::into));
                    put("PAYPERSON", s("payer_id").map(Into::into));
                    put(
                        "FEETOTAL",
                        int("amount_fen").map(|f| format!("{}.{:02}", f / 100, f % 100).into()),
                    );
                    put("STATE", Some("1".into()));
                    put("PAYTIME", Some(at.into()));
                    "EA_JC_FEEINFO"
                }
                "evaluation.submitted" => {
                    put("SN", s("evaluation_id").map(Into::into));
                    put("EVALRESULT", int("score").map(|v| v.to_string().into()));
                    put("EVALDATE", Some(at.into()));
                    "EA_JC_SERVEVAL"
                }
                _ => return Vec::new(),
            }
        }
        Format::Gdbs => {
            let Some(case) = case.clone() else {
                return Vec::new();
            };
            put("SBLSH", Some(case.into()));
            put("SXBM", s("item_code").map(Into::into));
            put("XZQHDM", s("region").map(Into::into));
            put("BJDTBM", s("center_id").map(Into::into));
            put("INSERTTIME", s("reported_at").map(|t| local(&t).into()));
            match kind.as_str() {
                "case.submitted" => {
                    match ch.as_deref() {
                        Some("mobile") => put("WSSBQD", Some("1".into())),
                        Some("online") => put("WSSBQD", Some("0".into())),
                        other => put("TJFS", code_of("TJFS", other.map(str::to_string))),
                    }
                    put("SBSJ", Some(at.into()));
                    "EX_GDBS_SB"
                }
                "case.accepted" | "case.rejected" => {
                    let accepted = kind == "case.accepted";
                    put("SLZTDM", Some(if accepted { "1" } else { "4" }.into()));
                    if accepted {
                        put("TJFS", code_of("TJFS", ch));
                        put("GDBLSX", int("legal_days").map(Into::into));
                        put("GDBLSXDW", code_of("GDBLSXDW", s("legal_unit")));
                    }
                    put("BJCKBM", s("window_id").map(Into::into));
                    put("SLBMZZJGDM", s("department").map(Into::into));
                    put("BLRGH", staff.map(Into::into));
                    put("BSLYY", s("reason").map(Into::into));
                    put("SLSJ", Some(at.into()));
                    "EX_GDBS_SL"
                }
                "case.stage" => {
                    put("SPHJDM", code_of("SPHJDM", s("stage")));
                    put("SPHJZTDM", code_of("SPHJZTDM", s("result")));
                    put("SPRXM", name.map(Into::into));
                    put("SPBMZZJDMD", s("department").map(Into::into));
                    put("SPBZH", Some(id.into()));
                    put("SPSJ", Some(at.into()));
                    "EX_GDBS_SPCL"
                }
                "case.completed" => {
                    put("BJJGDM", code_of("BJJGDM", s("result")));
                    put("SPRDM", staff.map(Into::into));
                    put("BJSJ", Some(at.into()));
                    "EX_GDBS_BJ"
                }
                "case.supplement_requested" => {
                    put("BZGZYY", s("reason").map(Into::into));
                    put("BZGZSJ", Some(at.into()));
                    "EX_GDBS_BJGZ"
                }
                "case.supplement_received" => {
                    put("BZSJ", Some(at.into()));
                    "EX_GDBS_BJSL"
                }
                "case.delivered" => {
                    put("LQSJ", Some(at.into()));
                    "EX_GDBS_LQDJ"
                }
                _ => return Vec::new(),
            }
        }
        Format::Gb39046 => {
            put("cd_time", s("reported_at").map(|t| local(&t).into()));
            put("row_guid", Some(id.into()));
            match kind.as_str() {
                // One row holds the application and the acceptance (the submission itself
                // gives no row; without one, the application is the acceptance's instant).
                "case.accepted" => {
                    put("project_no", case.map(Into::into));
                    put("task_code", s("item_code").map(Into::into));
                    put("org_code", s("department").map(Into::into));
                    put("apply_type", code_of("apply_type", ch));
                    put("project_type", code_of("project_type", s("case_type")));
                    put("handle_user_name", name.map(Into::into));
                    put(
                        "apply_date",
                        Some(applied.unwrap_or_else(|| at.clone()).into()),
                    );
                    put("accept_date", Some(at.into()));
                    "up_pro_accept"
                }
                "case.stage" => {
                    put("project_no", case.map(Into::into));
                    put(
                        "process_name",
                        Some(match s("stage").as_deref() {
                            Some("undertake") => "承办".into(),
                            Some("review") => "审核".into(),
                            _ => "批准".into(),
                        }),
                    );
                    put("event_name", code_of("event_name", s("result")));
                    put("handle_user_name", name.map(Into::into));
                    put("org_code", s("department").map(Into::into));
                    put("event_start_time", Some(at.clone().into()));
                    put("event_end_time", Some(at.into()));
                    "up_pro_process"
                }
                "case.completed" => {
                    put("project_no", case.map(Into::into));
                    put("result_type", code_of("result_type", s("result")));
                    put("handle_user_name", name.map(Into::into));
                    put("result_date", Some(at.into()));
                    "up_pro_result"
                }
                "fee.charged" if case.is_some() => {
                    put("办件编号", case.map(Into::into));
                    put("实施编码", s("item_code").map(Into::into));
                    put("收费单位", s("department").map(Into::into));
                    put("缴款单号", s("receipt_no").map(Into::into));
                    put(
                        "收费金额",
                        int("amount_fen").map(|f| format!("{}.{:02}", f / 100, f % 100).into()),
                    );
                    put("缴款人", s("payer_id").map(Into::into));
                    put("收费时间", Some(at.into()));
                    "gb_payment"
                }
                "evaluation.submitted" if case.is_some() => {
                    put("办件编号", case.map(Into::into));
                    put("评价次数", s("evaluation_id").map(Into::into));
                    put(
                        "满意度代码",
                        int("score")
                            .and_then(|v| code(codes, format, "满意度代码", &v.to_string()))
                            .map(Into::into),
                    );
                    put("评价时间", Some(at.into()));
                    "gb_evaluation"
                }
                _ => return Vec::new(),
            }
        }
    };
    row.insert("_table".into(), json!(table));
    vec![Value::Object(row)]
}
