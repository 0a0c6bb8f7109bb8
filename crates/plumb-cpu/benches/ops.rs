//! Criterion benchmarks of the CPU backend's headline ops (see `cases.rs`). Threads follow
//! `PLUMB_NUM_THREADS` (the peers run with 2). `examples/bench_ops.rs` prints the same cases
//! as the peers' RESULT lines.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

#[path = "cases.rs"]
mod cases;

fn ops(c: &mut Criterion) {
    let inputs = cases::device().and_then(|d| Ok((cases::all(&d)?, d)));
    let (all, _device) = match inputs {
        Ok(x) => x,
        Err(e) => {
            eprintln!("cpu benchmarks not run: {e}");
            return;
        }
    };
    let mut g = c.benchmark_group("cpu");
    g.sample_size(10);
    for case in all {
        let tp = if case.unit == "GB/s" {
            Throughput::Bytes(case.work as u64)
        } else {
            Throughput::Elements(case.work as u64) // FLOPs
        };
        g.throughput(tp);
        let name = format!("{}/{}/{}", case.op, case.dtype, case.shape);
        // a case that fails says why and is left out; one that ran once is timed as it is
        if let Err(e) = (case.run)() {
            eprintln!("skipped {name}: {e}");
            continue;
        }
        g.bench_function(name, |b| b.iter(|| (case.run)().ok()));
    }
    g.finish();
}

criterion_group!(benches, ops);
criterion_main!(benches);
