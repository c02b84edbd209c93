//! A plain stderr logger for the `log` facade (jiancha's and librdkafka's messages), one line
//! per record with local (+08:00) time, level and origin. `JIANCHA_LOG` sets the level (`error`, `warn`,
//! `info` (default), `debug`, `trace`).

use std::io::Write;
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use log::{Level, LevelFilter, Log, Metadata, Record};

struct Stderr;

static LOGGER: Stderr = Stderr;

/// When [`init`] ran: the binary calls it first, so this is the process start for the log
/// lines that say how long start-up took.
static STARTED: OnceLock<Instant> = OnceLock::new();

/// Time since the process started (since [`init`]; zero if it was never called).
pub fn uptime() -> Duration {
    STARTED.get().map_or(Duration::ZERO, Instant::elapsed)
}

impl Log for Stderr {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let stamp = rules::Instant(now.as_secs() as i64);
        let level = match record.level() {
            Level::Error => "ERROR",
            Level::Warn => "WARN ",
            Level::Info => "INFO ",
            Level::Debug => "DEBUG",
            Level::Trace => "TRACE",
        };
        let _ = writeln!(
            std::io::stderr().lock(),
            "{stamp} {level} {}: {}",
            record.target(),
            record.args()
        );
    }

    fn flush(&self) {}
}

/// Install the logger (once; later calls do nothing).
pub fn init() {
    STARTED.get_or_init(Instant::now);
    let level = match std::env::var("JIANCHA_LOG").as_deref() {
        Ok("error") => LevelFilter::Error,
        Ok("warn") => LevelFilter::Warn,
        Ok("debug") => LevelFilter::Debug,
        Ok("trace") => LevelFilter::Trace,
        _ => LevelFilter::Info,
    };
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(level);
    }
}
