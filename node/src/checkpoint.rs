//! Restoring an engine from the newest stored checkpoint that restores, for both modes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rules::{Engine, Policy, Reference};
use store::CheckpointMeta;

/// An engine restored from a checkpoint.
pub struct Restored {
    /// The checkpoint it came from.
    pub meta: CheckpointMeta,
    /// The engine.
    pub engine: Engine,
    /// How long reading and restoring took.
    pub timing: RestoreTiming,
}

/// Try `metas` (newest first): read each with `read` and restore it, until one restores. Gives
/// that one (if any) and why the newer ones did not, each as "`label` NEXT_OFFSET: reason";
/// a read error ends the search.
pub async fn restore_newest<E>(
    metas: Vec<CheckpointMeta>,
    mut read: impl AsyncFnMut(&CheckpointMeta) -> Result<Vec<u8>, E>,
    reference: &Arc<Reference>,
    policy: &Policy,
    label: &str,
) -> Result<(Option<Restored>, Vec<String>), E> {
    let mut problems = Vec::new();
    for meta in metas {
        let started = Instant::now();
        let bytes = read(&meta).await?;
        let read_time = started.elapsed();
        match Engine::restore(reference.clone(), policy.clone(), &bytes) {
            Ok(engine) => {
                let timing = RestoreTiming {
                    cases: engine.tracked_cases(),
                    bytes: bytes.len(),
                    read: read_time,
                    restore: started.elapsed().saturating_sub(read_time),
                };
                return Ok((
                    Some(Restored {
                        meta,
                        engine,
                        timing,
                    }),
                    problems,
                ));
            }
            Err(e) => problems.push(format!("{label} {}: {e}", meta.next_offset)),
        }
    }
    Ok((None, problems))
}

/// How long reading and restoring a checkpoint took, for the log line of both modes:
/// "N cases; X MiB read in Y s, restored in Z s".
#[derive(Debug, Clone, Copy)]
pub struct RestoreTiming {
    cases: usize,
    bytes: usize,
    read: Duration,
    restore: Duration,
}

impl std::fmt::Display for RestoreTiming {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} cases; {:.1} MiB read in {:.2} s, restored in {:.2} s",
            self.cases,
            self.bytes as f64 / 1048576.0,
            self.read.as_secs_f64(),
            self.restore.as_secs_f64()
        )
    }
}
