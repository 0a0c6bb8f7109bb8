//! Models written once as Config + load + forward, for float and quantized weights alike.

pub mod bert;
pub mod llama;
pub mod rope;
