// reduce_rows_{dtype} / reduce_cols_{dtype} (sum, mean, max, min, argmax over one dim),
// softmax_{dtype}, layer_norm_{dtype}, rms_norm_{dtype}, rope_{dtype}.
// Inputs are contiguous (the launcher copies strided views first). Halves and f32 accumulate in
// f32, f64 in f64, integers in 64 bits (sums wrap to the dtype). max/min propagate NaN; argmax is
// the first maximum, a NaN counting as the maximum. Reduce op codes: ReduceOp::ALL positions.

template <class C> struct Acc { typedef C A; };
template <> struct Acc<int> { typedef i64 A; };

// does (v, iv) beat the best (b, ib) for argmax? NaN wins; ties keep the lower index
template <class A> __device__ __forceinline__ bool arg_better(A v, i64 iv, A b, i64 ib) {
    if (b != b) return v != v && iv < ib;
    if (v != v) return true;
    return v > b || (v == b && iv < ib);
}
// fold the element (v, iv) into the running result (acc, best) of reduction `op`
template <class A>
__device__ __forceinline__ void fold(int op, A& acc, i64& best, A v, i64 iv) {
    switch (op) {
    case 0: case 1: acc += v; break;
    case 2: acc = max_nan(acc, v); break;
    case 3: acc = min_nan(acc, v); break;
    default: if (arg_better(v, iv, acc, best)) { acc = v; best = iv; }
    }
}

// write output `o`: the index for argmax (i32 or i64), else the value (divided for mean)
template <class T, class A>
__device__ __forceinline__ void store(int op, i64 len, A acc, i64 best, void* y, i64 o, int idx64) {
    if (op == 4) {
        if (idx64) ((i64*)y)[o] = best; else ((int*)y)[o] = (int)best;
    } else {
        if (op == 1 && len > 0) acc = acc / (A)len;
        ((T*)y)[o] = Ty<T>::st((typename Ty<T>::C)acc);
    }
}

// x [outer, len, inner]; one thread per output (outer, inner): coalesced along inner.
template <class T>
__device__ void reduce_cols(int op, i64 outer, i64 len, i64 inner, const T* x, void* y, int idx64) {
    typedef typename Acc<typename Ty<T>::C>::A A;
    GRID_LOOP(o, outer * inner) {
        const T* p = x + (o / inner) * len * inner + o % inner;
        A acc = (A)0;
        i64 best = 0;
        if (len > 0) acc = (A)Ty<T>::ld(p[0]);
        for (i64 j = 1; j < len; ++j) {
            A v = (A)Ty<T>::ld(p[j * inner]);
            fold(op, acc, best, v, j);
        }
        store<T>(op, len, acc, best, y, o, idx64);
    }
}

// one block per row (inner == 1); threads stride the row, then combine through shared memory
template <class T>
__device__ void reduce_rows(int op, i64 len, const T* x, void* y, int idx64) {
    typedef typename Acc<typename Ty<T>::C>::A A;
    __shared__ A sv[32];
    __shared__ i64 si[32];
    const T* p = x + (i64)blockIdx.x * len;
    bool have = false;
    A acc = (A)0;
    i64 best = 0;
    for (i64 j = threadIdx.x; j < len; j += blockDim.x) {
        A v = (A)Ty<T>::ld(p[j]);
        if (!have) { acc = v; best = j; have = true; continue; }
        fold(op, acc, best, v, j);
    }
    // combine: threads without elements carry no candidate (best = -1)
    if (!have) best = -1;
    for (int o = 16; o > 0; o >>= 1) {
        A v = __shfl_xor_sync(0xffffffffu, acc, o);
        i64 iv = __shfl_xor_sync(0xffffffffu, best, o);
        if (iv < 0) continue;
        if (best < 0) { acc = v; best = iv; continue; }
        fold(op, acc, best, v, iv);
    }
    int w = threadIdx.x >> 5;
    if ((threadIdx.x & 31) == 0) { sv[w] = acc; si[w] = best; }
    __syncthreads();
    if (threadIdx.x == 0) {
        acc = sv[0];
        best = si[0];
        for (int k = 1; k < (int)(blockDim.x >> 5); ++k) {
            A v = sv[k];
            i64 iv = si[k];
            if (iv < 0) continue;
            if (best < 0) { acc = v; best = iv; continue; }
            fold(op, acc, best, v, iv);
        }
        if (best < 0) { acc = (A)0; best = 0; }
        store<T>(op, len, acc, best, y, blockIdx.x, idx64);
    }
}

// Softmax and norms over rows of `len`; one block per row. `log`: log-softmax.
template <class T> __device__ void softmax_row(i64 len, int log, const T* x, T* y) {
    typedef typename Ty<T>::C C;
    __shared__ C sh[32];
    const T* p = x + (i64)blockIdx.x * len;
    T* q = y + (i64)blockIdx.x * len;
    C m = -(C)__int_as_float(0x7f800000);
    for (i64 j = threadIdx.x; j < len; j += blockDim.x) m = max_nan(m, Ty<T>::ld(p[j]));
    m = block_max(m, -(C)__int_as_float(0x7f800000), sh);
    C s = 0;
    for (i64 j = threadIdx.x; j < len; j += blockDim.x) s += f_exp(Ty<T>::ld(p[j]) - m);
    s = block_sum(s, sh);
    if (log) {
        C ls = f_log(s);
        for (i64 j = threadIdx.x; j < len; j += blockDim.x) q[j] = Ty<T>::st(Ty<T>::ld(p[j]) - m - ls);
    } else {
        C r = (C)1 / s;
        for (i64 j = threadIdx.x; j < len; j += blockDim.x) q[j] = Ty<T>::st(f_exp(Ty<T>::ld(p[j]) - m) * r);
    }
}

// layer norm (rms = 0) or RMS norm (rms = 1); w, b may be null
template <class T>
__device__ void norm_row(i64 len, int rms, double eps, const T* x, const T* w, const T* b, T* y) {
    typedef typename Ty<T>::C C;
    __shared__ C sh[32];
    const T* p = x + (i64)blockIdx.x * len;
    T* q = y + (i64)blockIdx.x * len;
    C mean = 0;
    if (!rms) {
        C s = 0;
        for (i64 j = threadIdx.x; j < len; j += blockDim.x) s += Ty<T>::ld(p[j]);
        mean = block_sum(s, sh) / (C)len;
    }
    C ss = 0;
    for (i64 j = threadIdx.x; j < len; j += blockDim.x) {
        C d = Ty<T>::ld(p[j]) - mean;
        ss += d * d;
    }
    C inv = (C)1 / f_sqrt(block_sum(ss, sh) / (C)len + (C)eps);
    for (i64 j = threadIdx.x; j < len; j += blockDim.x) {
        C v = (Ty<T>::ld(p[j]) - mean) * inv;
        if (w) v *= Ty<T>::ld(w[j]);
        if (b) v += Ty<T>::ld(b[j]);
        q[j] = Ty<T>::st(v);
    }
}

// x [rows = b·h, s, d] contiguous; cos/sin [s, d/2]. Pairs (i, i + d/2) or (2i, 2i + 1).
template <class T>
__device__ void rope_pairs(i64 n, i64 s, i64 d, int interleaved, const T* x, const T* c, const T* sn, T* y) {
    typedef typename Ty<T>::C C;
    i64 h = d / 2;
    GRID_LOOP(i, n) {
        i64 k = i % h, row = i / h, pos = row % s;
        i64 a = row * d + (interleaved ? 2 * k : k);
        i64 bidx = a + (interleaved ? 1 : h);
        C x0 = Ty<T>::ld(x[a]), x1 = Ty<T>::ld(x[bidx]);
        C cs = Ty<T>::ld(c[pos * h + k]), sv = Ty<T>::ld(sn[pos * h + k]);
        y[a] = Ty<T>::st(x0 * cs - x1 * sv);
        y[bidx] = Ty<T>::st(x0 * sv + x1 * cs);
    }
}

#define REDUCE(name, T)                                                                          \
    extern "C" __global__ void reduce_cols_##name(int op, i64 outer, i64 len, i64 inner,        \
                                                  const T* x, void* y, int idx64) {              \
        reduce_cols<T>(op, outer, len, inner, x, y, idx64);                                      \
    }                                                                                            \
    extern "C" __global__ void reduce_rows_##name(int op, i64 len, const T* x, void* y,         \
                                                  int idx64) {                                   \
        reduce_rows<T>(op, len, x, y, idx64);                                                    \
    }
#define FLOAT_ROWS(name, T)                                                                      \
    REDUCE(name, T)                                                                              \
    extern "C" __global__ void softmax_##name(i64 len, int log, const T* x, T* y) {             \
        softmax_row<T>(len, log, x, y);                                                          \
    }                                                                                            \
    extern "C" __global__ void norm_##name(i64 len, int rms, double eps, const T* x,            \
                                           const T* w, const T* b, T* y) {                       \
        norm_row<T>(len, rms, eps, x, w, b, y);                                                  \
    }                                                                                            \
    extern "C" __global__ void rope_##name(i64 n, i64 s, i64 d, int interleaved, const T* x,    \
                                           const T* c, const T* sn, T* y) {                      \
        rope_pairs<T>(n, s, d, interleaved, x, c, sn, y);                                        \
    }
FLOAT_ROWS(f32, float)
FLOAT_ROWS(f64, double)
FLOAT_ROWS(f16, f16)
FLOAT_ROWS(bf16, bf16)
REDUCE(i32, int)
REDUCE(i64, i64)
REDUCE(u8, u8)
