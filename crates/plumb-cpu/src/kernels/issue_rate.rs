//! Issue rates of the AVX-512 multiply-add instructions on this CPU, measured: `vfmadd231ps`
//! (f32), `vdpbf16ps` (AVX512-BF16) and `vpdpwssd` (AVX512-VNNI). Each runs on 24 independent
//! accumulators in registers in one asm loop, so nothing but that instruction and the loop
//! counter runs: the core's rate for it, not the compiler's.
//!
//! CPUs with the same feature flags differ by a factor of four here: on the Intel VM of
//! BENCHMARKS.md `vdpbf16ps` issued at a quarter of the f32 FMA rate, on an AMD Zen 4 at the same
//! rate (twice the flops). Kernels that have a choice ([`super::matmul_bf16`]) ask
//! [`bf16_dot_pays`], which times both once per process.

#[cfg(target_arch = "x86_64")]
mod x86 {
    /// `iters` rounds of one instruction on 24 independent accumulators (zmm0–zmm23, sources
    /// zmm30 and zmm31, all zeroed first).
    macro_rules! rate_loop {
        ($name:ident, $feature:literal, $insn:literal) => {
            #[target_feature(enable = $feature)]
            pub unsafe fn $name(iters: usize) {
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

    rate_loop!(fma, "avx512f", "vfmadd231ps");
    rate_loop!(dpbf16, "avx512f,avx512bf16", "vdpbf16ps");
    rate_loop!(dpwssd, "avx512f,avx512vnni", "vpdpwssd");
}

/// The instructions [`rate`] measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Insn {
    /// `vfmadd231ps` zmm: 16 f32 multiply-adds (32 flops)
    Fma,
    /// `vdpbf16ps` zmm: 16 f32 lanes, each adding two bf16 products (64 flops)
    DpBf16,
    /// `vpdpwssd` zmm: 16 i32 lanes, each adding two i16 products
    DpWssd,
}

impl Insn {
    /// The instruction's name in assembly.
    pub fn name(self) -> &'static str {
        match self {
            Insn::Fma => "vfmadd231ps",
            Insn::DpBf16 => "vdpbf16ps",
            Insn::DpWssd => "vpdpwssd",
        }
    }

    /// Flops (multiply and add counted apart) of one instruction.
    pub fn flops(self) -> f64 {
        match self {
            Insn::Fma => 32.0,
            Insn::DpBf16 | Insn::DpWssd => 64.0,
        }
    }
}

/// Instructions per ns on one core: the best of `runs` loops of `iters` rounds of 24, or `None`
/// where the CPU lacks the instruction.
pub fn rate(insn: Insn, iters: usize, runs: usize) -> Option<f64> {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        let run: unsafe fn(usize) = match insn {
            Insn::Fma if has!("avx512f") => x86::fma,
            Insn::DpBf16 if has!("avx512f") && has!("avx512bf16") => x86::dpbf16,
            Insn::DpWssd if has!("avx512f") && has!("avx512vnni") => x86::dpwssd,
            _ => return None,
        };
        let best = (0..runs.max(1))
            .map(|_| {
                let t = std::time::Instant::now();
                // SAFETY: the match above checked the loop's CPU features.
                unsafe { run(iters) };
                24.0 * iters.max(1) as f64 / t.elapsed().as_secs_f64().max(1e-9) / 1e9
            })
            .fold(0.0, f64::max);
        Some(best)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (insn, iters, runs);
        None
    }
}

/// Whether `vdpbf16ps` computes bf16 products at least as fast as `vfmadd231ps` computes the
/// widened f32 ones (its flops per ns ≥ the FMA's), timed once per process: about 0.3 ms, the
/// two loops alternating five times so that a clock change or an interruption hits both.
/// `false` without AVX512-BF16.
pub fn bf16_dot_pays() -> bool {
    static PAYS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *PAYS.get_or_init(|| {
        let (mut fma, mut dot) = (0f64, 0f64);
        for _ in 0..5 {
            let Some(d) = rate(Insn::DpBf16, 2000, 1) else {
                return false;
            };
            dot = dot.max(d);
            fma = fma.max(rate(Insn::Fma, 2000, 1).unwrap_or(0.0));
        }
        dot * Insn::DpBf16.flops() >= fma * Insn::Fma.flops()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_positive_where_the_instruction_exists() {
        for insn in [Insn::Fma, Insn::DpBf16, Insn::DpWssd] {
            if let Some(r) = rate(insn, 1000, 2) {
                assert!(r.is_finite() && r > 0.0, "{}: {r}", insn.name());
            } else {
                eprintln!("{}: skipped, not on this CPU", insn.name());
            }
        }
    }
}
