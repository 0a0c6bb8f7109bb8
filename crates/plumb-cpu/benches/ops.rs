//! Criterion benchmarks of the CPU backend's headline ops (see `cases.rs`). Threads follow
//! `PLUMB_NUM_THREADS` (the peers run with 2). `examples/bench_ops.rs` prints the same cases
//! as the peers' RESULT lines.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

#[path = "cases.rs"]
mod cases;

fn ops(c: &mut Criterion) {
    let d = cases::device();
    let all = cases::all(&d).expect("benchmark inputs");
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
        g.bench_function(name, |b| b.iter(|| (case.run)().expect("op")));
    }
    g.finish();
}

criterion_group!(benches, ops);
criterion_main!(benches);
