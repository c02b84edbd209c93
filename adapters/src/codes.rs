//! Code tables: what each coded column of a format means in jiancha's terms.
//!
//! Versions of one format disagree (Shandong's `DONERESULT` changed meaning between versions,
//! GDBS's `SPHJZTDM` is undocumented), so no code is hard-wired: every coded column has a
//! table, the defaults are those of `source-formats.md` (docs/ADAPTERS.md lists them), and a
//! deployment replaces a column's table in `adapters/<format>.toml` of its reference directory:
//!
//! ```toml
//! source = "sdjc:pj-approval"   # the source name events carry (else --source, else the format)
//! placeholder_names = ["自动预审"] # accounts that are nobody (besides the defaults)
//! placeholder_ids = ["999"]      # (besides ids of one repeated character, 000000, 888888)
//! [codes.SUBMIT]                 # a column's whole table: code = meaning
//! "0" = "hall"
//! "1" = "online"
//! ```
//!
//! A table given replaces the default one for that column whole (a partial merge would leave
//! codes whose meaning nobody chose). The meaning `"ignore"` drops a row on purpose. Columns
//! marked *by name* hold free text (环节名称, 特别程序种类名称): a key matches a value that
//! contains it, the longest key first. A code outside its table is never guessed: the row is a
//! dead letter `unmapped_code` naming the column and the value.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::Format;

/// What a column's codes may mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Domain {
    /// An acceptance channel (SPEC §3 `channel`).
    Channel,
    /// A case type (`case_type`).
    CaseType,
    /// A time-limit unit (SPEC §4 units).
    Unit,
    /// An approval stage.
    Stage,
    /// A stage result.
    StageResult,
    /// A completion result, or `rejected` (the row is a `case.rejected`).
    Completion,
    /// A 特别程序 kind.
    Procedure,
    /// An evaluation score 1–5 (5 = 非常满意).
    Score,
    /// What the row reports: one of the listed actions.
    Action(&'static [&'static str]),
}

impl Domain {
    /// The meanings allowed.
    pub fn allowed(self) -> &'static [&'static str] {
        match self {
            Domain::Channel => &["hall", "online", "self_service", "mobile", "office"],
            Domain::CaseType => &["instant", "promised", "reported", "joint"],
            Domain::Unit => &[
                "working",
                "natural",
                "working_hours",
                "working_minutes",
                "months",
            ],
            Domain::Stage => &["undertake", "review", "approve"],
            Domain::StageResult => &["agree", "disagree", "return"],
            Domain::Completion => &[
                "approved",
                "denied",
                "returned",
                "voided",
                "forwarded",
                "rejected",
            ],
            Domain::Procedure => &[
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
            ],
            Domain::Score => &["1", "2", "3", "4", "5"],
            Domain::Action(actions) => actions,
        }
    }

    fn allows(self, meaning: &str) -> bool {
        meaning == IGNORE || self.allowed().contains(&meaning)
    }
}

/// The meaning that drops a row on purpose.
pub const IGNORE: &str = "ignore";

/// A coded column of a format.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    /// The table's name in `[codes.NAME]`: the column's, or `TABLE_COLUMN` where one column
    /// name means different things in two tables.
    pub name: &'static str,
    /// The row column it reads.
    pub column: &'static str,
    /// What its codes may mean.
    pub domain: Domain,
    /// Free text matched by containment, not a code.
    pub by_name: bool,
    /// The default table (`source-formats.md`).
    pub defaults: &'static [(&'static str, &'static str)],
    /// What the column is, for docs and messages.
    pub doc: &'static str,
}

/// One column's (code or name, meaning) pairs.
type Table = Vec<(String, String)>;

/// The code tables in force for one format.
#[derive(Debug, Clone)]
pub struct Codes {
    /// Column → whether it is matched by name, and its (code, meaning), longest code first
    /// for by-name columns.
    tables: BTreeMap<&'static str, (bool, Table)>,
    /// Configured source name.
    pub source: Option<String>,
    /// Staff names that are nobody (placeholder accounts).
    pub placeholder_names: Vec<String>,
    /// Staff ids that are nobody.
    pub placeholder_ids: Vec<String>,
}

/// Placeholder names always treated as nobody (§7 of source-formats: auto-accept accounts).
pub const DEFAULT_PLACEHOLDER_NAMES: &[&str] = &["自动预审", "系统", "系统管理员", "admin"];

/// A problem in an `adapters/<format>.toml` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodesError {
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// What is wrong.
    pub reason: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    source: Option<String>,
    #[serde(default)]
    placeholder_names: Vec<String>,
    #[serde(default)]
    placeholder_ids: Vec<String>,
    #[serde(default)]
    codes: BTreeMap<String, BTreeMap<String, String>>,
}

impl Codes {
    /// The documented defaults.
    pub fn defaults(format: Format) -> Codes {
        let mut tables = BTreeMap::new();
        for c in format.columns() {
            tables.insert(
                c.name,
                (
                    c.by_name,
                    sorted(
                        c,
                        c.defaults
                            .iter()
                            .map(|&(k, v)| (k.to_string(), v.to_string()))
                            .collect(),
                    ),
                ),
            );
        }
        Codes {
            tables,
            source: None,
            placeholder_names: DEFAULT_PLACEHOLDER_NAMES
                .iter()
                .map(|s| s.to_string())
                .collect(),
            placeholder_ids: Vec::new(),
        }
    }

    /// The defaults with `text` (an `adapters/<format>.toml`) laid over them. Every problem is
    /// returned, each with its line.
    pub fn parse(format: Format, text: &str) -> Result<Codes, Vec<CodesError>> {
        let file: File = toml::from_str(text).map_err(|e| {
            vec![CodesError {
                line: e.span().map(|s| line_of(text, s.start)),
                reason: e.message().to_string(),
            }]
        })?;
        let mut codes = Codes::defaults(format);
        let mut errors = Vec::new();
        for (column, table) in file.codes {
            let header = find_line(text, &format!("codes.{column}"), 0);
            let Some(spec) = format.columns().iter().find(|c| c.name == column) else {
                errors.push(CodesError {
                    line: header,
                    reason: format!(
                        "[codes.{column}]: {} has no coded column {column:?}; its coded columns \
                         are {}",
                        format.as_str(),
                        format
                            .columns()
                            .iter()
                            .map(|c| c.name)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                });
                continue;
            };
            for (code, meaning) in &table {
                if !spec.domain.allows(meaning) {
                    errors.push(CodesError {
                        line: header.and_then(|h| find_line(text, code, h)),
                        reason: format!(
                            "[codes.{column}] {code:?} = {meaning:?}: {column} ({}) means one \
                             of {} or \"ignore\"",
                            spec.doc,
                            spec.domain.allowed().join(", ")
                        ),
                    });
                }
            }
            codes.tables.insert(
                spec.name,
                (spec.by_name, sorted(spec, table.into_iter().collect())),
            );
        }
        for id in &file.placeholder_ids {
            if id.trim().is_empty() {
                errors.push(CodesError {
                    line: find_line(text, "placeholder_ids", 0),
                    reason: "placeholder_ids: an empty id would make everyone nobody".into(),
                });
            }
        }
        if !errors.is_empty() {
            errors.sort_by_key(|e| e.line);
            return Err(errors);
        }
        codes.source = file.source;
        codes.placeholder_names.extend(file.placeholder_names);
        codes.placeholder_ids = file.placeholder_ids;
        Ok(codes)
    }

    /// The meaning of `value` in `column`'s table, `None` when it has none.
    pub fn lookup(&self, column: &str, value: &str) -> Option<&str> {
        self.entry(column, value).map(|(_, meaning)| meaning)
    }

    /// The entry of `column`'s table that `value` matches: (code or name, meaning).
    pub fn entry(&self, column: &str, value: &str) -> Option<(&str, &str)> {
        let (by_name, table) = self.tables.get(column)?;
        let by_name = *by_name;
        table
            .iter()
            .find(|(code, _)| {
                if by_name {
                    value.contains(code.as_str())
                } else {
                    code == value
                }
            })
            .map(|(code, meaning)| (code.as_str(), meaning.as_str()))
    }

    /// Is this staff id or name a placeholder account (nobody)?
    pub fn is_placeholder(&self, id_or_name: &str) -> bool {
        let mut chars = id_or_name.chars();
        let repeated = match chars.next() {
            Some(c) => id_or_name.chars().count() >= 4 && chars.all(|d| d == c),
            None => true,
        };
        repeated
            || self.placeholder_ids.iter().any(|p| p == id_or_name)
            || self.placeholder_names.iter().any(|p| p == id_or_name)
    }
}

/// By-name tables are tried longest key first, so 专家评审 wins over 评审.
fn sorted(spec: &Column, mut table: Vec<(String, String)>) -> Vec<(String, String)> {
    if spec.by_name {
        table.sort_by_key(|entry| std::cmp::Reverse(entry.0.chars().count()));
    }
    table
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// The first line at or after line `from` (1-based; 0 = start) whose text, before any `=`,
/// mentions `needle`.
fn find_line(text: &str, needle: &str, from: usize) -> Option<usize> {
    text.lines()
        .enumerate()
        .skip(from.saturating_sub(1))
        .find(|(i, l)| {
            let head = if *i + 1 == from {
                ""
            } else {
                l.split('=').next().unwrap_or("")
            };
            head.contains(needle)
        })
        .map(|(i, _)| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_replaces_the_default_and_bad_meanings_name_their_line() {
        let codes = Codes::parse(
            Format::Sdjc,
            "source = \"sdjc:pj\"\n[codes.SUBMIT]\n\"0\" = \"office\"\n",
        )
        .expect("valid");
        assert_eq!(codes.lookup("SUBMIT", "0"), Some("office"));
        assert_eq!(codes.lookup("SUBMIT", "1"), None, "replaced whole");
        assert_eq!(codes.source.as_deref(), Some("sdjc:pj"));
        let errors = Codes::parse(
            Format::Sdjc,
            "[codes.SUBMIT]\n\"0\" = \"hall\"\n\"1\" = \"internet\"\n[codes.NOPE]\n\"1\" = \"x\"\n",
        )
        .expect_err("invalid");
        assert_eq!(errors.len(), 2);
        assert_eq!(errors[0].line, Some(3), "{errors:?}");
        assert!(errors[0].reason.contains("internet"));
        assert_eq!(errors[1].line, Some(4));
        assert!(errors[1].reason.contains("NOPE"));
        let errors = Codes::parse(Format::Gdbs, "sorce = 1\n").expect_err("unknown key");
        assert_eq!(errors[0].line, Some(1));
    }

    #[test]
    fn every_default_is_allowed_by_its_domain() {
        for format in Format::ALL {
            for c in format.columns() {
                for (code, meaning) in c.defaults {
                    assert!(c.domain.allows(meaning), "{} {code} = {meaning}", c.name);
                }
            }
        }
    }

    #[test]
    fn placeholders_are_nobody() {
        let codes = Codes::defaults(Format::Sdjc);
        assert!(codes.is_placeholder("000000"));
        assert!(codes.is_placeholder("88888888"));
        assert!(codes.is_placeholder("自动预审"));
        assert!(!codes.is_placeholder("PJ0101"));
        assert!(!codes.is_placeholder("111"), "short ids may be real");
    }

    #[test]
    fn by_name_columns_match_the_longest_key() {
        let codes = Codes::defaults(Format::Gdbs);
        assert_eq!(
            codes.lookup("TBCXZLMC", "组织专家评审"),
            Some("expert_review")
        );
        assert_eq!(codes.lookup("TBCXZLMC", "举行听证会"), Some("hearing"));
    }
}
