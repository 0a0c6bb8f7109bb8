//! Device buffers: one `CudaSlice<u8>` per tensor, counted in the device's live/peak bytes.
//! A dropped buffer goes back to the device's [`Pool`] (up to `PLUMB_CUDA_POOL_MB`, default 2048)
//! and is handed to the next allocation of the same size class, skipping the driver's
//! allocate/free calls that otherwise dominate the host time of small ops. Reuse is safe because
//! every kernel runs on the device's one stream: whatever read the old tensor was queued before
//! whatever writes the new one.

use cudarc::driver::{CudaSlice, CudaStream, DevicePtr};
use plumb_core::{BackendStorage, ByteCounter};
use std::any::Any;
use std::collections::HashMap;
use std::mem::ManuallyDrop;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Freed device buffers by size class.
pub struct Pool {
    free: Mutex<HashMap<usize, Vec<CudaSlice<u8>>>>,
    held: AtomicU64,
    cap: u64,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pool({} bytes held)", self.held.load(Ordering::Relaxed))
    }
}

impl Pool {
    pub fn from_env() -> Self {
        let mb = std::env::var("PLUMB_CUDA_POOL_MB")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(2048);
        Pool {
            free: Mutex::new(HashMap::new()),
            held: AtomicU64::new(0),
            cap: mb << 20,
        }
    }

    /// The size class of a request: 512-byte steps up to 1 MiB, then 2 MiB steps (at most
    /// 2 MiB more than asked for, whatever the size).
    pub fn class(bytes: usize) -> usize {
        let b = bytes.max(1);
        let step = if b <= 1 << 20 { 512 } else { 2 << 20 };
        b.div_ceil(step) * step
    }

    /// A pooled buffer of exactly `class` bytes, if one is free.
    pub fn take(&self, class: usize) -> Option<CudaSlice<u8>> {
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        let buf = free.get_mut(&class)?.pop()?;
        self.held.fetch_sub(class as u64, Ordering::Relaxed);
        Some(buf)
    }

    fn give(&self, buf: CudaSlice<u8>) {
        let n = buf.len() as u64;
        if self.held.load(Ordering::Relaxed) + n > self.cap {
            return; // dropping it frees it
        }
        self.held.fetch_add(n, Ordering::Relaxed);
        self.free
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(buf.len())
            .or_default()
            .push(buf);
    }

    /// Free every pooled buffer (before retrying an allocation the device could not make).
    pub fn drain(&self) {
        self.free.lock().unwrap_or_else(|e| e.into_inner()).clear();
        self.held.store(0, Ordering::Relaxed);
    }
}

pub struct CudaStorage {
    /// taken out only in drop, which hands it back to the pool
    buf: ManuallyDrop<CudaSlice<u8>>,
    /// the device address of the buffer's first byte
    ptr: u64,
    bytes: usize,
    counters: Arc<ByteCounter>,
    pool: Arc<Pool>,
    /// the least and greatest value, where known without reading the buffer back (see
    /// [`CudaStorage::range`])
    range: Option<(f64, f64)>,
}

impl std::fmt::Debug for CudaStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CudaStorage({} bytes at {:#x})", self.bytes, self.ptr)
    }
}

impl CudaStorage {
    /// Wrap `buf` (at least `bytes` long) as a tensor's storage of `bytes`.
    pub fn new(
        buf: CudaSlice<u8>,
        bytes: usize,
        stream: &CudaStream,
        counters: Arc<ByteCounter>,
        pool: Arc<Pool>,
    ) -> Self {
        let ptr = buf.device_ptr(stream).0;
        counters.add(bytes as u64);
        CudaStorage {
            buf: ManuallyDrop::new(buf),
            ptr,
            bytes,
            counters,
            pool,
            range: None,
        }
    }
    /// The least and greatest value the buffer holds, where known on the host: integer data
    /// uploaded from it (token ids), so that a range check of ids needs no read-back (which
    /// waits for every queued kernel). `None` for anything computed on the device, and after
    /// any write into the buffer in place.
    pub fn range(&self) -> Option<(f64, f64)> {
        self.range
    }
    pub fn set_range(&mut self, range: Option<(f64, f64)>) {
        self.range = range;
    }
    /// Device address of byte `offset`.
    pub fn ptr_at(&self, offset: usize) -> u64 {
        self.ptr + offset as u64
    }
    pub fn ptr(&self) -> u64 {
        self.ptr
    }
    /// The buffer (possibly longer than the tensor: its size class).
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
        // SAFETY: drop runs once and nothing touches `buf` after this
        let buf = unsafe { ManuallyDrop::take(&mut self.buf) };
        self.pool.give(buf);
    }
}

impl BackendStorage for CudaStorage {
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> Option<&mut dyn Any> {
        Some(self)
    }
    fn byte_len(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::Pool;

    #[test]
    fn size_classes_round_up_a_little() {
        assert_eq!(Pool::class(0), 512);
        assert_eq!(Pool::class(513), 1024);
        assert_eq!(Pool::class(1 << 20), 1 << 20);
        // above 1 MiB: 2 MiB steps
        assert_eq!(Pool::class((1 << 20) + 1), 2 << 20);
        assert_eq!(Pool::class(3 << 20), 4 << 20);
        for b in [1usize, 700, 5 << 20, 123_456_789] {
            let c = Pool::class(b);
            assert!(c >= b && c - b < 2 << 20, "{b} → {c}");
        }
    }
}
