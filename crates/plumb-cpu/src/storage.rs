//! `CpuStorage`: typed host buffers, the element traits the kernels are generic over, and the
//! helpers that turn a [`View`] into a slice (borrowed when contiguous, gathered otherwise).

use crate::kernels::matmul_bf16::PackedBf16;
use crate::kernels::matmul_f32_avx2::PackedB;
use crate::kernels::matmul_rows::PackedStrips;
use half::{bf16, f16};
use plumb_core::ByteCounter;
use plumb_core::{BackendStorage, DType, Element, Error, Layout, Result, View};
use std::any::Any;
use std::borrow::Cow;

/// The typed vector behind a storage. Bool, u8 and the block-quantized dtypes are bytes.
#[derive(Debug)]
pub enum Data {
    U8(Vec<u8>),
    I32(Vec<i32>),
    I64(Vec<i64>),
    F16(Vec<f16>),
    BF16(Vec<bf16>),
    F32(Vec<f32>),
    F64(Vec<f64>),
}

/// Host memory of the CPU backend: a dtype tag plus its typed vector.
#[derive(Debug)]
pub struct CpuStorage {
    dtype: DType,
    data: Data,
    /// `Some(k)`: a quantized matrix of rows of `k` values in the packed layout of
    /// `kernels/qpack.rs` (readers other than qmatmul unpack it; see [`CpuStorage::plain_bytes`]).
    packed_k: Option<usize>,
    /// A weight packed into a matmul kernel's panels (f32: the AVX2 kernel's,
    /// [`CpuStorage::panels`], or `matmul_rows`' strips, [`CpuStorage::strips`]; f16: those
    /// strips, [`CpuStorage::strips_f16`]; bf16: the `vdpbf16ps` kernel's,
    /// [`CpuStorage::panels_bf16`]);
    /// `data` is then empty and every other reader sees the row-major copy made on its first
    /// read.
    panels: Option<Box<Panels>>,
}

/// A weight held as a matmul kernel's panels, and the row-major values once some reader other
/// than matmul asked for them.
#[derive(Debug)]
struct Panels {
    b: Packed,
    plain: std::sync::OnceLock<Data>,
}

#[derive(Debug)]
enum Packed {
    F32(PackedB),
    Strips(PackedStrips),
    StripsF16(PackedStrips<f16>),
    Bf16(PackedBf16),
}

impl Packed {
    fn bytes(&self) -> usize {
        match self {
            Packed::F32(b) => b.bytes(),
            Packed::Strips(b) => b.bytes(),
            Packed::StripsF16(b) => b.bytes(),
            Packed::Bf16(b) => b.bytes(),
        }
    }
    /// Bytes of the row-major copy.
    /// The dtype and (k, n) of the matrix held.
    fn matrix(&self) -> (DType, usize, usize) {
        match self {
            Packed::F32(b) => (DType::F32, b.k(), b.n()),
            Packed::Strips(b) => (DType::F32, b.k(), b.n()),
            Packed::StripsF16(b) => (DType::F16, b.k(), b.n()),
            Packed::Bf16(b) => (DType::BF16, b.k(), b.n()),
        }
    }
    fn plain_bytes(&self) -> usize {
        let (dtype, k, n) = self.matrix();
        dtype.storage_bytes(k * n)
    }
    fn unpack(&self) -> Data {
        match self {
            Packed::F32(b) => Data::F32(b.unpack()),
            Packed::Strips(b) => Data::F32(b.unpack()),
            Packed::StripsF16(b) => Data::F16(b.unpack()),
            Packed::Bf16(b) => Data::BF16(b.unpack()),
        }
    }
}

/// Live bytes of every CPU storage in the process (all CPU backends share the host's memory),
/// and their high-water mark.
pub static BYTES: ByteCounter = ByteCounter::new();

impl CpuStorage {
    pub fn new<T: Elem>(dtype: DType, v: Vec<T>) -> CpuStorage {
        BYTES.add((v.len() * std::mem::size_of::<T>()) as u64);
        CpuStorage {
            dtype,
            data: T::wrap(v),
            packed_k: None,
            panels: None,
        }
    }
    /// An f32 matrix [k, n] packed for the matmul kernel ([`PackedB`]).
    pub fn panels(b: PackedB) -> CpuStorage {
        CpuStorage::packed_weight(Packed::F32(b))
    }
    /// An f32 matrix [k, n] packed as `matmul_rows`' strips ([`PackedStrips`]).
    pub fn strips(b: PackedStrips) -> CpuStorage {
        CpuStorage::packed_weight(Packed::Strips(b))
    }
    /// An f16 matrix [k, n] packed as `matmul_rows`' strips (widened chunk by chunk there).
    pub fn strips_f16(b: PackedStrips<f16>) -> CpuStorage {
        CpuStorage::packed_weight(Packed::StripsF16(b))
    }
    /// A bf16 matrix [k, n] packed for the `vdpbf16ps` kernel ([`PackedBf16`]).
    pub fn panels_bf16(b: PackedBf16) -> CpuStorage {
        CpuStorage::packed_weight(Packed::Bf16(b))
    }
    /// A weight held as panels alone: its typed vector stays empty.
    fn packed_weight(b: Packed) -> CpuStorage {
        BYTES.add(b.bytes() as u64);
        let dtype = b.matrix().0;
        let data = match dtype {
            DType::F16 => Data::F16(Vec::new()),
            DType::BF16 => Data::BF16(Vec::new()),
            _ => Data::F32(Vec::new()),
        };
        CpuStorage {
            dtype,
            data,
            packed_k: None,
            panels: Some(Box::new(Panels {
                b,
                plain: std::sync::OnceLock::new(),
            })),
        }
    }
    /// The packed panels of an f32 weight stored so, else `None`.
    pub fn packed_panels(&self) -> Option<&PackedB> {
        match self.panels.as_deref()?.b {
            Packed::F32(ref b) => Some(b),
            _ => None,
        }
    }
    /// The strips of an f32 weight stored so, else `None`.
    pub fn packed_strips(&self) -> Option<&PackedStrips> {
        match self.panels.as_deref()?.b {
            Packed::Strips(ref b) => Some(b),
            _ => None,
        }
    }
    /// The strips of an f16 weight stored so, else `None`.
    pub fn packed_strips_f16(&self) -> Option<&PackedStrips<f16>> {
        match self.panels.as_deref()?.b {
            Packed::StripsF16(ref b) => Some(b),
            _ => None,
        }
    }
    /// The packed panels of a bf16 weight stored so, else `None`.
    pub fn packed_bf16(&self) -> Option<&PackedBf16> {
        match self.panels.as_deref()?.b {
            Packed::Bf16(ref b) => Some(b),
            _ => None,
        }
    }
    /// Whether this is a weight held in a matmul kernel's panels (not writable in place).
    pub fn is_panels(&self) -> bool {
        self.panels.is_some()
    }
    /// A quantized matrix with rows of `k` values, already in the packed layout (`bytes`).
    pub fn packed(dtype: DType, bytes: Vec<u8>, k: usize) -> CpuStorage {
        let mut s = CpuStorage::new(dtype, bytes);
        s.packed_k = Some(k);
        s
    }
    /// The row length of a packed quantized matrix; `None` when stored in row order.
    pub fn packed_k(&self) -> Option<usize> {
        self.packed_k
    }
    /// The bytes in stored row order: borrowed, or unpacked into a copy when packed.
    pub fn plain_bytes(&self) -> Cow<'_, [u8]> {
        match self.packed_k {
            Some(k) if k > 0 => {
                let n = self.bytes().len() / self.dtype.storage_bytes(k);
                Cow::Owned(crate::kernels::qpack::unpack(
                    self.dtype,
                    self.bytes(),
                    n,
                    k,
                ))
            }
            _ => Cow::Borrowed(self.bytes()),
        }
    }
    pub fn dtype(&self) -> DType {
        self.dtype
    }
    /// The values in row-major order (for a panel-packed weight, a copy made on the first call
    /// and kept).
    pub fn data(&self) -> &Data {
        match &self.panels {
            Some(p) => p.plain.get_or_init(|| {
                BYTES.add(p.b.plain_bytes() as u64);
                p.b.unpack()
            }),
            None => &self.data,
        }
    }
    pub fn slice<T: Elem>(&self) -> Option<&[T]> {
        T::unwrap(self.data())
    }
    /// The values to write in place; `None` for a panel-packed weight (its readers hold a
    /// copy).
    pub fn slice_mut<T: Elem>(&mut self) -> Option<&mut [T]> {
        if self.panels.is_some() {
            return None;
        }
        T::unwrap_mut(&mut self.data)
    }
    /// Bytes held: the buffer, or a packed weight's panels and its row-major copy if made.
    fn held_bytes(&self) -> usize {
        match &self.panels {
            Some(p) => p.b.bytes() + p.plain.get().map_or(0, |_| p.b.plain_bytes()),
            None => self.bytes().len(),
        }
    }
    /// The raw little-endian bytes of the whole buffer in row-major order.
    pub fn bytes(&self) -> &[u8] {
        match self.data() {
            Data::U8(v) => v,
            Data::I32(v) => bytemuck::cast_slice(v),
            Data::I64(v) => bytemuck::cast_slice(v),
            Data::F16(v) => bytemuck::cast_slice(v),
            Data::BF16(v) => bytemuck::cast_slice(v),
            Data::F32(v) => bytemuck::cast_slice(v),
            Data::F64(v) => bytemuck::cast_slice(v),
        }
    }
}

impl Drop for CpuStorage {
    fn drop(&mut self) {
        BYTES.sub(self.held_bytes() as u64);
        crate::pool::give(std::mem::replace(&mut self.data, Data::U8(Vec::new())));
    }
}

impl BackendStorage for CpuStorage {
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> Option<&mut dyn Any> {
        Some(self)
    }
    fn byte_len(&self) -> usize {
        match &self.panels {
            Some(p) => p.b.bytes(),
            None => self.bytes().len(),
        }
    }
}

/// A plain element type as the CPU stores it (bool is stored as `u8` 0/1).
pub trait Elem: Element + Default + PartialOrd + std::fmt::Debug {
    fn wrap(v: Vec<Self>) -> Data;
    fn unwrap(d: &Data) -> Option<&[Self]>;
    fn unwrap_mut(d: &mut Data) -> Option<&mut [Self]>;
    fn into_vec(d: Data) -> Option<Vec<Self>>;
}

macro_rules! elem {
    ($t:ty, $v:ident) => {
        impl Elem for $t {
            fn wrap(v: Vec<Self>) -> Data {
                Data::$v(v)
            }
            fn unwrap(d: &Data) -> Option<&[Self]> {
                match d {
                    Data::$v(v) => Some(v),
                    _ => None,
                }
            }
            fn unwrap_mut(d: &mut Data) -> Option<&mut [Self]> {
                match d {
                    Data::$v(v) => Some(v),
                    _ => None,
                }
            }
            fn into_vec(d: Data) -> Option<Vec<Self>> {
                match d {
                    Data::$v(v) => Some(v),
                    _ => None,
                }
            }
        }
    };
}
elem!(u8, U8);
elem!(i32, I32);
elem!(i64, I64);
elem!(f16, F16);
elem!(bf16, BF16);
elem!(f32, F32);
elem!(f64, F64);

/// Run `$body` with `$T` bound to the Rust type of a plain dtype (bool → u8). Quantized dtypes
/// evaluate `$q`.
macro_rules! with_plain_type {
    ($dt:expr, $T:ident => $body:expr, quantized => $q:expr) => {
        match $dt {
            plumb_core::DType::Bool | plumb_core::DType::U8 => {
                type $T = u8;
                $body
            }
            plumb_core::DType::I32 => {
                type $T = i32;
                $body
            }
            plumb_core::DType::I64 => {
                type $T = i64;
                $body
            }
            plumb_core::DType::F16 => {
                type $T = half::f16;
                $body
            }
            plumb_core::DType::BF16 => {
                type $T = half::bf16;
                $body
            }
            plumb_core::DType::F32 => {
                type $T = f32;
                $body
            }
            plumb_core::DType::F64 => {
                type $T = f64;
                $body
            }
            plumb_core::DType::Q4_0 | plumb_core::DType::Q4_1 | plumb_core::DType::Q8_0 => $q,
        }
    };
}
pub(crate) use with_plain_type;

/// Run `$body` with `$T` bound to a float dtype's type; other dtypes evaluate `$other`.
macro_rules! with_float_type {
    ($dt:expr, $T:ident => $body:expr, other => $o:expr) => {
        match $dt {
            plumb_core::DType::F16 => {
                type $T = half::f16;
                $body
            }
            plumb_core::DType::BF16 => {
                type $T = half::bf16;
                $body
            }
            plumb_core::DType::F32 => {
                type $T = f32;
                $body
            }
            plumb_core::DType::F64 => {
                type $T = f64;
                $body
            }
            _ => $o,
        }
    };
}
pub(crate) use with_float_type;

pub(crate) fn device_err(op: &str, msg: impl Into<String>) -> Error {
    Error::backend("cpu", op, msg)
}

pub(crate) fn unsupported(op: &str, dtype: DType, reason: &str) -> Error {
    Error::UnsupportedDType {
        op: op.to_string(),
        dtype,
        device: "cpu".into(),
        reason: reason.into(),
    }
}

/// An output vector of `n` elements whose values are unspecified (stale values of a reused
/// buffer, or zeros): for kernels that write every element. Reuses a freed buffer from
/// [`crate::pool`] when one fits.
pub fn alloc_overwrite<T: Elem>(n: usize) -> Vec<T> {
    crate::pool::take(n).unwrap_or_else(|| alloc_zeroed(n))
}

/// A zeroed output vector of `n` elements (a reused buffer is cleared).
pub fn alloc_out<T: Elem>(n: usize) -> Vec<T> {
    match crate::pool::take(n) {
        Some(mut v) => {
            v.fill(T::default());
            v
        }
        None => alloc_zeroed(n),
    }
}

/// A fresh zeroed vector. Large ones (≥ 4 MiB) are marked for transparent huge pages before
/// anything touches them, so filling them takes one page fault per 2 MiB instead of one per
/// 4 KiB. `PLUMB_CPU_HUGEPAGES=0` turns this off.
fn alloc_zeroed<T: Copy + Default>(n: usize) -> Vec<T> {
    let v = vec![T::default(); n];
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        let bytes = n * std::mem::size_of::<T>();
        static OFF: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        let off = *OFF.get_or_init(|| std::env::var("PLUMB_CPU_HUGEPAGES").is_ok_and(|v| v == "0"));
        if bytes >= 2 * HUGE && !off {
            let start = v.as_ptr() as usize;
            let aligned = start.next_multiple_of(HUGE);
            let len = (start + bytes).saturating_sub(aligned) / HUGE * HUGE;
            if len > 0 {
                // SAFETY: [aligned, aligned + len) lies inside the vector's allocation; the
                // advice only changes how the kernel backs those pages (contents stay zero).
                unsafe {
                    libc::madvise(aligned as *mut libc::c_void, len, libc::MADV_HUGEPAGE);
                }
            }
        }
    }
    v
}

/// The CPU storage behind a view.
pub fn storage_of<'a>(op: &str, v: &View<'a>) -> Result<&'a CpuStorage> {
    v.storage
        .as_any()
        .downcast_ref::<CpuStorage>()
        .ok_or_else(|| device_err(op, "the tensor's storage does not belong to the cpu device"))
}

/// The whole backing slice of a view (the layout says which elements belong to it).
pub fn raw_slice<'a, T: Elem>(op: &str, v: &View<'a>) -> Result<&'a [T]> {
    let s = storage_of(op, v)?;
    let data = s.slice::<T>().ok_or_else(|| {
        device_err(
            op,
            format!("storage holds {} but the view says {}", s.dtype(), v.dtype),
        )
    })?;
    if v.layout.max_storage_index() > data.len() {
        return Err(device_err(
            op,
            format!(
                "view {:?} (strides {:?}, offset {}) reaches past a storage of {} elements",
                v.layout.shape,
                v.layout.strides,
                v.layout.offset,
                data.len()
            ),
        ));
    }
    Ok(data)
}

/// The view's elements in row-major order: borrowed when contiguous, gathered otherwise.
pub fn contiguous<'a, T: Elem>(op: &str, v: &View<'a>) -> Result<Cow<'a, [T]>> {
    let data = raw_slice::<T>(op, v)?;
    let l = v.layout;
    let n = l.numel();
    if l.is_contiguous() {
        return Ok(Cow::Borrowed(&data[l.offset..l.offset + n]));
    }
    // strided_copy writes every element
    let mut out = alloc_overwrite::<T>(n);
    crate::kernels::copy::strided_copy(data, l, &mut out);
    Ok(Cow::Owned(out))
}

/// Storage offset of row `r` of `layout` (rows = every dim but the last).
pub fn row_offset(layout: &Layout, mut r: usize) -> usize {
    let rank = layout.rank();
    let mut off = layout.offset;
    for d in (0..rank.saturating_sub(1)).rev() {
        let size = layout.shape[d];
        if size == 0 {
            return off;
        }
        off += (r % size) * layout.strides[d];
        r /= size;
    }
    off
}
