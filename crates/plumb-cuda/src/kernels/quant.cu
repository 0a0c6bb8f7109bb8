// dequantize_{q4_0,q4_1,q8_0}_{f32,f16,bf16} and qmatvec_{q4_0,q4_1,q8_0}_{f32,f16,bf16}.
// GGUF blocks of 32 values: q4_0 = f16 d + 16 bytes of nibbles (value (q − 8)·d; element j < 16
// in the low nibble of byte j, element j + 16 in its high nibble); q4_1 = f16 d + f16 m + 16
// bytes (value q·d + m); q8_0 = f16 d + 32 signed bytes (value q·d).

#define QK 32

__device__ __forceinline__ float ld_half(const u8* p) {
    return f16_to_f32((unsigned short)(p[0] | (p[1] << 8)));
}

// value j (0..32) of the block at p
template <int Q> __device__ __forceinline__ float q_value(const u8* p, int j);
template <> __device__ __forceinline__ float q_value<0>(const u8* p, int j) {
    int b = p[2 + (j & 15)];
    return (float)((j < 16 ? (b & 15) : (b >> 4)) - 8) * ld_half(p);
}
template <> __device__ __forceinline__ float q_value<1>(const u8* p, int j) {
    int b = p[4 + (j & 15)];
    return (float)(j < 16 ? (b & 15) : (b >> 4)) * ld_half(p) + ld_half(p + 2);
}
template <> __device__ __forceinline__ float q_value<2>(const u8* p, int j) {
    return (float)(signed char)p[2 + j] * ld_half(p);
}
template <int Q> struct QBytes;
template <> struct QBytes<0> { static const int v = 18; };
template <> struct QBytes<1> { static const int v = 20; };
template <> struct QBytes<2> { static const int v = 34; };

template <int Q, class T> __device__ void dequantize(i64 n, const u8* w, T* y) {
    GRID_LOOP(i, n) y[i] = Ty<T>::st(q_value<Q>(w + (i / QK) * QBytes<Q>::v, (int)(i % QK)));
}

// y [rows, n] = x [rows, k] · wᵀ, w [n, k] quantized, rows ≤ 8. One warp per output column;
// lane l takes an eighth of block (l / 4) + 8·it: 8 values, sub-part l % 4.
#define QMV_MAX_ROWS 8
template <int Q, class T>
__device__ void qmatvec(int rows, i64 n, i64 k, const T* x, const u8* w, T* y) {
    i64 col = (i64)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    if (col >= n) return;
    int lane = threadIdx.x & 31, sub = lane & 3;
    i64 nb = k / QK;
    const u8* wr = w + col * nb * QBytes<Q>::v;
    float acc[QMV_MAX_ROWS];
#pragma unroll
    for (int r = 0; r < QMV_MAX_ROWS; ++r) acc[r] = 0.f;
    for (i64 b = lane >> 2; b < nb; b += 8) {
        const u8* p = wr + b * QBytes<Q>::v;
        float d = ld_half(p);
        float q[8];
        int idx[8];
        if (Q == 2) {
#pragma unroll
            for (int t = 0; t < 8; ++t) {
                idx[t] = sub * 8 + t;
                q[t] = (float)(signed char)p[2 + idx[t]];
            }
        } else {
            const u8* qs = p + (Q == 0 ? 2 : 4);
#pragma unroll
            for (int t = 0; t < 4; ++t) {
                int byte = qs[sub * 4 + t];
                idx[t] = sub * 4 + t;
                idx[t + 4] = 16 + sub * 4 + t;
                q[t] = (float)((byte & 15) - (Q == 0 ? 8 : 0));
                q[t + 4] = (float)((byte >> 4) - (Q == 0 ? 8 : 0));
            }
        }
        float m = Q == 1 ? ld_half(p + 2) : 0.f;
        // unrolled with a guard (not `r < rows`) so acc stays in registers
#pragma unroll
        for (int r = 0; r < QMV_MAX_ROWS; ++r) {
            if (r >= rows) break;
            const T* xr = x + r * k + b * QK;
            float s = 0.f, sx = 0.f;
#pragma unroll
            for (int t = 0; t < 8; ++t) {
                float xv = Ty<T>::ld(xr[idx[t]]);
                s += q[t] * xv;
                sx += xv;
            }
            acc[r] += s * d + (Q == 1 ? m * sx : 0.f);
        }
    }
#pragma unroll
    for (int r = 0; r < QMV_MAX_ROWS; ++r) {
        if (r >= rows) break;
        float v = warp_sum(acc[r]);
        if (lane == 0) y[r * n + col] = Ty<T>::st(v);
    }
}

#define QUANT(qn, Q, tn, T)                                                                      \
    extern "C" __global__ void dequantize_##qn##_##tn(i64 n, const u8* w, T* y) {               \
        dequantize<Q, T>(n, w, y);                                                               \
    }                                                                                            \
    extern "C" __global__ void qmatvec_##qn##_##tn(int rows, i64 n, i64 k, const T* x,          \
                                                   const u8* w, T* y) {                          \
        qmatvec<Q, T>(rows, n, k, x, w, y);                                                      \
    }
#define QUANT_ALL(qn, Q) QUANT(qn, Q, f32, float) QUANT(qn, Q, f16, f16) QUANT(qn, Q, bf16, bf16)
QUANT_ALL(q4_0, 0)
QUANT_ALL(q4_1, 1)
QUANT_ALL(q8_0, 2)
