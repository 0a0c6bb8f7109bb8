//! The conformance harness: the devices to run on, input generation (rounded to the dtype on the
//! host), the comparison with an f64 reference, and skip/failure reporting.
//!
//! Comparison: every element must satisfy `|actual − expected| ≤ tol · max(|expected|, 1)` with
//! `tol = DType::tolerance() × scale` (f64 1e-12, f32 1e-5, f16 1e-3, bf16 1e-2; integers and
//! bools exact). `scale` is 1 for ops with one output rounding (elementwise, casts, indexing,
//! cat, rope), 2 for ops that accumulate over a row in f32 first (reductions, softmax, norms,
//! matmul), 4 for attention (three rounded stages). qmatmul is held to q8_0's tolerance × 4
//! against the exactly decoded weights (kernels may quantize activations to q8_0, as llama.cpp
//! does). When the policy upcasts or emulates, the looser of the two dtypes' tolerances applies
//! (f64 upcast to f32 is held to f32's). NaN must meet NaN; ±∞ must be equal.

use plumb::{DType, Decision, Device, OpFamily, Result, Tensor};
use std::sync::OnceLock;

pub struct Target {
    pub dev: Device,
    /// `cpu`, `gpu:0`, `gpu:0[apple-m2]`
    pub label: String,
}

static TARGETS: OnceLock<Vec<Target>> = OnceLock::new();

/// Every data-holding device `plumb::devices()` finds, plus each GPU again under the apple-m2
/// profile. The GL adapter, when present, is one of the discovered `gpu:N`.
pub fn targets() -> &'static [Target] {
    TARGETS.get_or_init(|| {
        let mut out = Vec::new();
        for d in plumb::devices().expect("discovery") {
            if !d.holds_data() {
                println!(
                    "skipped: {} all ops: holds no data (shapes and dtypes only)",
                    d.id()
                );
                continue;
            }
            out.push(Target {
                label: d.id().to_string(),
                dev: d,
            });
        }
        if !out
            .iter()
            .any(|t| t.dev.info().api.eq_ignore_ascii_case("gl"))
        {
            println!("note: no GL adapter on this machine; its cases do not run");
        }
        match plumb::devices_with_profile("apple-m2") {
            Ok(ds) if ds.is_empty() => {
                println!("skipped: gpu:0[apple-m2] all ops: no GPU adapter to apply the profile to")
            }
            Ok(ds) => {
                if let Some(d) = ds.into_iter().next() {
                    out.push(Target {
                        label: format!("{}[apple-m2]", d.id()),
                        dev: d,
                    });
                }
            }
            Err(e) => println!("skipped: gpu:0[apple-m2] all ops: {e}"),
        }
        out
    })
}

/// Round a value to what `dtype` stores (round-to-nearest-even; integers truncate toward zero
/// and saturate; NaN → 0).
pub fn round(dtype: DType, v: f64) -> f64 {
    let sat = |lo: f64, hi: f64| {
        if v.is_nan() {
            0.0
        } else {
            v.trunc().clamp(lo, hi)
        }
    };
    match dtype {
        DType::F16 => half::f16::from_f64(v).to_f64(),
        DType::BF16 => half::bf16::from_f64(v).to_f64(),
        DType::F32 => v as f32 as f64,
        DType::F64 => v,
        DType::Bool => (v != 0.0) as u8 as f64,
        DType::U8 => sat(0.0, 255.0),
        DType::I32 => sat(i32::MIN as f64, i32::MAX as f64),
        DType::I64 => sat(i64::MIN as f64, i64::MAX as f64),
        _ => v,
    }
}

/// SplitMix64 → uniform [lo, hi), rounded to `dtype` (integers: whole numbers).
pub fn rand(n: usize, lo: f64, hi: f64, dtype: DType, seed: u64) -> Vec<f64> {
    let mut s = seed.wrapping_mul(0x2545_F491_4F6C_DD1D).wrapping_add(1);
    (0..n)
        .map(|_| {
            s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            let u = ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64;
            let v = lo + (hi - lo) * u;
            if dtype.is_float() {
                round(dtype, v)
            } else {
                v.floor()
            }
        })
        .collect()
}

pub fn tensor(dev: &Device, dtype: DType, shape: &[usize], v: &[f64]) -> Result<Tensor> {
    Tensor::from_f64(v, dtype, shape, dev)
}

/// One comparison: what came back and what the reference says.
pub struct Cmp {
    pub what: String,
    pub actual: Vec<f64>,
    pub expected: Vec<f64>,
    /// dtype whose tolerance applies (the output's)
    pub dtype: DType,
    pub scale: f64,
}

pub fn cmp(what: &str, out: &Tensor, expected: Vec<f64>, scale: f64) -> Result<Cmp> {
    Ok(Cmp {
        what: what.to_string(),
        actual: out.to_f64_vec()?,
        expected,
        dtype: out.dtype(),
        scale,
    })
}

/// The shape must match too (checked before the values).
pub fn cmp_shape(
    what: &str,
    out: &Tensor,
    shape: &[usize],
    expected: Vec<f64>,
    scale: f64,
) -> Result<Cmp> {
    if out.shape() != shape {
        return Ok(Cmp {
            what: format!("{what}: shape {:?}, expected {shape:?}", out.shape()),
            actual: vec![f64::NAN],
            expected: vec![0.0],
            dtype: DType::F64,
            scale,
        });
    }
    cmp(what, out, expected, scale)
}

fn check_one(c: &Cmp) -> Option<String> {
    let tol = c.dtype.tolerance() * c.scale;
    if c.actual.len() != c.expected.len() {
        return Some(format!(
            "{}: {} values, expected {}",
            c.what,
            c.actual.len(),
            c.expected.len()
        ));
    }
    for (i, (&a, &e)) in c.actual.iter().zip(&c.expected).enumerate() {
        let ok = if e.is_nan() {
            a.is_nan()
        } else if e.is_infinite() || a.is_nan() || a.is_infinite() {
            a == e
        } else {
            (a - e).abs() <= tol * e.abs().max(1.0)
        };
        if !ok {
            return Some(format!(
                "{}: element {i}: got {a:e}, expected {e:e} (tolerance {tol:e}, {})",
                c.what, c.dtype
            ));
        }
    }
    None
}

/// `Ok(dtype it is computed in)` when `dev`'s policy runs `family` in `dtype`, else why not.
fn can_run(dev: &Device, family: OpFamily, dtype: DType) -> std::result::Result<DType, String> {
    let support = dev.supports(family, dtype);
    let f32_native = dev.supports(family, DType::F32) == plumb::Support::Native;
    let cast = dev.supports(OpFamily::Cast, dtype);
    match dev
        .policy()
        .decide_op(family, dtype, &support, f32_native, &cast)
    {
        Decision::Refuse { reason } => Err(reason),
        Decision::Upcast { to } => Ok(to),
        Decision::Emulated { via } => Ok(via),
        Decision::Native | Decision::CpuFallback => Ok(dtype),
    }
}

/// GPU adapters (GL especially) are not safe to drive from many test threads at once: GPU
/// cases take this lock; CPU cases run in parallel.
static GPU_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs cases and collects failures; every case either passes, fails, or prints why it skipped.
#[derive(Default)]
pub struct Suite {
    pub failures: Vec<String>,
    pub passed: usize,
    pub skipped: usize,
}

impl Suite {
    /// Run `body` on every target for `op` computing in `dtype` (family decides the support).
    pub fn case(
        &mut self,
        op: &str,
        family: OpFamily,
        dtype: DType,
        body: impl Fn(&Device) -> Result<Vec<Cmp>>,
    ) {
        self.case_dtypes(op, family, &[dtype], body);
    }

    /// Like [`Suite::case`] when the op needs several dtypes of `family` (a cast's two ends).
    pub fn case_dtypes(
        &mut self,
        op: &str,
        family: OpFamily,
        dtypes: &[DType],
        body: impl Fn(&Device) -> Result<Vec<Cmp>>,
    ) {
        for t in targets() {
            self.case_on(t, op, family, dtypes, &body);
        }
    }

    pub fn case_on(
        &mut self,
        t: &Target,
        op: &str,
        family: OpFamily,
        dtypes: &[DType],
        body: &dyn Fn(&Device) -> Result<Vec<Cmp>>,
    ) {
        let dev = &t.dev;
        let dtype = dtypes[0];
        let _gpu = (dev.info().kind != plumb::DeviceKind::Cpu)
            .then(|| GPU_LOCK.lock().unwrap_or_else(|e| e.into_inner()));
        // the dtype each input dtype is really computed in (an upcast computes in f32)
        let mut computed: Vec<(DType, DType)> = Vec::new();
        for &d in dtypes {
            match can_run(dev, family, d) {
                Err(reason) => {
                    println!("skipped: {} {op} {d}: {reason}", t.label);
                    self.skipped += 1;
                    return;
                }
                Ok(c) => computed.push((d, c)),
            }
        }
        match body(dev) {
            Err(e) => self
                .failures
                .push(format!("{} {op} {dtype}: error: {e}", t.label)),
            Ok(mut cmps) => {
                let mut bad = false;
                for c in &mut cmps {
                    // an upcast or emulation is held to the looser of the two dtypes' tolerances
                    if let Some(&(_, via)) = computed.iter().find(|(d, _)| *d == c.dtype) {
                        if via.tolerance() > c.dtype.tolerance() {
                            c.dtype = via;
                        }
                    }
                    if let Some(f) = check_one(c) {
                        self.failures.push(format!("{} {op} {dtype}: {f}", t.label));
                        bad = true;
                    }
                }
                if !bad {
                    self.passed += 1;
                }
            }
        }
    }

    /// Print the tally; panic listing every failure.
    pub fn finish(self, name: &str) {
        println!(
            "{name}: {} passed, {} skipped, {} failed",
            self.passed,
            self.skipped,
            self.failures.len()
        );
        if !self.failures.is_empty() {
            panic!(
                "{name}: {} failures:\n  {}",
                self.failures.len(),
                self.failures.join("\n  ")
            );
        }
    }
}

/// Row-major contiguous strides.
pub fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

/// Transpose a row-major [r, c] matrix (host side).
pub fn transpose(v: &[f64], r: usize, c: usize) -> Vec<f64> {
    (0..c)
        .flat_map(|j| (0..r).map(move |i| v[i * c + j]))
        .collect()
}

#[test]
fn the_comparison_flags_wrong_values() {
    let c = |a: f64, e: f64, dtype: DType| Cmp {
        what: "t".into(),
        actual: vec![a],
        expected: vec![e],
        dtype,
        scale: 1.0,
    };
    assert!(check_one(&c(1.0 + 2e-5, 1.0, DType::F32)).is_some());
    assert!(check_one(&c(1.0 + 5e-6, 1.0, DType::F32)).is_none());
    assert!(check_one(&c(1.0 + 2e-3, 1.0, DType::F16)).is_some());
    assert!(check_one(&c(0.0, f64::NAN, DType::F32)).is_some());
    assert!(check_one(&c(f64::NAN, 1.0, DType::F32)).is_some());
    assert!(check_one(&c(1e30, f64::INFINITY, DType::F32)).is_some());
    assert!(check_one(&c(3.0, 2.0, DType::I32)).is_some());
}
