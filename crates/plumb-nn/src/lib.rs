//! Plumb models: weight files (safetensors, GGUF), tokenizers, and models written once as
//! Config + load + forward (BERT family, Llama family) that run on any device and dtype.

pub mod gguf;
pub mod kquant;
pub mod safetensors;
pub mod source;
