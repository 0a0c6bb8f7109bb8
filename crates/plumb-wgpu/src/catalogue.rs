//! Every kernel variant the launchers can compile on a device with the given shader features,
//! built with the same names and codecs as `ops/*` (the naga MSL/HLSL test translates them all).

use crate::kernels::{bit_codec, compute_codec, Family, KernelSpec};
use plumb_core::{BinaryOp, CmpOp, DType, ReduceOp, UnaryOp};

/// Shader features a catalogue is built for.
#[derive(Clone, Copy, Debug)]
pub struct Features {
    pub f16: bool,
    pub i64: bool,
    pub f64: bool,
}

/// All kernel variants for a device with `f` (duplicates removed).
pub fn catalogue(f: Features) -> Vec<KernelSpec> {
    let cc = |d: DType| compute_codec(d, f.f16).unwrap_or("f32");
    let mut floats = vec![DType::F32, DType::BF16];
    if f.f16 {
        floats.push(DType::F16);
    }
    let mut numbers = floats.clone();
    numbers.extend([DType::I32, DType::U8]);
    if f.i64 {
        numbers.push(DType::I64);
    }
    let mut castable = vec![
        DType::Bool,
        DType::U8,
        DType::I32,
        DType::F32,
        DType::F16,
        DType::BF16,
    ];
    if f.i64 {
        castable.push(DType::I64);
    }
    castable.push(DType::F64);
    let f64c = if f.f64 { "f64" } else { "f64bits" };
    let cast_codec = |d: DType| if d == DType::F64 { f64c } else { cc(d) };
    let mut v = Vec::new();
    for strided in [false, true] {
        for &d in &numbers {
            for op in UnaryOp::ALL {
                if d.is_float() || op.int_ok() {
                    v.push(KernelSpec::new(
                        Family::Unary,
                        op.name(),
                        d.name(),
                        cc(d),
                        cc(d),
                        strided,
                    ));
                }
            }
            for op in BinaryOp::ALL {
                if d.is_float() || op != BinaryOp::Pow {
                    v.push(KernelSpec::new(
                        Family::Binary,
                        op.name(),
                        d.name(),
                        cc(d),
                        cc(d),
                        strided,
                    ));
                }
            }
        }
        for d in numbers.iter().copied().chain([DType::Bool]) {
            for op in CmpOp::ALL {
                v.push(KernelSpec::new(
                    Family::Cmp,
                    op.name(),
                    d.name(),
                    cc(d),
                    cc(d),
                    strided,
                ));
            }
        }
        for d in DType::PLAIN {
            v.push(KernelSpec::new(
                Family::Where,
                "where",
                d.name(),
                bit_codec(d),
                bit_codec(d),
                strided,
            ));
        }
        for &a in &castable {
            for &b in &castable {
                if a != b {
                    let tag = format!("{}_{}", a.name(), b.name());
                    v.push(KernelSpec::new(
                        Family::Cast,
                        "cast",
                        &tag,
                        cast_codec(a),
                        cast_codec(b),
                        strided,
                    ));
                }
            }
        }
        for &d in &floats {
            for op in ["softmax", "log_softmax"] {
                v.push(KernelSpec::new(
                    Family::Softmax,
                    op,
                    d.name(),
                    cc(d),
                    cc(d),
                    strided,
                ));
            }
            for op in ["rope", "rope_interleaved"] {
                v.push(KernelSpec::new(
                    Family::Rope,
                    op,
                    d.name(),
                    cc(d),
                    cc(d),
                    strided,
                ));
            }
        }
    }
    for d in DType::PLAIN {
        v.push(KernelSpec::new(
            Family::Copy,
            "copy",
            d.name(),
            bit_codec(d),
            bit_codec(d),
            true,
        ));
        for ids in [DType::I32, DType::I64, DType::U8] {
            let tag = format!("{}_{}", d.name(), ids.name());
            for op in ["index_select", "gather"] {
                v.push(KernelSpec::new(
                    Family::Index,
                    op,
                    &tag,
                    bit_codec(d),
                    bit_codec(ids),
                    true,
                ));
            }
        }
    }
    v.push(KernelSpec::new(
        Family::Fill,
        "fill",
        "u32",
        "b32",
        "b32",
        false,
    ));
    for &d in &numbers {
        for op in ReduceOp::ALL {
            match op {
                ReduceOp::Mean if !d.is_float() => {}
                ReduceOp::ArgMax => {
                    let mut idx = vec![DType::I32];
                    if f.i64 {
                        idx.push(DType::I64);
                    }
                    for i in idx {
                        let tag = format!("{}_{}", d.name(), i.name());
                        v.push(KernelSpec::new(
                            Family::Reduce,
                            op.name(),
                            &tag,
                            cc(d),
                            cc(i),
                            true,
                        ));
                    }
                }
                _ => v.push(KernelSpec::new(
                    Family::Reduce,
                    op.name(),
                    d.name(),
                    cc(d),
                    cc(d),
                    true,
                )),
            }
        }
    }
    for &d in &floats {
        for op in ["layer_norm", "rms_norm"] {
            v.push(KernelSpec::new(
                Family::Norm,
                op,
                d.name(),
                cc(d),
                cc(d),
                true,
            ));
        }
        for out in [d, DType::F32] {
            let tag = if out == d {
                d.name().to_string()
            } else {
                format!("{}_{}", d.name(), out.name())
            };
            v.push(KernelSpec::new(
                Family::Matmul,
                "matmul",
                &tag,
                cc(d),
                cc(out),
                true,
            ));
            v.push(KernelSpec::new(
                Family::Matvec,
                "matvec",
                &tag,
                cc(d),
                cc(out),
                true,
            ));
            v.push(KernelSpec::new(
                Family::MatmulVec4,
                "matmul_vec4",
                &tag,
                cc(d),
                cc(out),
                true,
            ));
            v.push(KernelSpec::new(
                Family::MatmulVec4,
                "matmul_vec4_nt",
                &tag,
                cc(d),
                cc(out),
                true,
            ));
            for q in DType::QUANTIZED {
                let tag = format!("{}_{}_{}", q.name(), d.name(), out.name());
                let s = KernelSpec::new(Family::QMatmul, q.name(), &tag, cc(d), cc(out), false);
                v.push(KernelSpec {
                    name: format!("qmatmul_{tag}"),
                    ..s
                });
            }
        }
    }
    let mut deq = floats.clone();
    if f.f64 {
        deq.push(DType::F64);
    }
    for q in DType::QUANTIZED {
        for &to in &deq {
            let c = cast_codec(to);
            let s = KernelSpec::new(Family::Dequantize, q.name(), "", c, c, false);
            v.push(KernelSpec {
                name: format!("dequantize_{}_{}", q.name(), to.name()),
                ..s
            });
        }
    }
    let mut seen = std::collections::HashSet::new();
    v.retain(|s| seen.insert(s.source()));
    v
}
