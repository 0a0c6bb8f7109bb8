//! Unary ops, binary ops with broadcasting, comparisons and where, against f64 references
//! written here.

use crate::harness::{cmp, rand, tensor, transpose, Suite};
use plumb::{BinaryOp, CmpOp, DType, OpFamily, Tensor, UnaryOp};

fn erf(x: f64) -> f64 {
    // Maclaurin series; inputs stay within |x| < 3 / √2, where it converges to f64 precision
    let mut sum = 0.0;
    let mut term = x;
    for n in 0..200 {
        let t = term / (2 * n + 1) as f64;
        sum += t;
        if t.abs() < 1e-18 {
            break;
        }
        term *= -x * x / (n + 1) as f64;
    }
    sum * 2.0 / std::f64::consts::PI.sqrt()
}

fn unary_ref(op: UnaryOp, x: f64) -> f64 {
    match op {
        UnaryOp::Neg => -x,
        UnaryOp::Abs => x.abs(),
        UnaryOp::Exp => x.exp(),
        UnaryOp::Log => x.ln(),
        UnaryOp::Sqrt => x.sqrt(),
        UnaryOp::Rsqrt => x.sqrt().recip(),
        UnaryOp::Recip => x.recip(),
        UnaryOp::Tanh => x.tanh(),
        UnaryOp::Sigmoid => 1.0 / (1.0 + (-x).exp()),
        UnaryOp::Relu => {
            if x > 0.0 {
                x
            } else {
                0.0
            }
        }
        UnaryOp::Gelu => 0.5 * x * (1.0 + erf(x / 2f64.sqrt())),
        UnaryOp::GeluTanh => {
            0.5 * x
                * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x.powi(3))).tanh())
        }
        UnaryOp::Silu => x / (1.0 + (-x).exp()),
        UnaryOp::Sin => x.sin(),
        UnaryOp::Cos => x.cos(),
    }
}

/// Input range per op (inside the op's domain; wide enough to cross its interesting regions).
fn domain(op: UnaryOp) -> (f64, f64) {
    match op {
        UnaryOp::Log | UnaryOp::Sqrt | UnaryOp::Rsqrt => (0.05, 5.0),
        UnaryOp::Recip => (0.25, 4.0),
        UnaryOp::Exp => (-5.0, 5.0),
        UnaryOp::Sin | UnaryOp::Cos => (-6.0, 6.0),
        _ => (-3.0, 3.0),
    }
}

fn unary(s: &mut Suite, dt: DType) {
    for op in UnaryOp::ALL {
        if !dt.is_float() && !op.int_ok() {
            continue; // float-only ops are rejected by the API for integers (see errors.rs)
        }
        let (lo, hi) = if dt.is_float() {
            domain(op)
        } else {
            (-50.0, 50.0)
        };
        s.case(op.name(), OpFamily::Elementwise, dt, |dev| {
            let (r, c) = (7, 5);
            let x = rand(r * c, lo, hi, dt, op as u64 + 1);
            let t = tensor(dev, dt, &[r, c], &x)?;
            let exp: Vec<f64> = x.iter().map(|&v| unary_ref(op, v)).collect();
            // non-contiguous: the transpose of a [c, r] tensor holding xᵀ
            let tt = tensor(dev, dt, &[c, r], &transpose(&x, r, c))?.t()?;
            Ok(vec![
                cmp("contiguous", &t.unary(op)?, exp.clone(), 1.0)?,
                cmp("transposed view", &tt.unary(op)?, exp, 1.0)?,
            ])
        });
    }
}

fn binary_ref(op: BinaryOp, a: f64, b: f64) -> f64 {
    match op {
        BinaryOp::Add => a + b,
        BinaryOp::Sub => a - b,
        BinaryOp::Mul => a * b,
        BinaryOp::Div => a / b,
        BinaryOp::Pow => a.powf(b),
        BinaryOp::Max => {
            if a >= b {
                a
            } else {
                b
            }
        }
        BinaryOp::Min => {
            if a <= b {
                a
            } else {
                b
            }
        }
    }
}

/// a [2, 3, 4] op b broadcast from [3, 1], and from [4] (both orders).
fn binary(s: &mut Suite, dt: DType) {
    for op in BinaryOp::ALL {
        if !dt.is_float() && op == BinaryOp::Pow {
            continue; // pow is float-only in the API
        }
        s.case(op.name(), OpFamily::Elementwise, dt, |dev| {
            let (alo, ahi, blo, bhi) = match (op, dt.is_float()) {
                (BinaryOp::Pow, _) => (0.25, 3.0, -2.0, 2.0),
                (BinaryOp::Div, true) => (-3.0, 3.0, 0.5, 3.0),
                // integer division: positive operands, where every rounding rule agrees
                (BinaryOp::Div, false) => (0.0, 100.0, 1.0, 12.0),
                (_, true) => (-3.0, 3.0, -3.0, 3.0),
                (_, false) => (-1000.0, 1000.0, -1000.0, 1000.0),
            };
            let a = rand(24, alo, ahi, dt, 11);
            let b31 = rand(3, blo, bhi, dt, 12);
            let b4 = rand(4, blo, bhi, dt, 13);
            let ta = tensor(dev, dt, &[2, 3, 4], &a)?;
            let tb31 = tensor(dev, dt, &[3, 1], &b31)?;
            let tb4 = tensor(dev, dt, &[4], &b4)?;
            let f = |x: f64, y: f64| {
                let r = binary_ref(op, x, y);
                if dt.is_float() {
                    r
                } else {
                    r.trunc()
                }
            };
            let e31: Vec<f64> = (0..24).map(|i| f(a[i], b31[(i / 4) % 3])).collect();
            let e4: Vec<f64> = (0..24).map(|i| f(a[i], b4[i % 4])).collect();
            let mut out = vec![
                cmp("[2,3,4] op [3,1]", &ta.binary(op, &tb31)?, e31, 1.0)?,
                cmp("[2,3,4] op [4]", &ta.binary(op, &tb4)?, e4, 1.0)?,
            ];
            if !matches!(op, BinaryOp::Pow | BinaryOp::Div) {
                let e4r: Vec<f64> = (0..24).map(|i| f(b4[i % 4], a[i])).collect();
                out.push(cmp("[4] op [2,3,4]", &tb4.binary(op, &ta)?, e4r, 1.0)?);
            }
            // rows of ≥ 16 repeated over leading dims (a bias row: the CPU's repeat path)
            let a120 = rand(120, alo, ahi, dt, 14);
            let b20 = rand(20, blo, bhi, dt, 15);
            let b60 = rand(60, blo, bhi, dt, 16);
            let ta120 = tensor(dev, dt, &[2, 3, 20], &a120)?;
            let tb20 = tensor(dev, dt, &[20], &b20)?;
            let tb60 = tensor(dev, dt, &[3, 20], &b60)?;
            let e20: Vec<f64> = (0..120).map(|i| f(a120[i], b20[i % 20])).collect();
            let e60: Vec<f64> = (0..120).map(|i| f(a120[i], b60[i % 60])).collect();
            out.push(cmp(
                "[2,3,20] op [20]",
                &ta120.binary(op, &tb20)?,
                e20,
                1.0,
            )?);
            out.push(cmp(
                "[2,3,20] op [3,20]",
                &ta120.binary(op, &tb60)?,
                e60,
                1.0,
            )?);
            if !matches!(op, BinaryOp::Pow | BinaryOp::Div) {
                let e20r: Vec<f64> = (0..120).map(|i| f(b20[i % 20], a120[i])).collect();
                out.push(cmp(
                    "[20] op [2,3,20]",
                    &tb20.binary(op, &ta120)?,
                    e20r,
                    1.0,
                )?);
            }
            // scalar operand
            let sc = Tensor::scalar(b4[0], dt, dev)?;
            let es: Vec<f64> = a.iter().map(|&x| f(x, b4[0])).collect();
            out.push(cmp("op scalar", &ta.binary(op, &sc)?, es, 1.0)?);
            Ok(out)
        });
    }
}

fn cmp_ref(op: CmpOp, a: f64, b: f64) -> bool {
    match op {
        CmpOp::Eq => a == b,
        CmpOp::Ne => a != b,
        CmpOp::Lt => a < b,
        CmpOp::Le => a <= b,
        CmpOp::Gt => a > b,
        CmpOp::Ge => a >= b,
    }
}

/// Comparisons on small whole numbers (so equal values occur), broadcast [2,3] vs [3].
fn compare(s: &mut Suite, dt: DType) {
    for op in CmpOp::ALL {
        s.case(op.name(), OpFamily::Elementwise, dt, |dev| {
            let a = rand(6, -2.0, 3.0, DType::I32, 21);
            let b = rand(3, -2.0, 3.0, DType::I32, 22);
            let ta = tensor(dev, dt, &[2, 3], &a)?;
            let tb = tensor(dev, dt, &[3], &b)?;
            let out = ta.cmp(op, &tb)?;
            let exp: Vec<f64> = (0..6)
                .map(|i| cmp_ref(op, a[i], b[i % 3]) as u8 as f64)
                .collect();
            if out.dtype() != DType::Bool {
                return Err(plumb::Error::invalid(
                    "test",
                    format!("{op:?} gave {}", out.dtype()),
                ));
            }
            Ok(vec![cmp("[2,3] vs [3]", &out, exp, 1.0)?])
        });
    }
}

/// where(cond [3,1], a [3,4], b [4]).
fn where_cond(s: &mut Suite, dt: DType) {
    s.case("where", OpFamily::Elementwise, dt, |dev| {
        let c = [1.0, 0.0, 1.0];
        let a = rand(12, -100.0, 100.0, dt, 31);
        let b = rand(4, -100.0, 100.0, dt, 32);
        let tc = tensor(dev, DType::Bool, &[3, 1], &c)?;
        let ta = tensor(dev, dt, &[3, 4], &a)?;
        let tb = tensor(dev, dt, &[4], &b)?;
        let exp: Vec<f64> = (0..12)
            .map(|i| if c[i / 4] != 0.0 { a[i] } else { b[i % 4] })
            .collect();
        Ok(vec![cmp("where", &tc.where_cond(&ta, &tb)?, exp, 1.0)?])
    });
}

macro_rules! per_dtype {
    ($body:ident: $($name:ident = $dt:expr),* $(,)?) => {
        $(#[test]
        fn $name() {
            let mut s = Suite::default();
            $body(&mut s, $dt);
            s.finish(stringify!($name));
        })*
    };
}
pub(crate) use per_dtype;

per_dtype!(unary: unary_f32 = DType::F32, unary_f16 = DType::F16, unary_bf16 = DType::BF16,
    unary_f64 = DType::F64, unary_i32 = DType::I32, unary_i64 = DType::I64);
per_dtype!(binary: binary_f32 = DType::F32, binary_f16 = DType::F16, binary_bf16 = DType::BF16,
    binary_f64 = DType::F64, binary_i32 = DType::I32, binary_i64 = DType::I64);
per_dtype!(compare: cmp_f32 = DType::F32, cmp_f16 = DType::F16, cmp_bf16 = DType::BF16,
    cmp_f64 = DType::F64, cmp_i32 = DType::I32, cmp_i64 = DType::I64);
per_dtype!(where_cond: where_f32 = DType::F32, where_f16 = DType::F16, where_bf16 = DType::BF16,
    where_f64 = DType::F64, where_i32 = DType::I32, where_i64 = DType::I64);
