//! Issue rates of `vdpbf16ps` (AVX512-BF16) and `vpdpwssd` (AVX512-VNNI, the prefill kernel's
//! instruction in `qgemm_i16.rs`) against `vfmadd` (f32) on this CPU: 24 independent
//! accumulators in registers, no memory traffic, one thread. The `vfmadd231ps` line is the
//! core's f32 peak, the ceiling of any f32 (and widened f16/bf16) matmul here.
//!
//!     cargo run --release -p plumb-cpu --example dpbf16_probe

#[cfg(target_arch = "x86_64")]
mod probe {
    use std::time::Instant;

    /// `iters` rounds of one instruction on 24 independent accumulators (zmm0–zmm23, sources
    /// zmm30 and zmm31, all zeroed first), in one asm loop so that nothing but those
    /// instructions and the loop counter runs: the CPU's issue rate for it, not the compiler's.
    macro_rules! rate_loop {
        ($name:ident, $feature:literal, $insn:literal) => {
            #[target_feature(enable = $feature)]
            unsafe fn $name(iters: usize) {
                std::arch::asm!(
                    "vpxord zmm30, zmm30, zmm30",
                    "vpxord zmm31, zmm31, zmm31",
                    "vpxord zmm0, zmm0, zmm0", "vpxord zmm1, zmm1, zmm1",
                    "vpxord zmm2, zmm2, zmm2", "vpxord zmm3, zmm3, zmm3",
                    "vpxord zmm4, zmm4, zmm4", "vpxord zmm5, zmm5, zmm5",
                    "vpxord zmm6, zmm6, zmm6", "vpxord zmm7, zmm7, zmm7",
                    "vpxord zmm8, zmm8, zmm8", "vpxord zmm9, zmm9, zmm9",
                    "vpxord zmm10, zmm10, zmm10", "vpxord zmm11, zmm11, zmm11",
                    "vpxord zmm12, zmm12, zmm12", "vpxord zmm13, zmm13, zmm13",
                    "vpxord zmm14, zmm14, zmm14", "vpxord zmm15, zmm15, zmm15",
                    "vpxord zmm16, zmm16, zmm16", "vpxord zmm17, zmm17, zmm17",
                    "vpxord zmm18, zmm18, zmm18", "vpxord zmm19, zmm19, zmm19",
                    "vpxord zmm20, zmm20, zmm20", "vpxord zmm21, zmm21, zmm21",
                    "vpxord zmm22, zmm22, zmm22", "vpxord zmm23, zmm23, zmm23",
                    "2:",
                    concat!($insn, " zmm0, zmm30, zmm31"), concat!($insn, " zmm1, zmm30, zmm31"),
                    concat!($insn, " zmm2, zmm30, zmm31"), concat!($insn, " zmm3, zmm30, zmm31"),
                    concat!($insn, " zmm4, zmm30, zmm31"), concat!($insn, " zmm5, zmm30, zmm31"),
                    concat!($insn, " zmm6, zmm30, zmm31"), concat!($insn, " zmm7, zmm30, zmm31"),
                    concat!($insn, " zmm8, zmm30, zmm31"), concat!($insn, " zmm9, zmm30, zmm31"),
                    concat!($insn, " zmm10, zmm30, zmm31"), concat!($insn, " zmm11, zmm30, zmm31"),
                    concat!($insn, " zmm12, zmm30, zmm31"), concat!($insn, " zmm13, zmm30, zmm31"),
                    concat!($insn, " zmm14, zmm30, zmm31"), concat!($insn, " zmm15, zmm30, zmm31"),
                    concat!($insn, " zmm16, zmm30, zmm31"), concat!($insn, " zmm17, zmm30, zmm31"),
                    concat!($insn, " zmm18, zmm30, zmm31"), concat!($insn, " zmm19, zmm30, zmm31"),
                    concat!($insn, " zmm20, zmm30, zmm31"), concat!($insn, " zmm21, zmm30, zmm31"),
                    concat!($insn, " zmm22, zmm30, zmm31"), concat!($insn, " zmm23, zmm30, zmm31"),
                    "dec {n}",
                    "jnz 2b",
                    n = inout(reg) iters.max(1) => _,
                    out("zmm0") _, out("zmm1") _, out("zmm2") _, out("zmm3") _,
                    out("zmm4") _, out("zmm5") _, out("zmm6") _, out("zmm7") _,
                    out("zmm8") _, out("zmm9") _, out("zmm10") _, out("zmm11") _,
                    out("zmm12") _, out("zmm13") _, out("zmm14") _, out("zmm15") _,
                    out("zmm16") _, out("zmm17") _, out("zmm18") _, out("zmm19") _,
                    out("zmm20") _, out("zmm21") _, out("zmm22") _, out("zmm23") _,
                    out("zmm30") _, out("zmm31") _,
                    options(nomem, nostack),
                );
            }
        };
    }

    rate_loop!(dpbf16, "avx512f,avx512bf16", "vdpbf16ps");
    rate_loop!(fma, "avx512f", "vfmadd231ps");
    rate_loop!(dpwssd, "avx512f,avx512vnni", "vpdpwssd");

    /// Instructions per ns of one of the loops above, best of three runs.
    fn rate(run: unsafe fn(usize)) -> f64 {
        let n = 10_000_000usize;
        (0..3)
            .map(|_| {
                let t = Instant::now();
                // SAFETY: every caller checked the loop's CPU features first.
                unsafe { run(n) };
                24.0 * n as f64 / t.elapsed().as_secs_f64() / 1e9
            })
            .fold(0.0, f64::max)
    }

    pub fn main() {
        // the f32 peak first: every x86-64 CPU with AVX-512 has it
        if !is_x86_feature_detected!("avx512f") {
            println!("skipped: no AVX-512 on this CPU");
            return;
        }
        let r = rate(fma);
        println!(
            "vfmadd231ps: {r:.2} per ns, {:.0} GFLOP/s per core (the f32 FMA peak)",
            r * 32.0
        );
        if is_x86_feature_detected!("avx512bf16") {
            let r = rate(dpbf16);
            println!("vdpbf16ps: {r:.2} per ns, {:.0} GFLOP/s per core", r * 64.0);
        } else {
            println!("vdpbf16ps: skipped, no AVX512-BF16 on this CPU");
        }
        if is_x86_feature_detected!("avx512vnni") {
            let r = rate(dpwssd);
            println!(
                "vpdpwssd: {r:.2} per ns, {:.0} G int16 ops/s per core",
                r * 64.0
            );
        } else {
            println!("vpdpwssd: skipped, no AVX512-VNNI on this CPU");
        }
    }
}

fn main() {
    #[cfg(target_arch = "x86_64")]
    probe::main();
}
