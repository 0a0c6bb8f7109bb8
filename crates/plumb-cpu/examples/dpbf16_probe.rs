//! Issue rates of `vdpbf16ps` (AVX512-BF16) and `vpdpwssd` (AVX512-VNNI, the prefill kernel's
//! instruction in `qgemm_i16.rs`) against `vfmadd231ps` (f32) on this CPU, one thread, through
//! `kernels::issue_rate` (24 independent accumulators in registers, no memory traffic). The
//! `vfmadd231ps` line is the core's f32 peak, the ceiling of any f32 (and widened f16/bf16)
//! matmul here. The last line is the choice bf16 matmul makes from the same measurement.
//!
//!     cargo run --release -p plumb-cpu --example dpbf16_probe

use plumb_cpu::kernels::issue_rate::{bf16_dot_pays, rate, Insn};

fn main() {
    for insn in [Insn::Fma, Insn::DpBf16, Insn::DpWssd] {
        match rate(insn, 10_000_000, 3) {
            Some(r) => println!(
                "{}: {r:.2} per ns, {:.0} G{} per core",
                insn.name(),
                r * insn.flops(),
                if insn == Insn::DpWssd {
                    " int16 ops/s"
                } else {
                    "FLOP/s"
                }
            ),
            None => println!("{}: skipped, not on this CPU", insn.name()),
        }
    }
    println!(
        "bf16 matmul: {}",
        if bf16_dot_pays() {
            "vdpbf16ps (its flops per ns are at least the f32 FMA's)"
        } else {
            "widened to f32 (no AVX512-BF16, or vdpbf16ps is slower than the f32 FMA here)"
        }
    );
}
