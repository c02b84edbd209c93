//! Adapter mapping throughput on one core: NDJSON rows of a realistic mix (per case: the
//! registration, the acceptance, three steps, a fee and the completion, as a Shandong 前置库
//! writes them; the same life as GDBS records) parsed, mapped and serialised as §3 JSON, with
//! 100,000 cases, so the adapter's case memory is as large as a busy province-day's.
//! Method and results: docs/BENCHMARKS.md ("Adapters").

use adapters::{Adapter, Codes, Format};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

/// The allocator the `jiancha` binary uses.
#[global_allocator]
static GLOBAL: heap::Mimalloc = heap::Mimalloc;

const CASES: usize = 100_000;

fn sdjc_rows() -> Vec<String> {
    let mut rows = Vec::new();
    for i in 0..CASES {
        let c = format!("370602{i:012}");
        let item = format!("I{:03}", i % 200);
        let dept = format!("D{:02}", i % 20);
        let day = 2 + i % 20;
        rows.push(format!(r#"{{"_table":"PRE_APASINFO","PROJID":"{c}","ORGBUSNO":"{c}","DATAVER":1,"STDVER":"1","REGION_ID":"370602000000","ITEMNO":"{item}","ITEMNAME":"事项","PROJECTNAME":"申报","DEPTID":"{dept}","DEPTNAME":"部门","APPLYFROM":"窗口","RECEIVETIME":"2026-03-{day:02} 09:00:00","APPLYNAME":"张三","MAKETIME":"2026-03-{day:02} 09:01:00","SIGNSTATE":0}}"#));
        rows.push(format!(r#"{{"_table":"EA_JC_STEP_BASICINFO","PROJID":"{c}","ORGBUSNO":"{c}","DATAVER":1,"STDVER":"1","REGION_ID":"370602000000","ITEMNO":"{item}","ITEMNAME":"事项","ACCEPTDEPTID":"{dept}","ACCEPTDEPTNAME":"部门","APPROVALTYPE":"2","PROMISETIMELIMIT":5,"PROMISETIMEUNIT":"1","TIMELIMIT":20,"TIMEUNIT":"G","SUBMIT":"0","OCCURTIME":"2026-03-{day:02} 09:30:00","TRANSACTOR":"员工{}","MAKETIME":"2026-03-{day:02} 09:31:00","SIGNSTATE":0}}"#, i % 60));
        for (sn, name) in [(1, "承办"), (2, "审核"), (3, "批准")] {
            rows.push(format!(r#"{{"_table":"EA_JC_STEP_PROC","PROJID":"{c}","ORGBUSNO":"{c}","DATAVER":1,"SN":{sn},"NODENAME":"{name}","NODETYPE":2,"NODEPROCER":"S{:04}","NODEPROCERNAME":"员工","PROCUNIT":"{dept}","NODESTATE":"02","NODESTARTTIME":"2026-03-{day:02} 10:00:00","NODEENDTIME":"2026-03-{day:02} 1{sn}:00:00","NODERESULT":"1","MAKETIME":"2026-03-{day:02} 1{sn}:01:00"}}"#, i % 60));
        }
        rows.push(format!(r#"{{"_table":"EA_JC_FEEINFO","PROJID":"{c}","ORGBUSNO":"{c}","DATAVER":1,"SN":1,"FEEORGID":"{dept}","BILLNUM":"B{i}","PAYPERSON":"A{i}","FEETOTAL":"80.00","PAYTIME":"2026-03-{day:02} 14:00:00","STATE":"1"}}"#));
        rows.push(format!(r#"{{"_table":"EA_JC_STEP_DONE","PROJID":"{c}","ORGBUSNO":"{c}","DATAVER":1,"DONERESULT":"0","ISFEE":"1","FEE":80,"OCCURTIME":"2026-03-{day:02} 15:00:00","TRANSACTOR":"员工{}","MAKETIME":"2026-03-{day:02} 15:01:00"}}"#, i % 60));
    }
    rows
}

fn reference() -> rules::Reference {
    let mut windows = String::from("window_id,center_id,region,department,in_hall\n");
    let mut staff = String::from("staff_id,name,department,window_id,in_hall\n");
    for d in 0..20 {
        windows.push_str(&format!("W{d:02},ZB,370602,D{d:02},true\n"));
    }
    for s in 0..60 {
        staff.push_str(&format!(
            "S{s:04},员工{s},D{:02},W{:02},true\n",
            s % 20,
            s % 20
        ));
    }
    let mut items = String::from("item_code,item_name,department,case_type,legal_days,legal_unit,promised_days,promised_unit,stage_undertake_days,stage_review_days,stage_approve_days,in_hall,channels,fee_fen,window_authority\n");
    for i in 0..200 {
        items.push_str(&format!(
            "I{i:03},事项,D{:02},promised,20,working,5,working,,,,true,hall,8000,accept\n",
            i % 20
        ));
    }
    let file = |n: &str, t: String| Some((n.to_string(), t));
    rules::Reference::parse(&rules::ReferenceFiles {
        items: file("items.csv", items),
        windows: file("windows.csv", windows),
        staff: file("staff.csv", staff),
        ..Default::default()
    })
    .expect("reference")
}

/// This thread's CPU time (user + system) in seconds, from /proc: on a machine shared with other
/// builds the wall clock overstates a core's cost; the CPU time does not.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

fn map_all(reference: &rules::Reference, rows: &[String]) -> usize {
    let mut adapter = Adapter::new(
        Format::Sdjc,
        Codes::defaults(Format::Sdjc),
        reference,
        None,
        None,
    )
    .expect("adapter");
    let (mut out, mut bytes) = (Vec::with_capacity(4), 0usize);
    for row in rows {
        out.clear();
        adapter.adapt_line(row, &mut out).expect("row");
        for e in &out {
            bytes += e.to_json().len();
        }
    }
    bytes
}

fn mapping(c: &mut Criterion) {
    let reference = reference();
    let rows = sdjc_rows();
    let (cpu, wall) = (cpu_seconds(), std::time::Instant::now());
    for _ in 0..3 {
        std::hint::black_box(map_all(&reference, &rows));
    }
    let (cpu, wall) = (cpu_seconds() - cpu, wall.elapsed().as_secs_f64());
    println!(
        "adapter_mapping: {} rows x 3 in {cpu:.2} s of CPU ({:.0} rows per CPU-second), {wall:.2} s wall",
        rows.len(),
        3.0 * rows.len() as f64 / cpu
    );
    let mut group = c.benchmark_group("adapter_mapping");
    group.sample_size(10);
    group.throughput(Throughput::Elements(rows.len() as u64));
    group.bench_function("sdjc_parse_map_serialise", |b| {
        b.iter(|| map_all(&reference, &rows))
    });
    group.finish();
}

criterion_group!(benches, mapping);
criterion_main!(benches);
