//! safetensors files: memory-mapped, header validated (every offset, size and dtype checked
//! against the file), single files and sharded `model.safetensors.index.json` folders.
//!
//! Layout: 8-byte little-endian header length N, N bytes of JSON
//! (`{"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {..}}`),
//! then the data; offsets are relative to the start of the data.

use crate::source::{StoredDType, TensorInfo};
use plumb_core::{DType, Error, Result};
use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

/// Largest header we accept (the format's reference implementation uses 100 MB).
const MAX_HEADER: u64 = 100 << 20;

/// One memory-mapped safetensors file.
pub struct SafetensorsFile {
    path: PathBuf,
    mmap: memmap2::Mmap,
    data_start: usize,
    tensors: BTreeMap<String, TensorInfo>,
    metadata: BTreeMap<String, String>,
}

impl std::fmt::Debug for SafetensorsFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SafetensorsFile({}, {} tensors)",
            self.path.display(),
            self.tensors.len()
        )
    }
}

pub(crate) fn map_file(path: &Path) -> Result<memmap2::Mmap> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    // SAFETY: the map is read-only and private to this process; a file truncated underneath us
    // by another process is outside what any mmap-based loader can defend against.
    unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(path, e))
}

impl SafetensorsFile {
    /// Map and validate `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<SafetensorsFile> {
        let path = path.as_ref().to_path_buf();
        let mmap = map_file(&path)?;
        let (data_start, tensors, metadata) = parse(&path, &mmap)?;
        Ok(SafetensorsFile {
            path,
            mmap,
            data_start,
            tensors,
            metadata,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
    pub fn tensors(&self) -> &BTreeMap<String, TensorInfo> {
        &self.tensors
    }
    pub fn metadata(&self) -> &BTreeMap<String, String> {
        &self.metadata
    }
    pub fn get(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.get(name)
    }
    /// The raw bytes of tensor `name` (validated at open).
    pub fn bytes(&self, name: &str) -> Result<&[u8]> {
        let info = self.tensors.get(name).ok_or_else(|| {
            Error::format(&self.path, format!("no tensor named '{name}' in this file"))
        })?;
        let start = self.data_start + info.offset;
        self.mmap
            .get(start..start + info.nbytes)
            .ok_or_else(|| Error::format(&self.path, format!("tensor '{name}': data out of range")))
    }
}

/// Parse and validate a safetensors header against the whole file `bytes`.
/// Returns (absolute data start, tensors with offsets relative to the data start, metadata).
#[allow(clippy::type_complexity)]
pub fn parse(
    path: &Path,
    bytes: &[u8],
) -> Result<(
    usize,
    BTreeMap<String, TensorInfo>,
    BTreeMap<String, String>,
)> {
    let err = |msg: String| Error::format(path, msg);
    if bytes.len() < 8 {
        return Err(err(format!(
            "not a safetensors file: {} bytes, the 8-byte header length is missing",
            bytes.len()
        )));
    }
    let mut n8 = [0u8; 8];
    n8.copy_from_slice(&bytes[..8]);
    let n = u64::from_le_bytes(n8);
    if n > MAX_HEADER {
        return Err(err(format!(
            "header length {n} is larger than the {MAX_HEADER}-byte limit (not a safetensors file?)"
        )));
    }
    let n = n as usize;
    let Some(header) = bytes.get(8..8 + n) else {
        return Err(err(format!(
            "truncated: the header claims {n} bytes but the file has {} after the length",
            bytes.len() - 8
        )));
    };
    let json: serde_json::Value = serde_json::from_slice(header)
        .map_err(|e| err(format!("header is not valid JSON: {e}")))?;
    let serde_json::Value::Object(map) = json else {
        return Err(err("header is not a JSON object".into()));
    };
    let data_start = 8 + n;
    let data_len = bytes.len() - data_start;
    let mut tensors = BTreeMap::new();
    let mut metadata = BTreeMap::new();
    let mut ranges: Vec<(usize, usize, String)> = Vec::new();
    for (name, v) in map {
        if name == "__metadata__" {
            let serde_json::Value::Object(m) = v else {
                return Err(err("__metadata__ is not an object".into()));
            };
            for (k, v) in m {
                let s = match v {
                    serde_json::Value::String(s) => s,
                    other => other.to_string(),
                };
                metadata.insert(k, s);
            }
            continue;
        }
        let terr = |msg: String| err(format!("tensor '{name}': {msg}"));
        let dtype_s = v
            .get("dtype")
            .and_then(|d| d.as_str())
            .ok_or_else(|| terr("missing \"dtype\"".into()))?;
        let dtype = DType::from_safetensors_name(dtype_s)
            .map_err(|_| terr(format!("unsupported dtype \"{dtype_s}\"")))?;
        let shape: Vec<usize> = v
            .get("shape")
            .and_then(|s| s.as_array())
            .ok_or_else(|| terr("missing \"shape\"".into()))?
            .iter()
            .map(|d| d.as_u64().map(|d| d as usize))
            .collect::<Option<_>>()
            .ok_or_else(|| terr("shape has a non-integer entry".into()))?;
        let offs: Vec<usize> = v
            .get("data_offsets")
            .and_then(|s| s.as_array())
            .ok_or_else(|| terr("missing \"data_offsets\"".into()))?
            .iter()
            .map(|d| d.as_u64().map(|d| d as usize))
            .collect::<Option<_>>()
            .ok_or_else(|| terr("data_offsets has a non-integer entry".into()))?;
        let [begin, end] = offs[..] else {
            return Err(terr(format!(
                "data_offsets must be [begin, end], got {offs:?}"
            )));
        };
        let numel = shape
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .ok_or_else(|| terr(format!("shape {shape:?} overflows")))?;
        let need = numel
            .checked_mul(dtype.block_bytes())
            .ok_or_else(|| terr(format!("shape {shape:?} overflows")))?;
        if end < begin || end - begin != need {
            return Err(terr(format!(
                "{dtype} {shape:?} needs {need} bytes but data_offsets [{begin}, {end}] span {}",
                end.wrapping_sub(begin) as isize
            )));
        }
        if end > data_len {
            return Err(terr(format!(
                "data [{begin}, {end}) lies beyond the end of the data section ({data_len} bytes): file truncated?"
            )));
        }
        ranges.push((begin, end, name.clone()));
        tensors.insert(
            name.clone(),
            TensorInfo {
                name,
                dtype: StoredDType::Plain(dtype),
                shape,
                offset: begin,
                nbytes: need,
            },
        );
    }
    ranges.sort();
    for w in ranges.windows(2) {
        if w[1].0 < w[0].1 {
            return Err(err(format!(
                "tensors '{}' and '{}' overlap in the data section",
                w[0].2, w[1].2
            )));
        }
    }
    Ok((data_start, tensors, metadata))
}

/// A model's safetensors: one file, or the shards named by `model.safetensors.index.json`.
#[derive(Debug)]
pub struct SafetensorsSet {
    files: Vec<SafetensorsFile>,
    /// tensor name → index into `files`
    index: BTreeMap<String, usize>,
}

impl SafetensorsSet {
    /// Open a single file, an index json, or a folder (index json, else model.safetensors, else
    /// every *.safetensors in it).
    pub fn open(path: impl AsRef<Path>) -> Result<SafetensorsSet> {
        let path = path.as_ref();
        if path.is_dir() {
            let idx = path.join("model.safetensors.index.json");
            if idx.is_file() {
                return Self::open_index(&idx);
            }
            let single = path.join("model.safetensors");
            if single.is_file() {
                return Self::from_files(vec![SafetensorsFile::open(single)?]);
            }
            let mut files: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|e| Error::io(path, e))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "safetensors"))
                .collect();
            files.sort();
            if files.is_empty() {
                return Err(Error::format(path, "no *.safetensors file in this folder"));
            }
            return Self::from_files(
                files
                    .iter()
                    .map(SafetensorsFile::open)
                    .collect::<Result<_>>()?,
            );
        }
        if path.extension().is_some_and(|x| x == "json") {
            return Self::open_index(path);
        }
        Self::from_files(vec![SafetensorsFile::open(path)?])
    }

    fn open_index(idx: &Path) -> Result<SafetensorsSet> {
        let text = std::fs::read_to_string(idx).map_err(|e| Error::io(idx, e))?;
        let v: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| Error::format(idx, format!("not valid JSON: {e}")))?;
        let map = v
            .get("weight_map")
            .and_then(|m| m.as_object())
            .ok_or_else(|| Error::format(idx, "no \"weight_map\" object"))?;
        let dir = idx.parent().unwrap_or(Path::new("."));
        let mut shard_names: Vec<String> = Vec::new();
        let mut wanted: BTreeMap<String, String> = BTreeMap::new();
        for (t, f) in map {
            let f = f
                .as_str()
                .ok_or_else(|| Error::format(idx, format!("weight_map['{t}'] is not a string")))?;
            if f.contains("..") || Path::new(f).is_absolute() {
                return Err(Error::format(
                    idx,
                    format!("shard name '{f}' leaves the folder"),
                ));
            }
            if !shard_names.iter().any(|s| s == f) {
                shard_names.push(f.to_string());
            }
            wanted.insert(t.clone(), f.to_string());
        }
        shard_names.sort();
        let files: Vec<SafetensorsFile> = shard_names
            .iter()
            .map(|s| SafetensorsFile::open(dir.join(s)))
            .collect::<Result<_>>()?;
        let set = Self::from_files(files)?;
        for (t, f) in &wanted {
            let ok = set
                .index
                .get(t)
                .is_some_and(|&i| set.files[i].path.ends_with(f));
            if !ok {
                return Err(Error::format(
                    idx,
                    format!("the index puts '{t}' in {f}, but that shard does not hold it"),
                ));
            }
        }
        Ok(set)
    }

    fn from_files(files: Vec<SafetensorsFile>) -> Result<SafetensorsSet> {
        let mut index = BTreeMap::new();
        for (i, f) in files.iter().enumerate() {
            for name in f.tensors.keys() {
                if let Some(prev) = index.insert(name.clone(), i) {
                    return Err(Error::format(
                        &f.path,
                        format!("tensor '{name}' is also in {}", files[prev].path.display()),
                    ));
                }
            }
        }
        Ok(SafetensorsSet { files, index })
    }

    pub fn files(&self) -> &[SafetensorsFile] {
        &self.files
    }
    pub fn names(&self) -> impl Iterator<Item = &String> {
        self.index.keys()
    }
    pub fn info(&self, name: &str) -> Option<(&TensorInfo, &Path)> {
        let &i = self.index.get(name)?;
        let f = &self.files[i];
        Some((f.tensors.get(name)?, f.path()))
    }
    pub fn bytes(&self, name: &str) -> Result<(&[u8], &Path)> {
        let &i = self.index.get(name).ok_or_else(|| {
            Error::format(
                self.files
                    .first()
                    .map(|f| f.path())
                    .unwrap_or(Path::new("")),
                format!("no tensor named '{name}'"),
            )
        })?;
        let f = &self.files[i];
        Ok((f.bytes(name)?, f.path()))
    }
}
