//! Network ops on [`Tensor`]: softmax, norms, matmul, quantized matmul, indexing, cat, RoPE,
//! causal masks and scaled-dot-product attention.

use crate::backend::AttentionArgs;
use crate::caps::Support;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::op::{OpFamily, UnaryOp};
use crate::shape::{broadcast_shapes, resolve_dim};
use crate::tensor::Tensor;

fn float_only(op: &'static str, t: &Tensor) -> Result<()> {
    if !t.dtype().is_float() {
        return Err(Error::UnsupportedDType {
            op: op.to_string(),
            dtype: t.dtype(),
            device: t.device().id().to_string(),
            reason: "this op needs a floating dtype".into(),
        });
    }
    Ok(())
}

fn index_dtype(op: &'static str, ids: &Tensor) -> Result<()> {
    if !matches!(ids.dtype(), DType::I32 | DType::I64 | DType::U8) {
        return Err(Error::DTypeMismatch {
            op,
            lhs: ids.dtype(),
            rhs: DType::I64,
        });
    }
    Ok(())
}

/// What a linear layer does to its product before returning it.
#[derive(Clone, Copy)]
enum Then<'a> {
    Nothing,
    Act(UnaryOp),
    Add(&'a Tensor),
}

impl Tensor {
    fn softmax_impl(&self, dim: isize, log: bool) -> Result<Tensor> {
        let op = if log { "log_softmax" } else { "softmax" };
        float_only(op, self)?;
        let d = resolve_dim(op, dim, self.shape())?;
        let last = self.rank() - 1;
        let x = if d == last {
            self.clone()
        } else {
            self.transpose(d as isize, last as isize)?
        };
        let shape = x.shape().to_vec();
        let dt = self.dtype();
        let y = Tensor::dispatch(op, OpFamily::Softmax, dt, &[&x], &shape, dt, &|b, v| {
            b.softmax(v[0], log)
        })?;
        if d == last {
            Ok(y)
        } else {
            y.transpose(d as isize, last as isize)
        }
    }

    /// Numerically stable softmax over `dim`.
    pub fn softmax(&self, dim: isize) -> Result<Tensor> {
        self.softmax_impl(dim, false)
    }
    pub fn log_softmax(&self, dim: isize) -> Result<Tensor> {
        self.softmax_impl(dim, true)
    }

    fn check_norm_param(op: &'static str, x: &Tensor, p: &Tensor) -> Result<()> {
        let last = *x.shape().last().unwrap_or(&0);
        if p.shape() != [last] {
            return Err(Error::shape(
                op,
                x.shape(),
                p.shape(),
                "norm weight/bias must be [last dim]",
            ));
        }
        if p.dtype() != x.dtype() {
            return Err(Error::DTypeMismatch {
                op,
                lhs: x.dtype(),
                rhs: p.dtype(),
            });
        }
        Ok(())
    }

    /// Layer norm over the last dim.
    pub fn layer_norm(
        &self,
        weight: Option<&Tensor>,
        bias: Option<&Tensor>,
        eps: f64,
    ) -> Result<Tensor> {
        float_only("layer_norm", self)?;
        if self.rank() == 0 {
            return Err(Error::invalid("layer_norm", "needs at least one dim"));
        }
        let mut inputs = vec![self];
        for p in [weight, bias].into_iter().flatten() {
            Self::check_norm_param("layer_norm", self, p)?;
            inputs.push(p);
        }
        let (hw, hb) = (weight.is_some(), bias.is_some());
        let shape = self.shape().to_vec();
        let dt = self.dtype();
        Tensor::dispatch(
            "layer_norm",
            OpFamily::Norm,
            dt,
            &inputs,
            &shape,
            dt,
            &|b, v| {
                let w = hw.then(|| v[1]);
                let bb = hb.then(|| v[if hw { 2 } else { 1 }]);
                b.layer_norm(v[0], w, bb, eps)
            },
        )
    }

    /// RMS norm over the last dim.
    pub fn rms_norm(&self, weight: Option<&Tensor>, eps: f64) -> Result<Tensor> {
        float_only("rms_norm", self)?;
        if self.rank() == 0 {
            return Err(Error::invalid("rms_norm", "needs at least one dim"));
        }
        let mut inputs = vec![self];
        if let Some(w) = weight {
            Self::check_norm_param("rms_norm", self, w)?;
            inputs.push(w);
        }
        let shape = self.shape().to_vec();
        let dt = self.dtype();
        Tensor::dispatch(
            "rms_norm",
            OpFamily::Norm,
            dt,
            &inputs,
            &shape,
            dt,
            &|b, v| b.rms_norm(v[0], v.get(1).copied(), eps),
        )
    }

    /// Batched matmul with NumPy broadcasting of the batch dims; 1-D operands are not promoted.
    pub fn matmul(&self, rhs: &Tensor) -> Result<Tensor> {
        float_only("matmul", self)?;
        if self.dtype() != rhs.dtype() {
            return Err(Error::DTypeMismatch {
                op: "matmul",
                lhs: self.dtype(),
                rhs: rhs.dtype(),
            });
        }
        if self.rank() < 2 || rhs.rank() < 2 {
            return Err(Error::shape(
                "matmul",
                self.shape(),
                rhs.shape(),
                "both operands need rank ≥ 2",
            ));
        }
        let (ra, rb) = (self.rank(), rhs.rank());
        let (m, k) = (self.shape()[ra - 2], self.shape()[ra - 1]);
        let (k2, n) = (rhs.shape()[rb - 2], rhs.shape()[rb - 1]);
        if k != k2 {
            return Err(Error::shape(
                "matmul",
                self.shape(),
                rhs.shape(),
                "inner dims differ",
            ));
        }
        let batch = broadcast_shapes("matmul", &self.shape()[..ra - 2], &rhs.shape()[..rb - 2])?;
        let mut sa = batch.clone();
        sa.extend([m, k]);
        let mut sb = batch.clone();
        sb.extend([k, n]);
        let a = if self.shape() == sa.as_slice() {
            self.clone()
        } else {
            self.broadcast_as(&sa)?
        };
        let b = if rhs.shape() == sb.as_slice() {
            rhs.clone()
        } else {
            rhs.broadcast_as(&sb)?
        };
        let mut out = batch;
        out.extend([m, n]);
        let dt = self.dtype();
        Tensor::dispatch(
            "matmul",
            OpFamily::Matmul,
            dt,
            &[&a, &b],
            &out,
            dt,
            &|be, v| be.matmul(v[0], v[1]),
        )
    }

    /// `self` [rows…, k] × `w`ᵀ for a quantized `w` [n, k] → [rows…, n]. A float `w` falls back
    /// to a plain matmul with its transpose, so one model implementation serves both.
    pub fn qmatmul(&self, w: &Tensor) -> Result<Tensor> {
        if !w.dtype().is_quantized() {
            let wt = w.to_dtype(self.dtype())?.t()?;
            return self.matmul(&wt);
        }
        float_only("qmatmul", self)?;
        if w.rank() != 2 || self.rank() == 0 || self.shape()[self.rank() - 1] != w.shape()[1] {
            return Err(Error::shape(
                "qmatmul",
                self.shape(),
                w.shape(),
                "x [.., k] × w [n, k]",
            ));
        }
        let mut out = self.shape().to_vec();
        let last = out.len() - 1;
        out[last] = w.shape()[0];
        let dt = self.dtype();
        // the activations get their own decision (f16 activations on a device without f16
        // compute): under `auto` they are upcast here and counted, under `strict` this refuses
        if let crate::policy::Decision::Upcast { to } =
            self.device().decide("qmatmul", OpFamily::Matmul, dt)?
        {
            return self.to_dtype(to)?.qmatmul(w)?.to_dtype(dt);
        }
        // the weight dtype decides kernel support (q4_1 kernels)
        Tensor::dispatch(
            "qmatmul",
            OpFamily::QMatmul,
            w.dtype(),
            &[w, self],
            &out,
            dt,
            &|be, v| be.qmatmul(v[1], v[0]),
        )
    }

    /// This quantized matrix (the `w` of [`Tensor::qmatmul`]) in the layout its device's
    /// `qmatmul` reads fastest: a copy with the same dtype, shape, values and size, which every
    /// op reads as it read `self` (the CPU puts 16 rows in the vector lanes where it has AVX-512
    /// VNNI or AVX2). Where the device has no such layout, or `self` is not a whole quantized matrix, a
    /// clone of `self`. Model loaders call it once per weight matrix.
    pub fn packed_for_qmatmul(&self) -> Result<Tensor> {
        if !self.dtype().is_quantized() || self.rank() != 2 || !self.device().holds_data() {
            return Ok(self.clone());
        }
        Ok(
            match self.device().backend().pack_qmatmul_weight(self.view())? {
                Some(s) => Tensor::from_parts(s, self.shape(), self.dtype(), self.device()),
                None => self.clone(),
            },
        )
    }

    /// This float weight [n, k], stored in-dim-major (its transpose is a whole contiguous
    /// [k, n] storage, as the model loaders keep linear weights), in the layout its device's
    /// matmul reads fastest as the right-hand side of `x · selfᵀ`: a copy with the same dtype,
    /// shape, values and size, which every op reads as it read `self` (the CPU packs f32
    /// weights into its AVX2 kernel's panels where that kernel runs, as strips of 64 columns on
    /// AVX-512 CPUs, and bf16 weights for its `vdpbf16ps` kernel). Where the device has no
    /// such layout, or `self` is not such a weight, a clone of `self`. Model loaders call it
    /// once per float weight matrix.
    pub fn packed_for_matmul(&self) -> Result<Tensor> {
        if !self.dtype().is_float() || self.rank() != 2 || !self.device().holds_data() {
            return Ok(self.clone());
        }
        let t = self.t()?;
        if !t.layout().is_contiguous_from_start()
            || t.storage().byte_len() != self.dtype().storage_bytes(t.numel())
        {
            return Ok(self.clone());
        }
        match self.device().backend().pack_matmul_weight(t.view())? {
            Some(s) => Tensor::from_parts(s, t.shape(), self.dtype(), self.device()).t(),
            None => Ok(self.clone()),
        }
    }

    /// A linear layer, `x × wᵀ + bias` (PyTorch's `F.linear`): `x` [.., k], `w` [n, k] (float
    /// or quantized), `bias` [n]. With float weights it is one backend op (`matmul_bias`, which
    /// the CPU fuses into its gemm); quantized weights run `qmatmul` and then the add.
    pub fn linear(&self, w: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
        self.linear_then(w, bias, Then::Nothing)
    }

    /// [`Tensor::linear`] followed by the activation `act` (gelu, gelu_tanh, relu or silu):
    /// `x.linear(w, bias)?.unary(act)` as one op (`linear_gelu`, …) where the weights are float,
    /// a bias is given and the device runs `act` natively in x's dtype (the CPU applies it to
    /// each block of the product while it is in cache); as the two ops otherwise.
    pub fn linear_act(&self, w: &Tensor, bias: Option<&Tensor>, act: UnaryOp) -> Result<Tensor> {
        self.linear_then(w, bias, Then::Act(act))
    }

    /// [`Tensor::linear`] plus `residual` (the output's shape): `x.linear(w, bias)?.add(residual)`,
    /// a linear layer and the skip connection after it, as one op (`linear_add`) where the
    /// weights are float, a bias is given, the residual has the output's shape and x's dtype and
    /// the device adds natively in that dtype (the CPU adds it to each block of the product while
    /// it is in cache); as the two ops otherwise.
    pub fn linear_add(
        &self,
        w: &Tensor,
        bias: Option<&Tensor>,
        residual: &Tensor,
    ) -> Result<Tensor> {
        self.linear_then(w, bias, Then::Add(residual))
    }

    fn linear_then(&self, w: &Tensor, bias: Option<&Tensor>, then: Then) -> Result<Tensor> {
        let native = self.device().supports(OpFamily::Elementwise, self.dtype()) == Support::Native
            && self.dtype().is_float();
        let fused = match then {
            Then::Nothing => Some("linear"),
            Then::Act(a) => match a {
                UnaryOp::Gelu => Some("linear_gelu"),
                UnaryOp::GeluTanh => Some("linear_gelu_tanh"),
                UnaryOp::Relu => Some("linear_relu"),
                UnaryOp::Silu => Some("linear_silu"),
                _ => None,
            }
            .filter(|_| native),
            Then::Add(r) => Some("linear_add").filter(|_| native && r.dtype() == self.dtype()),
        };
        let composed = |y: Tensor| match then {
            Then::Nothing => Ok(y),
            Then::Act(a) => y.unary(a),
            Then::Add(r) => y.add(r),
        };
        let Some(bias) = bias else {
            return composed(self.qmatmul(w)?);
        };
        if w.dtype().is_quantized() || bias.dtype() != self.dtype() {
            return composed(self.qmatmul(w)?.add(bias)?);
        }
        let Some(name) = fused else {
            return composed(self.linear(w, Some(bias))?);
        };
        float_only("linear", self)?;
        let k = self.shape().last().copied().unwrap_or(0);
        if w.rank() != 2 || self.rank() == 0 || w.shape()[1] != k {
            return Err(Error::shape(
                "linear",
                self.shape(),
                w.shape(),
                "x [.., k] × w [n, k]",
            ));
        }
        let n = w.shape()[0];
        if bias.shape() != [n] {
            return Err(Error::shape(
                "linear",
                w.shape(),
                bias.shape(),
                "bias [n] for w [n, k]",
            ));
        }
        let mut out = self.shape().to_vec();
        let last = out.len() - 1;
        out[last] = n;
        // x as [batch.., m, k] and wᵀ broadcast to [batch.., k, n], as matmul takes them
        let x = if self.rank() == 1 {
            self.reshape([1, k])?
        } else {
            self.clone()
        };
        let mut sb = x.shape()[..x.rank() - 2].to_vec();
        sb.extend([k, n]);
        let wt = w.to_dtype(self.dtype())?.t()?.broadcast_as(&sb)?;
        let mut xs = x.shape().to_vec();
        let xl = xs.len() - 1;
        xs[xl] = n;
        let residual = match then {
            Then::Add(r) if r.shape() == out => Some(r.reshape(&xs[..])?),
            // a residual that only broadcasts to the output: the two ops
            Then::Add(_) => return composed(self.linear(w, Some(bias))?),
            _ => None,
        };
        let mut inputs = vec![&x, &wt, bias];
        inputs.extend(residual.as_ref());
        let y = Tensor::dispatch(
            name,
            OpFamily::Matmul,
            self.dtype(),
            &inputs,
            &xs,
            self.dtype(),
            &|be, v| match then {
                Then::Act(a) => be.matmul_bias_act(v[0], v[1], v[2], a),
                Then::Add(_) => be.matmul_bias_add(v[0], v[1], v[2], v[3]),
                Then::Nothing => be.matmul_bias(v[0], v[1], v[2]),
            },
        )?;
        if self.rank() == 1 {
            y.reshape(out)
        } else {
            Ok(y)
        }
    }

    /// Dequantize (or cast) to a float dtype.
    pub fn dequantize(&self, to: DType) -> Result<Tensor> {
        self.to_dtype(to)
    }

    /// Pick entries along `dim` by 1-D integer `ids`.
    pub fn index_select(&self, ids: &Tensor, dim: isize) -> Result<Tensor> {
        index_dtype("index_select", ids)?;
        if ids.rank() != 1 {
            return Err(Error::shape(
                "index_select",
                self.shape(),
                ids.shape(),
                "ids must be 1-D",
            ));
        }
        if self.dtype().is_quantized() {
            return Err(Error::invalid("index_select", "dequantize the table first"));
        }
        let d = resolve_dim("index_select", dim, self.shape())?;
        let mut out = self.shape().to_vec();
        out[d] = ids.shape()[0];
        let dt = self.dtype();
        Tensor::dispatch(
            "index_select",
            OpFamily::Index,
            dt,
            &[self, ids],
            &out,
            dt,
            &|b, v| b.index_select(v[0], v[1], d),
        )
    }

    /// Embedding lookup: `self` is the [vocab, hidden] table, `ids` any shape → [ids…, hidden].
    pub fn embedding(&self, ids: &Tensor) -> Result<Tensor> {
        if self.rank() != 2 {
            return Err(Error::shape(
                "embedding",
                self.shape(),
                ids.shape(),
                "table must be [vocab, hidden]",
            ));
        }
        let flat = ids.flatten_all()?;
        let rows = self.index_select(&flat, 0)?;
        let mut shape = ids.shape().to_vec();
        shape.push(self.shape()[1]);
        rows.reshape(shape)
    }

    /// torch.gather along `dim`.
    pub fn gather(&self, ids: &Tensor, dim: isize) -> Result<Tensor> {
        index_dtype("gather", ids)?;
        let d = resolve_dim("gather", dim, self.shape())?;
        if ids.rank() != self.rank()
            || ids
                .shape()
                .iter()
                .zip(self.shape())
                .enumerate()
                .any(|(i, (&a, &b))| i != d && a > b)
        {
            return Err(Error::shape(
                "gather",
                self.shape(),
                ids.shape(),
                "ids must have x's rank and fit in it",
            ));
        }
        let out = ids.shape().to_vec();
        let dt = self.dtype();
        Tensor::dispatch(
            "gather",
            OpFamily::Index,
            dt,
            &[self, ids],
            &out,
            dt,
            &|b, v| b.gather(v[0], v[1], d),
        )
    }

    /// Concatenate along `dim`.
    pub fn cat(xs: &[&Tensor], dim: isize) -> Result<Tensor> {
        let Some(first) = xs.first() else {
            return Err(Error::invalid("cat", "no tensors"));
        };
        let d = resolve_dim("cat", dim, first.shape())?;
        let mut out = first.shape().to_vec();
        out[d] = 0;
        for t in xs {
            if t.dtype() != first.dtype() {
                return Err(Error::DTypeMismatch {
                    op: "cat",
                    lhs: first.dtype(),
                    rhs: t.dtype(),
                });
            }
            if t.rank() != first.rank()
                || t.shape()
                    .iter()
                    .zip(first.shape())
                    .enumerate()
                    .any(|(i, (a, b))| i != d && a != b)
            {
                return Err(Error::shape(
                    "cat",
                    first.shape(),
                    t.shape(),
                    format!("shapes differ outside dim {d}"),
                ));
            }
            out[d] += t.shape()[d];
        }
        let dt = first.dtype();
        Tensor::dispatch("cat", OpFamily::Copy, dt, xs, &out, dt, &|b, v| b.cat(v, d))
    }

    /// Rotary embedding on [batch, heads, seq, head_dim] with cos/sin [seq, head_dim/2].
    pub fn rope(&self, cos: &Tensor, sin: &Tensor, interleaved: bool) -> Result<Tensor> {
        float_only("rope", self)?;
        if self.rank() != 4 {
            return Err(Error::shape(
                "rope",
                self.shape(),
                cos.shape(),
                "x must be [batch, heads, seq, head_dim]",
            ));
        }
        let (t, hd) = (self.shape()[2], self.shape()[3]);
        if hd % 2 != 0 || cos.shape() != [t, hd / 2] || sin.shape() != cos.shape() {
            return Err(Error::shape(
                "rope",
                self.shape(),
                cos.shape(),
                "cos/sin must be [seq, head_dim/2]",
            ));
        }
        let cos = cos.to_dtype(self.dtype())?;
        let sin = sin.to_dtype(self.dtype())?;
        let shape = self.shape().to_vec();
        let dt = self.dtype();
        Tensor::dispatch(
            "rope",
            OpFamily::Rope,
            dt,
            &[self, &cos, &sin],
            &shape,
            dt,
            &|b, v| b.rope(v[0], v[1], v[2], interleaved),
        )
    }

    /// Additive causal mask [q_len, kv_len]: 0 where key j ≤ query i + (kv_len − q_len), −∞ after.
    pub fn causal_mask(
        q_len: usize,
        kv_len: usize,
        dtype: DType,
        device: &crate::Device,
    ) -> Result<Tensor> {
        if kv_len < q_len {
            return Err(Error::invalid(
                "causal_mask",
                format!("kv_len {kv_len} < q_len {q_len}"),
            ));
        }
        let off = kv_len - q_len;
        let v: Vec<f64> = (0..q_len)
            .flat_map(|i| {
                (0..kv_len).map(move |j| if j <= i + off { 0.0 } else { f64::NEG_INFINITY })
            })
            .collect();
        Tensor::from_f64(&v, dtype, [q_len, kv_len], device)
    }

    /// Scaled-dot-product attention: q [b, h, s, d], k/v [b, hkv, t, d] with h a multiple of hkv
    /// (grouped-query attention), optional additive mask broadcastable to [b, h, s, t].
    ///
    /// k and v share one float dtype, which may be narrower than q's (a KV cache kept in f16
    /// for f32 queries, as llama.cpp keeps it): the scores, softmax and sums are then computed
    /// in q's dtype from the widened keys and values, and the output has q's dtype. A backend
    /// whose fused kernel does not read such keys leaves it to the composition here, which
    /// casts k and v to q's dtype first.
    pub fn attention(
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        mask: Option<&Tensor>,
        causal: bool,
        scale: Option<f64>,
    ) -> Result<Tensor> {
        float_only("attention", q)?;
        float_only("attention", k)?;
        if v.dtype() != k.dtype() {
            return Err(Error::DTypeMismatch {
                op: "attention",
                lhs: k.dtype(),
                rhs: v.dtype(),
            });
        }
        if q.rank() != 4 || k.rank() != 4 || v.shape() != k.shape() {
            return Err(Error::shape(
                "attention",
                q.shape(),
                k.shape(),
                "q [b,h,s,d], k and v [b,hkv,t,d]",
            ));
        }
        let (b, h, s, d) = (q.shape()[0], q.shape()[1], q.shape()[2], q.shape()[3]);
        let (hkv, t) = (k.shape()[1], k.shape()[2]);
        if k.shape()[0] != b || k.shape()[3] != d || hkv == 0 || h % hkv != 0 {
            return Err(Error::shape(
                "attention",
                q.shape(),
                k.shape(),
                "batch/head_dim differ or heads not a multiple of kv heads",
            ));
        }
        let scale = scale.unwrap_or(1.0 / (d as f64).sqrt());
        let rep = h / hkv;
        let expand = |x: &Tensor| -> Result<Tensor> {
            if rep == 1 {
                return Ok(x.clone());
            }
            x.unsqueeze(2)?
                .broadcast_as([b, hkv, rep, t, d])?
                .reshape([b, h, t, d])
        };
        let mask = match mask {
            Some(m) => Some(m.to_dtype(q.dtype())?.broadcast_as([b, h, s, t])?),
            None => None,
        };
        if causal && t < s {
            return Err(Error::invalid(
                "attention",
                format!("causal attention needs kv_len {t} ≥ q_len {s}"),
            ));
        }
        // fused path if the backend has one and the policy runs this natively
        let dev = q.device();
        if dev.holds_data()
            && dev.decide("attention", OpFamily::Matmul, q.dtype())?
                == crate::policy::Decision::Native
        {
            let args = AttentionArgs { scale, causal };
            let mv = mask.as_ref().map(|m| m.view());
            if let Some(out) = dev
                .backend()
                .attention(q.view(), k.view(), v.view(), mv, args)?
            {
                return Ok(Tensor::from_parts(out, &[b, h, s, d], q.dtype(), dev));
            }
        }
        let (k, v) = if k.dtype() == q.dtype() {
            (expand(k)?, expand(v)?)
        } else {
            (
                expand(&k.to_dtype(q.dtype())?)?,
                expand(&v.to_dtype(q.dtype())?)?,
            )
        };
        let mut combined = mask;
        if causal {
            let cm = Tensor::causal_mask(s, t, q.dtype(), q.device())?;
            combined = Some(match combined {
                Some(m) => m.add(&cm)?,
                None => cm.broadcast_as([b, h, s, t])?,
            });
        }
        let scores = q.matmul(&k.t()?)?.mul_scalar(scale)?;
        let scores = match combined {
            Some(m) => scores.add(&m)?,
            None => scores,
        };
        scores.softmax(-1)?.matmul(&v)
    }
}
