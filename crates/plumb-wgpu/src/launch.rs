//! The launch context of one device: pipeline cache, buffer allocation, the batched command
//! encoder, uploads and staging-buffer readback, and error capture (wgpu validation errors
//! become [`plumb_core::Error`]s, never aborts).

use crate::kernels::KernelSpec;
use crate::pool::{size_class, Pool, WgpuStorage};
use plumb_core::{Error, Result};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

/// Ops recorded before the batch is submitted without waiting for a readback.
const BATCH_OPS: usize = 64;

/// Limits as enforced by this backend (the adapter's, possibly masked by a profile).
#[derive(Clone, Copy, Debug)]
pub struct DevLimits {
    pub max_buffer: u64,
    pub max_binding: u64,
}

/// Bytes of the parameter arena: every dispatch of a batch binds its parameter block at an
/// aligned offset of one buffer, written once when the batch is submitted (no buffer per op).
const ARENA_BYTES: u64 = 64 * 1024;

struct Batch {
    /// the open compute pass: consecutive dispatches share one (wgpu still orders them by
    /// their buffer usage); copies end it
    pass: Option<wgpu::ComputePass<'static>>,
    encoder: Option<wgpu::CommandEncoder>,
    ops: usize,
    /// parameter words of this batch, laid out as they go into the arena
    params: Vec<u32>,
}

type Pipeline = Arc<(wgpu::ComputePipeline, wgpu::BindGroupLayout)>;

pub struct Ctx {
    pub id: String,
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub limits: DevLimits,
    pub has_f16: bool,
    pub has_i64: bool,
    pub has_f64: bool,
    pub has_subgroup: bool,
    /// f16 matmuls may use the cooperative-matrix kernel (16x16x16 f16 → f32 tiles, 32-wide
    /// subgroups); set by device discovery after creation
    pub coop_f16: bool,
    /// Held around every call into wgpu where the driver keeps one lock for the whole device
    /// (OpenGL: wgpu panics when a thread waits more than 6 s for the GL context, which a long
    /// submit or wait on a slow GL device in another thread holds); set by device discovery
    pub gate: Option<Mutex<()>>,
    pub pool: Arc<Pool>,
    pipelines: Mutex<HashMap<String, Pipeline>>,
    batch: Mutex<Batch>,
    arena: wgpu::Buffer,
    /// offset alignment of storage bindings, in u32 words
    align_words: usize,
    errors: Arc<Mutex<Vec<String>>>,
    dumped: Mutex<HashSet<String>>,
    dump: bool,
    trusted: bool,
}

impl std::fmt::Debug for Ctx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Ctx({})", self.id)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Workgroup counts for `items` workgroups, split over y beyond the 65535 limit of x.
pub fn split_groups(items: u64) -> (u32, u32) {
    let x = items.clamp(1, 65535);
    let y = items.div_ceil(x);
    (x as u32, y as u32)
}

/// Groups for a kernel with one invocation per item in workgroups of 256.
pub fn groups_1d(items: u64) -> (u32, u32, u32) {
    let (x, y) = split_groups(items.div_ceil(256));
    (x, y, 1)
}

impl Ctx {
    /// Run `f`, a call into wgpu, behind [`Ctx::gate`] where the device has one. The gate is a
    /// leaf lock: `f` takes no other lock of this context.
    fn gated<R>(&self, f: impl FnOnce() -> R) -> R {
        let _g = self.gate.as_ref().map(lock);
        f()
    }

    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: String,
        device: wgpu::Device,
        queue: wgpu::Queue,
        limits: DevLimits,
        has_f16: bool,
        has_i64: bool,
        has_f64: bool,
        has_subgroup: bool,
    ) -> Ctx {
        let errors: Arc<Mutex<Vec<String>>> = Arc::default();
        let sink = errors.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            lock(&sink).push(e.to_string());
        }));
        let lost = errors.clone();
        device.set_device_lost_callback(move |reason, msg| {
            lock(&lost).push(format!("device lost ({reason:?}): {msg}"));
        });
        let align = device.limits().min_storage_buffer_offset_alignment.max(4) as usize;
        let arena = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("plumb params"),
            size: ARENA_BYTES,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        Ctx {
            arena,
            align_words: align / 4,
            id,
            device,
            queue,
            limits,
            has_f16,
            has_i64,
            has_f64,
            has_subgroup,
            coop_f16: false,
            gate: None,
            pool: Arc::default(),
            pipelines: Mutex::default(),
            batch: Mutex::new(Batch {
                pass: None,
                encoder: None,
                ops: 0,
                params: Vec::new(),
            }),
            errors,
            dumped: Mutex::default(),
            dump: std::env::var("PLUMB_DUMP_KERNELS").is_ok_and(|v| v == "1"),
            trusted: std::env::var("PLUMB_WGPU_TRUSTED").is_ok_and(|v| v == "1"),
        }
    }

    /// Turn any error wgpu reported since the last check into an Error naming `op`.
    pub fn check(&self, op: &str) -> Result<()> {
        let mut errs = lock(&self.errors);
        if errs.is_empty() {
            return Ok(());
        }
        let msg = errs.join("; ");
        errs.clear();
        Err(Error::backend(&self.id, op, msg))
    }

    fn pipeline(&self, spec: &KernelSpec) -> Result<Pipeline> {
        if let Some(p) = lock(&self.pipelines).get(&spec.name) {
            return Ok(p.clone());
        }
        let src = spec.source();
        if self.dump && lock(&self.dumped).insert(spec.name.clone()) {
            eprintln!(
                "// ===== plumb-wgpu kernel {} on {} =====\n{src}",
                spec.name, self.id
            );
        }
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let desc = wgpu::ShaderModuleDescriptor {
            label: Some(&spec.name),
            source: wgpu::ShaderSource::Wgsl(src.into()),
        };
        let module = self.gated(|| {
            if self.trusted {
                // SAFETY: opted into with PLUMB_WGPU_TRUSTED=1 for measurement; every kernel checks
                // its indices against the sizes in its parameter block, and the catalogue test
                // validates them, but naga's extra clamping and loop bounding are then left out.
                unsafe {
                    self.device
                        .create_shader_module_trusted(desc, wgpu::ShaderRuntimeChecks::unchecked())
                }
            } else {
                self.device.create_shader_module(desc)
            }
        });
        let pipe = self.gated(|| {
            self.device
                .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some(&spec.name),
                    layout: None,
                    module: &module,
                    entry_point: Some(&spec.name),
                    compilation_options: Default::default(),
                    cache: None,
                })
        });
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(Error::backend(
                &self.id,
                &spec.name,
                format!("kernel does not compile: {e}"),
            ));
        }
        let layout = pipe.get_bind_group_layout(0);
        self.check(&spec.name)?;
        let p = Arc::new((pipe, layout));
        lock(&self.pipelines).insert(spec.name.clone(), p.clone());
        Ok(p)
    }

    /// Number of compiled pipelines (for tests).
    pub fn pipeline_count(&self) -> usize {
        lock(&self.pipelines).len()
    }

    /// A pooled buffer for `bytes` bytes of data; errors name the limit it would exceed.
    pub fn alloc(&self, bytes: usize, op: &str) -> Result<WgpuStorage> {
        let need = (bytes as u64).max(4).next_multiple_of(4);
        if need > self.limits.max_binding {
            return Err(Error::LimitExceeded {
                device: self.id.clone(),
                op: op.to_string(),
                bytes: need,
                limit_name: "max_storage_buffer_binding_size",
                limit: self.limits.max_binding,
            });
        }
        if need > self.limits.max_buffer {
            return Err(Error::LimitExceeded {
                device: self.id.clone(),
                op: op.to_string(),
                bytes: need,
                limit_name: "max_buffer_size",
                limit: self.limits.max_buffer,
            });
        }
        let mut class = size_class(need);
        if class > self.limits.max_binding.min(self.limits.max_buffer) {
            class = need;
        }
        let buf = match self.pool.take(class) {
            Some(b) => b,
            None => {
                let scope = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
                let b = self.gated(|| {
                    self.device.create_buffer(&wgpu::BufferDescriptor {
                        label: Some("plumb"),
                        size: class,
                        usage: wgpu::BufferUsages::STORAGE
                            | wgpu::BufferUsages::COPY_SRC
                            | wgpu::BufferUsages::COPY_DST,
                        mapped_at_creation: false,
                    })
                });
                if let Some(e) = pollster::block_on(scope.pop()) {
                    return Err(Error::backend(
                        &self.id,
                        op,
                        format!("allocating {class} bytes: {e}"),
                    ));
                }
                self.pool.note_created(class);
                b
            }
        };
        Ok(WgpuStorage::new(buf, class, bytes, self.pool.clone()))
    }

    fn with_encoder<R>(&self, f: impl FnOnce(&mut wgpu::CommandEncoder) -> R) -> Result<R> {
        let mut batch = lock(&self.batch);
        batch.pass = None;
        let enc = batch.encoder.get_or_insert_with(|| {
            self.device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None })
        });
        let r = f(enc);
        batch.ops += 1;
        if batch.ops >= BATCH_OPS {
            self.submit(&mut batch);
        }
        Ok(r)
    }

    /// Write the batch's parameter blocks, then submit its commands (queue order puts the
    /// write after every earlier submission and before these commands).
    fn submit(&self, batch: &mut Batch) {
        batch.pass = None;
        let _g = self.gate.as_ref().map(lock);
        if !batch.params.is_empty() {
            self.queue
                .write_buffer(&self.arena, 0, bytemuck::cast_slice(&batch.params));
            batch.params.clear();
        }
        if let Some(enc) = batch.encoder.take() {
            self.queue.submit([enc.finish()]);
        }
        batch.ops = 0;
    }

    /// Submit queued work without waiting.
    pub fn flush(&self, op: &str) -> Result<()> {
        self.submit(&mut lock(&self.batch));
        self.check(op)
    }

    /// Submit and wait for the device to finish.
    pub fn synchronize(&self) -> Result<()> {
        self.flush("synchronize")?;
        self.gated(|| self.device.poll(wgpu::PollType::wait_indefinitely()))
            .map_err(|e| Error::backend(&self.id, "synchronize", e.to_string()))?;
        self.check("synchronize")
    }

    /// Record one dispatch of `spec` with `params` at binding 0 and `bufs` at bindings 1...
    pub fn run(
        &self,
        spec: &KernelSpec,
        params: &[u32],
        bufs: &[&wgpu::Buffer],
        groups: (u32, u32, u32),
    ) -> Result<()> {
        if groups.0 == 0 || groups.1 == 0 || groups.2 == 0 {
            return Ok(());
        }
        let pipe = self.pipeline(spec)?;
        let bytes = (params.len().max(1) * 4) as u64;
        let mut batch = lock(&self.batch);
        let mut offset = batch.params.len().next_multiple_of(self.align_words);
        if (offset * 4) as u64 + bytes > ARENA_BYTES {
            self.submit(&mut batch);
            offset = 0;
        }
        batch.params.resize(offset, 0);
        batch.params.extend_from_slice(params);
        if params.is_empty() {
            batch.params.push(0);
        }
        let mut entries = vec![wgpu::BindGroupEntry {
            binding: 0,
            resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                buffer: &self.arena,
                offset: (offset * 4) as u64,
                size: wgpu::BufferSize::new(bytes),
            }),
        }];
        for (i, b) in bufs.iter().enumerate() {
            entries.push(wgpu::BindGroupEntry {
                binding: i as u32 + 1,
                resource: b.as_entire_binding(),
            });
        }
        let bg = self.gated(|| {
            self.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some(&spec.name),
                layout: &pipe.1,
                entries: &entries,
            })
        });
        if batch.pass.is_none() {
            let enc = batch.encoder.get_or_insert_with(|| {
                self.device
                    .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None })
            });
            let pass = enc
                .begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("plumb"),
                    timestamp_writes: None,
                })
                .forget_lifetime();
            batch.pass = Some(pass);
        }
        if let Some(pass) = batch.pass.as_mut() {
            pass.set_pipeline(&pipe.0);
            pass.set_bind_group(0, &bg, &[]);
            pass.dispatch_workgroups(groups.0, groups.1, groups.2);
        }
        batch.ops += 1;
        if batch.ops >= BATCH_OPS {
            self.submit(&mut batch);
        }
        drop(batch);
        self.check(&spec.name)
    }

    /// Write `bytes` into `dst` at offset 0, ordered with the queued kernels.
    pub fn write(&self, dst: &wgpu::Buffer, bytes: &[u8], op: &str) -> Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        let padded = bytes.len().next_multiple_of(4);
        let staging = self.gated(|| -> Result<wgpu::Buffer> {
            let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("plumb upload"),
                size: padded as u64,
                usage: wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: true,
            });
            {
                let mut view = staging
                    .slice(..)
                    .get_mapped_range_mut()
                    .map_err(|e| Error::backend(&self.id, op, e.to_string()))?;
                view.slice(..bytes.len()).copy_from_slice(bytes);
            }
            staging.unmap();
            Ok(staging)
        })?;
        self.with_encoder(|enc| enc.copy_buffer_to_buffer(&staging, 0, dst, 0, padded as u64))?;
        self.gated(|| drop(staging));
        self.check(op)
    }

    /// Buffer-to-buffer copy of `len` bytes (multiples of 4), ordered with the queued kernels.
    pub fn copy_buffer(
        &self,
        src: &wgpu::Buffer,
        offset: u64,
        dst: &wgpu::Buffer,
        len: u64,
        op: &str,
    ) -> Result<()> {
        self.with_encoder(|enc| enc.copy_buffer_to_buffer(src, offset, dst, 0, len))?;
        self.check(op)
    }

    /// Copy `len` bytes (a multiple of 4) of `src` from `offset` (a multiple of 4) back to the host.
    pub fn read(&self, src: &wgpu::Buffer, offset: u64, len: u64, op: &str) -> Result<Vec<u8>> {
        if len == 0 {
            return Ok(Vec::new());
        }
        let staging = self.gated(|| {
            self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("plumb readback"),
                size: len,
                usage: wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::MAP_READ,
                mapped_at_creation: false,
            })
        });
        self.with_encoder(|enc| enc.copy_buffer_to_buffer(src, offset, &staging, 0, len))?;
        self.flush(op)?;
        let out = self.gated(|| -> Result<Vec<u8>> {
            let slice = staging.slice(..);
            let (tx, rx) = std::sync::mpsc::channel();
            slice.map_async(wgpu::MapMode::Read, move |r| {
                let _ = tx.send(r);
            });
            self.device
                .poll(wgpu::PollType::wait_indefinitely())
                .map_err(|e| Error::backend(&self.id, op, e.to_string()))?;
            match rx.recv() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(Error::backend(&self.id, op, e.to_string())),
                Err(e) => return Err(Error::backend(&self.id, op, e.to_string())),
            }
            let out = slice
                .get_mapped_range()
                .map_err(|e| Error::backend(&self.id, op, e.to_string()))?
                .to_vec();
            staging.unmap();
            drop(staging);
            Ok(out)
        })?;
        self.check(op)?;
        Ok(out)
    }
}
