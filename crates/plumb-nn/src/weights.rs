//! Loading weights onto a device in the dtype the run chose for it.
//!
//! [`Weights`] wraps a safetensors set or a GGUF file. Every tensor is converted on load as the
//! target device's capabilities and the policy say:
//! - floats → the run's float dtype (`--dtype`, else the checkpoint's `torch_dtype`, else f32),
//!   narrowed to f32 where the device has no kernel for it (bf16 on a device without bf16, f64 on
//!   most GPUs) — an error under the strict policy;
//! - i64 tensors (BERT's `position_ids`) → i32 where the device has no 64-bit integers, after
//!   checking every value fits;
//! - q4_0/q4_1/q8_0 matrices stay quantized where the device runs quantized matmul in that dtype,
//!   else they are dequantized; GGUF k-quants (Q4_K/Q5_K/Q6_K) are always dequantized, as plumb
//!   has no k-quant storage dtype.
//!
//! Every conversion is noted in the device's run report ([`plumb_core::Device::note_conversion`]),
//! aggregated per (from, to, reason).

use crate::gguf::GgufFile;
use crate::kquant::KQuant;
use crate::safetensors::SafetensorsSet;
use crate::source::{decode_f32, encode_f32, StoredDType, TensorInfo};
use plumb_core::policy::Preset;
use plumb_core::{DType, Device, Error, OpFamily, Result, Support, Tensor};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// A weights file (or set of shards) of one model.
#[derive(Debug)]
pub enum WeightFile {
    Safetensors(SafetensorsSet),
    Gguf(GgufFile),
}

impl WeightFile {
    /// Open `path`: a .gguf file, a .safetensors file, an index json, or a folder holding them.
    pub fn open(path: &Path) -> Result<WeightFile> {
        if path.extension().is_some_and(|e| e == "gguf") {
            return Ok(WeightFile::Gguf(GgufFile::open(path)?));
        }
        Ok(WeightFile::Safetensors(SafetensorsSet::open(path)?))
    }

    pub fn info(&self, name: &str) -> Option<(&TensorInfo, &Path)> {
        match self {
            WeightFile::Safetensors(s) => s.info(name),
            WeightFile::Gguf(g) => g.get(name).map(|t| (t, g.path())),
        }
    }

    pub fn bytes(&self, name: &str) -> Result<(&[u8], &Path)> {
        match self {
            WeightFile::Safetensors(s) => s.bytes(name),
            WeightFile::Gguf(g) => Ok((g.bytes(name)?, g.path())),
        }
    }

    /// Every tensor, sorted by name.
    pub fn tensors(&self) -> Vec<(&TensorInfo, &Path)> {
        let mut v: Vec<(&TensorInfo, &Path)> = match self {
            WeightFile::Safetensors(s) => s.names().filter_map(|n| s.info(n)).collect(),
            WeightFile::Gguf(g) => g.tensors().iter().map(|t| (t, g.path())).collect(),
        };
        v.sort_by(|a, b| a.0.name.cmp(&b.0.name));
        v
    }

    pub fn path(&self) -> PathBuf {
        match self {
            WeightFile::Safetensors(s) => s
                .files()
                .first()
                .map(|f| f.path().to_path_buf())
                .unwrap_or_default(),
            WeightFile::Gguf(g) => g.path().to_path_buf(),
        }
    }
}

/// Choose the float dtype weights are stored and computed in on `target`, starting from the
/// `requested` one. Returns the dtype and, when it differs, the reason.
pub fn choose_float_dtype(target: &Device, requested: DType) -> Result<(DType, Option<String>)> {
    if !requested.is_float() {
        return Err(Error::invalid(
            "load",
            format!("--dtype {requested} is not a float dtype (use f32, f16, bf16 or f64)"),
        ));
    }
    let policy = target.policy();
    if policy.preset == Preset::Safe && requested != DType::F32 {
        return Ok((
            DType::F32,
            Some(format!("policy {policy} computes everything in f32")),
        ));
    }
    match target.supports(OpFamily::Matmul, requested) {
        Support::Native => Ok((requested, None)),
        Support::Emulated { via } if policy.preset == Preset::Strict => Err(Error::PolicyRefused {
            policy: policy.to_string(),
            op: "matmul".into(),
            dtype: requested,
            device: target.id().to_string(),
            reason: format!("{requested} is only emulated (computed in {via})"),
        }),
        Support::Emulated { .. } => Ok((requested, None)),
        Support::Unsupported { reason } if policy.preset == Preset::Strict => {
            Err(Error::PolicyRefused {
                policy: policy.to_string(),
                op: "matmul".into(),
                dtype: requested,
                device: target.id().to_string(),
                reason,
            })
        }
        Support::Unsupported { reason } => Ok((
            DType::F32,
            Some(format!(
                "{} has no {requested} compute: {reason}",
                target.id()
            )),
        )),
    }
}

/// Called with (bytes read so far, total bytes of the file's tensors) as tensors load.
pub type Progress = Box<dyn Fn(u64, u64) + Send + Sync>;

/// Tensors of one model, loaded onto `device` in the dtypes `target` can run.
pub struct Weights {
    progress: Option<Progress>,
    read: Mutex<u64>,
    total: u64,
    dequantize: bool,
    file: WeightFile,
    device: Device,
    target: Device,
    float_dtype: DType,
    notes: Mutex<BTreeMap<String, Vec<String>>>,
    loaded: Mutex<u64>,
    /// (dtype, shape) of every tensor loaded
    shapes: Mutex<Vec<(DType, Vec<usize>)>>,
}

impl std::fmt::Debug for Weights {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Weights({}, {} on {})",
            self.file.path().display(),
            self.float_dtype,
            self.device.id()
        )
    }
}

impl Weights {
    /// `device` receives the tensors; `target` decides conversions (the same device, or the
    /// real device while `device` is the meta device tracing a plan).
    pub fn new(file: WeightFile, device: &Device, target: &Device, float_dtype: DType) -> Weights {
        let total = file.tensors().iter().map(|(t, _)| t.nbytes as u64).sum();
        Weights {
            progress: None,
            dequantize: false,
            read: Mutex::new(0),
            total,
            file,
            device: device.clone(),
            target: target.clone(),
            float_dtype,
            notes: Mutex::new(BTreeMap::new()),
            loaded: Mutex::new(0),
            shapes: Mutex::new(Vec::new()),
        }
    }

    /// Dequantize every quantized matrix to the float dtype on load, so the run computes exactly
    /// in that dtype (as reference implementations that dequantize GGUF do). By default
    /// quantized matrices stay quantized and go through the device's quantized matmul, which
    /// may quantize activations too (the CPU backend uses 8-bit activations, like llama.cpp).
    pub fn set_dequantize(&mut self, on: bool) {
        self.dequantize = on;
    }

    pub fn set_progress(&mut self, p: Progress) {
        self.progress = Some(p);
    }

    /// Bytes of every tensor in the file(s), as stored.
    pub fn total_file_bytes(&self) -> u64 {
        self.total
    }

    fn tick(&self, info: &TensorInfo) {
        if let Some(p) = &self.progress {
            let mut r = self.read.lock().unwrap_or_else(|e| e.into_inner());
            *r += info.nbytes as u64;
            p(*r, self.total_file_bytes());
        }
    }

    pub fn file(&self) -> &WeightFile {
        &self.file
    }
    pub fn device(&self) -> &Device {
        &self.device
    }
    pub fn float_dtype(&self) -> DType {
        self.float_dtype
    }
    /// Bytes of all tensors loaded so far, in the dtypes they were loaded in.
    pub fn loaded_bytes(&self) -> u64 {
        *self.loaded.lock().unwrap_or_else(|e| e.into_inner())
    }
    /// (dtype, shape) of every tensor loaded so far (the resident tensors of a plan).
    pub fn loaded_shapes(&self) -> Vec<(DType, Vec<usize>)> {
        self.shapes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
    pub fn contains(&self, name: &str) -> bool {
        self.file.info(name).is_some()
    }
    pub fn info(&self, name: &str) -> Result<(&TensorInfo, &Path)> {
        self.file.info(name).ok_or_else(|| {
            Error::format(
                self.file.path(),
                format!("the model needs tensor '{name}', which this file does not hold"),
            )
        })
    }

    fn note(&self, what: String, name: &str) {
        self.notes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(what)
            .or_default()
            .push(name.to_string());
    }

    /// Write the aggregated conversion notes into the device's run report.
    pub fn finish(&self) {
        let notes = std::mem::take(&mut *self.notes.lock().unwrap_or_else(|e| e.into_inner()));
        for (what, names) in notes {
            let shown: Vec<&str> = names.iter().take(3).map(|s| s.as_str()).collect();
            let more = if names.len() > 3 { ", …" } else { "" };
            self.device.note_conversion(format!(
                "{what}: {} tensor{} ({}{more})",
                names.len(),
                if names.len() == 1 { "" } else { "s" },
                shown.join(", ")
            ));
        }
    }

    fn upload(&self, bytes: Option<&[u8]>, dtype: DType, shape: &[usize]) -> Result<Tensor> {
        *self.loaded.lock().unwrap_or_else(|e| e.into_inner()) +=
            dtype.storage_bytes(shape.iter().product()) as u64;
        self.shapes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((dtype, shape.to_vec()));
        match bytes {
            Some(b) => Tensor::from_bytes(b, dtype, shape, &self.device),
            // meta: shapes and dtypes only
            None if dtype.is_quantized() => Tensor::from_bytes(
                &vec![0u8; dtype.storage_bytes(shape.iter().product())],
                dtype,
                shape,
                &self.device,
            ),
            None => Tensor::zeros(shape, dtype, &self.device),
        }
    }

    fn check_shape(
        &self,
        name: &str,
        info: &TensorInfo,
        path: &Path,
        want: &[usize],
    ) -> Result<()> {
        if info.shape != want {
            return Err(Error::format(
                path,
                format!(
                    "tensor '{name}' has shape {:?}, the config implies {want:?}",
                    info.shape
                ),
            ));
        }
        Ok(())
    }

    /// A tensor of the expected `shape` in the run's float dtype (integers: see the module docs).
    pub fn get(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        let (info, path) = self.info(name)?;
        self.check_shape(name, info, path, shape)?;
        self.tick(info);
        let meta = !self.device.holds_data();
        let want = match info.dtype {
            StoredDType::Plain(d) if d.is_int() || d == DType::Bool => {
                return self.get_int(name, info, path, d)
            }
            _ => self.float_dtype,
        };
        if info.dtype == StoredDType::Plain(want) {
            let bytes = if meta {
                None
            } else {
                Some(self.file.bytes(name)?.0)
            };
            return self.upload(bytes, want, &info.shape);
        }
        let why = match info.dtype {
            StoredDType::KQuant(_) => "plumb has no storage dtype for this GGUF block format",
            StoredDType::Plain(d) if d.is_quantized() => "a lookup table or vector needs floats",
            _ => "the run's dtype",
        };
        self.note(format!("{} → {want} ({why})", info.dtype), name);
        if meta {
            return self.upload(None, want, &info.shape);
        }
        let (bytes, path) = self.file.bytes(name)?;
        let vals = decode_f32(path, info, bytes)?;
        self.upload(Some(&encode_f32(want, &vals)?), want, &info.shape)
    }

    /// A small float tensor of the expected `shape` read to the host as f32, whatever the run's
    /// dtype (model parameters computed on the host, such as GGUF's `rope_freqs.weight`). It is
    /// not uploaded to the device.
    pub fn get_f32_host(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let (info, path) = self.info(name)?;
        self.check_shape(name, info, path, shape)?;
        self.tick(info);
        let (bytes, path) = self.file.bytes(name)?;
        decode_f32(path, info, bytes)
    }

    fn get_int(&self, name: &str, info: &TensorInfo, path: &Path, d: DType) -> Result<Tensor> {
        let meta = !self.device.holds_data();
        let keep =
            d != DType::I64 || self.target.supports(OpFamily::Index, DType::I64) == Support::Native;
        if keep {
            let bytes = if meta {
                None
            } else {
                Some(self.file.bytes(name)?.0)
            };
            return self.upload(bytes, d, &info.shape);
        }
        self.note(
            format!(
                "i64 → i32 ({} has no native 64-bit integers; values checked to fit)",
                self.target.id()
            ),
            name,
        );
        if meta {
            return self.upload(None, DType::I32, &info.shape);
        }
        let (bytes, _) = self.file.bytes(name)?;
        let mut out = Vec::with_capacity(bytes.len() / 2);
        for (i, c) in bytes.chunks_exact(8).enumerate() {
            let mut a = [0u8; 8];
            a.copy_from_slice(c);
            let v = i64::from_le_bytes(a);
            let v = i32::try_from(v).map_err(|_| {
                Error::format(
                    path,
                    format!("tensor '{name}': value {v} at index {i} does not fit in i32"),
                )
            })?;
            out.extend_from_slice(&v.to_le_bytes());
        }
        self.upload(Some(&out), DType::I32, &info.shape)
    }

    /// Whether quantized weights of dtype `q` stay quantized on the target (its quantized matmul
    /// runs under the policy); `strict` refuses when they would have to be dequantized.
    fn keep_quantized(&self, q: DType) -> Result<bool> {
        let support = self.target.supports(OpFamily::QMatmul, q);
        let policy = self.target.policy();
        let keep = !self.dequantize
            && match &support {
                Support::Native => policy.preset != Preset::Safe,
                Support::Emulated { .. } => policy.preset == Preset::Auto,
                Support::Unsupported { .. } => false,
            };
        if !keep && policy.preset == Preset::Strict && !self.dequantize {
            return Err(Error::PolicyRefused {
                policy: policy.to_string(),
                op: "qmatmul".into(),
                dtype: q,
                device: self.target.id().to_string(),
                reason: support.to_string(),
            });
        }
        Ok(keep)
    }

    /// Weight matrices [n_i, in] stacked along their out dim into one [Σ n_i, in] matrix, so one
    /// matmul computes them all (q, k and v; gate and up). Parts that stay quantized in one dtype
    /// are stacked block by block on the host; parts that load as floats are loaded as
    /// [`Weights::get_matrix`] loads them and concatenated on the device. `None` when the parts
    /// would load in different dtypes (the caller keeps them apart).
    pub fn get_matrix_stack(&self, parts: &[(&str, &[usize])]) -> Result<Option<Tensor>> {
        // the dtype each part has once loaded: Some(q) stays quantized, None becomes a float
        let mut kinds = Vec::with_capacity(parts.len());
        let mut rows = 0;
        for (name, shape) in parts {
            let (info, path) = self.info(name)?;
            self.check_shape(name, info, path, shape)?;
            rows += shape[0];
            kinds.push(match info.dtype {
                StoredDType::Plain(q) if q.is_quantized() && self.keep_quantized(q)? => Some(q),
                StoredDType::KQuant(k) if self.keep_quantized(k.requantized())? => {
                    Some(k.requantized())
                }
                _ => None,
            });
        }
        let (Some(first), Some((_, shape0))) = (kinds.first(), parts.first()) else {
            return Ok(None);
        };
        if kinds.iter().any(|k| k != first) {
            return Ok(None);
        }
        if let Some(q) = *first {
            let mut bytes = Vec::new();
            for (name, _) in parts {
                let (info, _) = self.info(name)?;
                self.tick(info);
                if let StoredDType::KQuant(k) = info.dtype {
                    self.note_requantized(k, name);
                }
                if self.device.holds_data() {
                    bytes.extend_from_slice(&self.stored_as(name, q)?);
                }
            }
            let data = self.device.holds_data().then_some(&bytes[..]);
            let m = self.upload(data, q, &[rows, shape0[1]])?;
            drop(bytes);
            return m.packed_for_qmatmul().map(Some);
        }
        // float parts: stacked row-major, then stored in-dim-major once
        let ts = parts
            .iter()
            .map(|(name, shape)| self.matrix_as_stored(name, shape))
            .collect::<Result<Vec<_>>>()?;
        let refs: Vec<&Tensor> = ts.iter().collect();
        in_major(Tensor::cat(&refs, 0)?).map(Some)
    }

    /// A weight matrix [out, in] for [`Tensor::qmatmul`]: q4_0/q4_1/q8_0 stay quantized (in the
    /// layout [`Tensor::packed_for_qmatmul`] picks) where the target runs quantized matmul in
    /// that dtype; everything else as [`Weights::get`], stored in-dim-major.
    pub fn get_matrix(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        let w = self.matrix_as_stored(name, shape)?;
        if w.dtype().is_quantized() {
            // in the device's fastest layout for qmatmul (the stored copy is dropped)
            w.packed_for_qmatmul()
        } else {
            in_major(w)
        }
    }

    /// The bytes of tensor `name` in block dtype `q`: as stored, or requantized from a GGUF
    /// format Plumb has no dtype for ([`KQuant::requantize`]).
    fn stored_as(&self, name: &str, q: DType) -> Result<std::borrow::Cow<'_, [u8]>> {
        let (info, _) = self.info(name)?;
        let (bytes, path) = self.file.bytes(name)?;
        match info.dtype {
            StoredDType::KQuant(k) if k.requantized() == q => k
                .requantize(bytes, info.numel())
                .map(std::borrow::Cow::Owned)
                .map_err(|e| Error::format(path, format!("tensor '{name}': {e}"))),
            _ => Ok(std::borrow::Cow::Borrowed(bytes)),
        }
    }

    fn note_requantized(&self, k: KQuant, name: &str) {
        let (k, q, why) = (k.name(), k.requantized(), k.requantize_error());
        let device = self.target.id();
        self.note(
            format!(
                "{k} → {q} (requantized at load: plumb has no {k} kernels and {device} runs \
                 quantized matmul in {q}; {why})"
            ),
            name,
        );
    }

    /// [`Weights::get_matrix`] with float matrices left row-major.
    fn matrix_as_stored(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        let (info, path) = self.info(name)?;
        self.check_shape(name, info, path, shape)?;
        if let StoredDType::KQuant(k) = info.dtype {
            let q = k.requantized();
            if self.keep_quantized(q)? {
                self.tick(info);
                self.note_requantized(k, name);
                let bytes = if self.device.holds_data() {
                    Some(self.stored_as(name, q)?)
                } else {
                    None
                };
                return self.upload(bytes.as_deref(), q, &info.shape);
            }
        }
        if let StoredDType::Plain(q) = info.dtype {
            if q.is_quantized() {
                self.tick(info);
                if self.keep_quantized(q)? {
                    let bytes = if self.device.holds_data() {
                        Some(self.file.bytes(name)?.0)
                    } else {
                        None
                    };
                    return self.upload(bytes, q, &info.shape);
                }
                let (bytes, path) = self.file.bytes(name)?;
                let want = self.float_dtype;
                let why = if self.dequantize {
                    "exact float compute requested".to_string()
                } else {
                    let support = self.target.supports(OpFamily::QMatmul, q);
                    format!("{} qmatmul: {support}", self.target.id())
                };
                self.note(format!("{q} → {want} ({why})"), name);
                if !self.device.holds_data() {
                    return self.upload(None, want, &info.shape);
                }
                let vals = decode_f32(path, info, bytes)?;
                return self.upload(Some(&encode_f32(want, &vals)?), want, &info.shape);
            }
        }
        self.get(name, shape)
    }
}

/// A float weight [out, in] stored in-dim-major: the same [out, in] shape over a transposed
/// copy, so that `x · wᵀ` multiplies by a contiguous [in, out] matrix, then in the layout the
/// device's matmul reads fastest ([`Tensor::packed_for_matmul`]: the CPU's AVX2 panels where
/// that kernel runs). Views on the meta device are returned as they are.
fn in_major(w: Tensor) -> Result<Tensor> {
    if w.rank() != 2 || !w.device().holds_data() {
        return Ok(w);
    }
    w.t()?.contiguous()?.t()?.packed_for_matmul()
}

/// The dtype a GGUF file's weight matrices are stored in, where every matrix is f16, or every
/// one bf16 (a float export, as llama.cpp's converter writes with `--outtype f16`); `None` for
/// quantized or mixed files, whose activations stay f32 as in llama.cpp.
fn gguf_float_dtype(file: &WeightFile) -> Option<DType> {
    let mut matrices = file
        .tensors()
        .into_iter()
        .filter(|(t, _)| t.shape.len() == 2);
    let first = match matrices.next()?.0.dtype {
        StoredDType::Plain(d) if matches!(d, DType::F16 | DType::BF16) => d,
        _ => return None,
    };
    matrices
        .all(|(t, _)| t.dtype == StoredDType::Plain(first))
        .then_some(first)
}

/// Open a model's weights for `device`, choosing the float dtype from `dtype` (`--dtype`), else
/// the config's `torch_dtype` (safetensors) or the dtype of a GGUF's float matrices (f16 or bf16
/// throughout), else f32, narrowed to what `target` runs (see [`choose_float_dtype`]). `device`
/// is `target` itself, or the meta device for a plan.
pub fn open_weights(
    files: &crate::config::ModelFiles,
    device: &Device,
    target: &Device,
    dtype: Option<DType>,
) -> Result<Weights> {
    let file = WeightFile::open(&files.weights)?;
    let from_file = match (&files.config, files.is_gguf()) {
        (Some(c), false) => crate::config::HfConfig::load(c)?.torch_dtype(),
        (_, true) => gguf_float_dtype(&file),
        _ => None,
    };
    let requested = dtype.or(from_file).unwrap_or(DType::F32);
    let (chosen, why) = choose_float_dtype(target, requested)?;
    if let Some(why) = why {
        device.note_conversion(format!("weights {requested} → {chosen}: {why}"));
    }
    Ok(Weights::new(file, device, target, chosen))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A GGUF v3 file with no metadata holding zero-filled tensors of the given shapes and
    /// ggml type ids (0 f32, 1 f16, 8 q8_0, 30 bf16).
    fn gguf(dir: &Path, name: &str, tensors: &[(&str, &[usize], u32)]) -> PathBuf {
        let bytes_of = |shape: &[usize], ty: u32| {
            let n: usize = shape.iter().product();
            match ty {
                0 => 4 * n,
                1 | 30 => 2 * n,
                8 => n / 32 * 34,
                _ => unreachable!("type {ty}"),
            }
        };
        let mut head = b"GGUF".to_vec();
        head.extend(3u32.to_le_bytes());
        head.extend((tensors.len() as u64).to_le_bytes());
        head.extend(0u64.to_le_bytes());
        let mut offset = 0usize;
        for &(tname, shape, ty) in tensors {
            head.extend((tname.len() as u64).to_le_bytes());
            head.extend(tname.as_bytes());
            head.extend((shape.len() as u32).to_le_bytes());
            for &d in shape.iter().rev() {
                head.extend((d as u64).to_le_bytes());
            }
            head.extend(ty.to_le_bytes());
            head.extend((offset as u64).to_le_bytes());
            offset += bytes_of(shape, ty).next_multiple_of(32);
        }
        head.resize(head.len().next_multiple_of(32) + offset, 0);
        let path = dir.join(name);
        std::fs::write(&path, head).unwrap();
        path
    }

    #[test]
    fn a_gguf_of_half_matrices_defaults_to_their_dtype() {
        let dir = tempfile::tempdir().unwrap();
        let cases: [(&str, [u32; 2], Option<DType>); 5] = [
            ("f16.gguf", [1, 1], Some(DType::F16)),
            ("bf16.gguf", [30, 30], Some(DType::BF16)),
            ("mixed.gguf", [1, 30], None),
            ("quantized.gguf", [1, 8], None),
            ("f32.gguf", [0, 0], None),
        ];
        for (name, [ta, tb], want) in cases {
            // a 1-D f32 norm never counts: float exports keep norms in f32
            let tensors = [
                ("a.weight", &[64usize, 32][..], ta),
                ("b.weight", &[32, 64][..], tb),
                ("norm.weight", &[32][..], 0),
            ];
            let path = gguf(dir.path(), name, &tensors);
            let file = WeightFile::open(&path).unwrap();
            assert_eq!(gguf_float_dtype(&file), want, "{name}");
        }
    }
}
