//! The one seam between databases: every statement the poller sends is built here, from
//! standard SQL plus the few things each database spells its own way. Adding a database
//! (Oracle, docs/ADAPTERS.md "Oracle") is one more implementation of [`Dialect`].
//!
//! What differs, and nothing else:
//! - bind parameters (`$1` / `?` / `:1`) and how a text parameter becomes a column's type
//!   (every value travels as text, so a key or time read back is bound back exactly as read);
//! - a column as text in the select list (`CAST(c AS TEXT)` / `CAST(c AS CHAR)` / `TO_CHAR`);
//! - the first rows only (`LIMIT n` / `FETCH FIRST n ROWS ONLY`);
//! - "now less a few seconds" for the settle delay;
//! - the current schema in the catalogue queries;
//! - how a read-only transaction with one snapshot begins.
//!
//! Identifiers are never quoted: a configured name is checked to be a plain SQL identifier
//! (`[A-Za-z0-9_$]`, optionally `schema.table`) and each database folds it as it folds the
//! names in its DDL (PostgreSQL to lower case, Oracle to upper case, MariaDB keeps it).

/// How one database spells what standard SQL leaves open.
pub trait Dialect: Send {
    /// Bind parameter `n` (1-based), as text, converted to a column of `data_type` (as the
    /// catalogue names it).
    fn param(&self, n: usize, data_type: &str) -> String;
    /// Bind parameter `n` as plain text (catalogue queries).
    fn text_param(&self, n: usize) -> String;
    /// Column `column` of `data_type` as text in a select list.
    fn as_text(&self, column: &str, data_type: &str) -> String;
    /// `sql` limited to its first `n` rows.
    fn first_rows(&self, sql: String, n: usize) -> String;
    /// The database's current local time less `seconds`.
    fn now_less(&self, seconds: u64) -> String;
    /// The current schema (for names given without one).
    fn current_schema(&self) -> &'static str;
    /// Begin a read-only transaction whose reads all see one snapshot (a round reads every
    /// table in it, so a transaction committing between two tables' reads is seen by both or
    /// by neither). Ended by `COMMIT`.
    fn snapshot(&self) -> &'static str;
}

/// PostgreSQL (tested against Debian's 15).
pub struct Postgres;

impl Dialect for Postgres {
    fn param(&self, n: usize, data_type: &str) -> String {
        // Parameters are declared TEXT when prepared; the cast makes them the column's type,
        // so comparisons use the column's order and its index.
        format!("CAST(${n} AS {data_type})")
    }
    fn text_param(&self, n: usize) -> String {
        format!("${n}")
    }
    fn as_text(&self, column: &str, _data_type: &str) -> String {
        format!("CAST({column} AS TEXT)")
    }
    fn first_rows(&self, sql: String, n: usize) -> String {
        format!("{sql} LIMIT {n}")
    }
    fn now_less(&self, seconds: u64) -> String {
        format!("LOCALTIMESTAMP - INTERVAL '{seconds} seconds'")
    }
    fn current_schema(&self) -> &'static str {
        "current_schema()"
    }
    fn snapshot(&self) -> &'static str {
        "START TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"
    }
}

/// MariaDB and MySQL (tested against Debian's MariaDB).
pub struct MariaDb;

impl Dialect for MariaDb {
    fn param(&self, _n: usize, _data_type: &str) -> String {
        // MariaDB converts a string parameter to the column's type in a comparison.
        "?".to_string()
    }
    fn text_param(&self, _n: usize) -> String {
        "?".to_string()
    }
    fn as_text(&self, column: &str, _data_type: &str) -> String {
        format!("CAST({column} AS CHAR)")
    }
    fn first_rows(&self, sql: String, n: usize) -> String {
        format!("{sql} LIMIT {n}")
    }
    fn now_less(&self, seconds: u64) -> String {
        format!("NOW(6) - INTERVAL {seconds} SECOND")
    }
    fn current_schema(&self) -> &'static str {
        "DATABASE()"
    }
    fn snapshot(&self) -> &'static str {
        // InnoDB's default isolation is REPEATABLE READ: one read view for the transaction.
        "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY"
    }
}

/// Is `name` usable unquoted: `[A-Za-z_][A-Za-z0-9_$]*`, optionally `schema.name`?
pub fn plain_identifier(name: &str) -> bool {
    let part = |p: &str| {
        let mut chars = p.chars();
        matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
    };
    match name.split_once('.') {
        Some((schema, table)) => part(schema) && part(table),
        None => part(name),
    }
}

/// The statements of one table, built once from its catalogue entry.
#[derive(Debug, Clone)]
pub struct Statements {
    /// Rows after a watermark: parameter 1 is the watermark time.
    pub after: String,
    /// The same without a limit (more rows share the watermark's time than a batch holds).
    pub after_all: String,
    /// Rows written between parameters 1 and 2 (refilling the adapter's memory).
    pub window: String,
    /// The first rows of all (no watermark yet).
    pub first: String,
    /// Rows whose flag is not the done value (parameter 1).
    pub flagged: String,
    /// The latest write time of the rows flagged done (parameter 1).
    pub flagged_until: String,
    /// Rows flagged done (parameter 1) written since parameter 2 (refilling the memory).
    pub flagged_window: String,
    /// Set the flag (parameter 1) on one row (parameters 2.. are its key).
    pub mark: String,
}

/// A table as the catalogue describes it.
#[derive(Debug, Clone)]
pub struct TableInfo {
    /// The name as configured.
    pub name: String,
    /// Every column with its data type, in table order.
    pub columns: Vec<(String, String)>,
    /// The primary key's columns, in key order.
    pub key: Vec<String>,
}

impl TableInfo {
    /// The data type of `column` (any case).
    pub fn data_type(&self, column: &str) -> Option<&str> {
        self.columns
            .iter()
            .find(|(c, _)| c.eq_ignore_ascii_case(column))
            .map(|(_, t)| t.as_str())
    }

    /// Index of `column` (any case) in the select list.
    pub fn index(&self, column: &str) -> Option<usize> {
        self.columns
            .iter()
            .position(|(c, _)| c.eq_ignore_ascii_case(column))
    }
}

/// Build a table's statements. `time` is the write-time column (watermark mode, and the order
/// of flag mode when given), `flag` the flag column; `limit` rows per statement, `settle_seconds`
/// how old a row's write time must be before a watermark takes it.
pub fn statements(
    d: &dyn Dialect,
    t: &TableInfo,
    time: Option<&str>,
    flag: Option<(&str, &str)>,
    limit: usize,
    settle_seconds: u64,
) -> Statements {
    let list: Vec<String> = t.columns.iter().map(|(c, ty)| d.as_text(c, ty)).collect();
    let select = format!("SELECT {} FROM {}", list.join(", "), t.name);
    let key = t.key.join(", ");
    let order = match time {
        Some(time) => format!("ORDER BY {time}, {key}"),
        None => format!("ORDER BY {key}"),
    };
    let (after_all, window) = match time {
        Some(time) => {
            let ty = t.data_type(time).unwrap_or("timestamp");
            (
                format!(
                    "{select} WHERE {time} >= {} AND {time} <= {} {order}",
                    d.param(1, ty),
                    d.now_less(settle_seconds)
                ),
                format!(
                    "{select} WHERE {time} >= {} AND {time} <= {} {order}",
                    d.param(1, ty),
                    d.param(2, ty)
                ),
            )
        }
        None => (String::new(), String::new()),
    };
    let (after, first) = match time {
        Some(time) => {
            let ty = t.data_type(time).unwrap_or("timestamp");
            let settled = format!("{time} <= {}", d.now_less(settle_seconds));
            (
                d.first_rows(
                    format!(
                        "{select} WHERE {time} >= {} AND {settled} {order}",
                        d.param(1, ty)
                    ),
                    limit,
                ),
                d.first_rows(
                    format!("{select} WHERE {time} IS NOT NULL AND {settled} {order}"),
                    limit,
                ),
            )
        }
        None => (String::new(), String::new()),
    };
    let (flagged_until, flagged_window) = match (flag, time) {
        (Some((column, ty)), Some(time)) => (
            format!(
                "SELECT {} FROM {} WHERE {column} = {}",
                d.as_text(&format!("MAX({time})"), ""),
                t.name,
                d.param(1, ty)
            ),
            format!(
                "{select} WHERE {column} = {} AND {time} >= {} {order}",
                d.param(1, ty),
                d.param(2, t.data_type(time).unwrap_or("timestamp"))
            ),
        ),
        _ => (String::new(), String::new()),
    };
    let (flagged, mark) = match flag {
        Some((column, ty)) => {
            let key_match: Vec<String> = t
                .key
                .iter()
                .enumerate()
                .map(|(i, k)| format!("{k} = {}", d.param(i + 2, t.data_type(k).unwrap_or(""))))
                .collect();
            (
                d.first_rows(
                    format!(
                        "{select} WHERE ({column} IS NULL OR {column} <> {}) {order}",
                        d.param(1, ty)
                    ),
                    limit,
                ),
                format!(
                    "UPDATE {} SET {column} = {} WHERE {}",
                    t.name,
                    d.param(1, ty),
                    key_match.join(" AND ")
                ),
            )
        }
        None => (String::new(), String::new()),
    };
    Statements {
        after,
        after_all,
        window,
        first,
        flagged,
        flagged_until,
        flagged_window,
        mark,
    }
}

/// The catalogue query of a table's columns: parameters 1 the table name, 2 its schema
/// (empty: the current one). Standard `information_schema` (Oracle: `ALL_TAB_COLUMNS`).
pub fn columns_query(d: &dyn Dialect) -> String {
    format!(
        "SELECT column_name, data_type FROM information_schema.columns \
         WHERE lower(table_name) = lower({p1}) \
         AND table_schema = COALESCE(NULLIF({p2}, ''), {schema}) ORDER BY ordinal_position",
        p1 = d.text_param(1),
        p2 = d.text_param(2),
        schema = d.current_schema()
    )
}

/// The catalogue query of a table's primary key columns, in key order (parameters as
/// [`columns_query`]; Oracle: `ALL_CONSTRAINTS` + `ALL_CONS_COLUMNS`).
pub fn key_query(d: &dyn Dialect) -> String {
    format!(
        "SELECT k.column_name FROM information_schema.table_constraints c \
         JOIN information_schema.key_column_usage k ON k.constraint_name = c.constraint_name \
         AND k.table_schema = c.table_schema AND k.table_name = c.table_name \
         WHERE c.constraint_type = 'PRIMARY KEY' AND lower(c.table_name) = lower({p1}) \
         AND c.table_schema = COALESCE(NULLIF({p2}, ''), {schema}) ORDER BY k.ordinal_position",
        p1 = d.text_param(1),
        p2 = d.text_param(2),
        schema = d.current_schema()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> TableInfo {
        TableInfo {
            name: "EA_JC_STEP_DONE".into(),
            columns: vec![
                ("projid".into(), "character varying".into()),
                ("dataver".into(), "integer".into()),
                ("maketime".into(), "timestamp without time zone".into()),
                ("signstate".into(), "integer".into()),
            ],
            key: vec!["projid".into(), "dataver".into()],
        }
    }

    #[test]
    fn postgres_statements_cast_text_parameters_to_the_columns_types() {
        let s = statements(
            &Postgres,
            &table(),
            Some("maketime"),
            Some(("signstate", "integer")),
            500,
            2,
        );
        assert_eq!(
            s.after,
            "SELECT CAST(projid AS TEXT), CAST(dataver AS TEXT), CAST(maketime AS TEXT), \
             CAST(signstate AS TEXT) FROM EA_JC_STEP_DONE WHERE maketime >= \
             CAST($1 AS timestamp without time zone) AND maketime <= LOCALTIMESTAMP - \
             INTERVAL '2 seconds' ORDER BY maketime, projid, dataver LIMIT 500"
        );
        assert_eq!(
            s.mark,
            "UPDATE EA_JC_STEP_DONE SET signstate = CAST($1 AS integer) WHERE projid = \
             CAST($2 AS character varying) AND dataver = CAST($3 AS integer)"
        );
    }

    #[test]
    fn mariadb_statements_use_question_marks() {
        let s = statements(&MariaDb, &table(), None, Some(("signstate", "int")), 10, 0);
        assert!(s.flagged.ends_with(
            "WHERE (signstate IS NULL OR signstate <> ?) ORDER BY projid, dataver LIMIT 10"
        ));
        assert_eq!(
            s.mark,
            "UPDATE EA_JC_STEP_DONE SET signstate = ? WHERE projid = ? AND dataver = ?"
        );
        assert!(
            s.after.is_empty(),
            "no time column: no watermark statements"
        );
    }

    #[test]
    fn identifiers_are_plain_or_refused() {
        assert!(plain_identifier("EA_JC_STEP_PROC"));
        assert!(plain_identifier("DHQZK.EA_JC_STEP_PROC"));
        assert!(!plain_identifier("t; DROP TABLE x"));
        assert!(!plain_identifier("\"quoted\""));
        assert!(!plain_identifier("1abc"));
        assert!(!plain_identifier("a.b.c"));
    }
}
