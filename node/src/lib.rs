//! What every jiancha process runs besides its transport.
//!
//! - [`glue`]: the dashboard API over any [`store::Store`] — rows to documents, the API's
//!   backend, the start-up load of live state, the users-file watcher.
//! - [`checkpoint`]: restoring an engine from the newest checkpoint that restores.
//! - [`embedded`]: the single-binary mode — HTTP ingest into a SQLite log, the engine thread,
//!   checkpoints, the API — which a county hall runs and `jiancha demo` starts.

pub mod checkpoint;
pub mod embedded;
pub mod glue;
pub mod metrics;
pub mod notifier;
