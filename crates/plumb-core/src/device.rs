//! `Device`: a backend plus its policy, run report and (optional) op trace.

use crate::backend::Backend;
use crate::caps::{Capabilities, DeviceInfo, Support};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::op::OpFamily;
use crate::policy::{Decision, Policy, RunReport};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::{Arc, Mutex, RwLock};

/// One traced op: what the meta device (or any device with tracing on) saw.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OpRecord {
    pub op: String,
    pub family: OpFamily,
    /// the dtype the op computes in (its floating input, or the weight's for qmatmul)
    pub dtype: DType,
    pub inputs: Vec<(DType, Vec<usize>)>,
    pub output: (DType, Vec<usize>),
}

struct Inner {
    backend: Arc<dyn Backend>,
    policy: RwLock<Policy>,
    report: Mutex<RunReport>,
    trace: Mutex<Option<Vec<OpRecord>>>,
    fallback: RwLock<Option<Device>>,
}

/// A handle to a device. Cheap to clone; clones share policy, report and trace.
#[derive(Clone)]
pub struct Device {
    inner: Arc<Inner>,
}

impl fmt::Debug for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Device({})", self.id())
    }
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

impl Device {
    /// Wrap a backend with the policy from `PLUMB_POLICY` (or the default, `auto`).
    pub fn new(backend: Arc<dyn Backend>) -> Result<Device> {
        Ok(Self::with_backend_policy(backend, Policy::from_env()?))
    }

    pub fn with_backend_policy(backend: Arc<dyn Backend>, policy: Policy) -> Device {
        let tracing_on = !backend.holds_data();
        Device {
            inner: Arc::new(Inner {
                backend,
                policy: RwLock::new(policy),
                report: Mutex::new(RunReport::default()),
                trace: Mutex::new(tracing_on.then(Vec::new)),
                fallback: RwLock::new(None),
            }),
        }
    }

    /// The meta device: shapes and dtypes only, every op traced.
    pub fn meta() -> Device {
        Self::with_backend_policy(Arc::new(crate::meta::MetaBackend::new()), Policy::default())
    }

    /// A new handle on the same backend with its own policy, report and trace.
    pub fn with_policy(&self, policy: Policy) -> Device {
        let d = Self::with_backend_policy(self.inner.backend.clone(), policy);
        if let Some(fb) = self.fallback() {
            d.set_fallback(fb);
        }
        d
    }

    /// Run a sequence of ops (a model's forward) where the device issues them cheapest (see
    /// [`Backend::scope`]); the result of `f` is returned as it is.
    pub fn scope<R: Send>(&self, f: impl FnOnce() -> Result<R> + Send) -> Result<R> {
        let mut f = Some(f);
        let mut out = None;
        self.inner.backend.scope(&mut || {
            if let Some(f) = f.take() {
                out = Some(f());
            }
        });
        out.unwrap_or_else(|| {
            Err(Error::backend(
                self.id(),
                "scope",
                "the backend did not run the scoped work",
            ))
        })
    }

    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.inner.backend
    }
    pub fn info(&self) -> &DeviceInfo {
        self.inner.backend.info()
    }
    pub fn id(&self) -> &str {
        &self.inner.backend.info().id
    }
    pub fn capabilities(&self) -> &Capabilities {
        self.inner.backend.capabilities()
    }
    /// Support level of `family` in `dtype` on this device.
    pub fn supports(&self, family: OpFamily, dtype: DType) -> Support {
        self.capabilities().get(family, dtype)
    }
    pub fn holds_data(&self) -> bool {
        self.inner.backend.holds_data()
    }
    /// Same backend (handles with different policies count as the same device).
    pub fn same_device(&self, other: &Device) -> bool {
        Arc::ptr_eq(&self.inner.backend, &other.inner.backend)
    }

    pub fn policy(&self) -> Policy {
        *self.inner.policy.read().unwrap_or_else(|e| e.into_inner())
    }
    pub fn set_policy(&self, p: Policy) {
        *self.inner.policy.write().unwrap_or_else(|e| e.into_inner()) = p;
    }

    /// The device ops go to under `+cpu-fallback` (set by the facade when it creates devices).
    pub fn set_fallback(&self, cpu: Device) {
        *self
            .inner
            .fallback
            .write()
            .unwrap_or_else(|e| e.into_inner()) = Some(cpu);
    }
    pub fn fallback(&self) -> Option<Device> {
        self.inner
            .fallback
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// A copy of the run report so far.
    pub fn report(&self) -> RunReport {
        self.inner
            .report
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
    pub fn reset_report(&self) {
        *self.inner.report.lock().unwrap_or_else(|e| e.into_inner()) = RunReport::default();
    }
    /// Note a conversion (e.g. weights cast at load) in the run report.
    pub fn note_conversion(&self, note: impl Into<String>) {
        let note = note.into();
        tracing::info!(device = self.id(), "{note}");
        self.inner
            .report
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .conversions
            .push(note);
    }

    /// Start recording every op (the meta device always records).
    pub fn start_trace(&self) {
        *self.inner.trace.lock().unwrap_or_else(|e| e.into_inner()) = Some(Vec::new());
    }
    /// Take the recorded trace, leaving an empty one (recording continues).
    pub fn take_trace(&self) -> Vec<OpRecord> {
        let mut t = self.inner.trace.lock().unwrap_or_else(|e| e.into_inner());
        t.as_mut().map(std::mem::take).unwrap_or_default()
    }
    pub(crate) fn record(&self, rec: OpRecord) {
        if let Some(t) = self
            .inner
            .trace
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
        {
            t.push(rec);
        }
    }

    /// What this device's policy does for `op` of `family` computing in `dtype`. Non-native
    /// decisions are counted in the report and logged once per (op, dtype); a refusal is an error.
    pub fn decide(&self, op: &str, family: OpFamily, dtype: DType) -> Result<Decision> {
        let support = self.supports(family, dtype);
        let policy = self.policy();
        let f32_native = self.supports(family, DType::F32) == Support::Native;
        let cast = self.supports(OpFamily::Cast, dtype);
        let decision = policy.decide_op(family, dtype, &support, f32_native, &cast);
        if decision == Decision::Native {
            return Ok(decision);
        }
        if let Decision::Refuse { reason } = &decision {
            return Err(Error::PolicyRefused {
                policy: policy.to_string(),
                op: op.to_string(),
                dtype,
                device: self.id().to_string(),
                reason: reason.clone(),
            });
        }
        let first = self
            .inner
            .report
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .record(op, dtype, &decision);
        if first {
            tracing::warn!(device = self.id(), %policy, "{op} in {dtype}: {decision}");
        }
        Ok(decision)
    }
}
