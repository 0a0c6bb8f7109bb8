// unary_{dtype}, binary_{dtype}, cmp_{dtype}, where_b{bytes}, cast_{from}_{to}.
// Op codes are the positions in plumb_core's UnaryOp::ALL / BinaryOp::ALL / CmpOp::ALL.
// Floats compute in f32 (halves, f32) or f64; integers wrap on overflow (unsigned arithmetic);
// integer division by zero never reaches a kernel (the launcher checks the divisor first).

template <class C> __device__ __forceinline__ C unary_float(int op, C x) {
    const C one = (C)1, half = (C)0.5;
    switch (op) {
    case 0: return -x;
    case 1: return x < (C)0 ? -x : (x == (C)0 ? (C)0 : x);
    case 2: return f_exp(x);
    case 3: return f_log(x);
    case 4: return f_sqrt(x);
    case 5: return one / f_sqrt(x);
    case 6: return one / x;
    case 7: return f_tanh(x);
    case 8: return one / (one + f_exp(-x));
    case 9: return x > (C)0 ? x : (x != x ? x : (C)0);
    case 10: return half * x * (one + f_erf(x * (C)0.70710678118654752440));
    case 11: {
        const C c = (C)0.79788456080286535588;
        return half * x * (one + f_tanh(c * (x + (C)0.044715 * x * x * x)));
    }
    case 12: return x / (one + f_exp(-x));
    case 13: return f_sin(x);
    default: return f_cos(x);
    }
}
__device__ __forceinline__ float unary_op(int op, float x) { return unary_float(op, x); }
__device__ __forceinline__ double unary_op(int op, double x) { return unary_float(op, x); }
// integers: neg, abs, relu (the only integer unary ops), wrapping
__device__ __forceinline__ int unary_op(int op, int x) {
    int n = (int)(0u - (unsigned)x);
    return op == 0 ? n : op == 1 ? (x < 0 ? n : x) : (x < 0 ? 0 : x);
}
__device__ __forceinline__ i64 unary_op(int op, i64 x) {
    i64 n = (i64)(0ull - (u64)x);
    return op == 0 ? n : op == 1 ? (x < 0 ? n : x) : (x < 0 ? 0 : x);
}

template <class C> __device__ __forceinline__ C binary_float(int op, C a, C b) {
    switch (op) {
    case 0: return a + b;
    case 1: return a - b;
    case 2: return a * b;
    case 3: return a / b;
    case 4: return f_pow(a, b);
    case 5: return max_nan(a, b);
    default: return min_nan(a, b);
    }
}
__device__ __forceinline__ float binary_op(int op, float a, float b) { return binary_float(op, a, b); }
__device__ __forceinline__ double binary_op(int op, double a, double b) { return binary_float(op, a, b); }
template <class C, class U> __device__ __forceinline__ C binary_int(int op, C a, C b) {
    switch (op) {
    case 0: return (C)((U)a + (U)b);
    case 1: return (C)((U)a - (U)b);
    case 2: return (C)((U)a * (U)b);
    case 3: return b == (C)-1 ? (C)((U)0 - (U)a) : a / b;
    case 5: return a > b ? a : b;
    default: return a < b ? a : b;
    }
}
__device__ __forceinline__ int binary_op(int op, int a, int b) { return binary_int<int, unsigned>(op, a, b); }
__device__ __forceinline__ i64 binary_op(int op, i64 a, i64 b) { return binary_int<i64, u64>(op, a, b); }

template <class C> __device__ __forceinline__ bool cmp_op(int op, C a, C b) {
    switch (op) {
    case 0: return a == b;
    case 1: return a != b;
    case 2: return a < b;
    case 3: return a <= b;
    case 4: return a > b;
    default: return a >= b;
    }
}

#define ELEMENTWISE(name, T)                                                                      \
    extern "C" __global__ void unary_##name(int op, i64 n, const T* x, Strided sx, T* y) {      \
        GRID_LOOP(i, n) y[i] = Ty<T>::st(unary_op(op, Ty<T>::ld(x[sidx(sx, i)])));               \
    }                                                                                             \
    extern "C" __global__ void binary_##name(int op, i64 n, const T* a, Strided sa, const T* b,  \
                                             Strided sb, T* y) {                                  \
        GRID_LOOP(i, n) {                                                                         \
            y[i] = Ty<T>::st(binary_op(op, Ty<T>::ld(a[sidx(sa, i)]), Ty<T>::ld(b[sidx(sb, i)]))); \
        }                                                                                         \
    }                                                                                             \
    extern "C" __global__ void cmp_##name(int op, i64 n, const T* a, Strided sa, const T* b,     \
                                          Strided sb, u8* y) {                                    \
        GRID_LOOP(i, n) {                                                                         \
            y[i] = cmp_op(op, Ty<T>::ld(a[sidx(sa, i)]), Ty<T>::ld(b[sidx(sb, i)])) ? 1 : 0;     \
        }                                                                                         \
    }
ELEMENTWISE(f32, float)
ELEMENTWISE(f64, double)
ELEMENTWISE(f16, f16)
ELEMENTWISE(bf16, bf16)
ELEMENTWISE(i32, int)
ELEMENTWISE(i64, i64)
ELEMENTWISE(u8, u8)

// cond ? a : b, moving bit patterns of 1, 2, 4 or 8 bytes
#define WHERE(bytes, T)                                                                          \
    extern "C" __global__ void where_b##bytes(i64 n, const u8* c, Strided sc, const T* a,       \
                                               Strided sa, const T* b, Strided sb, T* y) {       \
        GRID_LOOP(i, n) y[i] = c[sidx(sc, i)] ? a[sidx(sa, i)] : b[sidx(sb, i)];                 \
    }
WHERE(1, u8)
WHERE(2, unsigned short)
WHERE(4, unsigned)
WHERE(8, u64)

// ---- casts: through f64, except integer → integer (through i64, saturating) ----
struct boolean { u8 b; };
template <class T> struct IsInt { static const bool v = false; };
template <> struct IsInt<int> { static const bool v = true; };
template <> struct IsInt<i64> { static const bool v = true; };
template <> struct IsInt<u8> { static const bool v = true; };
template <> struct IsInt<boolean> { static const bool v = true; };

__device__ __forceinline__ double to_d(float v) { return v; }
__device__ __forceinline__ double to_d(double v) { return v; }
__device__ __forceinline__ double to_d(f16 v) { return f16_to_f32(v.b); }
__device__ __forceinline__ double to_d(bf16 v) { return bf16_to_f32(v.b); }
__device__ __forceinline__ double to_d(int v) { return v; }
__device__ __forceinline__ double to_d(i64 v) { return (double)v; }
__device__ __forceinline__ double to_d(u8 v) { return v; }
__device__ __forceinline__ double to_d(boolean v) { return v.b; }
__device__ __forceinline__ i64 to_i(int v) { return v; }
__device__ __forceinline__ i64 to_i(i64 v) { return v; }
__device__ __forceinline__ i64 to_i(u8 v) { return v; }
__device__ __forceinline__ i64 to_i(boolean v) { return v.b; }
template <class T> __device__ __forceinline__ i64 to_i(T) { return 0; }

// float → integer: truncate toward zero, saturate, NaN → 0
__device__ __forceinline__ i64 sat_d(double v, double lo, double hi) {
    if (v != v) return 0;
    if (v <= lo) return (i64)lo;
    if (v >= hi) return (i64)hi;
    return (i64)v;
}
template <class T> __device__ T from_d(double v);
template <> __device__ float from_d<float>(double v) { return (float)v; }
template <> __device__ double from_d<double>(double v) { return v; }
template <> __device__ f16 from_d<f16>(double v) { f16 r; r.b = f64_to_f16(v); return r; }
template <> __device__ bf16 from_d<bf16>(double v) { bf16 r; r.b = f64_to_bf16(v); return r; }
template <> __device__ int from_d<int>(double v) { return (int)sat_d(v, -2147483648.0, 2147483647.0); }
template <> __device__ u8 from_d<u8>(double v) { return (u8)sat_d(v, 0.0, 255.0); }
template <> __device__ boolean from_d<boolean>(double v) { boolean r; r.b = v != 0.0; return r; }
template <> __device__ i64 from_d<i64>(double v) {
    if (v != v) return 0;
    if (v >= 9223372036854775807.0) return 9223372036854775807ll;
    if (v <= -9223372036854775808.0) return (i64)(-9223372036854775807ll - 1);
    return (i64)v;
}
template <class T> __device__ T from_i(i64 v);
template <> __device__ int from_i<int>(i64 v) { return (int)(v < -2147483648ll ? -2147483648ll : v > 2147483647ll ? 2147483647ll : v); }
template <> __device__ i64 from_i<i64>(i64 v) { return v; }
template <> __device__ u8 from_i<u8>(i64 v) { return (u8)(v < 0 ? 0 : v > 255 ? 255 : v); }
template <> __device__ boolean from_i<boolean>(i64 v) { boolean r; r.b = v != 0; return r; }

template <class A, class B> __device__ void cast_body(i64 n, const A* x, Strided sx, B* y) {
    GRID_LOOP(i, n) {
        A v = x[sidx(sx, i)];
        if constexpr (IsInt<A>::v && IsInt<B>::v) {
            y[i] = from_i<B>(to_i(v));
        } else {
            y[i] = from_d<B>(to_d(v));
        }
    }
}
#define CAST(an, A, bn, B)                                                                       \
    extern "C" __global__ void cast_##an##_##bn(i64 n, const A* x, Strided sx, B* y) {          \
        cast_body<A, B>(n, x, sx, y);                                                            \
    }
#define CAST_FROM(an, A)                                                                         \
    CAST(an, A, f32, float) CAST(an, A, f64, double) CAST(an, A, f16, f16)                      \
    CAST(an, A, bf16, bf16) CAST(an, A, i32, int) CAST(an, A, i64, i64) CAST(an, A, u8, u8)     \
    CAST(an, A, bool, boolean)
CAST_FROM(f32, float)
CAST_FROM(f64, double)
CAST_FROM(f16, f16)
CAST_FROM(bf16, bf16)
CAST_FROM(i32, int)
CAST_FROM(i64, i64)
CAST_FROM(u8, u8)
CAST_FROM(bool, boolean)
