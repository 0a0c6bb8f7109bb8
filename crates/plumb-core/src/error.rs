//! The one error type of Plumb. Every variant names what went wrong: the op, dtype(s),
//! shape(s), device or file.

use crate::dtype::DType;
use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{op}: shape mismatch: {lhs:?} vs {rhs:?}{}", note_suffix(.note))]
    ShapeMismatch {
        op: &'static str,
        lhs: Vec<usize>,
        rhs: Vec<usize>,
        note: String,
    },

    #[error("{op}: dtype mismatch: {lhs} vs {rhs}")]
    DTypeMismatch {
        op: &'static str,
        lhs: DType,
        rhs: DType,
    },

    #[error("{op}: dtype {dtype} is not supported on {device}: {reason}")]
    UnsupportedDType {
        op: String,
        dtype: DType,
        device: String,
        reason: String,
    },

    #[error("{op}: {what} {index} is out of range for {bound} (shape {shape:?})")]
    OutOfRange {
        op: &'static str,
        what: &'static str,
        index: i64,
        bound: usize,
        shape: Vec<usize>,
    },

    #[error("{op}: invalid argument: {msg}")]
    InvalidArgument { op: &'static str, msg: String },

    #[error("{op}: tensors are on different devices: {lhs} and {rhs}")]
    DeviceMismatch {
        op: &'static str,
        lhs: String,
        rhs: String,
    },

    #[error("unknown dtype '{name}' ({context})")]
    UnknownDType { name: String, context: String },

    #[error("unknown device '{name}'; devices on this machine: {available}")]
    UnknownDevice { name: String, available: String },

    #[error("{device}: out of memory allocating {bytes} bytes for {op} ({dtype}, shape {shape:?}){}", note_suffix(.note))]
    OutOfMemory {
        device: String,
        op: String,
        dtype: DType,
        shape: Vec<usize>,
        bytes: u64,
        note: String,
    },

    #[error("{device}: {op}: a {bytes}-byte buffer exceeds the device limit {limit_name} = {limit} bytes")]
    LimitExceeded {
        device: String,
        op: String,
        bytes: u64,
        limit_name: &'static str,
        limit: u64,
    },

    #[error("{device}: backend error in {op}: {msg}")]
    Backend {
        device: String,
        op: String,
        msg: String,
    },

    #[error("{}: {msg}", .path.display())]
    Format { path: PathBuf, msg: String },

    #[error("{}: {source}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("policy {policy} refuses {op} in {dtype} on {device}: {reason}")]
    PolicyRefused {
        policy: String,
        op: String,
        dtype: DType,
        device: String,
        reason: String,
    },
}

fn note_suffix(note: &str) -> String {
    if note.is_empty() {
        String::new()
    } else {
        format!(" ({note})")
    }
}

impl Error {
    pub fn shape(op: &'static str, lhs: &[usize], rhs: &[usize], note: impl Into<String>) -> Self {
        Error::ShapeMismatch {
            op,
            lhs: lhs.to_vec(),
            rhs: rhs.to_vec(),
            note: note.into(),
        }
    }
    pub fn invalid(op: &'static str, msg: impl Into<String>) -> Self {
        Error::InvalidArgument {
            op,
            msg: msg.into(),
        }
    }
    pub fn format(path: impl Into<PathBuf>, msg: impl Into<String>) -> Self {
        Error::Format {
            path: path.into(),
            msg: msg.into(),
        }
    }
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
    pub fn backend(
        device: impl Into<String>,
        op: impl Into<String>,
        msg: impl Into<String>,
    ) -> Self {
        Error::Backend {
            device: device.into(),
            op: op.into(),
            msg: msg.into(),
        }
    }
    /// Integer division by zero (found in the divisor before any kernel runs, on every device).
    pub fn int_div_by_zero(dtype: DType, shape: &[usize], flat_index: usize) -> Self {
        Error::invalid(
            "div",
            format!(
                "integer division by zero ({dtype} divisor of shape {shape:?} is 0 at flat index \
                 {flat_index})"
            ),
        )
    }
    /// An upload whose byte count does not match `numel` elements of `dtype`.
    pub fn upload_size(dtype: DType, numel: usize, got: usize) -> Self {
        Error::invalid(
            "upload",
            format!(
                "{numel} {dtype} elements need {} bytes, got {got}",
                dtype.storage_bytes(numel)
            ),
        )
    }
}
