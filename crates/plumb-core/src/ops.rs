//! Elementwise ops, comparisons, where, reductions and casts on [`Tensor`].

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::op::{BinaryOp, CmpOp, OpFamily, ReduceOp, UnaryOp};
use crate::shape::{broadcast_shapes, resolve_dim};
use crate::tensor::Tensor;

fn plain(op: &'static str, t: &Tensor) -> Result<()> {
    if t.dtype().is_quantized() {
        return Err(Error::UnsupportedDType {
            op: op.to_string(),
            dtype: t.dtype(),
            device: t.device().id().to_string(),
            reason: "quantized dtypes are storage only: dequantize or use qmatmul".into(),
        });
    }
    Ok(())
}

impl Tensor {
    pub fn unary(&self, op: UnaryOp) -> Result<Tensor> {
        plain(op.name(), self)?;
        let dt = self.dtype();
        if dt == DType::Bool
            || (!dt.is_float() && !op.int_ok())
            || (dt == DType::U8 && op == UnaryOp::Neg)
        {
            return Err(Error::UnsupportedDType {
                op: op.name().to_string(),
                dtype: dt,
                device: self.device().id().to_string(),
                reason:
                    "this op is defined for floating dtypes (neg/abs/relu also for signed integers)"
                        .into(),
            });
        }
        let shape = self.shape().to_vec();
        Tensor::dispatch(
            op.name(),
            OpFamily::Elementwise,
            dt,
            &[self],
            &shape,
            dt,
            &|b, v| b.unary(op, v[0]),
        )
    }

    pub fn neg(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Neg)
    }
    pub fn abs(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Abs)
    }
    pub fn exp(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Exp)
    }
    pub fn log(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Log)
    }
    pub fn sqrt(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Sqrt)
    }
    pub fn rsqrt(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Rsqrt)
    }
    pub fn recip(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Recip)
    }
    pub fn tanh(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Tanh)
    }
    pub fn sigmoid(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Sigmoid)
    }
    pub fn relu(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Relu)
    }
    pub fn gelu(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Gelu)
    }
    pub fn gelu_tanh(&self) -> Result<Tensor> {
        self.unary(UnaryOp::GeluTanh)
    }
    pub fn silu(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Silu)
    }
    pub fn sin(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Sin)
    }
    pub fn cos(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Cos)
    }

    /// Broadcast two operands to a common shape (views only).
    pub fn broadcast_pair(op: &'static str, a: &Tensor, b: &Tensor) -> Result<(Tensor, Tensor)> {
        let shape = broadcast_shapes(op, a.shape(), b.shape())?;
        let a = if a.shape() == shape.as_slice() {
            a.clone()
        } else {
            a.broadcast_as(&shape)?
        };
        let b = if b.shape() == shape.as_slice() {
            b.clone()
        } else {
            b.broadcast_as(&shape)?
        };
        Ok((a, b))
    }

    fn same_dtype(op: &'static str, a: &Tensor, b: &Tensor) -> Result<()> {
        if a.dtype() != b.dtype() {
            return Err(Error::DTypeMismatch {
                op,
                lhs: a.dtype(),
                rhs: b.dtype(),
            });
        }
        Ok(())
    }

    pub fn binary(&self, op: BinaryOp, rhs: &Tensor) -> Result<Tensor> {
        plain(op.name(), self)?;
        Self::same_dtype(op.name(), self, rhs)?;
        let dt = self.dtype();
        if dt == DType::Bool || (op == BinaryOp::Pow && !dt.is_float()) {
            return Err(Error::UnsupportedDType {
                op: op.name().to_string(),
                dtype: dt,
                device: self.device().id().to_string(),
                reason: "arithmetic is not defined on bool (and pow only on floats)".into(),
            });
        }
        let (a, b) = Self::broadcast_pair(op.name(), self, rhs)?;
        let shape = a.shape().to_vec();
        Tensor::dispatch(
            op.name(),
            OpFamily::Elementwise,
            dt,
            &[&a, &b],
            &shape,
            dt,
            &|be, v| be.binary(op, v[0], v[1]),
        )
    }

    pub fn add(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary(BinaryOp::Add, rhs)
    }
    pub fn sub(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary(BinaryOp::Sub, rhs)
    }
    pub fn mul(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary(BinaryOp::Mul, rhs)
    }
    pub fn div(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary(BinaryOp::Div, rhs)
    }
    pub fn pow(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary(BinaryOp::Pow, rhs)
    }
    pub fn maximum(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary(BinaryOp::Max, rhs)
    }
    pub fn minimum(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary(BinaryOp::Min, rhs)
    }

    /// `self op scalar`, the scalar in this tensor's dtype.
    pub fn binary_scalar(&self, op: BinaryOp, v: f64) -> Result<Tensor> {
        let s = Tensor::scalar(v, self.dtype(), self.device())?;
        self.binary(op, &s)
    }
    pub fn add_scalar(&self, v: f64) -> Result<Tensor> {
        self.binary_scalar(BinaryOp::Add, v)
    }
    pub fn mul_scalar(&self, v: f64) -> Result<Tensor> {
        self.binary_scalar(BinaryOp::Mul, v)
    }

    pub fn cmp(&self, op: CmpOp, rhs: &Tensor) -> Result<Tensor> {
        plain(op.name(), self)?;
        Self::same_dtype(op.name(), self, rhs)?;
        let (a, b) = Self::broadcast_pair(op.name(), self, rhs)?;
        let shape = a.shape().to_vec();
        Tensor::dispatch(
            op.name(),
            OpFamily::Elementwise,
            self.dtype(),
            &[&a, &b],
            &shape,
            DType::Bool,
            &|be, v| be.cmp(op, v[0], v[1]),
        )
    }
    pub fn eq(&self, rhs: &Tensor) -> Result<Tensor> {
        self.cmp(CmpOp::Eq, rhs)
    }
    pub fn ne(&self, rhs: &Tensor) -> Result<Tensor> {
        self.cmp(CmpOp::Ne, rhs)
    }
    pub fn lt(&self, rhs: &Tensor) -> Result<Tensor> {
        self.cmp(CmpOp::Lt, rhs)
    }
    pub fn le(&self, rhs: &Tensor) -> Result<Tensor> {
        self.cmp(CmpOp::Le, rhs)
    }
    pub fn gt(&self, rhs: &Tensor) -> Result<Tensor> {
        self.cmp(CmpOp::Gt, rhs)
    }
    pub fn ge(&self, rhs: &Tensor) -> Result<Tensor> {
        self.cmp(CmpOp::Ge, rhs)
    }

    /// `self ? on_true : on_false`; `self` is bool; all three broadcast together.
    pub fn where_cond(&self, on_true: &Tensor, on_false: &Tensor) -> Result<Tensor> {
        if self.dtype() != DType::Bool {
            return Err(Error::DTypeMismatch {
                op: "where",
                lhs: self.dtype(),
                rhs: DType::Bool,
            });
        }
        plain("where", on_true)?;
        Self::same_dtype("where", on_true, on_false)?;
        let shape = broadcast_shapes("where", self.shape(), on_true.shape())?;
        let shape = broadcast_shapes("where", &shape, on_false.shape())?;
        let c = self.broadcast_as(&shape)?;
        let a = on_true.broadcast_as(&shape)?;
        let b = on_false.broadcast_as(&shape)?;
        let dt = on_true.dtype();
        Tensor::dispatch(
            "where",
            OpFamily::Elementwise,
            dt,
            &[&c, &a, &b],
            &shape,
            dt,
            &|be, v| be.where_cond(v[0], v[1], v[2]),
        )
    }

    /// Reduce over `dim` (negative counts from the end).
    pub fn reduce(&self, op: ReduceOp, dim: isize, keepdim: bool) -> Result<Tensor> {
        plain(op.name(), self)?;
        let d = resolve_dim(op.name(), dim, self.shape())?;
        let dt = self.dtype();
        if dt == DType::Bool || (op == ReduceOp::Mean && !dt.is_float()) {
            return Err(Error::UnsupportedDType {
                op: op.name().to_string(),
                dtype: dt,
                device: self.device().id().to_string(),
                reason: "reductions are defined for numbers (mean only for floats)".into(),
            });
        }
        if self.shape()[d] == 0 && matches!(op, ReduceOp::Max | ReduceOp::Min | ReduceOp::ArgMax) {
            return Err(Error::invalid(
                op.name(),
                format!("cannot reduce an empty dim {d} of {:?}", self.shape()),
            ));
        }
        let index_dtype = if self
            .device()
            .supports(OpFamily::Reduce, DType::I64)
            .is_runnable()
        {
            DType::I64
        } else {
            DType::I32
        };
        let out_dtype = if op == ReduceOp::ArgMax {
            index_dtype
        } else {
            dt
        };
        let mut shape = self.shape().to_vec();
        shape[d] = 1;
        let out = Tensor::dispatch(
            op.name(),
            OpFamily::Reduce,
            dt,
            &[self],
            &shape,
            out_dtype,
            &|b, v| b.reduce(op, v[0], d, index_dtype),
        )?;
        if keepdim {
            Ok(out)
        } else {
            out.squeeze(d as isize)
        }
    }

    pub fn sum(&self, dim: isize, keepdim: bool) -> Result<Tensor> {
        self.reduce(ReduceOp::Sum, dim, keepdim)
    }
    pub fn mean(&self, dim: isize, keepdim: bool) -> Result<Tensor> {
        self.reduce(ReduceOp::Mean, dim, keepdim)
    }
    pub fn max(&self, dim: isize, keepdim: bool) -> Result<Tensor> {
        self.reduce(ReduceOp::Max, dim, keepdim)
    }
    pub fn min(&self, dim: isize, keepdim: bool) -> Result<Tensor> {
        self.reduce(ReduceOp::Min, dim, keepdim)
    }
    pub fn argmax(&self, dim: isize, keepdim: bool) -> Result<Tensor> {
        self.reduce(ReduceOp::ArgMax, dim, keepdim)
    }
    /// Sum of every element (a 0-d tensor).
    pub fn sum_all(&self) -> Result<Tensor> {
        self.flatten_all()?.sum(0, false)
    }
}
