//! Shared by the facade's integration tests: a test-only backend that wraps another (the CPU),
//! with its own capability table, a log of the kernels it ran, and an optional deliberate bug.
#![allow(dead_code)]

pub mod schema;

use plumb::{
    AttentionArgs, Backend, BinaryOp, Capabilities, CmpOp, DType, DeviceInfo, ReduceOp, Result,
    StorageRef, UnaryOp, View,
};
use std::sync::{Arc, Mutex, MutexGuard};

/// GPU adapters (GL especially) are not safe to drive from several test threads at once; every
/// test that touches a GPU holds this.
pub fn gpu_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Debug)]
pub struct Wrapped {
    pub inner: Arc<dyn Backend>,
    pub info: DeviceInfo,
    pub caps: Capabilities,
    /// every kernel run: (method, dtype of the first input)
    pub log: Mutex<Vec<(String, DType)>>,
    /// add this to every element of an f16 `add` (a deliberately wrong kernel)
    pub f16_add_offset: Option<f64>,
}

impl Wrapped {
    pub fn new(inner: Arc<dyn Backend>, id: &str) -> Wrapped {
        let mut info = inner.info().clone();
        info.id = id.to_string();
        info.name = format!("test wrapper of {}", info.name);
        Wrapped {
            caps: inner.capabilities().clone(),
            inner,
            info,
            log: Mutex::new(Vec::new()),
            f16_add_offset: None,
        }
    }
    fn note(&self, what: &str, dtype: DType) {
        self.log.lock().unwrap().push((what.to_string(), dtype));
    }
    pub fn kernels(&self) -> Vec<(String, DType)> {
        self.log.lock().unwrap().clone()
    }
    pub fn clear(&self) {
        self.log.lock().unwrap().clear();
    }
}

impl Backend for Wrapped {
    fn info(&self) -> &DeviceInfo {
        &self.info
    }
    fn capabilities(&self) -> &Capabilities {
        &self.caps
    }
    fn upload(&self, dtype: DType, numel: usize, bytes: &[u8]) -> Result<StorageRef> {
        self.inner.upload(dtype, numel, bytes)
    }
    fn download(&self, x: View) -> Result<Vec<u8>> {
        self.inner.download(x)
    }
    fn full(&self, dtype: DType, numel: usize, value: f64) -> Result<StorageRef> {
        self.inner.full(dtype, numel, value)
    }
    fn copy(&self, x: View) -> Result<StorageRef> {
        self.inner.copy(x)
    }
    fn cast(&self, x: View, to: DType) -> Result<StorageRef> {
        self.note("cast", x.dtype);
        self.inner.cast(x, to)
    }
    fn unary(&self, op: UnaryOp, x: View) -> Result<StorageRef> {
        self.note(op.name(), x.dtype);
        self.inner.unary(op, x)
    }
    fn binary(&self, op: BinaryOp, a: View, b: View) -> Result<StorageRef> {
        self.note(op.name(), a.dtype);
        let out = self.inner.binary(op, a, b)?;
        match self.f16_add_offset {
            Some(off) if op == BinaryOp::Add && a.dtype == DType::F16 => {
                let n = a.numel();
                let layout = plumb::Layout::contiguous(&[n]);
                let v = View {
                    storage: out.as_ref(),
                    layout: &layout,
                    dtype: DType::F16,
                };
                let vals = plumb::convert::bytes_to_f64(DType::F16, &self.inner.download(v)?, n)?;
                let wrong: Vec<f64> = vals.iter().map(|x| x + off).collect();
                let bytes = plumb::convert::f64_to_bytes(DType::F16, &wrong)?;
                self.inner.upload(DType::F16, n, &bytes)
            }
            _ => Ok(out),
        }
    }
    fn cmp(&self, op: CmpOp, a: View, b: View) -> Result<StorageRef> {
        self.note(op.name(), a.dtype);
        self.inner.cmp(op, a, b)
    }
    fn where_cond(&self, c: View, a: View, b: View) -> Result<StorageRef> {
        self.note("where", a.dtype);
        self.inner.where_cond(c, a, b)
    }
    fn reduce(&self, op: ReduceOp, x: View, dim: usize, idx: DType) -> Result<StorageRef> {
        self.note(op.name(), x.dtype);
        self.inner.reduce(op, x, dim, idx)
    }
    fn softmax(&self, x: View, log: bool) -> Result<StorageRef> {
        self.note("softmax", x.dtype);
        self.inner.softmax(x, log)
    }
    fn layer_norm(
        &self,
        x: View,
        w: Option<View>,
        b: Option<View>,
        eps: f64,
    ) -> Result<StorageRef> {
        self.note("layer_norm", x.dtype);
        self.inner.layer_norm(x, w, b, eps)
    }
    fn rms_norm(&self, x: View, w: Option<View>, eps: f64) -> Result<StorageRef> {
        self.note("rms_norm", x.dtype);
        self.inner.rms_norm(x, w, eps)
    }
    fn matmul(&self, a: View, b: View) -> Result<StorageRef> {
        self.note("matmul", a.dtype);
        self.inner.matmul(a, b)
    }
    fn qmatmul(&self, x: View, w: View) -> Result<StorageRef> {
        self.note("qmatmul", w.dtype);
        self.inner.qmatmul(x, w)
    }
    fn dequantize(&self, w: View, to: DType) -> Result<StorageRef> {
        self.note("dequantize", w.dtype);
        self.inner.dequantize(w, to)
    }
    fn pack_qmatmul_weight(&self, w: View) -> Result<Option<StorageRef>> {
        self.inner.pack_qmatmul_weight(w)
    }
    fn index_select(&self, x: View, ids: View, dim: usize) -> Result<StorageRef> {
        self.note("index_select", x.dtype);
        self.inner.index_select(x, ids, dim)
    }
    fn gather(&self, x: View, ids: View, dim: usize) -> Result<StorageRef> {
        self.note("gather", x.dtype);
        self.inner.gather(x, ids, dim)
    }
    fn cat(&self, xs: &[View], dim: usize) -> Result<StorageRef> {
        self.note("cat", xs.first().map(|x| x.dtype).unwrap_or(DType::F32));
        self.inner.cat(xs, dim)
    }
    fn rope(&self, x: View, c: View, s: View, interleaved: bool) -> Result<StorageRef> {
        self.note("rope", x.dtype);
        self.inner.rope(x, c, s, interleaved)
    }
    fn attention(
        &self,
        q: View,
        k: View,
        v: View,
        mask: Option<View>,
        args: AttentionArgs,
    ) -> Result<Option<StorageRef>> {
        self.inner.attention(q, k, v, mask, args)
    }
    fn synchronize(&self) -> Result<()> {
        self.inner.synchronize()
    }
}
