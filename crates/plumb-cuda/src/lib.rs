//! plumb-cuda: `cuda:N` devices — NVIDIA GPUs through the CUDA driver API.
//!
//! - [`discover`] finds every device; the driver, NVRTC and cuBLAS are loaded at run time
//!   (cudarc's dynamic loading), so this crate builds and runs on machines without CUDA.
//! - Kernels are CUDA C++ files under `src/kernels/`, one per op family group, compiled by NVRTC
//!   for the device's architecture on first use (see [`ctx::Module`]). f16 and bf16 are stored as
//!   their bits and computed in f32; f64 and i64 are native.
//! - Float matmuls go to cuBLAS (f32 accumulation for halves; tensor cores where cuBLAS picks
//!   them); quantized weights have their own matrix-vector kernel.
//! - Storage: one device buffer per tensor (stream-ordered allocation), all work on one stream;
//!   readback waits for it.

pub mod ctx;
pub mod device;
mod ops;
mod profile;
pub mod storage;
pub mod strided;

pub use device::{discover, Found};
pub use storage::CudaStorage;

use ctx::Ctx;
use plumb_core::{
    AttentionArgs, Backend, BackendStorage, BinaryOp, Capabilities, CmpOp, DType, DeviceInfo,
    Layout, ReduceOp, Result, StorageRef, UnaryOp, View,
};
use std::sync::Arc;

/// One CUDA device as a Plumb device.
#[derive(Debug)]
pub struct CudaBackend {
    info: DeviceInfo,
    caps: Capabilities,
    ctx: Arc<Ctx>,
}

impl CudaBackend {
    pub(crate) fn from_parts(info: DeviceInfo, caps: Capabilities, ctx: Arc<Ctx>) -> Self {
        CudaBackend { info, caps, ctx }
    }
}

impl Backend for CudaBackend {
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
    fn cast(&self, x: View, to: DType) -> Result<StorageRef> {
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
        ops::nn::reduce(&self.ctx, op, x, dim, index_dtype)
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
        ops::nn::norm(&self.ctx, false, x, w, b, eps)
    }
    fn rms_norm(&self, x: View, w: Option<View>, eps: f64) -> Result<StorageRef> {
        ops::nn::norm(&self.ctx, true, x, w, None, eps)
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
    fn rope(&self, x: View, cos: View, sin: View, interleaved: bool) -> Result<StorageRef> {
        ops::nn::rope(&self.ctx, x, cos, sin, interleaved)
    }
    fn attention(
        &self,
        q: View,
        k: View,
        v: View,
        mask: Option<View>,
        args: AttentionArgs,
    ) -> Result<Option<StorageRef>> {
        ops::attention::attention(&self.ctx, q, k, v, mask, args)
    }
    fn synchronize(&self) -> Result<()> {
        self.ctx.synchronize()
    }
    fn allocated_bytes(&self) -> Option<u64> {
        Some(self.ctx.counters.live())
    }
    fn peak_allocated_bytes(&self) -> Option<u64> {
        Some(self.ctx.counters.peak())
    }
    fn reset_peak_bytes(&self) {
        self.ctx.counters.reset_peak()
    }
}
