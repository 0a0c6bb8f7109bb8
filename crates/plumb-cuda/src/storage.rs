//! Device buffers: one `CudaSlice<u8>` per tensor, counted in the device's live/peak bytes and
//! freed on drop (stream-ordered, after the kernels queued before it).

use cudarc::driver::{CudaSlice, CudaStream, DevicePtr};
use plumb_core::BackendStorage;
use std::any::Any;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Bytes allocated now and the high-water mark since the last reset.
#[derive(Debug, Default)]
pub struct Counters {
    pub live: AtomicU64,
    pub peak: AtomicU64,
}

impl Counters {
    fn add(&self, n: u64) {
        let now = self.live.fetch_add(n, Ordering::Relaxed) + n;
        self.peak.fetch_max(now, Ordering::Relaxed);
    }
    fn sub(&self, n: u64) {
        self.live.fetch_sub(n, Ordering::Relaxed);
    }
}

pub struct CudaStorage {
    buf: CudaSlice<u8>,
    /// the device address of the buffer's first byte
    ptr: u64,
    bytes: usize,
    counters: Arc<Counters>,
}

impl std::fmt::Debug for CudaStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CudaStorage({} bytes at {:#x})", self.bytes, self.ptr)
    }
}

impl CudaStorage {
    pub fn new(
        buf: CudaSlice<u8>,
        bytes: usize,
        stream: &CudaStream,
        counters: Arc<Counters>,
    ) -> Self {
        let ptr = buf.device_ptr(stream).0;
        counters.add(bytes as u64);
        CudaStorage {
            buf,
            ptr,
            bytes,
            counters,
        }
    }
    /// Device address of byte `offset`.
    pub fn ptr_at(&self, offset: usize) -> u64 {
        self.ptr + offset as u64
    }
    pub fn ptr(&self) -> u64 {
        self.ptr
    }
    pub fn slice(&self) -> &CudaSlice<u8> {
        &self.buf
    }
    pub fn slice_mut(&mut self) -> &mut CudaSlice<u8> {
        &mut self.buf
    }
}

impl Drop for CudaStorage {
    fn drop(&mut self) {
        self.counters.sub(self.bytes as u64);
    }
}

impl BackendStorage for CudaStorage {
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn byte_len(&self) -> usize {
        self.bytes
    }
}
