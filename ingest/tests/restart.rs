//! A mixed stream of every rule family, with the engine restarted from a snapshot at regular
//! points, gives exactly the alerts of an uninterrupted run.

use std::sync::Arc;

use ingest::decode::{decode_str, DecodeOptions, Receipt};
use rules::synth::{self, Workload};
use rules::{Alert, Engine, Policy, Reference};

const OPTS: DecodeOptions = DecodeOptions {
    receipt: Receipt::ReportedAt,
    default_source: None,
    max_future_skew_secs: 600,
};

fn stream() -> Vec<String> {
    let mut w = Workload::new(7, 2_000, 20_000);
    let mut lines = Vec::new();
    w.warm_up(2_000, |l| lines.push(l.to_string()));
    let mut buf = String::new();
    while lines.len() < 30_000 {
        buf.clear();
        w.next_line(&mut buf);
        lines.extend(buf.split('\n').map(str::to_string));
    }
    lines
}

fn run(lines: &[String], restart_every: Option<usize>) -> Vec<Alert> {
    let reference = Arc::new(Reference::parse(&synth::reference_files()).expect("reference"));
    let policy = Policy::default();
    let mut engine = Engine::new(reference.clone(), policy.clone());
    let mut alerts = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if restart_every.is_some_and(|n| i % n == n - 1) {
            let image = engine.snapshot().expect("snapshot");
            engine = Engine::restore(reference.clone(), policy.clone(), &image).expect("restore");
        }
        let ev = decode_str(line, &OPTS).expect("synthetic events are valid");
        engine.on_event(&ev, &mut alerts).expect("accepted");
    }
    alerts
}

#[test]
fn restarts_from_snapshots_change_nothing() {
    let lines = stream();
    let straight = run(&lines, None);
    assert!(
        straight.len() > 100,
        "the stream must raise alerts: {}",
        straight.len()
    );
    let rules: std::collections::BTreeSet<&str> =
        straight.iter().map(|a| a.rule.as_str()).collect();
    for family in [
        "case.overdue",
        "hall.",
        "complaint.",
        "evaluation.",
        "discipline.ladder",
    ] {
        assert!(
            rules.iter().any(|r| r.starts_with(family)),
            "no {family} alert in {rules:?}"
        );
    }
    let restarted = run(&lines, Some(997));
    assert_eq!(straight.len(), restarted.len());
    assert!(straight == restarted, "restarting changed the alerts");
}
