//! One CUDA device's context: its stream, cuBLAS handle, compiled kernel modules, allocator with
//! live/peak byte counters, and the launch helpers every op uses.

use crate::profile::Profile;
use crate::storage::{CudaStorage, Pool};
use crate::strided::Strided;
use cudarc::cublas::CudaBlas;
use cudarc::driver::sys::CUresult;
use cudarc::driver::{
    CudaContext, CudaFunction, CudaModule, CudaStream, DriverError, LaunchConfig,
};
use cudarc::nvrtc::{CompileOptions, Ptx};
use plumb_core::ByteCounter;
use plumb_core::{DType, Error, Result};
use std::collections::HashMap;
use std::ffi::c_void;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Kernel files, one per op family group; each is compiled once per device on first use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Module {
    Elementwise,
    Movement,
    Reduce,
    Quant,
    Attention,
}

impl Module {
    fn source(self) -> (&'static str, &'static str) {
        match self {
            Module::Elementwise => ("elementwise.cu", include_str!("kernels/elementwise.cu")),
            Module::Movement => ("movement.cu", include_str!("kernels/movement.cu")),
            Module::Reduce => ("reduce.cu", include_str!("kernels/reduce.cu")),
            Module::Quant => ("quant.cu", include_str!("kernels/quant.cu")),
            Module::Attention => ("attention.cu", include_str!("kernels/attention.cu")),
        }
    }
    pub const ALL: [Module; 5] = [
        Module::Elementwise,
        Module::Movement,
        Module::Reduce,
        Module::Quant,
        Module::Attention,
    ];
}

/// The full source NVRTC compiles for `m` (the shared header, then the file).
pub fn module_source(m: Module) -> String {
    format!("{}\n{}", include_str!("kernels/common.cuh"), m.source().1)
}

pub struct Ctx {
    /// `cuda:N`
    pub id: String,
    pub cuda: Arc<CudaContext>,
    pub stream: Arc<CudaStream>,
    /// None when libcublas could not be loaded (matmul is then unsupported, with the reason)
    pub blas: Option<CudaBlas>,
    /// NVRTC target, `compute_XY` of the device
    arch: &'static str,
    modules: Mutex<HashMap<Module, Arc<CudaModule>>>,
    functions: Mutex<HashMap<String, CudaFunction>>,
    pub counters: Arc<ByteCounter>,
    pool: Arc<Pool>,
    profile: Profile,
}

impl std::fmt::Debug for Ctx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Ctx({}, {})", self.id, self.arch)
    }
}

pub const BLOCK: u32 = 256;

impl Ctx {
    pub fn new(
        id: String,
        cuda: Arc<CudaContext>,
        blas: bool,
        arch: &'static str,
    ) -> std::result::Result<Self, String> {
        let stream = cuda.default_stream();
        keep_freed_memory(&cuda);
        // one stream: kernels run in issue order, so cudarc's cross-stream events are not needed
        unsafe { cuda.disable_event_tracking() };
        let blas = if blas {
            let b = CudaBlas::new(stream.clone()).map_err(|e| format!("cuBLAS: {e:?}"))?;
            // f16 / bf16 products accumulate in f32 to the end, as the other devices' do: by
            // default cuBLAS may sum split-K partial products in the output's dtype, which put
            // bf16 linear layers of 7 and 13 rows on the H100 one bf16 step (at the partial
            // sums' size) off the f64 oracle (conformance matmul_bf16, linear_packed_bf16)
            let mode =
                cudarc::cublas::sys::cublasMath_t::CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION;
            // SAFETY: the handle is live (just created) and the mode a valid enum value
            let status = unsafe { cudarc::cublas::sys::cublasSetMathMode(*b.handle(), mode) };
            if status != cudarc::cublas::sys::cublasStatus_t::CUBLAS_STATUS_SUCCESS {
                return Err(format!("cuBLAS: setting the math mode: {status:?}"));
            }
            Some(b)
        } else {
            None
        };
        Ok(Ctx {
            id,
            cuda,
            stream,
            blas,
            arch,
            modules: Mutex::new(HashMap::new()),
            functions: Mutex::new(HashMap::new()),
            counters: Arc::new(ByteCounter::new()),
            pool: Arc::new(Pool::from_env()),
            profile: Profile::from_env(),
        })
    }

    /// A driver error as a plumb error naming the device and op (out of memory gets its own).
    pub fn err(&self, op: &str, e: DriverError) -> Error {
        Error::backend(&self.id, op, format!("CUDA driver: {e:?}"))
    }

    /// Compile (once) and load `m`; PLUMB_DUMP_KERNELS=1 prints the source first.
    fn module(&self, m: Module) -> Result<Arc<CudaModule>> {
        let mut mods = self.modules.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(x) = mods.get(&m) {
            return Ok(x.clone());
        }
        let (name, _) = m.source();
        let src = module_source(m);
        if std::env::var("PLUMB_DUMP_KERNELS").is_ok_and(|v| v == "1") {
            eprintln!("// ---- {} {name} ----\n{src}", self.id);
        }
        let opts = CompileOptions {
            arch: Some(self.arch),
            options: vec!["-std=c++17".into()],
            name: Some(name.into()),
            ..Default::default()
        };
        let ptx: Ptx = cudarc::nvrtc::compile_ptx_with_opts(&src, opts).map_err(|e| {
            Error::backend(
                &self.id,
                name,
                format!("NVRTC could not compile {name}: {e:?}"),
            )
        })?;
        let module = self.cuda.load_module(ptx).map_err(|e| self.err(name, e))?;
        mods.insert(m, module.clone());
        Ok(module)
    }

    /// Kernel `name` of module `m`.
    pub fn func(&self, m: Module, name: &str) -> Result<CudaFunction> {
        if let Some(f) = self
            .functions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
        {
            return Ok(f.clone());
        }
        let f = self
            .module(m)?
            .load_function(name)
            .map_err(|e| self.err(name, e))?;
        self.functions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_string(), f.clone());
        Ok(f)
    }

    /// Launch kernel `name` of `m` on `cfg` with `args` (in the kernel's parameter order).
    pub fn launch(&self, m: Module, name: &str, cfg: LaunchConfig, args: &mut [Arg]) -> Result<()> {
        let start = Instant::now();
        let f = self.func(m, name)?;
        let mut ptrs: Vec<*mut c_void> = args.iter_mut().map(Arg::as_param).collect();
        self.cuda.bind_to_thread().map_err(|e| self.err(name, e))?;
        // SAFETY: the parameter list matches the kernel's signature (each launcher passes the
        // types the .cu file declares), every pointer argument addresses a live device buffer
        // (kept alive until the stream-ordered free after this launch), and `ptrs` points into
        // `args`, which outlives the call.
        unsafe {
            cudarc::driver::result::launch_kernel(
                f.cu_function(),
                cfg.grid_dim,
                cfg.block_dim,
                cfg.shared_mem_bytes,
                self.stream.cu_stream(),
                &mut ptrs,
            )
        }
        .map_err(|e| self.err(name, e))?;
        self.profiled(name, start)
    }

    /// Under PLUMB_CUDA_PROFILE=1: wait for the work `name` queued since `start`, record it.
    pub fn profiled(&self, name: &str, start: Instant) -> Result<()> {
        if self.profile.on() {
            self.synchronize()?;
            self.profile.record(name, start);
        }
        Ok(())
    }

    /// A new buffer of `bytes` (contents undefined); `what` names the op for errors.
    pub fn alloc(
        &self,
        bytes: usize,
        op: &str,
        dtype: DType,
        shape: &[usize],
    ) -> Result<CudaStorage> {
        let class = Pool::class(bytes);
        let buf = match self.pool.take(class) {
            Some(b) => b,
            None => {
                // SAFETY: a plain device allocation; every op writes its output before reading it
                let mut r = unsafe { self.stream.alloc::<u8>(class) };
                if matches!(&r, Err(e) if e.0 == CUresult::CUDA_ERROR_OUT_OF_MEMORY) {
                    // give the pooled buffers back to the driver and try once more
                    self.pool.drain();
                    r = unsafe { self.stream.alloc::<u8>(class) };
                }
                r.map_err(|e| {
                    if e.0 == CUresult::CUDA_ERROR_OUT_OF_MEMORY {
                        let (free, total) = self.cuda.mem_get_info().unwrap_or((0, 0));
                        Error::OutOfMemory {
                            device: self.id.clone(),
                            op: op.to_string(),
                            dtype,
                            shape: shape.to_vec(),
                            bytes: bytes as u64,
                            note: format!("{free} of {total} bytes free"),
                        }
                    } else {
                        self.err(op, e)
                    }
                })?
            }
        };
        Ok(CudaStorage::new(
            buf,
            bytes,
            &self.stream,
            self.counters.clone(),
            self.pool.clone(),
        ))
    }

    pub fn synchronize(&self) -> Result<()> {
        self.stream
            .synchronize()
            .map_err(|e| self.err("synchronize", e))
    }
}

/// A grid-stride launch over `n` elements.
pub fn grid(n: usize) -> LaunchConfig {
    let blocks = n.div_ceil(BLOCK as usize).clamp(1, 1 << 20) as u32;
    LaunchConfig {
        grid_dim: (blocks, 1, 1),
        block_dim: (BLOCK, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// One block of `BLOCK` threads per row.
pub fn rows(n_rows: usize) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (n_rows.max(1) as u32, 1, 1),
        block_dim: (BLOCK, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// One kernel argument, passed by value.
#[derive(Clone, Copy, Debug)]
pub enum Arg {
    I32(i32),
    I64(i64),
    /// a device address or a 64-bit bit pattern
    U64(u64),
    F64(f64),
    B1(u8),
    B2(u16),
    B4(u32),
    S(Strided),
    /// a rank-4 view: offset, then the four strides (elements)
    V4([i64; 5]),
}

impl Arg {
    fn as_param(&mut self) -> *mut c_void {
        match self {
            Arg::I32(v) => v as *mut i32 as *mut c_void,
            Arg::I64(v) => v as *mut i64 as *mut c_void,
            Arg::U64(v) => v as *mut u64 as *mut c_void,
            Arg::F64(v) => v as *mut f64 as *mut c_void,
            Arg::B1(v) => v as *mut u8 as *mut c_void,
            Arg::B2(v) => v as *mut u16 as *mut c_void,
            Arg::B4(v) => v as *mut u32 as *mut c_void,
            Arg::S(v) => v as *mut Strided as *mut c_void,
            Arg::V4(v) => v.as_mut_ptr() as *mut c_void,
        }
    }
}

/// A count or index as a kernel's `i64`.
pub fn n64(n: usize) -> Arg {
    Arg::I64(n as i64)
}

/// Keep memory freed to the device's default pool there instead of returning it to the driver at
/// every synchronisation (the default), so a model's per-op buffers are reused across tokens.
fn keep_freed_memory(cuda: &CudaContext) {
    use cudarc::driver::sys;
    let mut pool: sys::CUmemoryPool = std::ptr::null_mut();
    let mut threshold = u64::MAX;
    // SAFETY: the context is current on this thread (CudaContext::new binds it); `pool` and
    // `threshold` are valid for the calls. A failure only leaves the driver's default in place.
    unsafe {
        if sys::cuDeviceGetDefaultMemPool(&mut pool, cuda.cu_device())
            == sys::CUresult::CUDA_SUCCESS
        {
            let _ = sys::cuMemPoolSetAttribute(
                pool,
                sys::CUmemPool_attribute::CU_MEMPOOL_ATTR_RELEASE_THRESHOLD,
                &mut threshold as *mut u64 as *mut c_void,
            );
        }
    }
}
