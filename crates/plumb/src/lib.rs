//! Plumb: a tensor and inference runtime that runs a model on the best device a machine has, in a
//! dtype that works there — and says so before it runs.
//!
//! This facade re-exports [`plumb_core`] and adds what needs every backend compiled in:
//! run-time device discovery ([`devices`], [`device`], [`auto`]), the recommended dtype per device
//! ([`recommended_dtype`]) and the measured capability report behind `plumb doctor` ([`doctor`]).
//!
//! ```no_run
//! let dev = plumb::auto()?;                       // PLUMB_DEVICE overrides
//! let x = plumb::Tensor::randn(0.0, 1.0, [4, 8], plumb::DType::F32, 0, &dev)?;
//! let y = x.softmax(-1)?;
//! println!("{}", dev.report());                  // every emulation, upcast, fallback
//! # Ok::<(), plumb::Error>(())
//! ```

mod backends;
mod discover;
pub mod doctor;
mod env;

pub use discover::{
    auto, device, device_from_backend, devices, devices_with_profile, discovery_notes,
};
pub use doctor::{recommendation, recommended_dtype, Recommendation};
pub use plumb_core::*;
