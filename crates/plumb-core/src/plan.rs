//! Plans: an op trace (from the meta device) checked against a target device's capabilities under
//! a policy, before anything runs on the target.
//!
//! A [`Plan`] holds, per traced op, the support the target declares and the decision the policy
//! takes ([`Policy::decide`], the same rule the dispatcher applies at run time); counts per
//! decision; the dtype conversions the decisions imply; a peak memory estimate; and a verdict.
//!
//! **Memory estimate** (deliberately simple; an estimate, not a promise): the trace has no tensor
//! identities or lifetimes, so the plan takes the largest *working set of one op* — its inputs,
//! the converted copies an upcast makes, and its output, in bytes of the dtypes they are stored
//! in — and adds the *resident* bytes the caller declares with [`Plan::with_resident`] (weights,
//! KV cache). Inputs that are resident tensors themselves are not counted again
//! ([`Plan::build_with_resident`]). `crates/plumb-nn/tests/plan_memory.rs` checks the estimate
//! against a measured peak. The verdict is an error when that exceeds the device's memory, or
//! when one tensor exceeds the device's largest buffer.

use crate::caps::Support;
use crate::device::{Device, OpRecord};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::op::OpFamily;
use crate::policy::{Decision, Policy};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// One traced op with the target's support and the policy's decision.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlannedOp {
    pub op: String,
    pub family: OpFamily,
    pub dtype: DType,
    pub inputs: Vec<(DType, Vec<usize>)>,
    pub output: (DType, Vec<usize>),
    pub support: Support,
    pub decision: Decision,
}

/// A dtype conversion the plan implies (an upcast's input copies, a CPU fallback's round trip),
/// aggregated over identical (op, from, to, shape).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conversion {
    pub op: String,
    pub from: DType,
    pub to: DType,
    /// `"upcast"` (same device, another dtype) or `"cpu-fallback"` (copied to the CPU and back)
    pub why: String,
    pub shape: Vec<usize>,
    pub bytes: u64,
    pub count: u64,
}

/// The plan for running a trace on one device under one policy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub device: String,
    pub device_name: String,
    pub policy: String,
    pub ops: Vec<PlannedOp>,
    /// decision kind (`native`, `emulated`, `upcast`, `cpu-fallback`, `error`) → number of ops
    pub counts: BTreeMap<String, u64>,
    pub conversions: Vec<Conversion>,
    /// bytes the caller says stay resident (weights, caches); see the module docs
    pub resident_bytes: u64,
    /// the largest one-op working set, in bytes
    pub largest_op_bytes: u64,
    /// `resident_bytes + largest_op_bytes`
    pub peak_bytes: u64,
    pub device_memory_bytes: Option<u64>,
    pub max_buffer_bytes: u64,
    /// the largest single tensor in the trace, in bytes
    pub largest_tensor_bytes: u64,
    /// true when nothing is refused and the memory estimate fits
    pub ok: bool,
    /// one line: what happens, or the first reason it cannot run
    pub verdict: String,
}

fn bytes_of(dtype: DType, shape: &[usize]) -> u64 {
    dtype.storage_bytes(shape.iter().product()) as u64
}

/// `1.5 MiB`-style sizes.
pub fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

fn shape_str(dtype: DType, shape: &[usize]) -> String {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    format!("{dtype}[{}]", dims.join(","))
}

impl Plan {
    /// Check every op of `trace` against `target`'s capabilities under `policy`.
    pub fn build(trace: &[OpRecord], target: &Device, policy: Policy) -> Plan {
        Self::build_with_resident(trace, target, policy, &[])
    }

    /// As [`Plan::build`], where `resident` lists the (dtype, shape) of tensors that stay
    /// resident (the weights, counted by [`Plan::with_resident`]): an op input of such a dtype
    /// and shape is taken to be one of them and left out of that op's working set, so weights
    /// are not counted twice. (The trace has no tensor identities; an activation of exactly a
    /// weight's shape is left out too.)
    pub fn build_with_resident(
        trace: &[OpRecord],
        target: &Device,
        policy: Policy,
        resident: &[(DType, Vec<usize>)],
    ) -> Plan {
        let caps = target.capabilities();
        let mut ops = Vec::with_capacity(trace.len());
        let mut counts: BTreeMap<String, u64> = BTreeMap::new();
        let mut conv: BTreeMap<(String, DType, DType, String, Vec<usize>), u64> = BTreeMap::new();
        let mut largest_op = 0u64;
        let mut largest_tensor = 0u64;
        for rec in trace {
            let support = caps.get(rec.family, rec.dtype);
            let f32_native = caps.get(rec.family, DType::F32) == Support::Native;
            let cast = caps.get(OpFamily::Cast, rec.dtype);
            let decision = policy.decide_op(rec.family, rec.dtype, &support, f32_native, &cast);
            *counts.entry(decision.short().to_string()).or_insert(0) += 1;

            let mut working = bytes_of(rec.output.0, &rec.output.1);
            largest_tensor = largest_tensor.max(working);
            for (dt, shape) in &rec.inputs {
                let b = bytes_of(*dt, shape);
                if !resident.iter().any(|(rd, rs)| rd == dt && rs == shape) {
                    working += b;
                }
                largest_tensor = largest_tensor.max(b);
                match &decision {
                    Decision::Upcast { to } if *dt == rec.dtype => {
                        let nb = bytes_of(*to, shape);
                        working += nb;
                        largest_tensor = largest_tensor.max(nb);
                        *conv
                            .entry((rec.op.clone(), *dt, *to, "upcast".into(), shape.clone()))
                            .or_insert(0) += 1;
                    }
                    Decision::CpuFallback => {
                        *conv
                            .entry((
                                rec.op.clone(),
                                *dt,
                                *dt,
                                "cpu-fallback".into(),
                                shape.clone(),
                            ))
                            .or_insert(0) += 1;
                    }
                    _ => {}
                }
            }
            largest_op = largest_op.max(working);
            ops.push(PlannedOp {
                op: rec.op.clone(),
                family: rec.family,
                dtype: rec.dtype,
                inputs: rec.inputs.clone(),
                output: rec.output.clone(),
                support,
                decision,
            });
        }
        let conversions = conv
            .into_iter()
            .map(|((op, from, to, why, shape), count)| Conversion {
                bytes: bytes_of(to, &shape),
                op,
                from,
                to,
                why,
                shape,
                count,
            })
            .collect();
        let mut plan = Plan {
            device: target.id().to_string(),
            device_name: target.info().name.clone(),
            policy: policy.to_string(),
            ops,
            counts,
            conversions,
            resident_bytes: 0,
            largest_op_bytes: largest_op,
            peak_bytes: largest_op,
            device_memory_bytes: caps.limits.memory_bytes,
            max_buffer_bytes: caps.limits.max_buffer_bytes,
            largest_tensor_bytes: largest_tensor,
            ok: true,
            verdict: String::new(),
        };
        plan.settle();
        plan
    }

    /// Declare bytes that stay resident while the trace runs (weights, caches) and re-judge.
    pub fn with_resident(mut self, bytes: u64) -> Plan {
        self.resident_bytes = bytes;
        self.settle();
        self
    }

    /// Number of ops with this decision kind (`native`, `emulated`, `upcast`, `cpu-fallback`,
    /// `error`).
    pub fn count(&self, kind: &str) -> u64 {
        self.counts.get(kind).copied().unwrap_or(0)
    }

    /// The first refused op, if any.
    pub fn first_refusal(&self) -> Option<&PlannedOp> {
        self.ops
            .iter()
            .find(|o| matches!(o.decision, Decision::Refuse { .. }))
    }

    fn settle(&mut self) {
        self.peak_bytes = self.resident_bytes.saturating_add(self.largest_op_bytes);
        let n = self.ops.len();
        let errors = self.count("error");
        if let Some(op) = self.first_refusal() {
            let reason = match &op.decision {
                Decision::Refuse { reason } => reason.clone(),
                _ => String::new(),
            };
            let verdict = format!(
                "error: {errors} of {n} ops cannot run on {} under policy {}; first: {} in {} ({reason})",
                self.device, self.policy, op.op, op.dtype
            );
            self.ok = false;
            self.verdict = verdict;
            return;
        }
        if self.max_buffer_bytes > 0 && self.largest_tensor_bytes > self.max_buffer_bytes {
            self.ok = false;
            self.verdict = format!(
                "error: a {} tensor exceeds {}'s largest buffer ({})",
                human_bytes(self.largest_tensor_bytes),
                self.device,
                human_bytes(self.max_buffer_bytes)
            );
            return;
        }
        if let Some(mem) = self.device_memory_bytes {
            if self.peak_bytes > mem {
                self.ok = false;
                self.verdict = format!(
                    "error: needs about {} but {} has {}",
                    human_bytes(self.peak_bytes),
                    self.device,
                    human_bytes(mem)
                );
                return;
            }
        }
        self.ok = true;
        let kinds = ["native", "emulated", "upcast", "cpu-fallback"];
        let parts: Vec<String> = kinds
            .iter()
            .filter(|k| self.count(k) > 0)
            .map(|k| format!("{} {k}", self.count(k)))
            .collect();
        let mem = match self.device_memory_bytes {
            Some(m) => format!("of {}", human_bytes(m)),
            None => "(device memory unknown)".into(),
        };
        self.verdict = format!(
            "ok: {n} ops run on {} under policy {} ({}); peak memory about {} {mem}",
            self.device,
            self.policy,
            if parts.is_empty() {
                "nothing to run".into()
            } else {
                parts.join(", ")
            },
            human_bytes(self.peak_bytes),
        );
    }

    /// `Ok(())` when the plan can run; otherwise the error the run would hit first, raised
    /// before anything touches the device.
    pub fn check(&self) -> Result<()> {
        if self.ok {
            return Ok(());
        }
        if let Some(op) = self.first_refusal() {
            let reason = match &op.decision {
                Decision::Refuse { reason } => reason.clone(),
                _ => String::new(),
            };
            return Err(Error::PolicyRefused {
                policy: self.policy.clone(),
                op: op.op.clone(),
                dtype: op.dtype,
                device: self.device.clone(),
                reason,
            });
        }
        if self.max_buffer_bytes > 0 && self.largest_tensor_bytes > self.max_buffer_bytes {
            return Err(Error::LimitExceeded {
                device: self.device.clone(),
                op: "plan".into(),
                bytes: self.largest_tensor_bytes,
                limit_name: "max_buffer_bytes",
                limit: self.max_buffer_bytes,
            });
        }
        Err(Error::LimitExceeded {
            device: self.device.clone(),
            op: "plan".into(),
            bytes: self.peak_bytes,
            limit_name: "memory_bytes",
            limit: self.device_memory_bytes.unwrap_or(0),
        })
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }
}

impl fmt::Display for Plan {
    /// A table of (op, dtype, decision) groups in first-seen order with counts, then the
    /// conversions, memory and the verdict.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "plan: {} ops on {} ({}) under policy {}",
            self.ops.len(),
            self.device,
            self.device_name,
            self.policy
        )?;
        let mut groups: Vec<(String, String, String, String, u64)> = Vec::new();
        for o in &self.ops {
            let key = (
                o.op.clone(),
                o.family.name().to_string(),
                o.dtype.name().to_string(),
                o.decision.to_string(),
            );
            match groups
                .iter_mut()
                .find(|g| (&g.0, &g.1, &g.2, &g.3) == (&key.0, &key.1, &key.2, &key.3))
            {
                Some(g) => g.4 += 1,
                None => groups.push((key.0, key.1, key.2, key.3, 1)),
            }
        }
        writeln!(
            f,
            "  {:<16} {:<12} {:<6} {:>6}  decision",
            "op", "family", "dtype", "count"
        )?;
        for (op, fam, dt, dec, n) in &groups {
            writeln!(f, "  {op:<16} {fam:<12} {dt:<6} {n:>6}  {dec}")?;
        }
        let counts: Vec<String> = self
            .counts
            .iter()
            .map(|(k, v)| format!("{v} {k}"))
            .collect();
        writeln!(f, "decisions: {}", counts.join(", "))?;
        if self.conversions.is_empty() {
            writeln!(f, "conversions while running (upcasts, fallbacks): none")?;
        } else {
            writeln!(f, "conversions while running (upcasts, fallbacks):")?;
            for c in &self.conversions {
                let target = if c.why == "cpu-fallback" {
                    "cpu and back".to_string()
                } else {
                    c.to.to_string()
                };
                writeln!(
                    f,
                    "  {:>5} × {}: {} → {target} ({}, {} each)",
                    c.count,
                    c.op,
                    shape_str(c.from, &c.shape),
                    c.why,
                    human_bytes(c.bytes)
                )?;
            }
        }
        let mem = self
            .device_memory_bytes
            .map(human_bytes)
            .unwrap_or_else(|| "unknown".into());
        writeln!(
            f,
            "memory: peak about {} (resident {} + largest op {}); device memory {mem}",
            human_bytes(self.peak_bytes),
            human_bytes(self.resident_bytes),
            human_bytes(self.largest_op_bytes)
        )?;
        writeln!(f, "verdict: {}", self.verdict)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Tensor;

    fn trace_f16() -> Vec<OpRecord> {
        let meta = Device::meta();
        let x = Tensor::zeros([2, 3, 8], DType::F16, &meta).unwrap();
        let w = Tensor::zeros([8, 4], DType::F16, &meta).unwrap();
        let _ = x.matmul(&w).unwrap().softmax(-1).unwrap();
        meta.take_trace()
    }

    #[test]
    fn plan_on_meta_is_all_native_and_reports_memory() {
        let plan = Plan::build(&trace_f16(), &Device::meta(), Policy::STRICT);
        assert!(plan.ok, "{plan}");
        assert_eq!(plan.count("native"), 2);
        // matmul: x 2·3·8·2 + broadcast w 2·8·4·2 + out 2·3·4·2 bytes
        assert_eq!(plan.largest_op_bytes, 96 + 128 + 48);
        assert!(plan.verdict.starts_with("ok: 2 ops"), "{}", plan.verdict);
        let p2 = plan.clone().with_resident(1000);
        assert_eq!(p2.peak_bytes, 1000 + 272);
        let json: Plan = serde_json::from_str(&plan.to_json()).unwrap();
        assert_eq!(json, plan);
        plan.check().unwrap();
    }

    fn rec(op: &str, family: OpFamily, dtype: DType) -> OpRecord {
        OpRecord {
            op: op.into(),
            family,
            dtype,
            inputs: vec![(dtype, vec![32])],
            output: (dtype, vec![32]),
        }
    }

    #[test]
    fn strict_refuses_and_fallback_is_counted() {
        // the meta device declares no elementwise kernels for block-quantized dtypes
        let trace = vec![
            rec("add", OpFamily::Elementwise, DType::F32),
            rec("add", OpFamily::Elementwise, DType::Q8_0),
        ];
        let meta = Device::meta();
        let strict = Plan::build(&trace, &meta, Policy::STRICT);
        assert!(!strict.ok);
        assert_eq!(strict.count("error"), 1);
        assert!(
            strict.verdict.contains("1 of 2 ops") && strict.verdict.contains("q8_0"),
            "{}",
            strict.verdict
        );
        let e = strict.check().unwrap_err();
        assert!(matches!(e, Error::PolicyRefused { .. }), "{e}");
        assert!(e.to_string().contains("add in q8_0"), "{e}");
        assert!(strict.to_string().contains("verdict: error"), "{strict}");

        let fb = Plan::build(&trace, &meta, Policy::AUTO.with_cpu_fallback(true));
        assert!(fb.ok, "{fb}");
        assert_eq!(fb.count("cpu-fallback"), 1);
        assert_eq!(fb.conversions.len(), 1);
        assert_eq!(fb.conversions[0].why, "cpu-fallback");
        assert!(fb.to_string().contains("cpu and back"), "{fb}");
    }
}
