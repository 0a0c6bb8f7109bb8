//! A plan's peak-memory estimate against what the same workload really allocates on the cpu
//! (the CPU backend counts the bytes of its live storages and their high-water mark). One test
//! per binary run in sequence, so no other test's tensors are counted.

mod common;

use common::*;
use plumb_nn::pipeline::{load_model, plan_model, run_workload};
use plumb_nn::resolve_model;

/// Plan, then load and run the plan's own workload, and compare the peaks.
fn check(path: &std::path::Path) {
    let files = resolve_model(path.to_str().unwrap()).unwrap();
    let dev = cpu();
    let planned = plan_model(&files, &dev, None, false).unwrap();
    dev.backend().reset_peak_bytes();
    let before = dev.backend().allocated_bytes().unwrap();
    let (model, _, _) = load_model(&files, &dev, None, false, None).unwrap();
    let (batch, seq) = match planned.kind {
        plumb_nn::pipeline::ModelKind::Bert => (1, 128),
        plumb_nn::pipeline::ModelKind::Llama => (1, 64),
    };
    let out = run_workload(&model, &dev, batch, seq).unwrap();
    drop(out);
    let actual = dev.backend().peak_allocated_bytes().unwrap() - before;
    let est = planned.plan.peak_bytes;
    let ratio = est as f64 / actual as f64;
    println!(
        "{}: plan peak {est} bytes ({}), measured peak {actual} bytes, estimate / measured = {ratio:.3}",
        path.display(),
        planned.workload
    );
    assert!(
        (0.8..=1.2).contains(&ratio),
        "plan estimate {est} is not within 20% of the measured peak {actual}"
    );
}

#[test]
fn plan_memory_is_within_20_percent_of_the_measured_peak() {
    check(&minilm_dir());
    check(&smollm2_file());
}
