// attention_{dtype}: softmax(q·kᵀ·scale + mask, causal) · v for one query row per block.
// q [b, h, s, d], k/v [b, hkv, t, d] (query head i reads kv head i / (h / hkv)), optional mask
// [b, h, s, t]; every input is a strided view given by its offset and 4 strides (elements).
// Scores live in shared memory (t ≤ ATT_MAX_T, checked by the launcher); halves compute in f32.
// A row whose scores are all −∞ or hold NaN comes out NaN, as softmax does.

#define ATT_MAX_T 4096

struct View4 {
    i64 offset;
    i64 s[4];
};

__device__ __forceinline__ i64 at4(const View4& v, i64 a, i64 b, i64 c, i64 d) {
    return v.offset + a * v.s[0] + b * v.s[1] + c * v.s[2] + d * v.s[3];
}

template <class T>
__device__ void attention_row(int h, int hkv, i64 s, i64 t, i64 d, double scale, int causal,
                              const T* q, View4 vq, const T* k, View4 vk, const T* v, View4 vv,
                              const T* mask, View4 vm, T* out) {
    typedef typename Ty<T>::C C;
    extern __shared__ unsigned char smem[];
    C* sc = (C*)smem;  // t scores, then 32 floats of reduction scratch
    C* red = sc + t;
    i64 row = blockIdx.x;  // ((bi * h) + hi) * s + i
    i64 i = row % s, bh = row / s;
    i64 hi = bh % h, bi = bh / h;
    i64 kh = hi / (h / hkv);
    // causal: query i sees keys 0..=i + (t − s)
    i64 last = causal ? i + (t - s) : t - 1;
    C m = -(C)__int_as_float(0x7f800000);
    for (i64 j = threadIdx.x; j < t; j += blockDim.x) {
        C acc;
        if (j > last) {
            acc = -(C)__int_as_float(0x7f800000);
        } else {
            acc = 0;
            for (i64 x = 0; x < d; ++x)
                acc += Ty<T>::ld(q[at4(vq, bi, hi, i, x)]) * Ty<T>::ld(k[at4(vk, bi, kh, j, x)]);
            acc *= (C)scale;
            if (mask) acc += Ty<T>::ld(mask[at4(vm, bi, hi, i, j)]);
        }
        sc[j] = acc;
        m = max_nan(m, acc);
    }
    m = block_max(m, -(C)__int_as_float(0x7f800000), red);
    C sum = 0;
    for (i64 j = threadIdx.x; j < t; j += blockDim.x) {
        C p = f_exp(sc[j] - m);
        sc[j] = p;
        sum += p;
    }
    sum = block_sum(sum, red);  // its __syncthreads also publishes every sc[j]
    C inv = (C)1 / sum;
    T* o = out + row * d;
    for (i64 x = threadIdx.x; x < d; x += blockDim.x) {
        C acc = 0;
        for (i64 j = 0; j < t; ++j) acc += sc[j] * Ty<T>::ld(v[at4(vv, bi, kh, j, x)]);
        o[x] = Ty<T>::st(acc * inv);
    }
}

#define ATTENTION(name, T)                                                                       \
    extern "C" __global__ void attention_##name(int h, int hkv, i64 s, i64 t, i64 d, double scale, \
                                                int causal, const T* q, View4 vq, const T* k,    \
                                                View4 vk, const T* v, View4 vv, const T* mask,   \
                                                View4 vm, T* out) {                              \
        attention_row<T>(h, hkv, s, t, d, scale, causal, q, vq, k, vk, v, vv, mask, vm, out);    \
    }
ATTENTION(f32, float)
ATTENTION(f64, double)
ATTENTION(f16, f16)
ATTENTION(bf16, bf16)
