//! Helpers shared by embedded mode's end-to-end tests.

use std::time::Duration;

use node::embedded::Embedded;

/// Wait (up to 30 s) until the engine has applied, and the writer stored, everything in the
/// ingest log.
pub async fn caught_up(node: &Embedded) {
    let end = node.store.log_end().await.expect("log end");
    for _ in 0..600 {
        if node.applied() >= end {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("engine stuck at {} of {end}", node.applied());
}
