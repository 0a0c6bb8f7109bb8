//! GGUF v2/v3 reader: header, metadata of every value type (arrays included), tensor infos,
//! alignment, and bounds-checked access to tensor data in a memory map.
//!
//! Layout: "GGUF", u32 version, u64 tensor count, u64 metadata count, metadata (key string,
//! u32 type, value), tensor infos (name, u32 n_dims, u64 ne[n_dims], u32 ggml type, u64 offset),
//! padding to `general.alignment` (default 32), data. `ne[0]` is the innermost dim, so plumb's
//! row-major shape is `ne` reversed.

use crate::kquant::KQuant;
use crate::source::{StoredDType, TensorInfo};
use plumb_core::{DType, Error, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A metadata value.
#[derive(Clone, Debug, PartialEq)]
pub enum GgufValue {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    String(String),
    Array(Vec<GgufValue>),
    U64(u64),
    I64(i64),
    F64(f64),
}

impl GgufValue {
    pub fn type_name(&self) -> &'static str {
        match self {
            GgufValue::U8(_) => "u8",
            GgufValue::I8(_) => "i8",
            GgufValue::U16(_) => "u16",
            GgufValue::I16(_) => "i16",
            GgufValue::U32(_) => "u32",
            GgufValue::I32(_) => "i32",
            GgufValue::F32(_) => "f32",
            GgufValue::Bool(_) => "bool",
            GgufValue::String(_) => "string",
            GgufValue::Array(_) => "array",
            GgufValue::U64(_) => "u64",
            GgufValue::I64(_) => "i64",
            GgufValue::F64(_) => "f64",
        }
    }
    /// Integer value of any integer type (and bool).
    pub fn as_i64(&self) -> Option<i64> {
        Some(match *self {
            GgufValue::U8(v) => v as i64,
            GgufValue::I8(v) => v as i64,
            GgufValue::U16(v) => v as i64,
            GgufValue::I16(v) => v as i64,
            GgufValue::U32(v) => v as i64,
            GgufValue::I32(v) => v as i64,
            GgufValue::U64(v) => i64::try_from(v).ok()?,
            GgufValue::I64(v) => v,
            GgufValue::Bool(v) => v as i64,
            _ => return None,
        })
    }
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            GgufValue::F32(v) => Some(v as f64),
            GgufValue::F64(v) => Some(v),
            _ => self.as_i64().map(|v| v as f64),
        }
    }
    pub fn as_str(&self) -> Option<&str> {
        match self {
            GgufValue::String(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_array(&self) -> Option<&[GgufValue]> {
        match self {
            GgufValue::Array(a) => Some(a),
            _ => None,
        }
    }
    /// A short human rendering (arrays abbreviated).
    pub fn short(&self) -> String {
        match self {
            GgufValue::String(s) if s.len() > 60 => {
                let cut: String = s.chars().take(57).collect();
                format!("{cut:?}…")
            }
            GgufValue::String(s) => format!("{s:?}"),
            GgufValue::Array(a) => {
                let head: Vec<String> = a.iter().take(3).map(|v| v.short()).collect();
                let more = if a.len() > 3 { ", …" } else { "" };
                format!(
                    "[{}{}] ({} × {})",
                    head.join(", "),
                    more,
                    a.len(),
                    a.first().map(|v| v.type_name()).unwrap_or("?")
                )
            }
            GgufValue::F32(v) => format!("{v}"),
            GgufValue::F64(v) => format!("{v}"),
            GgufValue::Bool(v) => format!("{v}"),
            other => other.as_i64().map(|v| v.to_string()).unwrap_or_default(),
        }
    }
}

/// A GGML tensor type id → how plumb stores it.
pub fn stored_dtype(ggml_type: u32) -> Option<StoredDType> {
    if let Some(k) = KQuant::from_gguf_type(ggml_type) {
        return Some(StoredDType::KQuant(k));
    }
    DType::from_gguf_type(ggml_type)
        .ok()
        .map(StoredDType::Plain)
}

fn ggml_type_name(id: u32) -> String {
    let known = [
        (6, "Q5_0"),
        (7, "Q5_1"),
        (9, "Q8_1"),
        (10, "Q2_K"),
        (11, "Q3_K"),
        (15, "Q8_K"),
        (16, "IQ2_XXS"),
        (17, "IQ2_XS"),
        (18, "IQ3_XXS"),
        (19, "IQ1_S"),
        (20, "IQ4_NL"),
        (21, "IQ3_S"),
        (22, "IQ2_S"),
        (23, "IQ4_XS"),
        (24, "I8"),
        (25, "I16"),
        (29, "IQ1_M"),
    ];
    known
        .iter()
        .find(|(k, _)| *k == id)
        .map(|(_, n)| n.to_string())
        .unwrap_or_else(|| format!("ggml type {id}"))
}

/// A bounds-checked little-endian reader over the file bytes.
struct Cursor<'a> {
    path: &'a Path,
    b: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &dyn Fn() -> String) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.b.len());
        match end {
            Some(end) => {
                let s = &self.b[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            None => Err(Error::format(
                self.path,
                format!(
                    "truncated: {} needs {n} bytes at offset {} but the file has {}",
                    what(),
                    self.pos,
                    self.b.len()
                ),
            )),
        }
    }
    fn arr<const N: usize>(&mut self, what: &dyn Fn() -> String) -> Result<[u8; N]> {
        let s = self.take(N, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }
    fn u32(&mut self, what: &dyn Fn() -> String) -> Result<u32> {
        Ok(u32::from_le_bytes(self.arr(what)?))
    }
    fn u64(&mut self, what: &dyn Fn() -> String) -> Result<u64> {
        Ok(u64::from_le_bytes(self.arr(what)?))
    }
    /// A count that must be satisfiable by the remaining bytes at `min_each` bytes per item.
    fn count(&mut self, min_each: usize, what: &dyn Fn() -> String) -> Result<usize> {
        let n = self.u64(what)?;
        let left = (self.b.len() - self.pos) as u64;
        if n.saturating_mul(min_each.max(1) as u64) > left {
            return Err(Error::format(
                self.path,
                format!(
                    "{} claims {n} items but only {left} bytes remain (truncated or corrupt)",
                    what()
                ),
            ));
        }
        Ok(n as usize)
    }
    fn string(&mut self, what: &dyn Fn() -> String) -> Result<String> {
        let n = self.count(1, what)?;
        let s = self.take(n, what)?;
        String::from_utf8(s.to_vec())
            .map_err(|_| Error::format(self.path, format!("{} is not valid UTF-8", what())))
    }
    fn value(&mut self, ty: u32, what: &dyn Fn() -> String, depth: usize) -> Result<GgufValue> {
        Ok(match ty {
            0 => GgufValue::U8(self.arr::<1>(what)?[0]),
            1 => GgufValue::I8(self.arr::<1>(what)?[0] as i8),
            2 => GgufValue::U16(u16::from_le_bytes(self.arr(what)?)),
            3 => GgufValue::I16(i16::from_le_bytes(self.arr(what)?)),
            4 => GgufValue::U32(self.u32(what)?),
            5 => GgufValue::I32(i32::from_le_bytes(self.arr(what)?)),
            6 => GgufValue::F32(f32::from_le_bytes(self.arr(what)?)),
            7 => {
                let b = self.arr::<1>(what)?[0];
                if b > 1 {
                    return Err(Error::format(
                        self.path,
                        format!("{}: bool byte is {b}, not 0 or 1", what()),
                    ));
                }
                GgufValue::Bool(b == 1)
            }
            8 => GgufValue::String(self.string(what)?),
            9 => {
                if depth > 4 {
                    return Err(Error::format(
                        self.path,
                        format!("{}: arrays nested too deep", what()),
                    ));
                }
                let ety = self.u32(what)?;
                let min_each = match ety {
                    0 | 1 | 7 => 1,
                    2 | 3 => 2,
                    4..=6 => 4,
                    8 | 10..=12 => 8,
                    9 => 12,
                    other => {
                        return Err(Error::format(
                            self.path,
                            format!("{}: unknown array element type {other}", what()),
                        ))
                    }
                };
                let n = self.count(min_each, what)?;
                let mut v = Vec::with_capacity(n);
                for _ in 0..n {
                    v.push(self.value(ety, what, depth + 1)?);
                }
                GgufValue::Array(v)
            }
            10 => GgufValue::U64(self.u64(what)?),
            11 => GgufValue::I64(i64::from_le_bytes(self.arr(what)?)),
            12 => GgufValue::F64(f64::from_le_bytes(self.arr(what)?)),
            other => {
                return Err(Error::format(
                    self.path,
                    format!("{}: unknown metadata value type {other}", what()),
                ))
            }
        })
    }
}

/// A parsed GGUF file, memory-mapped.
pub struct GgufFile {
    path: PathBuf,
    mmap: memmap2::Mmap,
    pub version: u32,
    pub alignment: usize,
    data_start: usize,
    metadata: BTreeMap<String, GgufValue>,
    /// in file order
    tensors: Vec<TensorInfo>,
    by_name: BTreeMap<String, usize>,
}

impl std::fmt::Debug for GgufFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "GgufFile({}, v{}, {} tensors)",
            self.path.display(),
            self.version,
            self.tensors.len()
        )
    }
}

/// Parsed header: (version, alignment, absolute data start, metadata, tensors).
pub type GgufHeader = (
    u32,
    usize,
    usize,
    BTreeMap<String, GgufValue>,
    Vec<TensorInfo>,
);

/// Parse and validate a GGUF file's header and tensor table against the whole file `bytes`.
pub fn parse(path: &Path, bytes: &[u8]) -> Result<GgufHeader> {
    let mut c = Cursor {
        path,
        b: bytes,
        pos: 0,
    };
    let magic = c.arr::<4>(&|| "the magic".into())?;
    if &magic != b"GGUF" {
        return Err(Error::format(
            path,
            format!("not a GGUF file (magic {magic:?}, expected \"GGUF\")"),
        ));
    }
    let version = c.u32(&|| "the version".into())?;
    if !(2..=3).contains(&version) {
        return Err(Error::format(
            path,
            format!("GGUF version {version} is not supported (2 and 3 are)"),
        ));
    }
    let n_tensors = c.count(24, &|| "the tensor count".into())?;
    let n_kv = c.count(12, &|| "the metadata count".into())?;
    let mut metadata = BTreeMap::new();
    for i in 0..n_kv {
        let key = c.string(&|| format!("metadata key #{i}"))?;
        let what = || format!("metadata '{key}'");
        let ty = c.u32(&what)?;
        let v = c.value(ty, &what, 0)?;
        if metadata.insert(key.clone(), v).is_some() {
            return Err(Error::format(
                path,
                format!("metadata key '{key}' appears twice"),
            ));
        }
    }
    let alignment = match metadata.get("general.alignment") {
        None => 32,
        Some(v) => match v.as_i64() {
            Some(a) if a > 0 && (a as u64).is_power_of_two() && a <= 1 << 20 => a as usize,
            _ => {
                return Err(Error::format(
                    path,
                    format!("general.alignment {} is not a power of two", v.short()),
                ))
            }
        },
    };
    let mut raw = Vec::with_capacity(n_tensors);
    for i in 0..n_tensors {
        let name = c.string(&|| format!("tensor #{i}'s name"))?;
        let what = || format!("tensor '{name}'");
        let nd = c.u32(&what)? as usize;
        if nd > 8 {
            return Err(Error::format(
                path,
                format!("tensor '{name}' has {nd} dims (at most 8)"),
            ));
        }
        let mut ne = Vec::with_capacity(nd);
        for _ in 0..nd {
            ne.push(c.u64(&what)?);
        }
        let ty = c.u32(&what)?;
        let off = c.u64(&what)?;
        raw.push((name, ne, ty, off));
    }
    let data_start = c.pos.div_ceil(alignment) * alignment;
    if data_start > bytes.len() && n_tensors > 0 {
        return Err(Error::format(
            path,
            format!(
                "truncated: the data section starts at {data_start} but the file has {} bytes",
                bytes.len()
            ),
        ));
    }
    let data_len = bytes.len().saturating_sub(data_start);
    let mut tensors = Vec::with_capacity(raw.len());
    for (name, ne, ty, off) in raw {
        let terr = |m: String| Error::format(path, format!("tensor '{name}': {m}"));
        let dtype = stored_dtype(ty).ok_or_else(|| {
            terr(format!(
                "tensor type {} is not supported (plumb reads F32, F16, BF16, F64, I32, I64, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL, IQ4_XS)",
                ggml_type_name(ty)
            ))
        })?;
        let shape: Vec<usize> = ne
            .iter()
            .rev()
            .map(|&d| usize::try_from(d).map_err(|_| terr(format!("dim {d} too large"))))
            .collect::<Result<_>>()?;
        let numel = shape
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .ok_or_else(|| terr(format!("shape {shape:?} overflows")))?;
        if dtype.block_len() > 1 && shape.last().is_some_and(|&k| k % dtype.block_len() != 0) {
            return Err(terr(format!(
                "{dtype} rows must be a multiple of {} values, shape is {shape:?}",
                dtype.block_len()
            )));
        }
        let nbytes = dtype
            .storage_bytes(numel)
            .ok_or_else(|| terr(format!("shape {shape:?} is not whole {dtype} blocks")))?;
        let off = usize::try_from(off).map_err(|_| terr(format!("offset {off} too large")))?;
        if off % alignment != 0 {
            return Err(terr(format!("offset {off} is not aligned to {alignment}")));
        }
        if off.checked_add(nbytes).is_none_or(|e| e > data_len) {
            return Err(terr(format!(
                "data [{off}, {}) lies beyond the end of the data section ({data_len} bytes): file truncated?",
                off.saturating_add(nbytes)
            )));
        }
        tensors.push(TensorInfo {
            name,
            dtype,
            shape,
            offset: off,
            nbytes,
        });
    }
    let mut sorted: Vec<&TensorInfo> = tensors.iter().collect();
    sorted.sort_by_key(|t| t.offset);
    for w in sorted.windows(2) {
        if w[1].offset < w[0].offset + w[0].nbytes {
            return Err(Error::format(
                path,
                format!("tensors '{}' and '{}' overlap", w[0].name, w[1].name),
            ));
        }
    }
    Ok((version, alignment, data_start, metadata, tensors))
}

impl GgufFile {
    pub fn open(path: impl AsRef<Path>) -> Result<GgufFile> {
        let path = path.as_ref().to_path_buf();
        let mmap = crate::safetensors::map_file(&path)?;
        let (version, alignment, data_start, metadata, tensors) = parse(&path, &mmap)?;
        let mut by_name = BTreeMap::new();
        for (i, t) in tensors.iter().enumerate() {
            if by_name.insert(t.name.clone(), i).is_some() {
                return Err(Error::format(
                    &path,
                    format!("tensor '{}' appears twice", t.name),
                ));
            }
        }
        Ok(GgufFile {
            path,
            mmap,
            version,
            alignment,
            data_start,
            metadata,
            tensors,
            by_name,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
    pub fn metadata(&self) -> &BTreeMap<String, GgufValue> {
        &self.metadata
    }
    pub fn meta(&self, key: &str) -> Option<&GgufValue> {
        self.metadata.get(key)
    }
    /// A required metadata value, or an error naming the key.
    pub fn require(&self, key: &str) -> Result<&GgufValue> {
        self.metadata
            .get(key)
            .ok_or_else(|| Error::format(&self.path, format!("metadata '{key}' is missing")))
    }
    pub fn require_u64(&self, key: &str) -> Result<u64> {
        let v = self.require(key)?;
        v.as_i64()
            .and_then(|v| u64::try_from(v).ok())
            .ok_or_else(|| {
                Error::format(
                    &self.path,
                    format!(
                        "metadata '{key}' is {}, expected an unsigned integer",
                        v.type_name()
                    ),
                )
            })
    }
    pub fn require_f64(&self, key: &str) -> Result<f64> {
        let v = self.require(key)?;
        v.as_f64().ok_or_else(|| {
            Error::format(
                &self.path,
                format!("metadata '{key}' is {}, expected a number", v.type_name()),
            )
        })
    }
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }
    pub fn get(&self, name: &str) -> Option<&TensorInfo> {
        self.by_name.get(name).map(|&i| &self.tensors[i])
    }
    pub fn bytes(&self, name: &str) -> Result<&[u8]> {
        let t = self
            .get(name)
            .ok_or_else(|| Error::format(&self.path, format!("no tensor named '{name}'")))?;
        let start = self.data_start + t.offset;
        self.mmap
            .get(start..start + t.nbytes)
            .ok_or_else(|| Error::format(&self.path, format!("tensor '{name}': data out of range")))
    }
}
