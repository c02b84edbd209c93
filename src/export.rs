//! `jiancha export`: the upward export (SPEC §9 Outbound) as a file, read from a store —
//! embedded mode's SQLite file under `--data`, or cluster mode's ClickHouse. The records are
//! rendered by `dashboard_api::export`, the same code the API's `/api/v1/export/gb39046` runs.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use dashboard_api::backend::{Backend, HistoryFilter};
use dashboard_api::Directory;
use node::glue::StoreBackend;
use rules::Day;

use crate::config::Config;
use crate::{fail_unusable, load, ClickHouseArgs, ReferenceArgs};

/// `jiancha export`.
#[derive(clap::Args)]
pub struct ExportArgs {
    /// The dataset: gb39046 (GB/T 39046-2020 电子监察, docs/API.md "Upward export").
    #[arg(long, value_name = "FORMAT", value_parser = [dashboard_api::export::FORMAT])]
    format: String,
    /// Embedded mode's data directory (its jiancha.db); without it, cluster mode's ClickHouse
    /// ([clickhouse] url and database, or the flags below).
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    #[command(flatten)]
    clickhouse: ClickHouseArgs,
    /// Only this region (GB/T 2260 code or prefix: `4306` is a city's counties).
    #[arg(long, value_name = "CODE", default_value = "")]
    region: String,
    /// First day (YYYY-MM-DD, China time), inclusive.
    #[arg(long, value_name = "DATE", value_parser = parse_day)]
    from: Option<Day>,
    /// Last day (YYYY-MM-DD), inclusive.
    #[arg(long, value_name = "DATE", value_parser = parse_day)]
    to: Option<Day>,
    /// Reference data for the names of centres and departments (else their codes).
    #[command(flatten)]
    refdata: ReferenceArgs,
    /// Write here instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
}

fn parse_day(s: &str) -> Result<Day, String> {
    Day::parse(s).ok_or_else(|| format!("{s:?}: expected a date YYYY-MM-DD"))
}

/// Run `jiancha export`.
pub fn export(args: ExportArgs, mut cfg: Config) -> ExitCode {
    if !args.region.bytes().all(|b| b.is_ascii_digit()) || args.region.len() > 6 {
        return fail_unusable(
            "export",
            format!("--region {:?}: expected up to 6 digits", args.region),
        );
    }
    if let (Some(a), Some(b)) = (args.from, args.to) {
        if b < a {
            return fail_unusable("export", format!("--to {b} is before --from {a}"));
        }
    }
    args.refdata.apply(&mut cfg.reference);
    let names = if cfg.reference.dir.is_some() {
        match load(&cfg.reference) {
            Some(loaded) => Directory::from_reference(&std::sync::Arc::new(loaded.reference)),
            None => return ExitCode::from(crate::EXIT_UNUSABLE),
        }
    } else {
        Directory::default()
    };
    args.clickhouse.apply(&mut cfg.clickhouse);
    let filter = HistoryFilter {
        region_prefix: args.region.clone(),
        from: args.from.map_or(0, |d| d.start().0),
        to: args.to.map_or(0, |d| d.end().0),
        limit: 1000,
        ..HistoryFilter::default()
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return fail_unusable("export", format!("cannot start the async runtime: {e}")),
    };
    let result = runtime.block_on(async {
        let backend: Box<dyn Backend> = match &args.data {
            Some(dir) => {
                let file = dir.join("jiancha.db");
                if !file.is_file() {
                    return Err(format!(
                        "{}: no embedded data here (jiancha serve --data)",
                        file.display()
                    ));
                }
                let store = store::sqlite::SqliteStore::open(&file).map_err(|e| e.to_string())?;
                Box::new(StoreBackend::new(store, "SQLite"))
            }
            None => {
                let store = store::clickhouse::ClickHouseStore::new(
                    &cfg.clickhouse.url,
                    &cfg.clickhouse.database,
                )
                .map_err(|e| e.to_string())?;
                Box::new(StoreBackend::new(store, "ClickHouse"))
            }
        };
        dashboard_api::export::from_backend(backend.as_ref(), &filter, &names)
            .await
            .map_err(|e| e.to_string())
    });
    let records = match result {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: export: {e}");
            return ExitCode::FAILURE;
        }
    };
    let text = dashboard_api::export::ndjson(&records);
    let written = match &args.output {
        Some(path) => std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display())),
        None => std::io::stdout()
            .lock()
            .write_all(text.as_bytes())
            .map_err(|e| e.to_string()),
    };
    match written {
        Ok(()) => {
            eprintln!("ok: {} records ({})", records.len(), args.format);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: export: {e}");
            ExitCode::FAILURE
        }
    }
}
