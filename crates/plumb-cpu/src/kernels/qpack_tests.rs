//! Tests of `qpack.rs` (its `mod tests`, compiled under #[cfg(test)] only): the layout, packing
//! round trips and both decode kernels.

use super::*;
use plumb_core::quant;

#[test]
fn pack_then_unpack_is_the_identity() {
    let mut rng = plumb_core::rng::SplitMix64::new(5);
    for dt in [DType::Q4_0, DType::Q4_1, DType::Q8_0] {
        for (n, k) in [(0, 32), (5, 64), (16, 32), (37, 96), (48, 64), (16, 0)] {
            let len = dt.storage_bytes(n * k);
            let w: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
            let p = pack(dt, &w, n, k);
            assert_eq!(p.len(), w.len());
            // the byte-at-a-time packing against the value-by-value slots
            let rb = dt.storage_bytes(k);
            let head = n / GROUP * GROUP * rb;
            let mut slow = w.clone();
            for (o, g) in slow[..head]
                .chunks_exact_mut((GROUP * rb).max(1))
                .zip(w[..head].chunks_exact((GROUP * rb).max(1)))
            {
                o.fill(0);
                convert_group(dt, g, o, rb, true);
            }
            assert_eq!(
                p, slow,
                "{dt} [{n}, {k}]: pack_group and convert_group differ"
            );
            if n >= GROUP && k > 0 {
                assert_ne!(p, w, "{dt} [{n}, {k}]: packing moved nothing");
            }
            assert_eq!(unpack(dt, &p, n, k), w, "{dt} [{n}, {k}]");
        }
    }
}

/// The packed value of row r, element j is the stored one (checked through the quantizer's
/// own dequantization, independently of `slot`).
#[test]
fn packed_nibbles_follow_the_documented_layout() {
    let (n, k) = (16, 32);
    let vals: Vec<f32> = (0..n * k).map(|i| ((i * 7) % 16) as f32).collect();
    let w = quant::quantize(DType::Q4_1, &vals).unwrap();
    let deq = quant::dequantize(DType::Q4_1, &w, n * k).unwrap();
    let p = pack(DType::Q4_1, &w, n, k);
    let d = |r: usize| half::f16::from_le_bytes([p[2 * r], p[2 * r + 1]]).to_f32();
    let m = |r: usize| half::f16::from_le_bytes([p[32 + 2 * r], p[33 + 2 * r]]).to_f32();
    for r in 0..n {
        for j in 0..32 {
            let (c, s, h) = (j / 8, (j % 8) / 2, j % 2);
            let word = u16::from_le_bytes([
                p[64 + c * 64 + (2 * r + h) * 2],
                p[65 + c * 64 + (2 * r + h) * 2],
            ]);
            let q = ((word >> (4 * s)) & 15) as f32;
            assert_eq!(q * d(r) + m(r), deq[r * k + j], "row {r} value {j}");
        }
    }
}

/// Value-major panels of packed rows (groups and the stored tail) against the quantizer's
/// own dequantization.
#[test]
fn value_major_panels_match_dequantized_rows() {
    if !available(DType::Q4_1) {
        eprintln!("skipped: this CPU packs no weights (no AVX2), so no panel is read packed");
        return;
    }
    let (n, k) = (53, 96);
    let mut rng = plumb_core::rng::SplitMix64::new(23);
    let wf: Vec<f32> = (0..n * k)
        .map(|_| rng.next_f64() as f32 * 4.0 - 2.0)
        .collect();
    for dt in [DType::Q4_0, DType::Q4_1, DType::Q8_0] {
        let wb = quant::quantize(dt, &wf).unwrap();
        let deq = quant::dequantize(dt, &wb, n * k).unwrap();
        let p = pack(dt, &wb, n, k);
        let w = QMat {
            dt,
            bytes: &p,
            n,
            k,
            packed: true,
        };
        for (j0, cols) in [(0, 53), (16, 37), (32, 16)] {
            let mut out = vec![f32::NAN; k * cols];
            dequant_value_major(w, j0, cols, &mut out);
            for j in 0..cols {
                for e in 0..k {
                    let (got, want) = (out[e * cols + j], deq[(j0 + j) * k + e]);
                    assert!(
                        (got - want).abs() <= 1e-6 * want.abs().max(1.0),
                        "{dt} rows {j0}+{cols}: value {e} of row {} = {got}, want {want}",
                        j0 + j
                    );
                }
            }
        }
    }
}

/// Decode through each packed kernel this CPU has against the dequantized weights in f64,
/// for row counts with and without a stored tail; bound: half a quantization step of each
/// activation.
#[test]
fn packed_rows_match_dequantized_matvec() {
    #[cfg(target_arch = "x86_64")]
    {
        use crate::kernels::simd::{level, Level};
        // the dispatch level, not the CPU's features: PLUMB_CPU_SIMD=baseline turns off the
        // vector paths the packed kernel's tail rows go through
        if level() != Level::Baseline {
            rows_match(Kernel::Avx2);
        } else {
            eprintln!(
                "skipped the AVX2 kernel: this CPU (or PLUMB_CPU_SIMD) has no AVX2, FMA and F16C"
            );
        }
        if super::super::qgemm_i16::available(DType::Q4_1) {
            rows_match(Kernel::Vnni512);
        } else {
            eprintln!("skipped the AVX-512 kernel: this CPU has no AVX-512 VNNI");
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    eprintln!("skipped: the packed kernels are x86-64 only; weights are never packed here");
}

#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
fn rows_match(kern: Kernel) {
    let k = 96;
    let mut rng = plumb_core::rng::SplitMix64::new(17);
    let mut r = || (rng.next_u64() % 20001) as f32 / 10000.0 - 1.0;
    for dt in [DType::Q4_0, DType::Q4_1, DType::Q8_0] {
        // 597 rows: 37 groups in guided tasks of 18, 9, 5, 2, 1, 1, 1 (two threads), then 5 stored
        for (rows, n) in [(1, 16), (1, 53), (3, 64), (2, 7), (2, 597)] {
            let wf: Vec<f32> = (0..n * k).map(|_| r() * 3.0).collect();
            let x: Vec<f32> = (0..rows * k).map(|_| r() * 5.0).collect();
            let wb = quant::quantize(dt, &wf).unwrap();
            let deq = quant::dequantize(dt, &wb, n * k).unwrap();
            let p = pack(dt, &wb, n, k);
            let w = QMat {
                dt,
                bytes: &p,
                n,
                k,
                packed: true,
            };
            let out = rows_with(Some(kern), &x, w, rows);
            let what = format!("{kern:?} {dt} {rows}x{n}");
            super::super::qdot_i16::assert_close_to_dequantized(&what, &x, &deq, &out, n, k);
        }
    }
}

/// Guided task bounds: strictly increasing from 0 to the group count, each task the groups left
/// divided by the threads (at least one).
#[test]
fn guided_tasks_cover_every_group_once() {
    assert_eq!(guided(37, 2), [0, 18, 27, 32, 34, 35, 36, 37]);
    assert_eq!(guided(0, 2), [0]);
    assert_eq!(guided(3, 16), [0, 1, 2, 3]);
    for (groups, threads) in [(1, 1), (36, 2), (3072, 2), (192, 16), (60, 3)] {
        let b = guided(groups, threads);
        assert_eq!(
            (b[0], b[b.len() - 1]),
            (0, groups),
            "{groups} groups, {threads} threads"
        );
        for w in b.windows(2) {
            let left = groups - w[0];
            assert_eq!(
                w[1] - w[0],
                (left / threads).max(1),
                "{groups} / {threads}: {b:?}"
            );
        }
    }
}
