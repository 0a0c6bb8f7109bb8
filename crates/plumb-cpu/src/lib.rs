//! Plumb's CPU backend: multi-threaded kernels with SIMD chosen at run time, and the numerical
//! oracle of every other device. An op runs on the calling thread; its parallel parts run on a
//! team of helper threads (`team.rs`, loops in `par.rs`) within the backend's thread budget
//! (`PLUMB_NUM_THREADS` or the available cores); gemm calls too, as a grid of single-threaded
//! blocks.
//!
//! ```no_run
//! use std::sync::Arc;
//! # fn main() -> plumb_core::Result<()> {
//! let cpu = plumb_core::Device::new(Arc::new(plumb_cpu::CpuBackend::new()))?;
//! # Ok(())
//! # }
//! ```

mod info;
pub mod kernels;
#[doc(hidden)]
pub mod par;
mod pool;
pub mod storage;
mod team;

use kernels::cast::{cast_plain, cast_to_bool, fill_value};
use kernels::{
    attention, binary, cmp, copy, index, matmul, norm, qmatmul, reduce, rope, softmax, unary,
};
use plumb_core::{
    AttentionArgs, Backend, BackendStorage, BinaryOp, Capabilities, CmpOp, DType, DeviceInfo,
    Layout, ReduceOp, Result, StorageRef, UnaryOp, View,
};
use std::sync::Arc;
pub use storage::CpuStorage;
use storage::{device_err, unsupported, with_float_type, with_plain_type, Elem};

/// The CPU device.
#[derive(Debug)]
pub struct CpuBackend {
    info: DeviceInfo,
    caps: Capabilities,
    /// the thread budget of every op (the caller's thread included)
    threads: usize,
}

/// Threads from `PLUMB_NUM_THREADS`, else the cores available to this process.
pub fn default_threads() -> usize {
    std::env::var("PLUMB_NUM_THREADS")
        .ok()
        .and_then(|s| s.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        })
}

impl Default for CpuBackend {
    fn default() -> Self {
        Self::new()
    }
}

impl CpuBackend {
    /// A backend with [`default_threads`] threads. Never fails: where the OS refuses helper
    /// threads, the kernels use fewer (down to the calling thread alone).
    pub fn new() -> CpuBackend {
        Self::with_threads(default_threads())
    }

    /// A backend whose ops use up to `threads` threads: the caller's and `threads − 1` helpers
    /// of the team, which is started with more helpers where it has too few.
    pub fn with_threads(threads: usize) -> CpuBackend {
        let threads = team::reserve(threads.max(1));
        CpuBackend {
            info: info::device_info(threads),
            caps: info::capabilities(),
            threads,
        }
    }

    pub fn num_threads(&self) -> usize {
        self.threads
    }

    /// Run an op on the calling thread with this backend's thread budget.
    fn run<R>(&self, f: impl FnOnce() -> R) -> R {
        par::with_threads(self.threads, f)
    }

    /// f16 / bf16 `matmul_bias` (then `act`, then + `res`) as one op, rounded once
    /// (`matmul::linear_half`); `None` where that declines (one row, a bias or residual of
    /// another size): the caller composes the ops.
    fn linear_half(
        &self,
        a: &View,
        b: &View,
        bias: &View,
        act: Option<UnaryOp>,
        res: Option<&View>,
    ) -> Result<Option<StorageRef>> {
        let out =
            match a.dtype {
                DType::F16 => matmul::linear_half::<half::f16>(a, b, bias, act, res)?
                    .map(|v| store(a.dtype, v)),
                DType::BF16 => matmul::linear_half::<half::bf16>(a, b, bias, act, res)?
                    .map(|v| store(a.dtype, v)),
                _ => None,
            };
        out.transpose()
    }
}

fn store<T: Elem>(dtype: DType, v: Vec<T>) -> Result<StorageRef> {
    Ok(Arc::new(CpuStorage::new(dtype, v)))
}

fn not_float(op: &str, dtype: DType) -> plumb_core::Error {
    unsupported(op, dtype, "this op needs a floating dtype on cpu")
}

/// The [k, n] weight `w` packed as `matmul_rows`' strips of its dtype `E`, held by the storage
/// `wrap` makes of them; `None` where it does not pack.
fn strips<E: storage::Elem + Default>(
    w: &View,
    k: usize,
    n: usize,
    wrap: fn(kernels::matmul_rows::PackedStrips<E>) -> storage::CpuStorage,
) -> Result<Option<StorageRef>> {
    let b = storage::raw_slice::<E>("pack_matmul_weight", w)?;
    Ok(kernels::matmul_rows::PackedStrips::pack(b, k, n).map(|p| Arc::new(wrap(p)) as StorageRef))
}

impl Backend for CpuBackend {
    fn info(&self) -> &DeviceInfo {
        &self.info
    }
    fn capabilities(&self) -> &Capabilities {
        &self.caps
    }

    fn allocated_bytes(&self) -> Option<u64> {
        Some(storage::BYTES.live())
    }

    fn peak_allocated_bytes(&self) -> Option<u64> {
        Some(storage::BYTES.peak())
    }

    fn reset_peak_bytes(&self) {
        storage::BYTES.reset_peak()
    }

    /// Ops already run on the calling thread, so a scope only sets the thread budget once for
    /// the sequence of ops inside it.
    fn scope(&self, f: &mut (dyn FnMut() + Send)) {
        self.run(f)
    }

    fn upload(&self, dtype: DType, numel: usize, bytes: &[u8]) -> Result<StorageRef> {
        if bytes.len() != dtype.storage_bytes(numel) {
            return Err(plumb_core::Error::upload_size(dtype, numel, bytes.len()));
        }
        with_plain_type!(dtype, T => {
            let v: Vec<T> = bytemuck::pod_collect_to_vec(bytes);
            store(dtype, v)
        }, quantized => store(dtype, bytes.to_vec()))
    }

    fn download(&self, x: View) -> Result<Vec<u8>> {
        self.run(|| {
            with_plain_type!(x.dtype, T => {
                let v = storage::contiguous::<T>("download", &x)?;
                Ok(bytemuck::cast_slice::<T, u8>(&v).to_vec())
            }, quantized => qmatmul::copy_quant(&x))
        })
    }

    fn full(&self, dtype: DType, numel: usize, value: f64) -> Result<StorageRef> {
        with_plain_type!(dtype, T => {
            let v: T = fill_value(dtype, value);
            store(dtype, vec![v; numel])
        }, quantized => Err(unsupported("full", dtype, "cannot fill a quantized dtype")))
    }

    fn copy(&self, x: View) -> Result<StorageRef> {
        self.run(|| {
            with_plain_type!(x.dtype, T => store(x.dtype, copy::copy_plain::<T>(&x)?),
                quantized => store(x.dtype, qmatmul::copy_quant(&x)?))
        })
    }

    fn cast(&self, x: View, to: DType) -> Result<StorageRef> {
        self.run(|| {
            with_plain_type!(x.dtype, S => {
                if to == DType::Bool {
                    return store(to, cast_to_bool::<S>(&x)?);
                }
                with_plain_type!(to, D => store(to, cast_plain::<S, D>(&x)?),
                    quantized => Err(unsupported("cast", to, "quantize on the host instead")))
            }, quantized => Err(unsupported("cast", x.dtype, "use dequantize")))
        })
    }

    fn unary(&self, op: UnaryOp, x: View) -> Result<StorageRef> {
        self.run(|| match x.dtype {
            DType::U8 => store(x.dtype, unary::unary_int::<u8>(op, &x)?),
            DType::I32 => store(x.dtype, unary::unary_int::<i32>(op, &x)?),
            DType::I64 => store(x.dtype, unary::unary_int::<i64>(op, &x)?),
            dt => with_float_type!(dt, T => store(dt, unary::unary_float::<T>(op, &x)?),
                other => Err(unsupported(op.name(), dt, "not defined on bool or quantized dtypes"))),
        })
    }

    fn binary(&self, op: BinaryOp, a: View, b: View) -> Result<StorageRef> {
        self.run(|| match a.dtype {
            DType::U8 => store(a.dtype, binary::binary_int::<u8>(op, &a, &b)?),
            DType::I32 => store(a.dtype, binary::binary_int::<i32>(op, &a, &b)?),
            DType::I64 => store(a.dtype, binary::binary_int::<i64>(op, &a, &b)?),
            dt => with_float_type!(dt, T => store(dt, binary::binary_float::<T>(op, &a, &b)?),
                other => Err(unsupported(op.name(), dt, "not defined on bool or quantized dtypes"))),
        })
    }

    fn cmp(&self, op: CmpOp, a: View, b: View) -> Result<StorageRef> {
        self.run(|| {
            with_plain_type!(a.dtype, T => store(DType::Bool, cmp::cmp_plain::<T>(op, &a, &b)?),
                quantized => Err(unsupported(op.name(), a.dtype, "dequantize first")))
        })
    }

    fn where_cond(&self, cond: View, a: View, b: View) -> Result<StorageRef> {
        self.run(|| {
            with_plain_type!(a.dtype, T => store(a.dtype, cmp::where_plain::<T>(&cond, &a, &b)?),
                quantized => Err(unsupported("where", a.dtype, "dequantize first")))
        })
    }

    fn reduce(&self, op: ReduceOp, x: View, dim: usize, index_dtype: DType) -> Result<StorageRef> {
        self.run(|| {
            if op == ReduceOp::ArgMax {
                let idx = with_plain_type!(x.dtype, T => reduce::argmax_plain::<T>(&x, dim)?,
                    quantized => return Err(unsupported("argmax", x.dtype, "dequantize first")));
                return match index_dtype {
                    DType::I32 => store(index_dtype, idx.iter().map(|&i| i as i32).collect()),
                    _ => store(DType::I64, idx),
                };
            }
            match x.dtype {
                DType::U8 => store(x.dtype, reduce::reduce_int::<u8>(op, &x, dim)?),
                DType::I32 => store(x.dtype, reduce::reduce_int::<i32>(op, &x, dim)?),
                DType::I64 => store(x.dtype, reduce::reduce_int::<i64>(op, &x, dim)?),
                dt => with_float_type!(dt, T => store(dt, reduce::reduce_float::<T>(op, &x, dim)?),
                    other => Err(unsupported(op.name(), dt, "reductions are defined on numbers"))),
            }
        })
    }

    fn softmax(&self, x: View, log: bool) -> Result<StorageRef> {
        self.run(|| {
            with_float_type!(x.dtype, T => store(x.dtype, softmax::softmax_float::<T>(&x, log)?),
                other => Err(not_float("softmax", x.dtype)))
        })
    }

    fn layer_norm(
        &self,
        x: View,
        w: Option<View>,
        b: Option<View>,
        eps: f64,
    ) -> Result<StorageRef> {
        self.run(|| {
            with_float_type!(x.dtype, T => store(x.dtype, norm::layer_norm_float::<T>(&x, w, b, eps)?),
                other => Err(not_float("layer_norm", x.dtype)))
        })
    }

    fn rms_norm(&self, x: View, w: Option<View>, eps: f64) -> Result<StorageRef> {
        self.run(|| {
            with_float_type!(x.dtype, T => store(x.dtype, norm::rms_norm_float::<T>(&x, w, eps)?),
                other => Err(not_float("rms_norm", x.dtype)))
        })
    }

    fn matmul(&self, a: View, b: View) -> Result<StorageRef> {
        self.run(|| match a.dtype {
            DType::F32 => store(
                a.dtype,
                matmul::matmul_gemm::<f32>(&a, &b, None, None, None)?,
            ),
            DType::F64 => store(
                a.dtype,
                matmul::matmul_gemm::<f64>(&a, &b, None, None, None)?,
            ),
            DType::F16 => store(a.dtype, matmul::matmul_half::<half::f16>(&a, &b)?),
            DType::BF16 => store(a.dtype, matmul::matmul_half::<half::bf16>(&a, &b)?),
            dt => Err(not_float("matmul", dt)),
        })
    }

    fn matmul_bias(&self, a: View, b: View, bias: View) -> Result<StorageRef> {
        self.run(|| match a.dtype {
            DType::F32 => store(
                a.dtype,
                matmul::matmul_gemm::<f32>(&a, &b, Some(&bias), None, None)?,
            ),
            DType::F64 => store(
                a.dtype,
                matmul::matmul_gemm::<f64>(&a, &b, Some(&bias), None, None)?,
            ),
            _ => self
                .linear_half(&a, &b, &bias, None, None)?
                .map_or_else(|| plumb_core::compose_matmul_bias(self, a, b, bias), Ok),
        })
    }

    fn matmul_bias_act(&self, a: View, b: View, bias: View, act: UnaryOp) -> Result<StorageRef> {
        self.run(|| match a.dtype {
            DType::F32 => {
                let act = unary::row_map::<f32>(act);
                store(
                    a.dtype,
                    matmul::matmul_gemm(&a, &b, Some(&bias), Some(&*act), None)?,
                )
            }
            DType::F64 => {
                let act = unary::row_map::<f64>(act);
                store(
                    a.dtype,
                    matmul::matmul_gemm(&a, &b, Some(&bias), Some(&*act), None)?,
                )
            }
            _ => self
                .linear_half(&a, &b, &bias, Some(act), None)?
                .map_or_else(
                    || plumb_core::compose_matmul_bias_act(self, a, b, bias, act),
                    Ok,
                ),
        })
    }

    fn matmul_bias_add(&self, a: View, b: View, bias: View, residual: View) -> Result<StorageRef> {
        self.run(|| match a.dtype {
            DType::F32 => store(
                a.dtype,
                matmul::matmul_gemm::<f32>(&a, &b, Some(&bias), None, Some(&residual))?,
            ),
            DType::F64 => store(
                a.dtype,
                matmul::matmul_gemm::<f64>(&a, &b, Some(&bias), None, Some(&residual))?,
            ),
            _ => self
                .linear_half(&a, &b, &bias, None, Some(&residual))?
                .map_or_else(
                    || plumb_core::compose_matmul_bias_add(self, a, b, bias, residual),
                    Ok,
                ),
        })
    }

    fn qmatmul(&self, x: View, w: View) -> Result<StorageRef> {
        self.run(|| {
            with_float_type!(x.dtype, T => store(x.dtype, qmatmul::qmatmul_float::<T>(&x, &w)?),
                other => Err(not_float("qmatmul", x.dtype)))
        })
    }

    fn dequantize(&self, w: View, to: DType) -> Result<StorageRef> {
        self.run(|| {
            with_float_type!(to, T => store(to, qmatmul::dequantize_float::<T>(&w)?),
                other => Err(not_float("dequantize", to)))
        })
    }

    fn pack_qmatmul_weight(&self, w: View) -> Result<Option<StorageRef>> {
        self.run(|| Ok(qmatmul::pack(&w)?.map(|s| Arc::new(s) as StorageRef)))
    }

    fn pack_matmul_weight(&self, w: View) -> Result<Option<StorageRef>> {
        use kernels::{matmul_bf16, matmul_f32_avx2, matmul_rows};
        let shape = w.shape();
        // only whole matrices whose panels take no padding (the same size as the storage)
        if shape.len() != 2 || !w.layout.is_contiguous_from_start() {
            return Ok(None);
        }
        let (k, n) = (shape[0], shape[1]);
        match w.dtype {
            DType::F32
                if n.is_multiple_of(matmul_f32_avx2::NR) && matmul_f32_avx2::packs_weights() =>
            {
                self.run(|| {
                    let b = storage::raw_slice::<f32>("pack_matmul_weight", &w)?;
                    Ok(matmul_f32_avx2::PackedB::pack(b, k, n, n)
                        .map(|p| Arc::new(storage::CpuStorage::panels(p)) as StorageRef))
                })
            }
            DType::F32 if n.is_multiple_of(matmul_rows::STRIP) && matmul_rows::packs_strips() => {
                self.run(|| strips::<f32>(&w, k, n, storage::CpuStorage::strips))
            }
            DType::F16 if n.is_multiple_of(matmul_rows::STRIP) && matmul_rows::packs_strips() => {
                self.run(|| strips::<half::f16>(&w, k, n, storage::CpuStorage::strips_f16))
            }
            DType::BF16
                if n.is_multiple_of(matmul_bf16::NR)
                    && k.is_multiple_of(2)
                    && matmul_bf16::selected() =>
            {
                self.run(|| {
                    let b = storage::raw_slice::<half::bf16>("pack_matmul_weight", &w)?;
                    Ok(matmul_bf16::PackedBf16::pack(b, k, n)
                        .map(|p| Arc::new(storage::CpuStorage::panels_bf16(p)) as StorageRef))
                })
            }
            _ => Ok(None),
        }
    }

    fn index_select(&self, x: View, ids: View, dim: usize) -> Result<StorageRef> {
        self.run(|| {
            with_plain_type!(x.dtype, T => store(x.dtype, index::index_select_plain::<T>(&x, &ids, dim)?),
                quantized => Err(unsupported("index_select", x.dtype, "dequantize the table first")))
        })
    }

    fn gather(&self, x: View, ids: View, dim: usize) -> Result<StorageRef> {
        self.run(|| {
            with_plain_type!(x.dtype, T => store(x.dtype, index::gather_plain::<T>(&x, &ids, dim)?),
                quantized => Err(unsupported("gather", x.dtype, "dequantize first")))
        })
    }

    fn cat(&self, xs: &[View], dim: usize) -> Result<StorageRef> {
        let Some(first) = xs.first() else {
            return Err(device_err("cat", "no tensors"));
        };
        let dt = first.dtype;
        self.run(|| {
            with_plain_type!(dt, T => store(dt, copy::cat_plain::<T>(xs, dim)?),
                quantized => store(dt, copy::cat_quant(xs, dim)?))
        })
    }

    fn write(
        &self,
        dst: &mut dyn BackendStorage,
        dst_layout: &Layout,
        dim: usize,
        start: usize,
        src: View,
    ) -> Result<bool> {
        let n = src.shape().get(dim).copied().unwrap_or(0);
        let at = dst_layout.narrow(dim, start, n)?;
        let Some(dst) = dst.downcast_mut::<storage::CpuStorage>() else {
            return Ok(false);
        };
        // a weight held in matmul panels is not written in place: core rebuilds it with cat
        if dst.is_panels() {
            return Ok(false);
        }
        let dt = src.dtype;
        if dst.dtype() != dt {
            return Err(device_err(
                "write_slice",
                format!("destination holds {} but the source is {dt}", dst.dtype()),
            ));
        }
        with_plain_type!(dt, T => {
            let s = storage::contiguous::<T>("write_slice", &src)?;
            let d = dst.slice_mut::<T>().ok_or_else(|| device_err("write_slice", format!("storage is not {dt}")))?;
            copy::write_strided(&s, &at, d)?;
            Ok(true)
        }, quantized => Ok(false))
    }

    fn attention(
        &self,
        q: View,
        k: View,
        v: View,
        mask: Option<View>,
        args: AttentionArgs,
    ) -> Result<Option<StorageRef>> {
        let (dt, kt) = (q.dtype, k.dtype);
        let (q, k, v, m) = (&q, &k, &v, mask.as_ref());
        self.run(|| {
            let out = match (dt, kt) {
                // a KV cache narrower than the queries
                (DType::F32, DType::F16) => {
                    attention::attention_float::<f32, half::f16>(q, k, v, m, args)?
                        .map(|o| store(dt, o))
                }
                (DType::F32, DType::BF16) => {
                    attention::attention_float::<f32, half::bf16>(q, k, v, m, args)?
                        .map(|o| store(dt, o))
                }
                _ if kt != dt => None,
                _ => {
                    with_float_type!(dt, T => attention::attention_float::<T, T>(q, k, v, m, args)?
                    .map(|o| store(dt, o)), other => None)
                }
            };
            out.transpose()
        })
    }

    fn rope(&self, x: View, cos: View, sin: View, interleaved: bool) -> Result<StorageRef> {
        self.run(|| {
            with_float_type!(x.dtype, T => store(x.dtype, rope::rope_float::<T>(&x, &cos, &sin, interleaved)?),
                other => Err(not_float("rope", x.dtype)))
        })
    }
}
