//! Plumb core: tensors, dtypes, layouts, ops, capabilities, policy, plans and the meta device.
//! Backends implement [`Backend`]; users go through the `plumb` facade crate.

pub mod backend;
pub mod caps;
pub mod convert;
pub mod device;
pub mod dtype;
pub mod error;
pub mod math;
pub mod meta;
mod nn_ops;
pub mod op;
mod ops;
pub mod plan;
pub mod policy;
pub mod quant;
pub mod rng;
pub mod shape;
pub mod tensor;

pub use backend::{
    compose_matmul_bias, compose_matmul_bias_act, compose_matmul_bias_add, AttentionArgs, Backend,
    BackendStorage, ByteCounter, StorageRef, View,
};
pub use caps::{Capabilities, DeviceInfo, DeviceKind, Limits, Support};
pub use device::{Device, OpRecord};
pub use dtype::{DType, Element};
pub use error::{Error, Result};
pub use op::{BinaryOp, CmpOp, OpFamily, ReduceOp, UnaryOp};
pub use plan::{Conversion, Plan, PlannedOp};
pub use policy::{Decision, Policy, Preset, RunReport};
pub use shape::Layout;
pub use tensor::Tensor;
