//! RoPE parameters of a Llama checkpoint: the base, the scaling of its frequencies (none, linear,
//! Llama 3.1's wavelength bands, YaRN, or GGUF's per-frequency divisors), and the inverse
//! frequencies (and YaRN's cos/sin factor) computed from them once at load.
//!
//! Hugging Face configs carry the scaling in `rope_scaling` (or `rope_parameters`, as
//! transformers 5 saves them), keyed by `rope_type` or the legacy `type`. llama.cpp's GGUF files
//! carry `{arch}.rope.scaling.type` / `.factor` and, for Llama 3.1, a tensor `rope_freqs.weight`
//! of divisors: frequency i is `base^(-2i/d) / rope_freqs[i]`.

use crate::config::HfConfig;
use crate::gguf::GgufFile;
use plumb_core::{Error, Result};
use serde_json::{json, Value};
use std::path::Path;

/// The GGUF tensor of per-frequency divisors (llama.cpp's `LLM_TENSOR_ROPE_FREQS`).
pub const ROPE_FREQS: &str = "rope_freqs.weight";

/// How the RoPE frequencies are rescaled for a longer context.
#[derive(Clone, Debug, PartialEq)]
pub enum RopeScaling {
    /// plain RoPE (`default`, or no scaling given)
    None,
    /// positions divided by `factor` (every inverse frequency divided by it)
    Linear { factor: f64 },
    /// Llama 3.1: low frequencies (wavelength above `original / low_freq_factor`) divided by
    /// `factor`, high ones (below `original / high_freq_factor`) kept, the band between blended
    Llama3 {
        factor: f64,
        low_freq_factor: f64,
        high_freq_factor: f64,
        original_max_position_embeddings: f64,
    },
    /// GGUF: frequency i divided by `rope_freqs.weight[i]` (read from the weights at load) and
    /// by a linear `factor` (1 when the file has no linear scaling)
    Divisors { factor: f64 },
    /// YaRN (Qwen2.5's long context, among others): frequencies that turn fewer than
    /// `beta_slow` times over the original context are divided by `factor`, those that turn more
    /// than `beta_fast` times are kept, a linear ramp over the dimensions between; cos and sin
    /// are multiplied by `attention_factor` (transformers' `attention_scaling`, llama.cpp's
    /// mscale)
    Yarn {
        factor: f64,
        original_max_position_embeddings: f64,
        beta_fast: f64,
        beta_slow: f64,
        attention_factor: f64,
        /// the ramp's ends rounded outward to whole dimensions (transformers' `truncate`,
        /// default true; llama.cpp always)
        truncate: bool,
    },
    /// Dynamic NTK: plain RoPE up to `max_position_embeddings`; past it, for a sequence of
    /// `len` positions the base grows to `theta · (factor·len/max − (factor − 1))^(d/(d−2))`
    /// ([`dynamic_inv_freq`]), recomputed on every forward from the positions it reaches (as a
    /// freshly loaded transformers model does; one that has seen a longer sequence keeps that
    /// longer one's frequencies until the sequence drops below `max_position_embeddings`)
    Dynamic {
        factor: f64,
        max_position_embeddings: f64,
    },
}

impl RopeScaling {
    /// Dynamic NTK scaling's factor and the context past which it applies; `None` for the
    /// other kinds, whose frequencies do not depend on the sequence length.
    pub fn dynamic(&self) -> Option<(f64, f64)> {
        match self {
            RopeScaling::Dynamic {
                factor,
                max_position_embeddings,
            } => Some((*factor, *max_position_embeddings)),
            _ => None,
        }
    }

    /// The factor cos and sin are multiplied by (YaRN's attention factor; 1 otherwise).
    pub fn attention_scaling(&self) -> f64 {
        match self {
            RopeScaling::Yarn {
                attention_factor, ..
            } => *attention_factor,
            _ => 1.0,
        }
    }
}

/// YaRN's `0.1 · mscale · ln(factor) + 1` (1 for a factor of at most 1).
fn yarn_mscale(factor: f64, mscale: f64) -> f64 {
    if factor <= 1.0 {
        1.0
    } else {
        0.1 * mscale * factor.ln() + 1.0
    }
}

fn positive(path: &Path, what: &str, v: Option<f64>) -> Result<f64> {
    match v {
        Some(x) if x.is_finite() && x > 0.0 => Ok(x),
        Some(x) => Err(Error::format(
            path,
            format!("RoPE {what} is {x}, expected a positive number"),
        )),
        None => Err(Error::format(
            path,
            format!("RoPE scaling needs '{what}', which is missing or not a number"),
        )),
    }
}

/// RoPE base and scaling of a Hugging Face config.json. `rope_scaling` wins over
/// `rope_parameters` (as in transformers); the base is the dict's `rope_theta`, else the
/// top-level one, else 10000. Partial rotary embeddings are refused.
pub fn from_hf(c: &HfConfig, max_position_embeddings: usize) -> Result<(f64, RopeScaling)> {
    let path = c.path.as_path();
    let dict = ["rope_scaling", "rope_parameters"]
        .iter()
        .filter_map(|k| c.json.get(*k))
        .find(|v| v.as_object().is_some_and(|o| !o.is_empty()));
    let get = |k: &str| dict.and_then(|d| d.get(k)).filter(|v| !v.is_null());
    let num = |k: &str| get(k).and_then(Value::as_f64);
    let theta = num("rope_theta").unwrap_or_else(|| c.f64_or("rope_theta", 10000.0));
    let theta = positive(path, "rope_theta", Some(theta))?;
    let partial = num("partial_rotary_factor")
        .or_else(|| c.json.get("partial_rotary_factor").and_then(Value::as_f64));
    if let Some(p) = partial.filter(|&p| p != 1.0) {
        return Err(Error::format(
            path,
            format!(
                "partial_rotary_factor {p}: plumb's Llama rotates the whole head (partial rotary \
                 embeddings are not supported)"
            ),
        ));
    }
    let kind = get("rope_type")
        .or_else(|| get("type"))
        .map(|v| {
            v.as_str()
                .map(str::to_string)
                .unwrap_or_else(|| v.to_string())
        })
        .unwrap_or_else(|| "default".to_string());
    // as transformers (llama3, yarn): a top-level original_max_position_embeddings wins, then
    // the dict's, then max_position_embeddings
    let original = || {
        c.json
            .get("original_max_position_embeddings")
            .and_then(Value::as_f64)
            .or_else(|| num("original_max_position_embeddings"))
            .unwrap_or(max_position_embeddings as f64)
    };
    let scaling = match kind.as_str() {
        "default" => RopeScaling::None,
        "linear" => RopeScaling::Linear {
            factor: positive(path, "factor", num("factor"))?,
        },
        "dynamic" => RopeScaling::Dynamic {
            factor: positive(path, "factor", num("factor"))?,
            max_position_embeddings: positive(
                path,
                "max_position_embeddings",
                Some(max_position_embeddings as f64),
            )?,
        },
        "llama3" => {
            let original = original();
            llama3(
                path,
                num("factor"),
                num("low_freq_factor"),
                num("high_freq_factor"),
                original,
            )?
        }
        "yarn" => {
            // as transformers: without a factor, the ratio of the context to the original one;
            // without an attention factor, YaRN's mscale of the factor (or of mscale over
            // mscale_all_dim, DeepSeek's form); a beta of 0 or none is the default
            let original = positive(path, "original_max_position_embeddings", Some(original()))?;
            let factor = match num("factor") {
                Some(f) => positive(path, "factor", Some(f))?,
                None => max_position_embeddings as f64 / original,
            };
            let attention_factor = match num("attention_factor") {
                Some(a) => positive(path, "attention_factor", Some(a))?,
                None => match (num("mscale"), num("mscale_all_dim")) {
                    (Some(m), Some(all)) if m != 0.0 && all != 0.0 => {
                        yarn_mscale(factor, m) / yarn_mscale(factor, all)
                    }
                    _ => yarn_mscale(factor, 1.0),
                },
            };
            let beta = |k: &str, default: f64| num(k).filter(|&b| b != 0.0).unwrap_or(default);
            let truncate = match get("truncate") {
                None => true,
                Some(v) => v.as_bool().ok_or_else(|| {
                    Error::format(
                        path,
                        format!("RoPE 'truncate' is {v}, expected true or false"),
                    )
                })?,
            };
            yarn(
                path,
                factor,
                original,
                (beta("beta_fast", 32.0), beta("beta_slow", 1.0)),
                attention_factor,
                truncate,
            )?
        }
        other => {
            return Err(Error::format(
                path,
                format!(
                    "RoPE scaling type '{other}' is not supported (plumb's Llama reads default, \
                     linear, llama3, yarn and dynamic)"
                ),
            ))
        }
    };
    Ok((theta, scaling))
}

fn yarn(
    path: &Path,
    factor: f64,
    original: f64,
    (beta_fast, beta_slow): (f64, f64),
    attention_factor: f64,
    truncate: bool,
) -> Result<RopeScaling> {
    for (what, v) in [("beta_fast", beta_fast), ("beta_slow", beta_slow)] {
        positive(path, what, Some(v))?;
    }
    positive(path, "factor", Some(factor))?;
    Ok(RopeScaling::Yarn {
        factor,
        original_max_position_embeddings: original,
        beta_fast,
        beta_slow,
        attention_factor,
        truncate,
    })
}

fn llama3(
    path: &Path,
    factor: Option<f64>,
    low: Option<f64>,
    high: Option<f64>,
    original: f64,
) -> Result<RopeScaling> {
    let s = RopeScaling::Llama3 {
        factor: positive(path, "factor", factor)?,
        low_freq_factor: positive(path, "low_freq_factor", low)?,
        high_freq_factor: positive(path, "high_freq_factor", high)?,
        original_max_position_embeddings: positive(
            path,
            "original_max_position_embeddings",
            Some(original),
        )?,
    };
    if low >= high {
        return Err(Error::format(
            path,
            format!(
                "llama3 RoPE scaling needs low_freq_factor < high_freq_factor, got {} and {}",
                low.unwrap_or_default(),
                high.unwrap_or_default()
            ),
        ));
    }
    Ok(s)
}

/// RoPE base and scaling of a GGUF file of architecture `arch` whose heads are `head_dim` wide.
/// Linear scaling, YaRN ([`gguf_yarn`]) and `rope_freqs.weight` are read; other types, and a
/// rotary dimension smaller than the head (partial rotary), are refused.
pub fn from_gguf(f: &GgufFile, arch: &str, head_dim: usize) -> Result<(f64, RopeScaling)> {
    let k = |s: &str| format!("{arch}.{s}");
    let path = f.path();
    let theta = f
        .meta(&k("rope.freq_base"))
        .and_then(|v| v.as_f64())
        .unwrap_or(10000.0);
    let theta = positive(path, "freq_base", Some(theta))?;
    if let Some(n) = f.meta(&k("rope.dimension_count")).and_then(|v| v.as_i64()) {
        if n != head_dim as i64 {
            return Err(Error::format(
                path,
                format!(
                    "{} is {n} but heads are {head_dim} wide: plumb's Llama rotates the whole \
                     head (partial rotary embeddings are not supported)",
                    k("rope.dimension_count")
                ),
            ));
        }
    }
    let kind = f
        .meta(&k("rope.scaling.type"))
        .map(|v| v.as_str().map_or_else(|| v.short(), str::to_string));
    // older llama.cpp files: rope.scale_linear alone
    let legacy = f.meta(&k("rope.scale_linear")).and_then(|v| v.as_f64());
    let factor = match kind.as_deref() {
        None | Some("none") => match legacy {
            Some(x) if x != 1.0 => positive(path, "scale_linear", Some(x))?,
            _ => 1.0,
        },
        Some("linear") => {
            let key = k("rope.scaling.factor");
            let v = f.meta(&key).and_then(|v| v.as_f64()).or(legacy);
            positive(path, &key, v)?
        }
        Some("yarn") => return Ok((theta, gguf_yarn(f, arch)?)),
        Some(other) => {
            return Err(Error::format(
                path,
                format!(
                    "{} '{other}' is not supported (plumb's Llama reads none, linear and yarn, \
                     and rope_freqs.weight)",
                    k("rope.scaling.type")
                ),
            ))
        }
    };
    Ok((
        theta,
        if f.get(ROPE_FREQS).is_some() {
            RopeScaling::Divisors { factor }
        } else if factor != 1.0 {
            RopeScaling::Linear { factor }
        } else {
            RopeScaling::None
        },
    ))
}

/// YaRN as llama.cpp reads it from a GGUF: `rope.scaling.factor` and
/// `.original_context_length` (both required), `.yarn_beta_fast` / `.yarn_beta_slow` (default 32
/// and 1); cos and sin scaled by YaRN's mscale of the factor. Keys that change that (an
/// extrapolation factor other than 1, an attention factor, DeepSeek's log multiplier) are
/// refused rather than ignored.
fn gguf_yarn(f: &GgufFile, arch: &str) -> Result<RopeScaling> {
    let key = |s: &str| format!("{arch}.rope.scaling.{s}");
    let path = f.path();
    let num = |s: &str| f.meta(&key(s)).and_then(|v| v.as_f64());
    for (s, neutral) in [
        ("yarn_ext_factor", 1.0),
        ("yarn_attn_factor", 1.0),
        ("attn_factor", 1.0),
        ("yarn_log_multiplier", 0.0),
    ] {
        if let Some(v) = num(s).filter(|&v| v != neutral) {
            return Err(Error::format(
                path,
                format!(
                    "{} is {v}: plumb's YaRN takes the factor, original context and betas only",
                    key(s)
                ),
            ));
        }
    }
    let factor = positive(path, &key("factor"), num("factor"))?;
    let original = positive(
        path,
        &key("original_context_length"),
        num("original_context_length"),
    )?;
    yarn(
        path,
        factor,
        original,
        (
            num("yarn_beta_fast").unwrap_or(32.0),
            num("yarn_beta_slow").unwrap_or(1.0),
        ),
        yarn_mscale(factor, 1.0),
        true,
    )
}

/// Dynamic NTK's inverse frequencies for a sequence of `len` positions (plain ones up to
/// `max_position_embeddings`), as transformers' `_compute_dynamic_ntk_parameters`.
pub fn dynamic_inv_freq(
    theta: f64,
    head_dim: usize,
    (factor, max_position_embeddings): (f64, f64),
    len: usize,
) -> Vec<f64> {
    let d = head_dim as f64;
    let len = (len as f64).max(max_position_embeddings);
    let base =
        theta * (factor * len / max_position_embeddings - (factor - 1.0)).powf(d / (d - 2.0));
    (0..head_dim / 2)
        .map(|i| 1.0 / base.powf((2 * i) as f64 / d))
        .collect()
}

/// The `head_dim / 2` inverse frequencies `theta^(-2i/head_dim)` rescaled by `scaling`, in f64.
/// `divisors` are `rope_freqs.weight`'s values, required for [`RopeScaling::Divisors`].
pub fn inv_freq(
    theta: f64,
    head_dim: usize,
    scaling: &RopeScaling,
    divisors: Option<&[f32]>,
) -> Result<Vec<f64>> {
    let half = head_dim / 2;
    let base = (0..half).map(|i| 1.0 / theta.powf((2 * i) as f64 / head_dim as f64));
    Ok(match scaling {
        // up to the original context (and for the table kept at load) dynamic is plain RoPE
        RopeScaling::None | RopeScaling::Dynamic { .. } => base.collect(),
        RopeScaling::Linear { factor } => base.map(|f| f / factor).collect(),
        RopeScaling::Llama3 {
            factor,
            low_freq_factor: low,
            high_freq_factor: high,
            original_max_position_embeddings: original,
        } => {
            let (low_wavelen, high_wavelen) = (original / low, original / high);
            base.map(|f| {
                let wavelen = 2.0 * std::f64::consts::PI / f;
                if wavelen < high_wavelen {
                    f
                } else if wavelen > low_wavelen {
                    f / factor
                } else {
                    let smooth = (original / wavelen - low) / (high - low);
                    (1.0 - smooth) * f / factor + smooth * f
                }
            })
            .collect()
        }
        RopeScaling::Yarn {
            factor,
            original_max_position_embeddings: original,
            beta_fast,
            beta_slow,
            truncate,
            ..
        } => {
            // the dimension (of head_dim) at which a frequency turns `rot` times over the
            // original context
            let dim = head_dim as f64;
            let at = |rot: f64| {
                dim * (original / (rot * 2.0 * std::f64::consts::PI)).ln() / (2.0 * theta.ln())
            };
            let (mut low, mut high) = (at(*beta_fast), at(*beta_slow));
            if *truncate {
                (low, high) = (low.floor(), high.ceil());
            }
            let (low, mut high) = (low.max(0.0), high.min(dim - 1.0));
            if low == high {
                high += 0.001;
            }
            base.enumerate()
                .map(|(i, f)| {
                    // 0: keep (extrapolate), 1: divide by the factor (interpolate)
                    let ramp = ((i as f64 - low) / (high - low)).clamp(0.0, 1.0);
                    f / factor * ramp + f * (1.0 - ramp)
                })
                .collect()
        }
        RopeScaling::Divisors { factor } => {
            let d = divisors.filter(|d| d.len() == half).ok_or_else(|| {
                Error::invalid(
                    "rope",
                    format!("{ROPE_FREQS} must hold {half} divisors, one per frequency"),
                )
            })?;
            if let Some(bad) = d.iter().find(|x| !(x.is_finite() && **x > 0.0)) {
                return Err(Error::invalid(
                    "rope",
                    format!("{ROPE_FREQS} holds {bad}; divisors must be positive"),
                ));
            }
            base.zip(d).map(|(f, &x)| f / factor / x as f64).collect()
        }
    })
}

/// `rope_scaling` for a config.json written from `scaling` (`None` for plain RoPE).
/// [`RopeScaling::Divisors`] is written as `llama3` when the divisors are exactly what llama.cpp's
/// converter derives from Llama 3.1's parameters (low 1, high 4, the file's original context
/// length or 8192); otherwise config.json cannot express them and this is an error.
pub fn to_hf(
    path: &Path,
    theta: f64,
    head_dim: usize,
    scaling: &RopeScaling,
    divisors: Option<&[f32]>,
    original_context: Option<f64>,
) -> Result<Option<Value>> {
    Ok(match scaling {
        RopeScaling::None => None,
        RopeScaling::Linear { factor } => Some(json!({"rope_type": "linear", "factor": factor})),
        RopeScaling::Llama3 {
            factor,
            low_freq_factor,
            high_freq_factor,
            original_max_position_embeddings,
        } => Some(json!({
            "rope_type": "llama3",
            "factor": factor,
            "low_freq_factor": low_freq_factor,
            "high_freq_factor": high_freq_factor,
            "original_max_position_embeddings": original_max_position_embeddings,
        })),
        RopeScaling::Dynamic { factor, .. } => {
            Some(json!({"rope_type": "dynamic", "factor": factor}))
        }
        RopeScaling::Yarn {
            factor,
            original_max_position_embeddings,
            beta_fast,
            beta_slow,
            attention_factor,
            truncate,
        } => Some(json!({
            "rope_type": "yarn",
            "factor": factor,
            "original_max_position_embeddings": original_max_position_embeddings,
            "beta_fast": beta_fast,
            "beta_slow": beta_slow,
            "attention_factor": attention_factor,
            "truncate": truncate,
        })),
        RopeScaling::Divisors { factor } => {
            let d = divisors.unwrap_or_default();
            let max = d.iter().fold(1f32, |m, &x| m.max(x)) as f64;
            let original = original_context.unwrap_or(8192.0);
            let guess = RopeScaling::Llama3 {
                factor: max,
                low_freq_factor: 1.0,
                high_freq_factor: 4.0,
                original_max_position_embeddings: original,
            };
            let plain = inv_freq(theta, head_dim, &RopeScaling::None, None)?;
            let want = inv_freq(theta, head_dim, &guess, None)?;
            let same = d.len() == plain.len()
                && plain.iter().zip(&want).zip(d).all(|((p, w), &x)| {
                    let x2 = p / w;
                    (x2 - x as f64).abs() <= 1e-5 * x2.abs()
                });
            if !same || *factor != 1.0 {
                return Err(Error::format(
                    path,
                    format!(
                        "{ROPE_FREQS} holds per-frequency divisors that are not Llama 3.1's \
                         (factor {max}, low_freq_factor 1, high_freq_factor 4, original context \
                         {original}){}; config.json cannot express them",
                        if *factor != 1.0 {
                            format!(" on top of linear scaling {factor}")
                        } else {
                            String::new()
                        }
                    ),
                ));
            }
            to_hf(path, theta, head_dim, &guess, None, None)?
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hf(v: Value) -> HfConfig {
        HfConfig {
            path: "cfg/config.json".into(),
            json: v,
        }
    }

    #[test]
    fn llama3_bands() {
        let s = RopeScaling::Llama3 {
            factor: 8.0,
            low_freq_factor: 1.0,
            high_freq_factor: 4.0,
            original_max_position_embeddings: 32.0,
        };
        let plain = inv_freq(10000.0, 16, &RopeScaling::None, None).unwrap();
        let got = inv_freq(10000.0, 16, &s, None).unwrap();
        // original context 32: wavelengths below 8 kept, above 32 divided by 8, between blended
        assert_eq!(got[0], plain[0]);
        // wavelengths 2π·10000^(i/8): 6.3 kept, 19.9 blended, 62.8 and longer divided
        assert!(got[1] < plain[1] && got[1] > plain[1] / 8.0);
        for i in 2..8 {
            assert!((got[i] - plain[i] / 8.0).abs() < 1e-15 * plain[i], "{i}");
        }
    }

    #[test]
    fn hf_keys() {
        let c = hf(
            json!({"rope_theta": 500000.0, "max_position_embeddings": 64,
            "rope_scaling": {"type": "linear", "factor": 2.0}}),
        );
        assert_eq!(
            from_hf(&c, 64).unwrap(),
            (500000.0, RopeScaling::Linear { factor: 2.0 })
        );
        let c = hf(json!({"rope_parameters": {"rope_type": "default", "rope_theta": 7.0}}));
        assert_eq!(from_hf(&c, 64).unwrap(), (7.0, RopeScaling::None));
        let c = hf(json!({"rope_scaling": null}));
        assert_eq!(from_hf(&c, 64).unwrap(), (10000.0, RopeScaling::None));
        let c = hf(
            json!({"rope_scaling": {"rope_type": "llama3", "factor": 8.0,
            "low_freq_factor": 1.0, "high_freq_factor": 4.0}}),
        );
        assert_eq!(
            from_hf(&c, 64).unwrap().1,
            RopeScaling::Llama3 {
                factor: 8.0,
                low_freq_factor: 1.0,
                high_freq_factor: 4.0,
                original_max_position_embeddings: 64.0
            }
        );
        for bad in [
            json!({"rope_scaling": {"rope_type": "longrope", "factor": 2.0}}),
            json!({"rope_scaling": {"rope_type": "dynamic"}}),
            json!({"rope_scaling": {"rope_type": "linear"}}),
            json!({"rope_scaling": {"rope_type": "linear", "factor": 0.0}}),
            json!({"rope_scaling": {"rope_type": "llama3", "factor": 8.0}}),
            json!({"partial_rotary_factor": 0.5}),
        ] {
            let e = from_hf(&hf(bad.clone()), 64).unwrap_err().to_string();
            assert!(e.contains("cfg/config.json"), "{bad}: {e}");
        }
    }

    /// YaRN's defaults as transformers takes them: no factor is the context over the original
    /// one, a beta of 0 is the default, no attention factor is the mscale of the factor; bad
    /// values are errors naming the file.
    #[test]
    fn yarn_keys() {
        let c = hf(
            json!({"max_position_embeddings": 128, "original_max_position_embeddings": 32,
            "rope_scaling": {"rope_type": "yarn", "beta_fast": 0}}),
        );
        assert_eq!(
            from_hf(&c, 128).unwrap().1,
            RopeScaling::Yarn {
                factor: 4.0,
                original_max_position_embeddings: 32.0,
                beta_fast: 32.0,
                beta_slow: 1.0,
                attention_factor: 1.0 + 0.1 * 4f64.ln(),
                truncate: true,
            }
        );
        let plain = inv_freq(10000.0, 16, &RopeScaling::None, None).unwrap();
        let (_, s) = from_hf(&c, 128).unwrap();
        let got = inv_freq(10000.0, 16, &s, None).unwrap();
        // original context 32, head 16: dimension 0 kept, 1 blended, 2.. divided by 4
        assert_eq!(got[0], plain[0]);
        assert!((got[1] - (plain[1] / 4.0 + plain[1]) / 2.0).abs() < 1e-15);
        for i in 2..8 {
            assert!((got[i] - plain[i] / 4.0).abs() < 1e-15 * plain[i], "{i}");
        }
        for bad in [
            json!({"rope_scaling": {"rope_type": "yarn", "factor": -1.0}}),
            json!({"rope_scaling": {"rope_type": "yarn", "factor": 2.0, "truncate": "no"}}),
            json!({"rope_scaling": {"rope_type": "yarn", "factor": 2.0, "beta_slow": -1}}),
        ] {
            let e = from_hf(&hf(bad.clone()), 64).unwrap_err().to_string();
            assert!(e.contains("cfg/config.json"), "{bad}: {e}");
        }
    }

    #[test]
    fn llama3_divisors_round_trip() {
        let s = RopeScaling::Llama3 {
            factor: 8.0,
            low_freq_factor: 1.0,
            high_freq_factor: 4.0,
            original_max_position_embeddings: 8192.0,
        };
        let plain = inv_freq(500000.0, 64, &RopeScaling::None, None).unwrap();
        let want = inv_freq(500000.0, 64, &s, None).unwrap();
        let d: Vec<f32> = plain
            .iter()
            .zip(&want)
            .map(|(p, w)| (p / w) as f32)
            .collect();
        let div = RopeScaling::Divisors { factor: 1.0 };
        let got = inv_freq(500000.0, 64, &div, Some(&d)).unwrap();
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 1e-6 * w);
        }
        let p = Path::new("m.gguf");
        let v = to_hf(p, 500000.0, 64, &div, Some(&d), None)
            .unwrap()
            .unwrap();
        assert_eq!(v["rope_type"], "llama3");
        assert_eq!(v["factor"], 8.0);
        let mut odd = d.clone();
        odd[0] = 3.0;
        let e = to_hf(p, 500000.0, 64, &div, Some(&odd), None).unwrap_err();
        assert!(e.to_string().contains("m.gguf"), "{e}");
    }
}
