// Shared by every kernel file: element types, conversions, strided indexing.
// Compiled by NVRTC with no CUDA headers: halves are their bit patterns, converted with PTX.

typedef unsigned char u8;
typedef long long i64;
typedef unsigned long long u64;
struct f16 { unsigned short b; };
struct bf16 { unsigned short b; };

__device__ __forceinline__ float f16_to_f32(unsigned short h) {
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
    return f;
}
__device__ __forceinline__ unsigned short f32_to_f16(float f) {
    unsigned short h;
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f));
    return h;
}
__device__ __forceinline__ unsigned short f64_to_f16(double d) {
    unsigned short h;
    asm("cvt.rn.f16.f64 %0, %1;" : "=h"(h) : "d"(d));
    return h;
}
__device__ __forceinline__ float bf16_to_f32(unsigned short h) {
    return __uint_as_float(((unsigned)h) << 16);
}
// round to nearest even; NaN stays a quiet NaN
__device__ __forceinline__ unsigned short f32_to_bf16(float f) {
    unsigned u = __float_as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (unsigned short)((u >> 16) | 0x40u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (unsigned short)(u >> 16);
}
// f64 → bf16 in one rounding: round to odd into f32 first (exact for the following RNE step)
__device__ __forceinline__ unsigned short f64_to_bf16(double d) {
    float t = __double2float_rz(d);
    unsigned u = __float_as_uint(t);
    if ((double)t != d && (u & 0x7fffffffu) < 0x7f800000u) u |= 1u;
    return f32_to_bf16(__uint_as_float(u));
}

// Ty<T>: the compute type C of a storage type T (halves compute in f32), load and store.
template <class T> struct Ty;
template <> struct Ty<float> {
    typedef float C;
    static __device__ __forceinline__ float ld(float v) { return v; }
    static __device__ __forceinline__ float st(float c) { return c; }
};
template <> struct Ty<double> {
    typedef double C;
    static __device__ __forceinline__ double ld(double v) { return v; }
    static __device__ __forceinline__ double st(double c) { return c; }
};
template <> struct Ty<f16> {
    typedef float C;
    static __device__ __forceinline__ float ld(f16 v) { return f16_to_f32(v.b); }
    static __device__ __forceinline__ f16 st(float c) { f16 r; r.b = f32_to_f16(c); return r; }
};
template <> struct Ty<bf16> {
    typedef float C;
    static __device__ __forceinline__ float ld(bf16 v) { return bf16_to_f32(v.b); }
    static __device__ __forceinline__ bf16 st(float c) { bf16 r; r.b = f32_to_bf16(c); return r; }
};
template <> struct Ty<int> {
    typedef int C;
    static __device__ __forceinline__ int ld(int v) { return v; }
    static __device__ __forceinline__ int st(int c) { return c; }
};
template <> struct Ty<i64> {
    typedef i64 C;
    static __device__ __forceinline__ i64 ld(i64 v) { return v; }
    static __device__ __forceinline__ i64 st(i64 c) { return c; }
};
template <> struct Ty<u8> {
    typedef int C;
    static __device__ __forceinline__ int ld(u8 v) { return v; }
    static __device__ __forceinline__ u8 st(int c) { return (u8)c; }
};

// A view's layout, dims collapsed where they are contiguous (see strided.rs). Elements.
#define MAX_RANK 6
struct Strided {
    i64 shape[MAX_RANK];
    i64 stride[MAX_RANK];
    i64 offset;
    int rank;
};

// storage index of the i-th element (row-major order) of the view. The loop is unrolled so every
// field is read at a constant offset straight from the kernel's parameters (a dynamic index
// would copy the struct into per-thread local memory).
__device__ __forceinline__ i64 sidx(const Strided& s, i64 i) {
    if (s.rank == 1) return s.offset + i * s.stride[0];
    i64 o = s.offset;
#pragma unroll
    for (int d = MAX_RANK - 1; d >= 0; --d) {
        if (d < s.rank) {
            i64 q = i % s.shape[d];
            i /= s.shape[d];
            o += q * s.stride[d];
        }
    }
    return o;
}

#define GRID_LOOP(i, n) \
    for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (i64)gridDim.x * blockDim.x)

// f32/f64 overloads of the math functions kernels use
#define F_FN(name, f32fn, f64fn) \
    __device__ __forceinline__ float name(float x) { return f32fn(x); } \
    __device__ __forceinline__ double name(double x) { return f64fn(x); }
F_FN(f_exp, expf, exp)
F_FN(f_log, logf, log)
F_FN(f_sqrt, sqrtf, sqrt)
F_FN(f_tanh, tanhf, tanh)
F_FN(f_erf, erff, erf)
F_FN(f_sin, sinf, sin)
F_FN(f_cos, cosf, cos)
__device__ __forceinline__ float f_pow(float a, float b) { return powf(a, b); }
__device__ __forceinline__ double f_pow(double a, double b) { return pow(a, b); }

// NaN-propagating max/min in the compute type
template <class C> __device__ __forceinline__ C max_nan(C a, C b) { return (a != a) ? a : (b != b) ? b : (a > b ? a : b); }
template <class C> __device__ __forceinline__ C min_nan(C a, C b) { return (a != a) ? a : (b != b) ? b : (a < b ? a : b); }

// block-wide reductions (blockDim.x a multiple of 32, at most 1024)
template <class C> __device__ __forceinline__ C warp_sum(C v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
template <class C> __device__ __forceinline__ C warp_max(C v) {
    for (int o = 16; o > 0; o >>= 1) v = max_nan(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}
template <class C> __device__ C block_sum(C v, C* sh) {
    v = warp_sum(v);
    int w = threadIdx.x >> 5, l = threadIdx.x & 31;
    __syncthreads();
    if (l == 0) sh[w] = v;
    __syncthreads();
    C r = (threadIdx.x < (blockDim.x >> 5)) ? sh[threadIdx.x] : (C)0;
    if (w == 0) r = warp_sum(r);
    if (threadIdx.x == 0) sh[0] = r;
    __syncthreads();
    return sh[0];
}
template <class C> __device__ C block_max(C v, C ident, C* sh) {
    v = warp_max(v);
    int w = threadIdx.x >> 5, l = threadIdx.x & 31;
    __syncthreads();
    if (l == 0) sh[w] = v;
    __syncthreads();
    C r = (threadIdx.x < (blockDim.x >> 5)) ? sh[threadIdx.x] : ident;
    if (w == 0) r = warp_max(r);
    if (threadIdx.x == 0) sh[0] = r;
    __syncthreads();
    return sh[0];
}
