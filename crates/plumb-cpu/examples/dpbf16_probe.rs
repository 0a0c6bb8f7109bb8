//! Issue rates of `vdpbf16ps` (AVX512-BF16) and `vpdpwssd` (AVX512-VNNI, the prefill kernel's
//! instruction in `qgemm_i16.rs`) against `vfmadd` (f32) on this CPU: 16 independent
//! accumulators, no memory traffic, one thread.
//!
//!     cargo run --release -p plumb-cpu --example dpbf16_probe

#[cfg(target_arch = "x86_64")]
mod probe {
    use std::arch::x86_64::*;
    use std::time::Instant;

    #[target_feature(enable = "avx512f,avx512bf16")]
    unsafe fn dpbf16(iters: usize) -> f32 {
        let mut c = [_mm512_setzero_ps(); 16];
        let a = std::mem::transmute::<__m512i, __m512bh>(_mm512_set1_epi32(0x3f80_3f80));
        for _ in 0..iters {
            for x in c.iter_mut() {
                *x = _mm512_dpbf16_ps(*x, a, a);
            }
        }
        c.iter().fold(0.0, |s, &x| s + _mm512_reduce_add_ps(x))
    }

    #[target_feature(enable = "avx512f")]
    unsafe fn fma(iters: usize) -> f32 {
        let mut c = [_mm512_setzero_ps(); 16];
        let a = _mm512_set1_ps(1e-9);
        for _ in 0..iters {
            for x in c.iter_mut() {
                // written out as well, so both probes issue exactly one instruction per step
                std::arch::asm!("vfmadd231ps {c}, {a}, {a}", c = inout(zmm_reg) *x, a = in(zmm_reg) a,
                    options(pure, nomem, nostack));
            }
        }
        c.iter().fold(0.0, |s, &x| s + _mm512_reduce_add_ps(x))
    }

    #[target_feature(enable = "avx512f,avx512vnni")]
    unsafe fn dpwssd(iters: usize) -> i32 {
        let mut c = [_mm512_setzero_si512(); 16];
        let a = _mm512_set1_epi32(0x0001_0002);
        for _ in 0..iters {
            for x in c.iter_mut() {
                // written out: LLVM's generic tuning splits the intrinsic into two instructions
                std::arch::asm!("vpdpwssd {c}, {a}, {a}", c = inout(zmm_reg) *x, a = in(zmm_reg) a,
                    options(pure, nomem, nostack));
            }
        }
        c.iter()
            .fold(0, |s, &x| s.wrapping_add(_mm512_reduce_add_epi32(x)))
    }

    pub fn main() {
        if !is_x86_feature_detected!("avx512bf16") {
            println!("skipped: no AVX512-BF16 on this CPU");
            return;
        }
        let n = 20_000_000usize;
        let ops = 16.0 * n as f64;
        let t = Instant::now();
        // SAFETY: features checked above.
        let r = unsafe { dpbf16(n) };
        let s = t.elapsed().as_secs_f64();
        println!(
            "vdpbf16ps: {:.2} per ns, {:.0} GFLOP/s per core ({r:e})",
            ops / s / 1e9,
            ops * 64.0 / s / 1e9
        );
        let t = Instant::now();
        // SAFETY: avx512f is implied by avx512bf16.
        let r = unsafe { fma(n) };
        let s = t.elapsed().as_secs_f64();
        println!(
            "vfmadd231ps: {:.2} per ns, {:.0} GFLOP/s per core ({r:e})",
            ops / s / 1e9,
            ops * 32.0 / s / 1e9
        );
        if is_x86_feature_detected!("avx512vnni") {
            let t = Instant::now();
            // SAFETY: avx512vnni checked just above, avx512f implied.
            let r = unsafe { dpwssd(n) };
            let s = t.elapsed().as_secs_f64();
            println!(
                "vpdpwssd: {:.2} per ns, {:.0} G int16 ops/s per core ({r})",
                ops / s / 1e9,
                ops * 64.0 / s / 1e9
            );
        }
    }
}

fn main() {
    #[cfg(target_arch = "x86_64")]
    probe::main();
}
