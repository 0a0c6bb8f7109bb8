// copy_b{bytes} (strided → contiguous), fill_b{bytes}, cat_b{bytes}, index_select_b{bytes}_{ids},
// gather_b{bytes}_{ids}: bit-exact data movement for every plain dtype, by element size.
// Ids were range-checked by the launcher before these run.

#define MOVE(bytes, T)                                                                           \
    extern "C" __global__ void copy_b##bytes(i64 n, const T* x, Strided sx, T* y) {             \
        GRID_LOOP(i, n) y[i] = x[sidx(sx, i)];                                                   \
    }                                                                                            \
    extern "C" __global__ void fill_b##bytes(i64 n, T v, T* y) {                                \
        GRID_LOOP(i, n) y[i] = v;                                                                \
    }                                                                                            \
    /* one contiguous input [outer, w] into columns [col, col + w) of y [outer, total] */       \
    extern "C" __global__ void cat_b##bytes(i64 n, i64 w, i64 total, i64 col, const T* x,      \
                                            T* y) {                                              \
        GRID_LOOP(i, n) y[(i / w) * total + col + i % w] = x[i];                                 \
    }                                                                                            \
    INDEX(bytes, T, i32, int)                                                                    \
    INDEX(bytes, T, i64, i64)                                                                    \
    INDEX(bytes, T, u8, u8)

// x viewed as [outer, len, inner]; out [outer, m, inner]; gather: ids and out share one shape
// (`so` holds it, contiguous), x's coordinate along `dim` replaced by the id.
#define INDEX(bytes, T, in, I)                                                                   \
    extern "C" __global__ void index_select_b##bytes##_##in(i64 n, i64 len, i64 inner, i64 m,   \
                                                             const T* x, Strided sx, const I* ids, \
                                                             T* y) {                             \
        GRID_LOOP(i, n) {                                                                        \
            i64 k = i % inner, j = (i / inner) % m, o = i / (inner * m);                         \
            y[i] = x[sidx(sx, (o * len + (i64)ids[j]) * inner + k)];                             \
        }                                                                                        \
    }                                                                                            \
    extern "C" __global__ void gather_b##bytes##_##in(i64 n, int dim, Strided so, const T* x,   \
                                                       Strided sx, const I* ids, T* y) {         \
        GRID_LOOP(i, n) {                                                                        \
            i64 rem = i, off = sx.offset;                                                        \
            _Pragma("unroll") for (int d = MAX_RANK - 1; d >= 0; --d) {                          \
                if (d < so.rank) {                                                               \
                    i64 c = rem % so.shape[d];                                                   \
                    rem /= so.shape[d];                                                          \
                    off += (d == dim ? (i64)ids[i] : c) * sx.stride[d];                          \
                }                                                                                \
            }                                                                                    \
            y[i] = x[off];                                                                       \
        }                                                                                        \
    }
MOVE(1, u8)
MOVE(2, unsigned short)
MOVE(4, unsigned)
MOVE(8, u64)
