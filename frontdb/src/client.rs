//! The database clients behind one small interface: run a statement with text parameters and
//! get rows of text back, or run one statement for many parameter rows in a transaction.
//! Everything travels as text (see [`crate::dialect`]), so the clients need no type mapping.

use crate::dialect::{Dialect, MariaDb, Postgres};

/// A failure talking to the front database. Every one is treated as an outage: the poller
/// reconnects and retries, and its position has not moved.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DbError(pub String);

/// Rows of text (`None`: SQL NULL).
pub type TextRows = Vec<Vec<Option<String>>>;

/// A connection to a front database.
pub trait Client: Send {
    /// Run `sql` with `params` (all text) and return its rows.
    fn query(&mut self, sql: &str, params: &[&str]) -> Result<TextRows, DbError>;
    /// Run `sql` once per parameter row, all in one transaction.
    fn execute_all(&mut self, sql: &str, rows: &[Vec<String>]) -> Result<(), DbError>;
    /// Run a statement without parameters or rows (transaction control).
    fn execute(&mut self, sql: &str) -> Result<(), DbError>;
    /// The dialect of this database.
    fn dialect(&self) -> &dyn Dialect;
}

/// Which database a source is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Driver {
    /// PostgreSQL (`postgresql://user:password@host:port/database`).
    Postgres,
    /// MariaDB or MySQL (`mysql://user:password@host:port/database`).
    MariaDb,
}

impl Driver {
    /// The driver a URL names by its scheme.
    pub fn of_url(url: &str) -> Option<Driver> {
        let scheme = url.split_once("://")?.0;
        match scheme {
            "postgres" | "postgresql" => Some(Driver::Postgres),
            "mysql" | "mariadb" => Some(Driver::MariaDb),
            _ => None,
        }
    }
}

/// Connect to `url` (its scheme chooses the driver), waiting at most `timeout`.
pub fn connect(url: &str, timeout: std::time::Duration) -> Result<Box<dyn Client>, DbError> {
    match Driver::of_url(url) {
        Some(Driver::Postgres) => {
            let mut config: postgres::Config = url
                .parse()
                .map_err(|e| DbError(format!("bad PostgreSQL URL: {e}")))?;
            config.connect_timeout(timeout);
            let client = config
                .connect(postgres::NoTls)
                .map_err(|e| DbError(format!("connecting to PostgreSQL: {e}")))?;
            Ok(Box::new(Pg { client }))
        }
        Some(Driver::MariaDb) => {
            let url = url.replacen("mariadb://", "mysql://", 1);
            let opts = mysql::Opts::from_url(&url)
                .map_err(|e| DbError(format!("bad MariaDB URL: {e}")))?;
            let opts = mysql::OptsBuilder::from_opts(opts)
                .tcp_connect_timeout(Some(timeout))
                .read_timeout(Some(timeout * 6))
                .write_timeout(Some(timeout * 6));
            let conn = mysql::Conn::new(opts)
                .map_err(|e| DbError(format!("connecting to MariaDB: {e}")))?;
            Ok(Box::new(Maria { conn }))
        }
        None => Err(DbError(format!(
            "{url:?}: the URL must start with postgresql:// or mysql://"
        ))),
    }
}

struct Pg {
    client: postgres::Client,
}

fn pg_error(e: postgres::Error) -> DbError {
    DbError(format!("PostgreSQL: {e}"))
}

impl Client for Pg {
    fn query(&mut self, sql: &str, params: &[&str]) -> Result<TextRows, DbError> {
        let types = vec![postgres::types::Type::TEXT; params.len()];
        let stmt = self.client.prepare_typed(sql, &types).map_err(pg_error)?;
        let args: Vec<&(dyn postgres::types::ToSql + Sync)> = params
            .iter()
            .map(|p| p as &(dyn postgres::types::ToSql + Sync))
            .collect();
        let rows = self.client.query(&stmt, &args).map_err(pg_error)?;
        rows.iter()
            .map(|row| {
                (0..row.len())
                    .map(|i| row.try_get::<_, Option<String>>(i).map_err(pg_error))
                    .collect()
            })
            .collect()
    }

    fn execute_all(&mut self, sql: &str, rows: &[Vec<String>]) -> Result<(), DbError> {
        let Some(first) = rows.first() else {
            return Ok(());
        };
        let types = vec![postgres::types::Type::TEXT; first.len()];
        let mut tx = self.client.transaction().map_err(pg_error)?;
        let stmt = tx.prepare_typed(sql, &types).map_err(pg_error)?;
        for row in rows {
            let args: Vec<&(dyn postgres::types::ToSql + Sync)> = row
                .iter()
                .map(|p| p as &(dyn postgres::types::ToSql + Sync))
                .collect();
            tx.execute(&stmt, &args).map_err(pg_error)?;
        }
        tx.commit().map_err(pg_error)
    }

    fn execute(&mut self, sql: &str) -> Result<(), DbError> {
        self.client.batch_execute(sql).map_err(pg_error)
    }

    fn dialect(&self) -> &dyn Dialect {
        &Postgres
    }
}

struct Maria {
    conn: mysql::Conn,
}

fn my_error(e: mysql::Error) -> DbError {
    DbError(format!("MariaDB: {e}"))
}

fn my_params(params: &[impl AsRef<str>]) -> mysql::Params {
    if params.is_empty() {
        mysql::Params::Empty
    } else {
        mysql::Params::Positional(
            params
                .iter()
                .map(|p| mysql::Value::Bytes(p.as_ref().as_bytes().to_vec()))
                .collect(),
        )
    }
}

impl Client for Maria {
    fn query(&mut self, sql: &str, params: &[&str]) -> Result<TextRows, DbError> {
        use mysql::prelude::Queryable;
        let rows: Vec<mysql::Row> = self.conn.exec(sql, my_params(params)).map_err(my_error)?;
        Ok(rows
            .into_iter()
            .map(|row| {
                row.unwrap()
                    .into_iter()
                    .map(|v| match v {
                        mysql::Value::NULL => None,
                        mysql::Value::Bytes(b) => Some(String::from_utf8_lossy(&b).into_owned()),
                        // Only text is selected (CAST … AS CHAR); a catalogue number as text.
                        other => Some(other.as_sql(true).trim_matches('\'').to_string()),
                    })
                    .collect()
            })
            .collect())
    }

    fn execute_all(&mut self, sql: &str, rows: &[Vec<String>]) -> Result<(), DbError> {
        use mysql::prelude::Queryable;
        if rows.is_empty() {
            return Ok(());
        }
        let mut tx = self
            .conn
            .start_transaction(mysql::TxOpts::default())
            .map_err(my_error)?;
        tx.exec_batch(sql, rows.iter().map(|r| my_params(r)))
            .map_err(my_error)?;
        tx.commit().map_err(my_error)
    }

    fn execute(&mut self, sql: &str) -> Result<(), DbError> {
        use mysql::prelude::Queryable;
        self.conn.query_drop(sql).map_err(my_error)
    }

    fn dialect(&self) -> &dyn Dialect {
        &MariaDb
    }
}
