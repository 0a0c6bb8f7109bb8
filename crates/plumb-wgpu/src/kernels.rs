//! WGSL kernel sources: one readable file per op family under `kernels/`, assembled by plain
//! text substitution. A kernel is `common.wgsl` + the codec sections of its dtypes
//! (`codec.wgsl`) + its family file with the placeholders `{{NAME}}` (entry point, also the
//! pipeline cache key: `{op}_{dtype}[_strided]`), `{{OP}}`, `{{DT}}`, `{{OT}}` (codec names),
//! `{{STRIDED}}`, `{{BT}}` (op name ends in `_nt`: transposed right operand) and `{{T64}}` (op
//! name contains `64`: the cooperative-matrix matmul's 64-wide blocks) replaced.

use plumb_core::DType;

const COMMON: &str = include_str!("kernels/common.wgsl");
const CODEC: &str = include_str!("kernels/codec.wgsl");

/// The op families with a kernel file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    Unary,
    Binary,
    Cmp,
    Where,
    Cast,
    Copy,
    Fill,
    Reduce,
    Softmax,
    Norm,
    Matmul,
    MatmulVec4,
    /// f16 tensor-core tiles through WGSL cooperative matrices (wgpu's experimental extension)
    MatmulCoop,
    Matvec,
    QMatmul,
    Dequantize,
    Index,
    Rope,
}

impl Family {
    fn file(self) -> &'static str {
        match self {
            Family::Unary => include_str!("kernels/unary.wgsl"),
            Family::Binary => include_str!("kernels/binary.wgsl"),
            Family::Cmp => include_str!("kernels/cmp.wgsl"),
            Family::Where => include_str!("kernels/where.wgsl"),
            Family::Cast => include_str!("kernels/cast.wgsl"),
            Family::Copy => include_str!("kernels/copy.wgsl"),
            Family::Fill => include_str!("kernels/fill.wgsl"),
            Family::Reduce => include_str!("kernels/reduce.wgsl"),
            Family::Softmax => include_str!("kernels/softmax.wgsl"),
            Family::Norm => include_str!("kernels/norm.wgsl"),
            Family::Matmul => include_str!("kernels/matmul.wgsl"),
            Family::MatmulVec4 => include_str!("kernels/matmul_vec4.wgsl"),
            Family::MatmulCoop => include_str!("kernels/matmul_coop.wgsl"),
            Family::Matvec => include_str!("kernels/matvec.wgsl"),
            Family::QMatmul => include_str!("kernels/qmatmul.wgsl"),
            Family::Dequantize => include_str!("kernels/dequantize.wgsl"),
            Family::Index => include_str!("kernels/index.wgsl"),
            Family::Rope => include_str!("kernels/rope.wgsl"),
        }
    }
}

/// One kernel variant: what to substitute and the entry point / cache key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct KernelSpec {
    pub family: Family,
    /// entry point and pipeline cache key, `{op}_{dtype}[_strided]`
    pub name: String,
    pub op: &'static str,
    /// codec section of the main dtype (`f32`, `bf16`, `f16packed`, `b16`, ...)
    pub dt: &'static str,
    /// codec section of the second dtype (output of casts/argmax, ids of index ops)
    pub ot: &'static str,
    pub strided: bool,
}

impl KernelSpec {
    pub fn new(
        family: Family,
        op: &'static str,
        name_dtype: &str,
        dt: &'static str,
        ot: &'static str,
        strided: bool,
    ) -> Self {
        let name = format!("{op}_{name_dtype}{}", if strided { "_strided" } else { "" });
        KernelSpec {
            family,
            name,
            op,
            dt,
            ot,
            strided,
        }
    }

    /// Whether the source needs `enable f16;` (and the SHADER_F16 feature).
    pub fn uses_f16(&self) -> bool {
        self.dt == "f16" || self.ot == "f16"
    }
    pub fn uses_i64(&self) -> bool {
        self.dt == "i64" || self.ot == "i64"
    }
    pub fn uses_f64(&self) -> bool {
        self.dt == "f64" || self.ot == "f64"
    }

    /// The full WGSL source of this variant.
    pub fn source(&self) -> String {
        let mut s = String::new();
        if self.uses_f16() {
            s.push_str("enable f16;\n");
        }
        if self.family == Family::MatmulCoop {
            s.push_str("enable wgpu_cooperative_matrix;\n");
        }
        s.push_str(&COMMON.replace("{{STRIDED}}", if self.strided { "true" } else { "false" }));
        let mut codecs = vec![self.dt];
        if self.ot != self.dt {
            codecs.push(self.ot);
        }
        for c in codecs {
            s.push_str(codec_section(c));
        }
        s.push_str(
            &self
                .family
                .file()
                .replace("{{NAME}}", &self.name)
                .replace("{{OP}}", self.op)
                .replace("{{DT}}", self.dt)
                .replace("{{OT}}", self.ot)
                .replace(
                    "{{T64}}",
                    if self.op.contains("64") {
                        "true"
                    } else {
                        "false"
                    },
                )
                .replace(
                    "{{BT}}",
                    if self.op.ends_with("_nt") {
                        "true"
                    } else {
                        "false"
                    },
                ),
        );
        s
    }
}

/// The `//! dtype NAME` section of codec.wgsl (empty if there is none).
fn codec_section(name: &str) -> &'static str {
    let header = format!("//! dtype {name}\n");
    let Some(start) = CODEC.find(&header) else {
        return "";
    };
    let rest = &CODEC[start..];
    let end = rest[header.len()..]
        .find("//! dtype ")
        .map(|e| e + header.len())
        .unwrap_or(rest.len());
    &rest[..end]
}

/// Codec used to compute in `dt` (None for quantized dtypes). `f16` computes through the
/// native codec with SHADER_F16 and through the packed one (casts only) without.
pub fn compute_codec(dt: DType, has_f16: bool) -> Option<&'static str> {
    Some(match dt {
        DType::F32 => "f32",
        DType::I32 => "i32",
        DType::U8 => "u8",
        DType::Bool => "bool",
        DType::BF16 => "bf16",
        DType::F16 if has_f16 => "f16",
        DType::F16 => "f16packed",
        DType::I64 => "i64",
        DType::F64 => "f64",
        _ => return None,
    })
}

/// Codec that moves elements of `dt` as raw bits.
pub fn bit_codec(dt: DType) -> &'static str {
    match dt.size() {
        Some(1) => "b8",
        Some(2) => "b16",
        Some(8) => "b64",
        _ => "b32",
    }
}
