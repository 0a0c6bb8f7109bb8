//! Plumb models: weight files (safetensors, GGUF), tokenizers, and models written once as
//! Config + load + forward (BERT family, Llama family) that run on any device and dtype.

pub mod chat;
pub mod config;
pub mod convert;
pub mod generate;
pub mod gguf;
pub mod hub;
pub mod jinja;
pub mod kquant;
pub mod models;
pub mod pipeline;
pub mod safetensors;
pub mod source;
pub mod tokenizer;
pub mod tokenizer_gguf;
pub mod weights;

pub use config::{resolve_model, HfConfig, ModelFiles};
pub use tokenizer::Tokenizer;
pub use weights::{choose_float_dtype, open_weights, WeightFile, Weights};
