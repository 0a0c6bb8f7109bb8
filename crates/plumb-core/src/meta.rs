//! The meta device: runs ops on shapes and dtypes only. Core computes every output shape and
//! dtype before calling a backend, so the meta backend only hands back empty storages; the
//! [`crate::Device`] wrapping it records each op (see [`crate::OpRecord`]).

use crate::backend::{Backend, BackendStorage, StorageRef, View};
use crate::caps::{Capabilities, DeviceInfo, DeviceKind, Limits, Support};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::op::{BinaryOp, CmpOp, OpFamily, ReduceOp, UnaryOp};
use std::any::Any;
use std::sync::Arc;

#[derive(Debug)]
pub struct MetaStorage;

impl BackendStorage for MetaStorage {
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn byte_len(&self) -> usize {
        0
    }
}

#[derive(Debug)]
pub struct MetaBackend {
    info: DeviceInfo,
    caps: Capabilities,
}

impl MetaBackend {
    pub fn new() -> Self {
        let mut caps = Capabilities::none(
            "quantized dtypes are only storage",
            Limits {
                max_buffer_bytes: u64::MAX,
                max_binding_bytes: u64::MAX,
                memory_bytes: None,
            },
        );
        for f in OpFamily::ALL {
            let dtypes: &[DType] = match f {
                OpFamily::QMatmul => &DType::QUANTIZED,
                _ => &DType::PLAIN,
            };
            caps.set_all(f, dtypes, Support::Native);
        }
        caps.set_all(OpFamily::Copy, &DType::QUANTIZED, Support::Native);
        MetaBackend {
            info: DeviceInfo {
                id: "meta".into(),
                name: "meta (shapes and dtypes only)".into(),
                kind: DeviceKind::Meta,
                api: "none".into(),
                driver: "none".into(),
                features: vec![],
                profile: None,
            },
            caps,
        }
    }
}

impl Default for MetaBackend {
    fn default() -> Self {
        Self::new()
    }
}

fn empty() -> Result<StorageRef> {
    Ok(Arc::new(MetaStorage))
}

impl Backend for MetaBackend {
    fn info(&self) -> &DeviceInfo {
        &self.info
    }
    fn capabilities(&self) -> &Capabilities {
        &self.caps
    }
    fn holds_data(&self) -> bool {
        false
    }
    fn upload(&self, _: DType, _: usize, _: &[u8]) -> Result<StorageRef> {
        empty()
    }
    /// There is nothing to read: a read-back is an error (zeros would pass for results).
    fn download(&self, x: View) -> Result<Vec<u8>> {
        Err(Error::backend(
            "meta",
            "read back",
            format!(
                "the meta device holds shapes and dtypes only; a {} tensor of shape {:?} has no \
                 values to read (plan on meta with `plumb check --device meta`; run on a real \
                 device)",
                x.dtype,
                x.shape()
            ),
        ))
    }
    fn full(&self, _: DType, _: usize, _: f64) -> Result<StorageRef> {
        empty()
    }
    fn copy(&self, _: View) -> Result<StorageRef> {
        empty()
    }
    fn cast(&self, _: View, _: DType) -> Result<StorageRef> {
        empty()
    }
    fn unary(&self, _: UnaryOp, _: View) -> Result<StorageRef> {
        empty()
    }
    fn binary(&self, _: BinaryOp, _: View, _: View) -> Result<StorageRef> {
        empty()
    }
    fn cmp(&self, _: CmpOp, _: View, _: View) -> Result<StorageRef> {
        empty()
    }
    fn where_cond(&self, _: View, _: View, _: View) -> Result<StorageRef> {
        empty()
    }
    fn reduce(&self, _: ReduceOp, _: View, _: usize, _: DType) -> Result<StorageRef> {
        empty()
    }
    fn softmax(&self, _: View, _: bool) -> Result<StorageRef> {
        empty()
    }
    fn layer_norm(&self, _: View, _: Option<View>, _: Option<View>, _: f64) -> Result<StorageRef> {
        empty()
    }
    fn rms_norm(&self, _: View, _: Option<View>, _: f64) -> Result<StorageRef> {
        empty()
    }
    fn matmul(&self, _: View, _: View) -> Result<StorageRef> {
        empty()
    }
    fn qmatmul(&self, _: View, _: View) -> Result<StorageRef> {
        empty()
    }
    fn dequantize(&self, _: View, _: DType) -> Result<StorageRef> {
        empty()
    }
    fn index_select(&self, _: View, _: View, _: usize) -> Result<StorageRef> {
        empty()
    }
    fn gather(&self, _: View, _: View, _: usize) -> Result<StorageRef> {
        empty()
    }
    fn cat(&self, _: &[View], _: usize) -> Result<StorageRef> {
        empty()
    }
    /// Shapes only: nothing to write, and nothing allocated (as on a device that writes in place).
    fn write(
        &self,
        _: &mut dyn BackendStorage,
        _: &crate::shape::Layout,
        _: usize,
        _: usize,
        _: View,
    ) -> Result<bool> {
        Ok(true)
    }
    fn rope(&self, _: View, _: View, _: View, _: bool) -> Result<StorageRef> {
        empty()
    }
}
