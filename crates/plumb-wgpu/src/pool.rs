//! Buffer pool keyed by size class. A [`WgpuStorage`] hands its buffer back on drop; the next
//! allocation of the same class reuses it. Reuse inside one unsubmitted batch is safe because
//! every write to a buffer (kernels, uploads) is recorded in the same command encoder, in order.

use plumb_core::BackendStorage;
use std::any::Any;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Debug, Default)]
pub struct Pool {
    free: Mutex<HashMap<u64, Vec<wgpu::Buffer>>>,
    /// buffers ever created by the pool
    created: AtomicU64,
    /// bytes of all buffers the pool has created (live or free)
    created_bytes: AtomicU64,
    /// bytes held by live storages
    live_bytes: AtomicU64,
}

/// The allocation size used for a request of `bytes`: powers of two up to 1 MiB, then a quarter
/// of the power of two below, so at most 25% is wasted.
pub fn size_class(bytes: u64) -> u64 {
    let b = bytes.max(256);
    if b <= 1 << 20 {
        return b.next_power_of_two();
    }
    let p = 1u64 << (63 - b.leading_zeros());
    let step = p / 4;
    b.div_ceil(step) * step
}

impl Pool {
    pub fn take(&self, class: u64) -> Option<wgpu::Buffer> {
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        free.get_mut(&class).and_then(|v| v.pop())
    }
    pub fn note_created(&self, bytes: u64) {
        self.created.fetch_add(1, Ordering::Relaxed);
        self.created_bytes.fetch_add(bytes, Ordering::Relaxed);
    }
    fn put(&self, class: u64, buf: wgpu::Buffer) {
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        free.entry(class).or_default().push(buf);
    }
    /// Number of buffers the pool has ever created.
    pub fn created(&self) -> u64 {
        self.created.load(Ordering::Relaxed)
    }
    pub fn created_bytes(&self) -> u64 {
        self.created_bytes.load(Ordering::Relaxed)
    }
    pub fn live_bytes(&self) -> u64 {
        self.live_bytes.load(Ordering::Relaxed)
    }
}

/// A tensor's device memory: a pooled buffer of `class` bytes holding `bytes` bytes of data.
#[derive(Debug)]
pub struct WgpuStorage {
    buf: Option<wgpu::Buffer>,
    class: u64,
    bytes: usize,
    pool: Arc<Pool>,
    /// the least and greatest value, where known without reading the buffer back (see
    /// [`WgpuStorage::range`])
    range: Option<(f64, f64)>,
}

impl WgpuStorage {
    pub(crate) fn new(buf: wgpu::Buffer, class: u64, bytes: usize, pool: Arc<Pool>) -> Self {
        pool.live_bytes.fetch_add(class, Ordering::Relaxed);
        WgpuStorage {
            buf: Some(buf),
            class,
            bytes,
            pool,
            range: None,
        }
    }
    /// The least and greatest value the buffer holds, where known on the host: integer data
    /// uploaded from it (token ids), so that a range check of ids needs no read-back (which
    /// flushes and waits for the queued work). `None` for anything computed on the device, and
    /// after any write into the buffer in place.
    pub fn range(&self) -> Option<(f64, f64)> {
        self.range
    }
    pub fn set_range(&mut self, range: Option<(f64, f64)>) {
        self.range = range;
    }
    /// The underlying buffer (present until drop).
    pub fn buffer(&self) -> Option<&wgpu::Buffer> {
        self.buf.as_ref()
    }
}

impl Drop for WgpuStorage {
    fn drop(&mut self) {
        if let Some(b) = self.buf.take() {
            self.pool
                .live_bytes
                .fetch_sub(self.class, Ordering::Relaxed);
            self.pool.put(self.class, b);
        }
    }
}

impl BackendStorage for WgpuStorage {
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
    #[test]
    fn size_classes_bound_the_waste() {
        for b in [
            1u64,
            255,
            257,
            4096,
            1 << 20,
            (1 << 20) + 1,
            3 << 30,
            100_000_007,
        ] {
            let c = super::size_class(b);
            assert!(c >= b, "{b} -> {c}");
            assert!(c <= (b.max(256) * 2), "{b} -> {c}");
            if b > 1 << 20 {
                assert!(c as f64 <= b as f64 * 1.25 + 1.0, "{b} -> {c}");
            }
        }
    }
}
