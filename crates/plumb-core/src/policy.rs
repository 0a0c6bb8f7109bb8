//! Dtype policy and the run report: what happens on anything that is not `Native`, and the record
//! of every such decision.

use crate::caps::Support;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::op::OpFamily;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Preset {
    /// anything not native is an error, raised before the first kernel runs
    Strict,
    /// emulate or upcast on the same device; never leave the device
    Auto,
    /// compute everything in f32
    Safe,
}

/// A policy: a preset plus the opt-in CPU fallback.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Policy {
    pub preset: Preset,
    pub cpu_fallback: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            preset: Preset::Auto,
            cpu_fallback: false,
        }
    }
}

impl Policy {
    pub const STRICT: Policy = Policy {
        preset: Preset::Strict,
        cpu_fallback: false,
    };
    pub const AUTO: Policy = Policy {
        preset: Preset::Auto,
        cpu_fallback: false,
    };
    pub const SAFE: Policy = Policy {
        preset: Preset::Safe,
        cpu_fallback: false,
    };

    pub fn with_cpu_fallback(mut self, on: bool) -> Self {
        self.cpu_fallback = on;
        self
    }

    /// From `PLUMB_POLICY`, or the default.
    pub fn from_env() -> Result<Policy> {
        match std::env::var("PLUMB_POLICY") {
            Ok(s) if !s.trim().is_empty() => s.parse(),
            _ => Ok(Policy::default()),
        }
    }

    /// Decide what to do for an op whose compute dtype is `dtype`, given the device's support for
    /// it and whether the same op family runs natively in f32 there.
    ///
    /// | support | strict | auto | safe |
    /// |---|---|---|---|
    /// | native | native | native | f32 for f16/bf16/f64, else native |
    /// | emulated | error | emulated | f32 if possible, else emulated |
    /// | unsupported | error | f32 for floats, else fallback/error | same as auto |
    ///
    /// `cpu_fallback` turns the errors of auto and safe into CPU runs.
    pub fn decide(&self, dtype: DType, support: &Support, f32_native: bool) -> Decision {
        let float_not_f32 = dtype.is_float() && dtype != DType::F32;
        let refuse = |reason: String| {
            if self.cpu_fallback && self.preset != Preset::Strict {
                Decision::CpuFallback
            } else {
                Decision::Refuse { reason }
            }
        };
        match (self.preset, support) {
            (Preset::Safe, Support::Native | Support::Emulated { .. })
                if float_not_f32 && f32_native =>
            {
                Decision::Upcast { to: DType::F32 }
            }
            (_, Support::Native) => Decision::Native,
            (Preset::Strict, Support::Emulated { via }) => Decision::Refuse {
                reason: format!(
                    "{dtype} is only emulated (computed in {via}) and the policy is strict"
                ),
            },
            (_, Support::Emulated { via }) => Decision::Emulated { via: *via },
            (Preset::Strict, Support::Unsupported { reason }) => Decision::Refuse {
                reason: reason.clone(),
            },
            (_, Support::Unsupported { reason }) => {
                if float_not_f32 && f32_native {
                    Decision::Upcast { to: DType::F32 }
                } else {
                    refuse(reason.clone())
                }
            }
        }
    }

    /// [`Policy::decide`] for one op family, with the two rules that need the device's cast
    /// support (`cast`: the support of [`OpFamily::Cast`] in `dtype`):
    /// - a cast is how an upcast happens, so a cast runs as the device supports it and is never
    ///   "upcast" itself (under `safe`, an f16 → f32 cast is native, not an upcast of itself);
    /// - an upcast needs `dtype` casts on the device; without them the op is refused (or falls
    ///   back to the CPU when opted in) with the reason, before any kernel runs.
    pub fn decide_op(
        &self,
        family: OpFamily,
        dtype: DType,
        support: &Support,
        f32_native: bool,
        cast: &Support,
    ) -> Decision {
        let d = self.decide(dtype, support, f32_native);
        let unsupported = |reason: String| {
            if self.cpu_fallback && self.preset != Preset::Strict {
                Decision::CpuFallback
            } else {
                Decision::Refuse { reason }
            }
        };
        match d {
            Decision::Upcast { .. } if family == OpFamily::Cast => match support {
                Support::Native => Decision::Native,
                Support::Emulated { via } => Decision::Emulated { via: *via },
                Support::Unsupported { reason } => unsupported(reason.clone()),
            },
            Decision::Upcast { to } if !cast.is_runnable() => unsupported(format!(
                "{dtype} would be upcast to {to}, but {dtype} casts are {cast}"
            )),
            d => d,
        }
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = match self.preset {
            Preset::Strict => "strict",
            Preset::Auto => "auto",
            Preset::Safe => "safe",
        };
        f.write_str(p)?;
        if self.cpu_fallback {
            f.write_str("+cpu-fallback")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for Policy {
    type Err = Error;
    /// `strict`, `auto`, `safe`, each optionally followed by `+cpu-fallback`.
    fn from_str(s: &str) -> Result<Policy> {
        let mut parts = s.trim().split('+');
        let preset = match parts.next().map(str::trim) {
            Some("strict") => Preset::Strict,
            Some("auto") | Some("") => Preset::Auto,
            Some("safe") => Preset::Safe,
            Some(other) => {
                return Err(Error::invalid(
                    "policy",
                    format!("unknown policy preset '{other}' (strict, auto, safe, optionally +cpu-fallback)"),
                ))
            }
            None => Preset::Auto,
        };
        let mut cpu_fallback = false;
        for p in parts {
            match p.trim() {
                "cpu-fallback" | "fallback" => cpu_fallback = true,
                other => {
                    return Err(Error::invalid(
                        "policy",
                        format!("unknown policy modifier '{other}' (only +cpu-fallback)"),
                    ))
                }
            }
        }
        Ok(Policy {
            preset,
            cpu_fallback,
        })
    }
}

/// What the dispatcher did (or will do) for one op.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    Native,
    Emulated { via: DType },
    Upcast { to: DType },
    CpuFallback,
    Refuse { reason: String },
}

impl Decision {
    pub fn short(&self) -> &'static str {
        match self {
            Decision::Native => "native",
            Decision::Emulated { .. } => "emulated",
            Decision::Upcast { .. } => "upcast",
            Decision::CpuFallback => "cpu-fallback",
            Decision::Refuse { .. } => "error",
        }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Decision::Native => f.write_str("native"),
            Decision::Emulated { via } => write!(f, "emulated via {via}"),
            Decision::Upcast { to } => write!(f, "upcast to {to}"),
            Decision::CpuFallback => f.write_str("cpu fallback"),
            Decision::Refuse { reason } => write!(f, "error: {reason}"),
        }
    }
}

/// Counts of every non-trivial decision taken on a device, plus conversions (weights cast at load).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RunReport {
    /// (op, dtype, decision) → count
    pub decisions: BTreeMap<String, u64>,
    /// free-form conversion notes ("model.embed: bf16 → f32 (device has no bf16 compute)")
    pub conversions: Vec<String>,
}

impl RunReport {
    /// Record one decision; returns true the first time this (op, dtype, decision) is seen.
    pub fn record(&mut self, op: &str, dtype: DType, decision: &Decision) -> bool {
        let key = format!("{op} {dtype} {}", decision);
        let c = self.decisions.entry(key).or_insert(0);
        *c += 1;
        *c == 1
    }

    pub fn count(&self, kind: &str) -> u64 {
        self.decisions
            .iter()
            .filter(|(k, _)| k.split(' ').nth(2).is_some_and(|d| d.starts_with(kind)))
            .map(|(_, v)| v)
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.decisions.is_empty() && self.conversions.is_empty()
    }
}

impl fmt::Display for RunReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return writeln!(f, "run report: every op ran natively; no conversions");
        }
        writeln!(f, "run report:")?;
        for (k, v) in &self.decisions {
            writeln!(f, "  {v:>8} × {k}")?;
        }
        for c in &self.conversions {
            writeln!(f, "  conversion: {c}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unsupported() -> Support {
        Support::unsupported("no kernel")
    }

    #[test]
    fn presets_follow_the_documented_table() {
        let emu = Support::Emulated { via: DType::F32 };
        let s = Policy::STRICT;
        assert_eq!(
            s.decide(DType::F16, &Support::Native, true),
            Decision::Native
        );
        assert!(matches!(
            s.decide(DType::BF16, &emu, true),
            Decision::Refuse { .. }
        ));
        assert!(matches!(
            s.decide(DType::F16, &unsupported(), true),
            Decision::Refuse { .. }
        ));
        // strict never falls back, even when asked to
        let sf = s.with_cpu_fallback(true);
        assert!(matches!(
            sf.decide(DType::I64, &unsupported(), true),
            Decision::Refuse { .. }
        ));

        let a = Policy::AUTO;
        assert_eq!(
            a.decide(DType::BF16, &emu, true),
            Decision::Emulated { via: DType::F32 }
        );
        assert_eq!(
            a.decide(DType::F16, &unsupported(), true),
            Decision::Upcast { to: DType::F32 }
        );
        assert_eq!(
            a.decide(DType::F64, &unsupported(), true),
            Decision::Upcast { to: DType::F32 }
        );
        assert!(matches!(
            a.decide(DType::I64, &unsupported(), true),
            Decision::Refuse { .. }
        ));
        assert!(matches!(
            a.decide(DType::F16, &unsupported(), false),
            Decision::Refuse { .. }
        ));
        assert_eq!(
            a.with_cpu_fallback(true)
                .decide(DType::I64, &unsupported(), true),
            Decision::CpuFallback
        );

        let safe = Policy::SAFE;
        assert_eq!(
            safe.decide(DType::F16, &Support::Native, true),
            Decision::Upcast { to: DType::F32 }
        );
        assert_eq!(
            safe.decide(DType::BF16, &emu, true),
            Decision::Upcast { to: DType::F32 }
        );
        assert_eq!(
            safe.decide(DType::F32, &Support::Native, true),
            Decision::Native
        );
        assert_eq!(
            safe.decide(DType::I32, &Support::Native, true),
            Decision::Native
        );
    }

    #[test]
    fn casts_are_never_upcast_and_upcasts_need_casts() {
        let native = Support::Native;
        // safe upcasts f16 compute, but the f16 → f32 cast that does it runs natively
        assert_eq!(
            Policy::SAFE.decide_op(OpFamily::Cast, DType::F16, &native, true, &native),
            Decision::Native
        );
        assert_eq!(
            Policy::SAFE.decide_op(OpFamily::Matmul, DType::F16, &native, true, &native),
            Decision::Upcast { to: DType::F32 }
        );
        // auto would upcast f64 matmul, but the device cannot cast f64
        let d = Policy::AUTO.decide_op(
            OpFamily::Matmul,
            DType::F64,
            &unsupported(),
            true,
            &unsupported(),
        );
        assert!(
            matches!(&d, Decision::Refuse { reason } if reason.contains("f64 casts")),
            "{d}"
        );
        let d = Policy::AUTO.with_cpu_fallback(true).decide_op(
            OpFamily::Cast,
            DType::F64,
            &unsupported(),
            true,
            &unsupported(),
        );
        assert_eq!(d, Decision::CpuFallback);
    }

    #[test]
    fn policies_parse_and_print() {
        for s in [
            "strict",
            "auto",
            "safe",
            "auto+cpu-fallback",
            "safe+cpu-fallback",
        ] {
            let p: Policy = s.parse().unwrap();
            assert_eq!(p.to_string(), s);
        }
        let e = "fast".parse::<Policy>().unwrap_err().to_string();
        assert!(e.contains("fast") && e.contains("strict"), "{e}");
        assert!("auto+gpu"
            .parse::<Policy>()
            .unwrap_err()
            .to_string()
            .contains("gpu"));
    }
}
