//! `Tensor`: storage on a device + a layout + a dtype. Creation, views, readback, movement.
//! Ops live in `ops.rs` and `nn_ops.rs`; they all go through [`Tensor::dispatch`].

use crate::backend::{StorageRef, View};
use crate::convert;
use crate::device::{Device, OpRecord};
use crate::dtype::{DType, Element};
use crate::error::{Error, Result};
use crate::op::OpFamily;
use crate::policy::Decision;
use crate::shape::{numel, resolve_dim, Layout};
use std::fmt;

/// The kernel closure [`Tensor::dispatch`] runs: backend + input views → output storage.
pub type Kernel<'a> = &'a dyn Fn(&dyn crate::backend::Backend, &[View]) -> Result<StorageRef>;

#[derive(Clone)]
pub struct Tensor {
    storage: StorageRef,
    layout: Layout,
    dtype: DType,
    device: Device,
}

impl fmt::Debug for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Tensor[{:?}, {}, {}]",
            self.layout.shape,
            self.dtype,
            self.device.id()
        )
    }
}

/// Refuse, before any allocation, an output the device cannot hold: `OutOfMemory` when its byte
/// size overflows or exceeds the device's memory, `LimitExceeded` when it exceeds the largest
/// buffer the device can create. Backends never see such a request, so an impossible shape is an
/// error instead of an allocator abort or a driver crash.
pub(crate) fn check_alloc(device: &Device, op: &str, dtype: DType, shape: &[usize]) -> Result<()> {
    let limits = &device.capabilities().limits;
    let bytes = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .and_then(|n| {
            n.div_ceil(dtype.block_len())
                .checked_mul(dtype.block_bytes())
        })
        .map(|b| b as u64);
    let oom = |note: String| Error::OutOfMemory {
        device: device.id().to_string(),
        op: op.to_string(),
        dtype,
        shape: shape.to_vec(),
        bytes: bytes.unwrap_or(u64::MAX),
        note,
    };
    let Some(b) = bytes else {
        return Err(oom("the size overflows".into()));
    };
    if let Some(mem) = limits.memory_bytes.filter(|&m| b > m) {
        return Err(oom(format!("the device has {mem} bytes of memory")));
    }
    if limits.max_buffer_bytes > 0 && b > limits.max_buffer_bytes {
        return Err(Error::LimitExceeded {
            device: device.id().to_string(),
            op: op.to_string(),
            bytes: b,
            limit_name: "max_buffer_size",
            limit: limits.max_buffer_bytes,
        });
    }
    Ok(())
}

/// Positions in a shape argument may be given as `&[usize]`, `Vec<usize>` or arrays.
pub fn shape_vec(shape: impl AsRef<[usize]>) -> Vec<usize> {
    shape.as_ref().to_vec()
}

impl Tensor {
    // ----- construction ---------------------------------------------------------------------

    pub(crate) fn from_parts(
        storage: StorageRef,
        shape: &[usize],
        dtype: DType,
        device: &Device,
    ) -> Tensor {
        Tensor {
            storage,
            layout: Layout::contiguous(shape),
            dtype,
            device: device.clone(),
        }
    }

    /// From raw row-major bytes of `dtype` (quantized dtypes: whole blocks along the last dim).
    pub fn from_bytes(
        bytes: &[u8],
        dtype: DType,
        shape: impl AsRef<[usize]>,
        device: &Device,
    ) -> Result<Tensor> {
        let shape = shape.as_ref();
        check_alloc(device, "from_bytes", dtype, shape)?;
        let n = numel(shape);
        if dtype.is_quantized() && shape.last().is_some_and(|&k| k % dtype.block_len() != 0) {
            return Err(Error::invalid(
                "from_bytes",
                format!(
                    "{dtype} tensor of shape {shape:?}: last dim must be a multiple of {}",
                    dtype.block_len()
                ),
            ));
        }
        let need = dtype.storage_bytes(n);
        if bytes.len() != need {
            return Err(Error::invalid(
                "from_bytes",
                format!(
                    "{dtype} tensor of shape {shape:?} needs {need} bytes, got {}",
                    bytes.len()
                ),
            ));
        }
        let s = device.backend().upload(dtype, n, bytes)?;
        Ok(Self::from_parts(s, shape, dtype, device))
    }

    pub fn from_slice<T: Element>(
        data: &[T],
        shape: impl AsRef<[usize]>,
        device: &Device,
    ) -> Result<Tensor> {
        let shape = shape.as_ref();
        if data.len() != numel(shape) {
            return Err(Error::shape(
                "from_slice",
                &[data.len()],
                shape,
                "data length does not match shape",
            ));
        }
        Self::from_bytes(bytemuck::cast_slice(data), T::DTYPE, shape, device)
    }

    pub fn from_vec<T: Element>(
        data: Vec<T>,
        shape: impl AsRef<[usize]>,
        device: &Device,
    ) -> Result<Tensor> {
        Self::from_slice(&data, shape, device)
    }

    /// From f64 values encoded into `dtype` on the host (quantized dtypes are quantized).
    pub fn from_f64(
        values: &[f64],
        dtype: DType,
        shape: impl AsRef<[usize]>,
        device: &Device,
    ) -> Result<Tensor> {
        let shape = shape.as_ref();
        if values.len() != numel(shape) {
            return Err(Error::shape(
                "from_f64",
                &[values.len()],
                shape,
                "data length does not match shape",
            ));
        }
        Self::from_bytes(&convert::f64_to_bytes(dtype, values)?, dtype, shape, device)
    }

    pub fn full(
        value: f64,
        shape: impl AsRef<[usize]>,
        dtype: DType,
        device: &Device,
    ) -> Result<Tensor> {
        let shape = shape.as_ref();
        if dtype.is_quantized() {
            return Err(Error::invalid(
                "full",
                format!("cannot fill a {dtype} tensor; quantize f32 values"),
            ));
        }
        check_alloc(device, "full", dtype, shape)?;
        let s = device.backend().full(dtype, numel(shape), value)?;
        Ok(Self::from_parts(s, shape, dtype, device))
    }
    pub fn zeros(shape: impl AsRef<[usize]>, dtype: DType, device: &Device) -> Result<Tensor> {
        Self::full(0.0, shape, dtype, device)
    }
    pub fn ones(shape: impl AsRef<[usize]>, dtype: DType, device: &Device) -> Result<Tensor> {
        Self::full(1.0, shape, dtype, device)
    }
    /// A 0-d tensor.
    pub fn scalar(value: f64, dtype: DType, device: &Device) -> Result<Tensor> {
        Self::full(value, [], dtype, device)
    }

    /// `start, start + step, …` below `end`, in `dtype`.
    pub fn arange(
        start: f64,
        end: f64,
        step: f64,
        dtype: DType,
        device: &Device,
    ) -> Result<Tensor> {
        if step == 0.0 || !step.is_finite() || !start.is_finite() || !end.is_finite() {
            return Err(Error::invalid(
                "arange",
                format!("bad range {start}..{end} step {step}"),
            ));
        }
        let n = ((end - start) / step).ceil().max(0.0) as usize;
        let v: Vec<f64> = (0..n).map(|i| start + i as f64 * step).collect();
        Self::from_f64(&v, dtype, [n], device)
    }

    /// Uniform in [lo, hi), reproducible from `seed` (the same values on every device).
    pub fn rand(
        lo: f64,
        hi: f64,
        shape: impl AsRef<[usize]>,
        dtype: DType,
        seed: u64,
        device: &Device,
    ) -> Result<Tensor> {
        let shape = shape.as_ref();
        let mut rng = crate::rng::SplitMix64::new(seed);
        let v: Vec<f64> = (0..numel(shape))
            .map(|_| lo + (hi - lo) * rng.next_f64())
            .collect();
        Self::from_f64(&v, dtype, shape, device)
    }

    /// Standard normal (Box–Muller), reproducible from `seed`.
    pub fn randn(
        mean: f64,
        std: f64,
        shape: impl AsRef<[usize]>,
        dtype: DType,
        seed: u64,
        device: &Device,
    ) -> Result<Tensor> {
        let shape = shape.as_ref();
        let mut rng = crate::rng::SplitMix64::new(seed);
        let v: Vec<f64> = (0..numel(shape))
            .map(|_| mean + std * rng.next_normal())
            .collect();
        Self::from_f64(&v, dtype, shape, device)
    }

    // ----- accessors ------------------------------------------------------------------------

    pub fn shape(&self) -> &[usize] {
        &self.layout.shape
    }
    pub fn dims(&self) -> &[usize] {
        &self.layout.shape
    }
    pub fn rank(&self) -> usize {
        self.layout.rank()
    }
    pub fn numel(&self) -> usize {
        self.layout.numel()
    }
    pub fn dtype(&self) -> DType {
        self.dtype
    }
    pub fn device(&self) -> &Device {
        &self.device
    }
    pub fn layout(&self) -> &Layout {
        &self.layout
    }
    pub fn storage(&self) -> &StorageRef {
        &self.storage
    }
    pub fn is_contiguous(&self) -> bool {
        self.layout.is_contiguous()
    }
    /// Size of `dim` (negative counts from the end).
    pub fn dim(&self, dim: isize) -> Result<usize> {
        Ok(self.shape()[resolve_dim("dim", dim, self.shape())?])
    }
    /// Bytes the elements of this view take in its dtype.
    pub fn nbytes(&self) -> usize {
        self.dtype.storage_bytes(self.numel())
    }
    pub fn view(&self) -> View<'_> {
        View {
            storage: self.storage.as_ref(),
            layout: &self.layout,
            dtype: self.dtype,
        }
    }

    // ----- readback -------------------------------------------------------------------------

    /// Contiguous row-major bytes in the tensor's dtype (flushes queued GPU work).
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        self.device.backend().download(self.view())
    }

    /// All elements as `T`; `T` must match the dtype (cast first otherwise).
    pub fn to_vec<T: Element>(&self) -> Result<Vec<T>> {
        if T::DTYPE != self.dtype {
            return Err(Error::DTypeMismatch {
                op: "to_vec",
                lhs: self.dtype,
                rhs: T::DTYPE,
            });
        }
        let bytes = self.to_bytes()?;
        let mut out = vec![T::from_f64(0.0); self.numel()];
        bytemuck::cast_slice_mut::<T, u8>(&mut out).copy_from_slice(&bytes[..self.nbytes()]);
        Ok(out)
    }

    /// All elements decoded to f64 on the host (any dtype, quantized ones dequantized).
    pub fn to_f64_vec(&self) -> Result<Vec<f64>> {
        convert::bytes_to_f64(self.dtype, &self.to_bytes()?, self.numel())
    }

    pub fn to_f32_vec(&self) -> Result<Vec<f32>> {
        Ok(self.to_f64_vec()?.into_iter().map(|v| v as f32).collect())
    }

    /// The single value of a one-element tensor.
    pub fn to_scalar_f64(&self) -> Result<f64> {
        if self.numel() != 1 {
            return Err(Error::shape(
                "to_scalar",
                self.shape(),
                &[],
                "tensor has more than one element",
            ));
        }
        Ok(self.to_f64_vec()?[0])
    }

    /// Copy to another device (through the host).
    pub fn to_device(&self, device: &Device) -> Result<Tensor> {
        if self.device.same_device(device) {
            return Ok(self.clone());
        }
        let bytes = self.to_bytes()?;
        let s = device.backend().upload(self.dtype, self.numel(), &bytes)?;
        let out = Self::from_parts(s, self.shape(), self.dtype, device);
        device.record(OpRecord {
            op: "to_device".into(),
            family: OpFamily::Copy,
            dtype: self.dtype,
            inputs: vec![(self.dtype, self.shape().to_vec())],
            output: (self.dtype, self.shape().to_vec()),
        });
        Ok(out)
    }

    // ----- views (metadata only) ------------------------------------------------------------

    fn with_layout(&self, layout: Layout) -> Tensor {
        Tensor {
            storage: self.storage.clone(),
            layout,
            dtype: self.dtype,
            device: self.device.clone(),
        }
    }

    fn check_view_ok(&self, op: &'static str) -> Result<()> {
        if self.dtype.is_quantized() {
            return Err(Error::invalid(
                op,
                format!(
                    "{} tensors cannot be viewed this way (blocks of 32)",
                    self.dtype
                ),
            ));
        }
        Ok(())
    }

    /// Reshape; copies first when the view is not contiguous. One dim may be `usize::MAX` to infer it.
    pub fn reshape(&self, shape: impl AsRef<[usize]>) -> Result<Tensor> {
        let mut shape = shape.as_ref().to_vec();
        if let Some(pos) = shape.iter().position(|&d| d == usize::MAX) {
            let known: usize = shape.iter().filter(|&&d| d != usize::MAX).product();
            if known == 0 || !self.numel().is_multiple_of(known) {
                return Err(Error::shape(
                    "reshape",
                    self.shape(),
                    &shape,
                    "cannot infer the dim",
                ));
            }
            shape[pos] = self.numel() / known;
        }
        if self.dtype.is_quantized() {
            if shape.last() != self.shape().last() || numel(&shape) != self.numel() {
                return Err(Error::shape(
                    "reshape",
                    self.shape(),
                    &shape,
                    "quantized tensors keep their last dim",
                ));
            }
            return Ok(self.with_layout(Layout::contiguous(&shape)));
        }
        match self.layout.reshape(&shape)? {
            Some(l) => Ok(self.with_layout(l)),
            None => self.contiguous()?.reshape(shape),
        }
    }

    pub fn flatten_all(&self) -> Result<Tensor> {
        self.reshape([self.numel()])
    }

    pub fn permute(&self, dims: impl AsRef<[usize]>) -> Result<Tensor> {
        self.check_view_ok("permute")?;
        Ok(self.with_layout(self.layout.permute(dims.as_ref())?))
    }

    pub fn transpose(&self, a: isize, b: isize) -> Result<Tensor> {
        self.check_view_ok("transpose")?;
        let a = resolve_dim("transpose", a, self.shape())?;
        let b = resolve_dim("transpose", b, self.shape())?;
        Ok(self.with_layout(self.layout.transpose(a, b)?))
    }

    /// Swap the last two dims.
    pub fn t(&self) -> Result<Tensor> {
        self.transpose(-2, -1)
    }

    pub fn narrow(&self, dim: isize, start: usize, len: usize) -> Result<Tensor> {
        let d = resolve_dim("narrow", dim, self.shape())?;
        if self.dtype.is_quantized() && d + 1 == self.rank() {
            return Err(Error::invalid(
                "narrow",
                "quantized tensors cannot be narrowed along their last dim",
            ));
        }
        Ok(self.with_layout(self.layout.narrow(d, start, len)?))
    }

    /// Write `src` into this tensor along `dim` from `start` (PyTorch's
    /// `t.narrow(dim, start, n).copy_(src)`): in place where this tensor's storage is not shared
    /// with another tensor, the dtype is not quantized and the device writes in place (a KV cache
    /// grows this way without copying what it holds); otherwise this tensor becomes a new one
    /// built by `cat` (same values, one copy). Other tensors never see the change.
    pub fn write_slice(&mut self, dim: isize, start: usize, src: &Tensor) -> Result<()> {
        let d = resolve_dim("write_slice", dim, self.shape())?;
        if !src.device.same_device(&self.device) {
            return Err(Error::DeviceMismatch {
                op: "write_slice",
                lhs: self.device.id().to_string(),
                rhs: src.device.id().to_string(),
            });
        }
        if src.dtype != self.dtype {
            return Err(Error::DTypeMismatch {
                op: "write_slice",
                lhs: self.dtype,
                rhs: src.dtype,
            });
        }
        let n = src.shape().get(d).copied().unwrap_or(0);
        let same_elsewhere = src.rank() == self.rank()
            && (0..self.rank()).all(|i| i == d || src.shape()[i] == self.shape()[i]);
        if !same_elsewhere {
            return Err(Error::shape(
                "write_slice",
                self.shape(),
                src.shape(),
                format!("the source must match the destination outside dim {d}"),
            ));
        }
        let size = self.shape()[d];
        if start.checked_add(n).is_none_or(|end| end > size) {
            return Err(Error::OutOfRange {
                op: "write_slice",
                what: "end of the written range",
                index: start.saturating_add(n) as i64,
                bound: size,
                shape: self.shape().to_vec(),
            });
        }
        let at = self.layout.narrow(d, start, n)?;
        if n == 0 || at.shape.contains(&0) {
            return Ok(());
        }
        let aliased = at
            .shape
            .iter()
            .zip(&at.strides)
            .any(|(&s, &st)| s > 1 && st == 0);
        let native = matches!(
            self.device
                .decide("write_slice", OpFamily::Copy, self.dtype)?,
            Decision::Native | Decision::Emulated { .. }
        );
        if native && !aliased && !self.dtype.is_quantized() {
            let backend = self.device.backend().clone();
            if let Some(dst) = std::sync::Arc::get_mut(&mut self.storage) {
                if backend.write(dst, &self.layout, d, start, src.view())? {
                    self.device.record(OpRecord {
                        op: "write_slice".to_string(),
                        family: OpFamily::Copy,
                        dtype: self.dtype,
                        inputs: vec![
                            (self.dtype, self.shape().to_vec()),
                            (src.dtype, src.shape().to_vec()),
                        ],
                        output: (self.dtype, self.shape().to_vec()),
                    });
                    return Ok(());
                }
            }
        }
        let before = self.narrow(d as isize, 0, start)?;
        let after = self.narrow(d as isize, start + n, size - start - n)?;
        let parts: Vec<&Tensor> = [&before, src, &after]
            .into_iter()
            .filter(|t| t.shape()[d] > 0)
            .collect();
        *self = Tensor::cat(&parts, d as isize)?;
        Ok(())
    }

    pub fn broadcast_as(&self, shape: impl AsRef<[usize]>) -> Result<Tensor> {
        self.check_view_ok("broadcast_as")?;
        Ok(self.with_layout(self.layout.broadcast_to(shape.as_ref())?))
    }

    pub fn squeeze(&self, dim: isize) -> Result<Tensor> {
        let d = resolve_dim("squeeze", dim, self.shape())?;
        Ok(self.with_layout(self.layout.squeeze(d)?))
    }

    pub fn unsqueeze(&self, dim: isize) -> Result<Tensor> {
        let rank = self.rank() as isize;
        let d = if dim < 0 { dim + rank + 1 } else { dim };
        if d < 0 {
            return Err(Error::OutOfRange {
                op: "unsqueeze",
                what: "dim",
                index: dim as i64,
                bound: self.rank() + 1,
                shape: self.shape().to_vec(),
            });
        }
        Ok(self.with_layout(self.layout.unsqueeze(d as usize)?))
    }

    /// A contiguous tensor with the same values (no copy when already contiguous at offset 0).
    pub fn contiguous(&self) -> Result<Tensor> {
        if self.layout.is_contiguous_from_start() {
            return Ok(self.clone());
        }
        let out_shape = self.shape().to_vec();
        Tensor::dispatch(
            "copy",
            OpFamily::Copy,
            self.dtype,
            &[self],
            &out_shape,
            self.dtype,
            &|b, v| b.copy(v[0]),
        )
    }

    // ----- dispatch -------------------------------------------------------------------------

    /// Run one op: check devices, ask the policy, then run the kernel natively, upcast, or on the
    /// CPU fallback; record the op in the device's trace. `kernel` calls the backend with the
    /// inputs' views and returns the contiguous output storage.
    pub fn dispatch(
        op: &'static str,
        family: OpFamily,
        dtype: DType,
        inputs: &[&Tensor],
        out_shape: &[usize],
        out_dtype: DType,
        kernel: Kernel<'_>,
    ) -> Result<Tensor> {
        let Some(first) = inputs.first() else {
            return Err(Error::invalid(op, "no inputs"));
        };
        let dev = first.device.clone();
        for t in &inputs[1..] {
            if !t.device.same_device(&dev) {
                return Err(Error::DeviceMismatch {
                    op,
                    lhs: dev.id().to_string(),
                    rhs: t.device.id().to_string(),
                });
            }
        }
        check_alloc(&dev, op, out_dtype, out_shape)?;
        let decision = dev.decide(op, family, dtype)?;
        let out = match decision {
            Decision::Native | Decision::Emulated { .. } => {
                let views: Vec<View> = inputs.iter().map(|t| t.view()).collect();
                let s = kernel(dev.backend().as_ref(), &views)?;
                Tensor::from_parts(s, out_shape, out_dtype, &dev)
            }
            // never for the Cast family: Policy::decide_op does not upcast casts
            Decision::Upcast { to } => {
                let cast: Vec<Tensor> = inputs
                    .iter()
                    .map(|t| {
                        if t.dtype == dtype {
                            t.to_dtype(to)
                        } else {
                            Ok((*t).clone())
                        }
                    })
                    .collect::<Result<_>>()?;
                let views: Vec<View> = cast.iter().map(|t| t.view()).collect();
                let mid_dtype = if out_dtype == dtype { to } else { out_dtype };
                let s = kernel(dev.backend().as_ref(), &views)?;
                let mid = Tensor::from_parts(s, out_shape, mid_dtype, &dev);
                if mid_dtype != out_dtype {
                    mid.to_dtype(out_dtype)?
                } else {
                    mid
                }
            }
            Decision::CpuFallback => {
                let cpu = dev.fallback().ok_or_else(|| Error::UnsupportedDType {
                    op: op.to_string(),
                    dtype,
                    device: dev.id().to_string(),
                    reason: "cpu fallback requested but no CPU device is attached".into(),
                })?;
                let moved: Vec<Tensor> = inputs
                    .iter()
                    .map(|t| t.to_device(&cpu))
                    .collect::<Result<_>>()?;
                let views: Vec<View> = moved.iter().map(|t| t.view()).collect();
                let s = kernel(cpu.backend().as_ref(), &views)?;
                Tensor::from_parts(s, out_shape, out_dtype, &cpu).to_device(&dev)?
            }
            Decision::Refuse { reason } => {
                return Err(Error::UnsupportedDType {
                    op: op.to_string(),
                    dtype,
                    device: dev.id().to_string(),
                    reason,
                })
            }
        };
        dev.record(OpRecord {
            op: op.to_string(),
            family,
            dtype,
            inputs: inputs
                .iter()
                .map(|t| (t.dtype, t.shape().to_vec()))
                .collect(),
            output: (out_dtype, out_shape.to_vec()),
        });
        Ok(out)
    }

    /// Convert to `dtype` (see [`crate::Backend::cast`] for the rounding rules).
    pub fn to_dtype(&self, dtype: DType) -> Result<Tensor> {
        if dtype == self.dtype {
            return Ok(self.clone());
        }
        if dtype.is_quantized() {
            return Err(Error::invalid(
                "cast",
                format!(
                    "cannot cast {} to {dtype}: quantize on the host with Tensor::from_f64",
                    self.dtype
                ),
            ));
        }
        let shape = self.shape().to_vec();
        if self.dtype.is_quantized() {
            return Tensor::dispatch(
                "dequantize",
                OpFamily::QMatmul,
                self.dtype,
                &[self],
                &shape,
                dtype,
                &|b, v| b.dequantize(v[0], dtype),
            );
        }
        // both ends must be castable on the device; decide on the non-f32 side
        let key = if self.dtype == DType::F32 {
            dtype
        } else {
            self.dtype
        };
        if key != self.dtype {
            self.device.decide("cast", OpFamily::Cast, dtype)?;
        }
        Tensor::dispatch(
            "cast",
            OpFamily::Cast,
            key,
            &[self],
            &shape,
            dtype,
            &|b, v| b.cast(v[0], dtype),
        )
    }
}
