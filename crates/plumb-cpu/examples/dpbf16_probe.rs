//! Issue rate of `vdpbf16ps` (AVX512-BF16) against `vfmadd` (f32) on this CPU: 16 independent
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
                *x = _mm512_fmadd_ps(*x, a, a);
            }
        }
        c.iter().fold(0.0, |s, &x| s + _mm512_reduce_add_ps(x))
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
    }
}

fn main() {
    #[cfg(target_arch = "x86_64")]
    probe::main();
}
