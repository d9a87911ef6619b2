//! The device context: adapter, device, queue and the compute pipelines, built once
//! and shared; error collection and the passes' dispatch and timing.

use super::{shader_source, SHADERS};
use crate::background::gpu::MESH_WORKGROUP_BYTES;
use crate::error::{Error, Result};
use std::sync::{Arc, Mutex};

/// Why a strip pass failed: out of memory (retried with smaller strips) or anything else.
pub(crate) enum Failure {
    OutOfMemory { rows: usize, message: String },
    Other(Error),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Other(e)
    }
}

/// Device, queue and pipelines, built once.
pub struct GpuContext {
    pub(crate) device: wgpu::Device,
    pub(crate) queue: wgpu::Queue,
    pub(crate) info: wgpu::AdapterInfo,
    pub(crate) limits: wgpu::Limits,
    pub(crate) subtract: wgpu::ComputePipeline,
    pub(crate) filter: wgpu::ComputePipeline,
    pub(crate) compress: wgpu::ComputePipeline,
    pub(crate) reduce: wgpu::ComputePipeline,
    pub(crate) count: wgpu::ComputePipeline,
    pub(crate) index_list: wgpu::ComputePipeline,
    pub(crate) gather: wgpu::ComputePipeline,
    pub(crate) errors: Arc<Mutex<Vec<String>>>,
    /// Whether the device runs f64 in shaders (SHADER_F64).
    pub(crate) has_f64: bool,
    /// Whether the device has timestamp queries, and whether to use them.
    pub(crate) has_timestamps: bool,
    pub(crate) profiling: std::sync::atomic::AtomicBool,
    /// Device time per shader entry point (seconds), accumulated while profiling.
    pub(crate) kernel_times: Mutex<Vec<(&'static str, f64)>>,
    /// The mesh statistics pipelines (moments, mode), where the device can run them.
    pub(crate) mesh: Option<(wgpu::ComputePipeline, wgpu::ComputePipeline)>,
    /// Upper bound on strip rows (tests use small strips to exercise the seams).
    pub max_strip_rows: Option<usize>,
    /// Upper bound on the detected pixels read back per compaction window (tests use
    /// small windows; otherwise one storage binding's worth).
    pub max_output_pixels: Option<usize>,
    /// Tests: strips taller than this fail as if the device were out of memory, to
    /// exercise the halving retry.
    #[doc(hidden)]
    pub simulated_memory_rows: Option<usize>,
}

impl std::fmt::Debug for GpuContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GpuContext({})", self.info.name)
    }
}

/// The instance and the adapter wgpu chooses, or an error that says how to get one.
///
/// The backends are Vulkan, Metal and DX12 unless `WGPU_BACKEND` names others. OpenGL is
/// left out by default: initialising EGL starts Mesa's GL driver threads beside
/// lavapipe's, and one run in a few hundred then died with a corrupted heap when a
/// thread ended at exit (a core dump showed the free in glibc's thread shutdown). The
/// compute shaders never used it: the adapter chosen was Vulkan's.
fn request_adapter() -> Result<(wgpu::Instance, wgpu::Adapter)> {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
    if wgpu::Backends::from_env().is_none() {
        desc.backends = wgpu::Backends::PRIMARY;
    }
    let instance = wgpu::Instance::new(desc);
    let adapter = pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions {
        power_preference: wgpu::PowerPreference::HighPerformance,
        force_fallback_adapter: false,
        compatible_surface: None,
        ..Default::default()
    }))
    .map_err(|e| {
        Error::Backend(format!(
            "no GPU adapter found ({e}); install a Vulkan driver (on Debian without a GPU: \
             apt-get install mesa-vulkan-drivers for lavapipe) or use --backend cpu"
        ))
    })?;
    Ok((instance, adapter))
}

/// The adapter wgpu would use, without creating a device: (name, is software).
pub fn probe_adapter() -> Result<(String, bool)> {
    let (instance, adapter) = request_adapter()?;
    let info = adapter.get_info();
    // Left to process exit, like the CLI's contexts: tearing Vulkan objects down early
    // crashed lavapipe now and then under load (see docs/architecture.md).
    std::mem::forget(adapter);
    std::mem::forget(instance);
    Ok((info.name, info.device_type == wgpu::DeviceType::Cpu))
}

impl GpuContext {
    /// Finds an adapter (any backend; `WGPU_BACKEND` restricts them) and builds the
    /// device and the pipelines. Errors say why no GPU can be used.
    pub fn new() -> Result<Self> {
        let (_instance, adapter) = request_adapter()?;
        let info = adapter.get_info();
        let alimits = adapter.limits();
        // Ask for the adapter's own storage limits (the WebGPU defaults are 128 MiB).
        let limits = wgpu::Limits {
            max_storage_buffer_binding_size: alimits.max_storage_buffer_binding_size,
            max_buffer_size: alimits.max_buffer_size,
            max_storage_buffers_per_shader_stage: alimits
                .max_storage_buffers_per_shader_stage
                .max(8),
            max_compute_workgroup_storage_size: alimits.max_compute_workgroup_storage_size,
            ..wgpu::Limits::downlevel_defaults()
        };
        // f64 in shaders (the mesh statistics need SExtractor's f64 sums) where the
        // adapter has it; without it the mesh statistics run on the CPU.
        let features = adapter.features() & wgpu::Features::SHADER_F64;
        // Timestamp queries time each shader on the device (--timings, benches).
        let timestamps = adapter.features() & wgpu::Features::TIMESTAMP_QUERY;
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("skysift device"),
            required_features: features | timestamps,
            required_limits: limits.clone(),
            ..Default::default()
        }))
        .map_err(|e| {
            Error::Backend(format!(
                "the GPU adapter {} refused a device: {e}",
                info.name
            ))
        })?;
        let errors = Arc::new(Mutex::new(Vec::new()));
        {
            let errors = errors.clone();
            device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
                if let Ok(mut v) = errors.lock() {
                    v.push(e.to_string());
                }
            }));
        }
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let module = |name: &str, src: &str| {
            device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(name),
                source: wgpu::ShaderSource::Wgsl(shader_source(src).into()),
            })
        };
        let m_filter = module(SHADERS[0].0, SHADERS[0].1);
        let m_label = module(SHADERS[1].0, SHADERS[1].1);
        let m_compact = module(SHADERS[2].0, SHADERS[2].1);
        let m_subtract = module(SHADERS[3].0, SHADERS[3].1);
        let pipeline = |m: &wgpu::ShaderModule, entry: &str| {
            device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(entry),
                layout: None,
                module: m,
                entry_point: Some(entry),
                compilation_options: Default::default(),
                cache: None,
            })
        };
        let mesh = (!features.is_empty()
            && limits.max_compute_workgroup_storage_size >= MESH_WORKGROUP_BYTES)
            .then(|| {
                let m = module(SHADERS[4].0, SHADERS[4].1);
                (pipeline(&m, "moments"), pipeline(&m, "mode"))
            });
        let ctx = GpuContext {
            mesh,
            subtract: pipeline(&m_subtract, "subtract"),
            filter: pipeline(&m_filter, "filter_threshold"),
            compress: pipeline(&m_label, "compress"),
            reduce: pipeline(&m_label, "reduce"),
            count: pipeline(&m_compact, "count"),
            index_list: pipeline(&m_compact, "index_list"),
            gather: pipeline(&m_compact, "gather"),
            device,
            queue,
            info,
            limits,
            errors,
            has_f64: !features.is_empty(),
            has_timestamps: !timestamps.is_empty(),
            profiling: std::sync::atomic::AtomicBool::new(false),
            kernel_times: Mutex::new(Vec::new()),
            max_strip_rows: None,
            max_output_pixels: None,
            simulated_memory_rows: None,
        };
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(Error::Backend(format!(
                "the GPU shaders failed to build: {e}"
            )));
        }
        Ok(ctx)
    }

    /// A description of the adapter and the limits that matter here.
    pub fn describe(&self) -> String {
        format!(
            "adapter: {} ({:?}, {:?} backend, driver {} {})\nmax storage binding: {} MiB, max buffer: {} MiB, \
             max workgroups per dimension: {}, f64 in shaders: {}, timestamp queries: {}",
            self.info.name,
            self.info.device_type,
            self.info.backend,
            self.info.driver,
            self.info.driver_info,
            self.limits.max_storage_buffer_binding_size / (1 << 20),
            self.limits.max_buffer_size / (1 << 20),
            self.limits.max_compute_workgroups_per_dimension,
            match (self.has_f64, self.mesh.is_some()) {
                (true, true) => "yes (mesh statistics on the GPU)",
                (true, false) => "yes, but too little workgroup memory (mesh statistics on the CPU)",
                _ => "no (mesh statistics on the CPU)",
            },
            if self.has_timestamps { "yes" } else { "no" },
        )
    }

    /// The adapter's name.
    pub fn adapter_name(&self) -> &str {
        &self.info.name
    }

    /// Whether the adapter is a software rasteriser (lavapipe, llvmpipe, WARP).
    pub fn is_software(&self) -> bool {
        self.info.device_type == wgpu::DeviceType::Cpu
    }

    pub(crate) fn check_errors(&self, stage: &str) -> Result<()> {
        let mut errs = self
            .errors
            .lock()
            .map_err(|_| Error::Backend("GPU error log poisoned".into()))?;
        if errs.is_empty() {
            return Ok(());
        }
        let msg = errs.join("; ");
        errs.clear();
        Err(Error::Backend(format!("GPU {stage} failed: {msg}")))
    }

    /// Times every shader dispatch on the device with timestamp queries from now on
    /// (where the device has them; returns whether it does). Each submission then
    /// waits for its timestamps, so this slows the run a little.
    pub fn set_profiling(&self, on: bool) -> bool {
        self.profiling.store(
            on && self.has_timestamps,
            std::sync::atomic::Ordering::Relaxed,
        );
        self.has_timestamps
    }

    /// The device time per shader entry point accumulated while profiling (seconds, in
    /// first-use order), and resets it.
    pub fn take_kernel_times(&self) -> Vec<(&'static str, f64)> {
        self.kernel_times
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default()
    }

    /// Encodes one compute pass per entry (pipeline, bind group, label, workgroups in
    /// x and y) into one command buffer and submits it; while profiling, each pass
    /// writes timestamps at its start and end and their difference is added to the
    /// pass label's kernel time.
    pub(crate) fn run_passes(
        &self,
        label: &str,
        passes: &[(
            &wgpu::ComputePipeline,
            &wgpu::BindGroup,
            &'static str,
            (u32, u32),
        )],
    ) {
        let mut enc = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some(label) });
        let profiling = self.profiling.load(std::sync::atomic::Ordering::Relaxed);
        let queries = profiling.then(|| {
            let n = 2 * passes.len() as u32;
            let set = self.device.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("kernel timestamps"),
                ty: wgpu::QueryType::Timestamp,
                count: n,
            });
            let buf = self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("kernel timestamps"),
                size: 8 * n as u64,
                usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            });
            (set, buf, n)
        });
        for (k, &(pipeline, bind_group, pass_label, (x, y))) in passes.iter().enumerate() {
            let timestamp_writes =
                queries
                    .as_ref()
                    .map(|(set, _, _)| wgpu::ComputePassTimestampWrites {
                        query_set: set,
                        beginning_of_pass_write_index: Some(2 * k as u32),
                        end_of_pass_write_index: Some(2 * k as u32 + 1),
                    });
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some(pass_label),
                timestamp_writes,
            });
            pass.set_pipeline(pipeline);
            pass.set_bind_group(0, bind_group, &[]);
            pass.dispatch_workgroups(x, y, 1);
        }
        if let Some((set, buf, n)) = &queries {
            enc.resolve_query_set(set, 0..*n, buf, 0);
        }
        self.queue.submit([enc.finish()]);
        if let Some((_, buf, n)) = queries {
            // A failed read leaves the times out; the run itself is unaffected.
            if let Ok(ticks) = self.read::<u64>(&buf, n as usize) {
                let period = self.queue.get_timestamp_period() as f64 * 1e-9;
                if let Ok(mut times) = self.kernel_times.lock() {
                    for (k, p) in passes.iter().enumerate() {
                        let dt = ticks[2 * k + 1].saturating_sub(ticks[2 * k]) as f64 * period;
                        match times.iter_mut().find(|(name, _)| *name == p.2) {
                            Some(t) => t.1 += dt,
                            None => times.push((p.2, dt)),
                        }
                    }
                }
            }
        }
    }
}
