//! plumb-wgpu: `gpu:N` devices through wgpu (Vulkan, Metal, DX12, GL, all compiled in).
//!
//! - [`discover`] turns every adapter that runs compute shaders into a [`WgpuBackend`],
//!   ordered discrete > integrated > virtual > CPU-emulated, native APIs before GL.
//! - Capabilities come from the adapter's features (SHADER_F16, SHADER_INT64, SHADER_F64),
//!   optionally masked by an Apple profile (`PLUMB_WGPU_PROFILE`, see [`profile`]).
//! - Kernels are WGSL files under `src/kernels/`, one per op family (see [`kernels`]).
//! - Storage: every tensor is a pooled buffer of 32-bit words; u8/bool pack four elements and
//!   f16/bf16 two per word; i64/f64 use 64-bit words. Kernels own whole output words.

pub mod catalogue;
pub mod device;
pub mod kernels;
mod launch;
mod ops;
pub mod pool;
pub mod profile;

pub use device::discover;
pub use pool::WgpuStorage;

use launch::Ctx;
use plumb_core::{
    Backend, BackendStorage, BinaryOp, Capabilities, CmpOp, DType, DeviceInfo, Layout, ReduceOp,
    Result, StorageRef, UnaryOp, View,
};
use std::sync::Arc;

/// One wgpu adapter as a Plumb device.
#[derive(Debug)]
pub struct WgpuBackend {
    info: DeviceInfo,
    caps: Capabilities,
    ctx: Arc<Ctx>,
}

impl WgpuBackend {
    pub(crate) fn from_parts(info: DeviceInfo, caps: Capabilities, ctx: Arc<Ctx>) -> Self {
        WgpuBackend { info, caps, ctx }
    }

    /// Lower the largest buffer one kernel may bind (a capability override in code, e.g. to
    /// test the limits path or to model a smaller device). Never raises the adapter's limit.
    pub fn with_max_binding_bytes(mut self, bytes: u64) -> Self {
        let bytes = bytes.min(self.caps.limits.max_binding_bytes);
        self.caps.limits.max_binding_bytes = bytes;
        if let Some(ctx) = Arc::get_mut(&mut self.ctx) {
            ctx.limits.max_binding = bytes;
        }
        self
    }

    /// Buffers the pool has ever created (for reuse tests and diagnostics).
    pub fn pool_buffers_created(&self) -> u64 {
        self.ctx.pool.created()
    }

    /// Pipelines compiled so far.
    pub fn pipelines_compiled(&self) -> usize {
        self.ctx.pipeline_count()
    }

    /// Whether kernels use subgroup operations on this device (SUBGROUP feature).
    pub fn has_subgroups(&self) -> bool {
        self.ctx.has_subgroup
    }
}

impl Backend for WgpuBackend {
    fn info(&self) -> &DeviceInfo {
        &self.info
    }
    fn capabilities(&self) -> &Capabilities {
        &self.caps
    }
    fn upload(&self, dtype: DType, numel: usize, bytes: &[u8]) -> Result<StorageRef> {
        ops::movement::upload(&self.ctx, dtype, numel, bytes)
    }
    fn download(&self, x: View) -> Result<Vec<u8>> {
        ops::movement::download(&self.ctx, x)
    }
    fn full(&self, dtype: DType, numel: usize, value: f64) -> Result<StorageRef> {
        ops::movement::full(&self.ctx, dtype, numel, value)
    }
    fn copy(&self, x: View) -> Result<StorageRef> {
        ops::movement::copy(&self.ctx, x)
    }
    fn write(
        &self,
        dst: &mut dyn BackendStorage,
        dst_layout: &Layout,
        dim: usize,
        start: usize,
        src: View,
    ) -> Result<bool> {
        ops::movement::write(&self.ctx, dst, dst_layout, dim, start, src)
    }
    fn cast(&self, x: View, to: DType) -> Result<StorageRef> {
        if x.dtype == to {
            return ops::movement::copy(&self.ctx, x);
        }
        ops::elementwise::cast(&self.ctx, x, to)
    }
    fn unary(&self, op: UnaryOp, x: View) -> Result<StorageRef> {
        ops::elementwise::unary(&self.ctx, op, x)
    }
    fn binary(&self, op: BinaryOp, a: View, b: View) -> Result<StorageRef> {
        ops::elementwise::binary(&self.ctx, op, a, b)
    }
    fn cmp(&self, op: CmpOp, a: View, b: View) -> Result<StorageRef> {
        ops::elementwise::cmp(&self.ctx, op, a, b)
    }
    fn where_cond(&self, cond: View, a: View, b: View) -> Result<StorageRef> {
        ops::elementwise::where_cond(&self.ctx, cond, a, b)
    }
    fn reduce(&self, op: ReduceOp, x: View, dim: usize, index_dtype: DType) -> Result<StorageRef> {
        ops::reduce::reduce(&self.ctx, op, x, dim, index_dtype)
    }
    fn softmax(&self, x: View, log: bool) -> Result<StorageRef> {
        ops::nn::softmax(&self.ctx, x, log)
    }
    fn layer_norm(
        &self,
        x: View,
        w: Option<View>,
        b: Option<View>,
        eps: f64,
    ) -> Result<StorageRef> {
        ops::nn::norm(&self.ctx, "layer_norm", x, w, b, eps)
    }
    fn rms_norm(&self, x: View, w: Option<View>, eps: f64) -> Result<StorageRef> {
        ops::nn::norm(&self.ctx, "rms_norm", x, w, None, eps)
    }
    fn matmul(&self, a: View, b: View) -> Result<StorageRef> {
        ops::matmul::matmul(&self.ctx, a, b)
    }
    fn qmatmul(&self, x: View, w: View) -> Result<StorageRef> {
        ops::matmul::qmatmul(&self.ctx, x, w)
    }
    fn dequantize(&self, w: View, to: DType) -> Result<StorageRef> {
        ops::matmul::dequantize(&self.ctx, w, to)
    }
    fn index_select(&self, x: View, ids: View, dim: usize) -> Result<StorageRef> {
        ops::index::index_select(&self.ctx, x, ids, dim)
    }
    fn gather(&self, x: View, ids: View, dim: usize) -> Result<StorageRef> {
        ops::index::gather(&self.ctx, x, ids, dim)
    }
    fn cat(&self, xs: &[View], dim: usize) -> Result<StorageRef> {
        ops::movement::cat(&self.ctx, xs, dim)
    }
    fn rope(&self, x: View, cos: View, sin: View, interleaved: bool) -> Result<StorageRef> {
        ops::nn::rope(&self.ctx, x, cos, sin, interleaved)
    }
    fn synchronize(&self) -> Result<()> {
        self.ctx.synchronize()
    }
    fn allocated_bytes(&self) -> Option<u64> {
        Some(self.ctx.pool.live_bytes())
    }
}
