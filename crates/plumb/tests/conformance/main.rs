//! The cross-device conformance suite: one test body per op × dtype, run on every device
//! `plumb::devices()` finds (cpu, every gpu:N including a GL adapter when present) plus the first
//! GPU under the apple-m2 profile, each compared with an f64 reference computed independently in
//! this test (see `harness.rs` for the tolerances). A case the device or its policy cannot run
//! prints `skipped: <device> <op> <dtype>: <reason>`; run with `--nocapture` to see them.

mod attention;
mod edge;
mod elementwise;
mod harness;
mod index;
mod linalg;
mod reduce;
