//! Run-time SIMD dispatch. Kernels are written as plain loops in `#[inline(always)]` bodies;
//! [`multiversion!`] compiles each body three times — for AVX-512 (x86-64-v4), for AVX2 + FMA
//! (x86-64-v3) and for the baseline — and picks one from the CPU's features at run time, so a
//! binary built anywhere runs on any x86-64 and still uses the wide vectors where they exist.
//! Other architectures (aarch64 has NEON in its baseline) compile the body once.

/// How the baseline version of a kernel multiplies and adds: fused where the build target has FMA
/// (aarch64 always does), separate where it does not (a fused one would be a library call).
#[cfg(any(target_arch = "aarch64", target_feature = "fma"))]
pub type BaselineMulAdd = plumb_core::math::Fused;
/// How the baseline version of a kernel multiplies and adds: fused where the build target has FMA
/// (aarch64 always does), separate where it does not (a fused one would be a library call).
#[cfg(not(any(target_arch = "aarch64", target_feature = "fma")))]
pub type BaselineMulAdd = plumb_core::math::Separate;

/// The SIMD level the kernels dispatch on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Baseline,
    /// AVX2 + FMA + F16C
    V3,
    /// AVX-512 F/BW/VL/DQ on top of V3
    V4,
}

/// The best level this CPU supports (detected once).
pub fn level() -> Level {
    static LEVEL: std::sync::OnceLock<Level> = std::sync::OnceLock::new();
    *LEVEL.get_or_init(detect)
}

#[cfg(target_arch = "x86_64")]
fn detect() -> Level {
    use std::arch::is_x86_feature_detected as has;
    if std::env::var("PLUMB_CPU_SIMD").is_ok_and(|v| v == "baseline") {
        return Level::Baseline;
    }
    let v3 = has!("avx2") && has!("fma") && has!("f16c");
    let v4 = v3 && has!("avx512f") && has!("avx512bw") && has!("avx512vl") && has!("avx512dq");
    if v4 && !std::env::var("PLUMB_CPU_SIMD").is_ok_and(|v| v == "avx2") {
        Level::V4
    } else if v3 {
        Level::V3
    } else {
        Level::Baseline
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn detect() -> Level {
    Level::Baseline
}

/// `fn name[generics](args) -> ret = inner[type args]` defines `name`, which calls the
/// `#[inline(always)]` function `inner` compiled for the best SIMD level of this CPU.
/// With `+ MulAdd` after the type args, `inner` also takes a [`plumb_core::math::MulAdd`]:
/// [`plumb_core::math::Fused`] in the AVX-512 and AVX2 versions, [`BaselineMulAdd`] in the other.
macro_rules! multiversion {
    ($(#[$m:meta])* $vis:vis fn $name:ident [$($gen:tt)*] ($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? = $inner:ident [$($targs:ty),*]) => {
        multiversion!(@versions $(#[$m])* $vis fn $name [$($gen)*] ($($arg: $ty),*) $(-> $ret)?
            = $inner [$($targs),*] simd [$($targs),*] baseline [$($targs),*]);
    };
    ($(#[$m:meta])* $vis:vis fn $name:ident [$($gen:tt)*] ($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? = $inner:ident [$($targs:ty),*] + MulAdd) => {
        multiversion!(@versions $(#[$m])* $vis fn $name [$($gen)*] ($($arg: $ty),*) $(-> $ret)?
            = $inner [$($targs),*]
            simd [$($targs,)* plumb_core::math::Fused]
            baseline [$($targs,)* $crate::kernels::simd::BaselineMulAdd]);
    };
    // `inner::<simd…>` in the AVX-512 and AVX2 versions, `inner::<baseline…>` in the other
    (@versions $(#[$m:meta])* $vis:vis fn $name:ident [$($gen:tt)*] ($($arg:ident: $ty:ty),*) $(-> $ret:ty)? = $inner:ident [$($targs:ty),*] simd [$($s:ty),*] baseline [$($b:ty),*]) => {
        $(#[$m])*
        $vis fn $name<$($gen)*>($($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")]
                unsafe fn v4<$($gen)*>($($arg: $ty),*) $(-> $ret)? {
                    $inner::<$($s),*>($($arg),*)
                }
                #[target_feature(enable = "avx2,fma,f16c")]
                unsafe fn v3<$($gen)*>($($arg: $ty),*) $(-> $ret)? {
                    $inner::<$($s),*>($($arg),*)
                }
                match $crate::kernels::simd::level() {
                    // SAFETY: `level()` checked that the CPU has these features.
                    $crate::kernels::simd::Level::V4 => return unsafe { v4::<$($targs),*>($($arg),*) },
                    // SAFETY: as above.
                    $crate::kernels::simd::Level::V3 => return unsafe { v3::<$($targs),*>($($arg),*) },
                    $crate::kernels::simd::Level::Baseline => {}
                }
            }
            $inner::<$($b),*>($($arg),*)
        }
    };
}

#[inline(always)]
fn map_chunk_body<S: Copy, D: Copy, F: Fn(S) -> D>(o: &mut [D], i: &[S], f: &F) {
    for (o, &i) in o.iter_mut().zip(i) {
        *o = f(i);
    }
}

#[inline(always)]
fn zip_chunk_body<S: Copy, D: Copy, F: Fn(S, S) -> D>(o: &mut [D], a: &[S], b: &[S], f: &F) {
    for ((o, &a), &b) in o.iter_mut().zip(a).zip(b) {
        *o = f(a, b);
    }
}

multiversion!(
    /// `o[i] = f(i[i])` for one chunk.
    pub fn map_chunk[S: Copy, D: Copy, F: Fn(S) -> D](o: &mut [D], i: &[S], f: &F) = map_chunk_body[S, D, F]
);
#[inline(always)]
fn map_in_place_body<T: Copy, F: Fn(T) -> T>(x: &mut [T], f: &F) {
    for v in x.iter_mut() {
        *v = f(*v);
    }
}

multiversion!(
    /// `x[i] = f(x[i])` (an activation applied to a block of a product while it is in cache).
    pub fn map_in_place[T: Copy, F: Fn(T) -> T](x: &mut [T], f: &F) = map_in_place_body[T, F]
);
multiversion!(
    /// `o[i] = f(a[i], b[i])` for one chunk.
    pub fn zip_chunk[S: Copy, D: Copy, F: Fn(S, S) -> D](o: &mut [D], a: &[S], b: &[S], f: &F) = zip_chunk_body[S, D, F]
);
