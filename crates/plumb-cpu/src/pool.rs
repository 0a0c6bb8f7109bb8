//! Reuse of freed output buffers. Every op allocates a fresh output; large ones (≥ 256 KiB)
//! would otherwise come from `mmap` and be zeroed by the kernel page by page, then unmapped when
//! the tensor dies — measured at about 17% of MiniLM's time on this machine (page clearing plus
//! `memset`). When a [`crate::storage::CpuStorage`] drops, its vector is kept here (up to
//! `PLUMB_CPU_POOL_MB`, default 512; 0 turns the pool off) and handed to the next output of a
//! close size, so steady-state inference allocates nothing new.

use crate::storage::{Data, Elem};
use std::sync::Mutex;

/// Buffers smaller than this go back to the allocator (malloc serves them well).
const MIN_BYTES: usize = 256 << 10;

struct Pool {
    free: Vec<Data>,
    bytes: usize,
}

static POOL: Mutex<Pool> = Mutex::new(Pool {
    free: Vec::new(),
    bytes: 0,
});

fn cap_bytes() -> usize {
    static CAP: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CAP.get_or_init(|| {
        std::env::var("PLUMB_CPU_POOL_MB")
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(512)
            << 20
    })
}

/// Bytes of a buffer's allocation.
fn bytes_of(d: &Data) -> usize {
    match d {
        Data::U8(v) => v.capacity(),
        Data::I32(v) => v.capacity() * 4,
        Data::I64(v) => v.capacity() * 8,
        Data::F16(v) => v.capacity() * 2,
        Data::BF16(v) => v.capacity() * 2,
        Data::F32(v) => v.capacity() * 4,
        Data::F64(v) => v.capacity() * 8,
    }
}

/// Keep a dropped storage's buffer for reuse (the oldest ones leave first when full).
pub fn give(d: Data) {
    let b = bytes_of(&d);
    let cap = cap_bytes();
    if b < MIN_BYTES || b > cap / 2 {
        return;
    }
    let Ok(mut p) = POOL.lock() else { return };
    while p.bytes + b > cap && !p.free.is_empty() {
        let old = p.free.remove(0);
        p.bytes -= bytes_of(&old);
    }
    p.bytes += b;
    p.free.push(d);
}

/// A pooled vector of exactly `n` elements holding stale values, if one of a close size
/// (n ≤ capacity ≤ 2n) is free. The caller overwrites every element. A buffer handed out
/// shorter before keeps its capacity: where its length is now below `n`, the missing tail is
/// filled with zeros (the rest keeps its stale values), so inputs of varying sizes (sentences
/// of varying length) keep reusing the same buffers.
pub fn take<T: Elem>(n: usize) -> Option<Vec<T>> {
    if n * std::mem::size_of::<T>() < MIN_BYTES {
        return None;
    }
    let mut p = POOL.lock().ok()?;
    let best = p
        .free
        .iter()
        .enumerate()
        .filter(|(_, d)| T::unwrap(d).is_some())
        .map(|(i, d)| (i, bytes_of(d) / std::mem::size_of::<T>()))
        .filter(|&(_, cap)| cap >= n && cap <= 2 * n)
        .min_by_key(|&(_, cap)| cap)?
        .0;
    let d = p.free.swap_remove(best);
    p.bytes -= bytes_of(&d);
    drop(p);
    let mut v = T::into_vec(d)?;
    v.resize(n, T::default());
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_freed_buffer_is_reused_and_zeroed_on_request() {
        let n = (MIN_BYTES / 4) * 3;
        let v: Vec<f32> = vec![7.0; n];
        let ptr = v.as_ptr();
        give(Data::F32(v));
        // a smaller request of a close size gets the same allocation, truncated
        let w = take::<f32>(n - 10).expect("pooled buffer");
        assert_eq!((w.as_ptr(), w.len()), (ptr, n - 10));
        give(Data::F32(w));
        let z = crate::storage::alloc_out::<f32>(n - 10);
        assert!(
            z.iter().all(|&x| x == 0.0),
            "alloc_out must clear a reused buffer"
        );
        // handed out shorter, it still serves a request up to its capacity (the tail zeroed)
        let mut z = z;
        z.fill(5.0);
        give(Data::F32(z));
        let w = take::<f32>(n).expect("pooled buffer of the capacity");
        assert_eq!((w.as_ptr(), w.len()), (ptr, n));
        assert_eq!(
            &w[n - 12..],
            &[5.0, 5.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
        );
        // wrong type or far too small a request: no reuse
        give(Data::F32(w));
        assert!(take::<i32>(n - 10).is_none());
        assert!(take::<f32>(n / 4).is_none());
    }
}
