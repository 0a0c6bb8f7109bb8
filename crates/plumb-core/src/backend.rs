//! The backend traits. A backend (cpu, wgpu, cuda, meta) implements [`Backend`]; core validates
//! shapes and dtypes, applies the policy and calls these methods with well-formed arguments.
//!
//! Conventions every method can rely on (core guarantees them before calling):
//! - inputs are [`View`]s: storage + layout (shape, strides in elements, offset in elements) +
//!   dtype. Inputs may be strided, broadcast (stride 0) or offset unless a method says otherwise.
//! - the output is a new storage holding the result **contiguously** (row-major) in the documented
//!   output dtype; core builds its layout from the output shape it computed.
//! - binary/cmp/where operands already have the same shape (core broadcast their layouts).
//! - dtypes have already been checked against the backend's [`Capabilities`] and the policy; a
//!   backend still returns an error (never panics) for anything it cannot do.
//! - quantized tensors (q4_0, q4_1, q8_0) are always contiguous with the last dim a multiple of 32.

use crate::caps::{Capabilities, DeviceInfo};
use crate::dtype::DType;
use crate::error::Result;
use crate::op::{BinaryOp, CmpOp, ReduceOp, UnaryOp};
use crate::shape::Layout;
use std::any::Any;
use std::fmt::Debug;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Device memory owned by one backend. Backends downcast through `as_any`.
pub trait BackendStorage: Send + Sync + Debug + 'static {
    fn as_any(&self) -> &dyn Any;
    /// Mutable access for [`Backend::write`], where the backend writes into its storage in place.
    fn as_any_mut(&mut self) -> Option<&mut dyn Any> {
        None
    }
    /// Size in bytes of the allocation.
    fn byte_len(&self) -> usize;
}

impl dyn BackendStorage {
    /// This storage as the backend's own type `T`, mutably (for [`Backend::write`]); `None` for
    /// another backend's storage or one that gives no mutable access.
    pub fn downcast_mut<T: 'static>(&mut self) -> Option<&mut T> {
        self.as_any_mut()?.downcast_mut::<T>()
    }
}

pub type StorageRef = Arc<dyn BackendStorage>;

/// Bytes held by a backend's live storages and their high-water mark, for
/// [`Backend::allocated_bytes`] and [`Backend::peak_allocated_bytes`]. `const`-constructible so a
/// backend can keep one in a static.
#[derive(Debug, Default)]
pub struct ByteCounter {
    live: AtomicU64,
    peak: AtomicU64,
}

impl ByteCounter {
    pub const fn new() -> Self {
        ByteCounter {
            live: AtomicU64::new(0),
            peak: AtomicU64::new(0),
        }
    }
    /// A storage of `bytes` was created.
    pub fn add(&self, bytes: u64) {
        let now = self.live.fetch_add(bytes, Ordering::Relaxed) + bytes;
        self.peak.fetch_max(now, Ordering::Relaxed);
    }
    /// A storage of `bytes` was dropped.
    pub fn sub(&self, bytes: u64) {
        self.live.fetch_sub(bytes, Ordering::Relaxed);
    }
    pub fn live(&self) -> u64 {
        self.live.load(Ordering::Relaxed)
    }
    /// The most bytes live at once since the last [`ByteCounter::reset_peak`].
    pub fn peak(&self) -> u64 {
        self.peak.load(Ordering::Relaxed)
    }
    /// Restart the high-water mark at the current live bytes.
    pub fn reset_peak(&self) {
        self.peak.store(self.live(), Ordering::Relaxed);
    }
}

/// A borrowed tensor view handed to a backend.
#[derive(Clone, Copy, Debug)]
pub struct View<'a> {
    pub storage: &'a dyn BackendStorage,
    pub layout: &'a Layout,
    pub dtype: DType,
}

impl View<'_> {
    pub fn shape(&self) -> &[usize] {
        &self.layout.shape
    }
    pub fn numel(&self) -> usize {
        self.layout.numel()
    }
}

/// Arguments of scaled-dot-product attention (see [`Backend::attention`]).
#[derive(Clone, Copy, Debug)]
pub struct AttentionArgs {
    pub scale: f64,
    /// apply a causal mask aligned to the end (query i may see keys 0..=i + (kv_len - q_len))
    pub causal: bool,
}

/// One backend device. Object-safe; held as `Arc<dyn Backend>` by [`crate::Device`].
pub trait Backend: Send + Sync + Debug {
    fn info(&self) -> &DeviceInfo;
    fn capabilities(&self) -> &Capabilities;

    /// False only for the meta device: its storages hold no data, kernels do not run.
    fn holds_data(&self) -> bool {
        true
    }

    /// Upload `bytes` (row-major, `dtype`'s storage format) for `numel` elements.
    fn upload(&self, dtype: DType, numel: usize, bytes: &[u8]) -> Result<StorageRef>;
    /// Download the view as contiguous row-major bytes in its dtype.
    fn download(&self, x: View) -> Result<Vec<u8>>;
    /// A new contiguous storage of `numel` elements all equal to `value` (cast to `dtype`).
    fn full(&self, dtype: DType, numel: usize, value: f64) -> Result<StorageRef>;
    /// Contiguous copy of the view (same dtype). Quantized views are whole, so this is a memcpy.
    fn copy(&self, x: View) -> Result<StorageRef>;
    /// Cast to `to` (both plain dtypes): round-to-nearest-even into f16/bf16; float→int truncates
    /// toward zero and saturates at the integer range, NaN → 0; int→bool and float→bool are `!= 0`.
    fn cast(&self, x: View, to: DType) -> Result<StorageRef>;

    /// Elementwise unary op; output dtype = input dtype.
    fn unary(&self, op: UnaryOp, x: View) -> Result<StorageRef>;
    /// Elementwise binary op on equal shapes and dtypes; output dtype = input dtype.
    fn binary(&self, op: BinaryOp, a: View, b: View) -> Result<StorageRef>;
    /// Elementwise comparison on equal shapes and dtypes; output dtype bool (one byte, 0 or 1).
    fn cmp(&self, op: CmpOp, a: View, b: View) -> Result<StorageRef>;
    /// `cond ? a : b`, cond bool, a and b the same dtype; all the same shape.
    fn where_cond(&self, cond: View, a: View, b: View) -> Result<StorageRef>;

    /// Reduce over `dim`; output shape = input shape with `dim` set to 1 (core squeezes it when
    /// asked). Output dtype = input dtype, except ArgMax → `index_dtype`. f16/bf16 accumulate in f32.
    fn reduce(&self, op: ReduceOp, x: View, dim: usize, index_dtype: DType) -> Result<StorageRef>;
    /// Softmax (or log-softmax) over the last dim, numerically stable, f32 accumulation for halves.
    fn softmax(&self, x: View, log: bool) -> Result<StorageRef>;
    /// Layer norm over the last dim: (x − mean) / sqrt(var + eps) · w + b. `w`, `b` have shape
    /// `[last]` and x's dtype when present.
    fn layer_norm(&self, x: View, w: Option<View>, b: Option<View>, eps: f64)
        -> Result<StorageRef>;
    /// RMS norm over the last dim: x / sqrt(mean(x²) + eps) · w.
    fn rms_norm(&self, x: View, w: Option<View>, eps: f64) -> Result<StorageRef>;

    /// Batched matmul: `a` [batch…, m, k] × `b` [batch…, k, n] → [batch…, m, n] (same batch dims;
    /// either may be transposed or broadcast through its strides). Halves accumulate in f32.
    fn matmul(&self, a: View, b: View) -> Result<StorageRef>;
    /// [`Backend::matmul`] plus `bias` (1-D, n values, a's dtype) added to every output row: a
    /// linear layer. The default composes `matmul` and a broadcast `binary(Add)`; a backend may
    /// fuse the bias into its matmul.
    fn matmul_bias(&self, a: View, b: View, bias: View) -> Result<StorageRef> {
        compose_matmul_bias(self, a, b, bias)
    }
    /// [`Backend::matmul_bias`] with the unary `act` applied to every output (a linear layer
    /// and its activation). The default composes `matmul_bias` and `unary`; a backend may apply
    /// `act` to each block of the product while the block is still in cache.
    fn matmul_bias_act(&self, a: View, b: View, bias: View, act: UnaryOp) -> Result<StorageRef> {
        compose_matmul_bias_act(self, a, b, bias, act)
    }
    /// [`Backend::matmul_bias`] plus `residual` (the output's shape, a's dtype, any strides)
    /// added to every output: a linear layer and the skip connection after it. The default
    /// composes `matmul_bias` and `binary(Add)`; a backend may add the residual to each block of
    /// the product while the block is still in cache.
    fn matmul_bias_add(&self, a: View, b: View, bias: View, residual: View) -> Result<StorageRef> {
        compose_matmul_bias_add(self, a, b, bias, residual)
    }
    /// `x` [rows…, k] (f32/f16/bf16) × `w`ᵀ where `w` is quantized [n, k] → [rows…, n] in x's
    /// dtype, without dequantizing all of `w` first.
    fn qmatmul(&self, x: View, w: View) -> Result<StorageRef>;
    /// Dequantize a quantized tensor to `to` (a float dtype), same shape.
    fn dequantize(&self, w: View, to: DType) -> Result<StorageRef>;
    /// The quantized matrix `w` [n, k] (a whole contiguous storage) copied into a layout this
    /// backend's `qmatmul` reads faster, or `Ok(None)` to keep it as it is. The copy has the
    /// same dtype, shape, values and size: every op reads it as it read `w`.
    fn pack_qmatmul_weight(&self, _w: View) -> Result<Option<StorageRef>> {
        Ok(None)
    }
    /// The float matrix `w` [k, n] (a whole contiguous row-major storage: a linear layer's
    /// weight stored in-dim-major) copied into a layout this backend's matmul reads faster when
    /// it is the right-hand side, or `Ok(None)` to keep it as it is. The copy has the same
    /// dtype, shape, values and size: every other op reads it as it read `w`.
    fn pack_matmul_weight(&self, _w: View) -> Result<Option<StorageRef>> {
        Ok(None)
    }

    /// Rows of `x` along `dim` picked by `ids` (1-D, i32 or i64): output shape = x's shape with
    /// `dim` replaced by ids.len(). An id out of range is an error where the backend can check it.
    fn index_select(&self, x: View, ids: View, dim: usize) -> Result<StorageRef>;
    /// torch.gather: `ids` has x's rank; out[i][j][k] = x[i][ids[i][j][k]][k] for dim 1.
    fn gather(&self, x: View, ids: View, dim: usize) -> Result<StorageRef>;
    /// Concatenate along `dim` (shapes equal elsewhere, same dtype).
    fn cat(&self, xs: &[View], dim: usize) -> Result<StorageRef>;
    /// Copy `src` into positions `start .. start + src.shape[dim]` along `dim` of the tensor
    /// `dst_layout` describes over `dst` (same non-quantized dtype, equal shapes elsewhere, the
    /// range inside; core checked all of it), in place; `dst` belongs to that tensor only.
    /// `Ok(false)` where the backend cannot write into an existing storage, or not into this
    /// layout: core then builds a new tensor with `cat` instead (see `Tensor::write_slice`).
    fn write(
        &self,
        _dst: &mut dyn BackendStorage,
        _dst_layout: &Layout,
        _dim: usize,
        _start: usize,
        _src: View,
    ) -> Result<bool> {
        Ok(false)
    }
    /// Rotary embedding on `x` [batch, heads, seq, head_dim] with `cos`/`sin` [seq, head_dim/2]
    /// (same float dtype as x). Rotate-half pairs (i, i + d/2); interleaved pairs (2i, 2i + 1).
    fn rope(&self, x: View, cos: View, sin: View, interleaved: bool) -> Result<StorageRef>;

    /// Fused scaled-dot-product attention, if the backend has one: q [b, h, s, d],
    /// k/v [b, hkv, t, d] with h a multiple of hkv (query head i reads kv head i / (h / hkv)),
    /// optional additive `mask` already broadcast to [b, h, s, t] (a view, often stride 0), and
    /// `args.causal`. A row whose scores are all −∞ or hold NaN is NaN (as softmax). k and v
    /// share a float dtype that may differ from q's (a KV cache narrower than the queries); the
    /// output has q's dtype. Return `Ok(None)` to let core compose it from matmul + softmax
    /// (which casts such k and v to q's dtype first).
    fn attention(
        &self,
        _q: View,
        _k: View,
        _v: View,
        _mask: Option<View>,
        _args: AttentionArgs,
    ) -> Result<Option<StorageRef>> {
        Ok(None)
    }

    /// Run `f`, a sequence of ops (a model's forward), where this device's ops are cheapest to
    /// issue from. The CPU backend runs it on the calling thread with its thread budget set once
    /// for all of them; other backends just call `f`.
    fn scope(&self, f: &mut (dyn FnMut() + Send)) {
        f()
    }

    /// Wait for queued work to finish (GPU backends batch work; readback also flushes).
    fn synchronize(&self) -> Result<()> {
        Ok(())
    }

    /// Bytes currently allocated by this device (for plans' memory checks), where tracked.
    fn allocated_bytes(&self) -> Option<u64> {
        None
    }

    /// The most bytes allocated at once since the last [`Backend::reset_peak_bytes`], where
    /// tracked (checks a plan's memory estimate against a real run).
    fn peak_allocated_bytes(&self) -> Option<u64> {
        None
    }

    /// Start a new high-water mark for [`Backend::peak_allocated_bytes`] at the current level.
    fn reset_peak_bytes(&self) {}
}

/// The output shape of `a` [batch…, m, k] × `b` [batch…, k, n]: a's dims with n last.
fn matmul_shape(a: &View, b: &View) -> Vec<usize> {
    let (ra, rb) = (a.layout.rank(), b.layout.rank());
    let mut shape = a.shape()[..ra - 1].to_vec();
    shape.push(b.shape()[rb - 1]);
    shape
}

/// `matmul_bias` of a and b, then `then` on its output (contiguous, a's dtype): the composed
/// forms of the fused linear ops.
fn matmul_bias_then<B: Backend + ?Sized>(
    be: &B,
    a: View,
    b: View,
    bias: View,
    then: impl FnOnce(View) -> Result<StorageRef>,
) -> Result<StorageRef> {
    let shape = matmul_shape(&a, &b);
    let dtype = a.dtype;
    let y = be.matmul_bias(a, b, bias)?;
    then(View {
        storage: y.as_ref(),
        layout: &Layout::contiguous(&shape),
        dtype,
    })
}

/// [`Backend::matmul_bias_act`] as `matmul_bias` then `unary` (the default, and what a backend
/// runs for the dtypes it does not fuse).
pub fn compose_matmul_bias_act<B: Backend + ?Sized>(
    be: &B,
    a: View,
    b: View,
    bias: View,
    act: UnaryOp,
) -> Result<StorageRef> {
    matmul_bias_then(be, a, b, bias, |y| be.unary(act, y))
}

/// [`Backend::matmul_bias_add`] as `matmul_bias` then `binary(Add)` with the residual (the
/// default, and what a backend runs for the dtypes it does not fuse).
pub fn compose_matmul_bias_add<B: Backend + ?Sized>(
    be: &B,
    a: View,
    b: View,
    bias: View,
    residual: View,
) -> Result<StorageRef> {
    matmul_bias_then(be, a, b, bias, |y| be.binary(BinaryOp::Add, y, residual))
}

/// [`Backend::matmul_bias`] as `matmul` followed by `binary(Add)` with the bias broadcast over
/// every row (what backends without a fused kernel run).
pub fn compose_matmul_bias<B: Backend + ?Sized>(
    be: &B,
    a: View,
    b: View,
    bias: View,
) -> Result<StorageRef> {
    let shape = matmul_shape(&a, &b);
    let y = be.matmul(a, b)?;
    let yl = Layout::contiguous(&shape);
    let mut strides = vec![0; shape.len()];
    strides[shape.len() - 1] = bias.layout.strides.first().copied().unwrap_or(1);
    let bl = Layout {
        shape,
        strides,
        offset: bias.layout.offset,
    };
    be.binary(
        BinaryOp::Add,
        View {
            storage: y.as_ref(),
            layout: &yl,
            dtype: a.dtype,
        },
        View {
            layout: &bl,
            ..bias
        },
    )
}
