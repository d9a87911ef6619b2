//! The GPU path: background subtraction, filtering, thresholding, union-find
//! labelling and compaction of the detected pixels as WGSL compute shaders
//! (shaders/*.wgsl) through wgpu, and the mesh statistics (shaders/meshstats.wgsl)
//! where the device has f64 in shaders (on the CPU otherwise).
//!
//! One [`GpuContext`] (adapter, device, queue, the pipelines) is built once and
//! reused. The pipeline ([`crate::stream::scan`]) hands the device one strip at a
//! time ([`GpuContext::strips`], [`GpuStrips::detect`]), with the kernel's halo rows
//! above and below; strips are sized to the device's storage binding limit and
//! halved when the device runs out of memory, so no image size is refused. The raw
//! rows go up and the background is subtracted on the device from the spline's
//! per-row nodes and per-column weights, which the CPU computes from the mesh grid.
//! Each strip is labelled on the device (shaders/label.wgsl: every component rooted
//! at its first pixel in raster order) and only its detected pixels come back, in
//! raster order, with their root, filtered and unfiltered values and a saturation
//! bit. The CPU joins the strips' components across their seams
//! ([`crate::stream`]), then deblends and measures.

use crate::background::{clip_cuts, Background, MeshStat, Quantisation};
use crate::error::{Error, Result};
use crate::image::Image;
use crate::kernel::Kernel;
use crate::params::Connectivity;
use bytemuck::{Pod, Zeroable};
use std::sync::{Arc, Mutex};

const NONE: u32 = u32::MAX;

/// Uniform parameters shared by the three shaders (mirrors `struct Params` there).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
struct Params {
    width: u32,
    rows: u32,
    y0: u32,
    height: u32,
    src_y0: u32,
    src_rows: u32,
    kw: u32,
    kh: u32,
    thresh_mode: u32,
    thresh: f32,
    has_mask: u32,
    connectivity: u32,
    never: u32,
    groups_x: u32,
    n_groups: u32,
    nodes_len: u32,
    satur: f32,
    has_satur: u32,
    /// First group of a compaction window (scatter runs in windows of output that
    /// each fit one binding).
    g_start: u32,
    pad1: u32,
}

/// Where the GPU detection spent its time (wall clock on the host; a stage's time
/// includes waiting for the device to finish it).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct GpuTimings {
    /// Writing the strips (and background tables, thresholds, mask bits) into device
    /// buffers, with the CPU's evaluation of the background spline's row nodes.
    pub upload: f64,
    /// Background subtraction, filtering, thresholding and union-find labelling,
    /// until the last flag readback.
    pub filter_and_label: f64,
    /// Counting, offsets, scatter and reading back the detected pixels.
    pub compaction_and_readback: f64,
    /// Number of strips.
    pub strips: usize,
}

/// Why a strip pass failed: out of memory (retried with smaller strips) or anything else.
enum Failure {
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
    device: wgpu::Device,
    queue: wgpu::Queue,
    info: wgpu::AdapterInfo,
    limits: wgpu::Limits,
    subtract: wgpu::ComputePipeline,
    filter: wgpu::ComputePipeline,
    init: wgpu::ComputePipeline,
    compress: wgpu::ComputePipeline,
    reduce: wgpu::ComputePipeline,
    count: wgpu::ComputePipeline,
    scatter: wgpu::ComputePipeline,
    errors: Arc<Mutex<Vec<String>>>,
    /// Whether the device runs f64 in shaders (SHADER_F64).
    has_f64: bool,
    /// Whether the device has timestamp queries, and whether to use them.
    has_timestamps: bool,
    profiling: std::sync::atomic::AtomicBool,
    /// Device time per shader entry point (seconds), accumulated while profiling.
    kernel_times: Mutex<Vec<(&'static str, f64)>>,
    /// The mesh statistics pipelines (moments, mode), where the device can run them.
    mesh: Option<(wgpu::ComputePipeline, wgpu::ComputePipeline)>,
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

/// Shared WGSL definitions, prepended to every stage.
pub const COMMON: &str = include_str!("../../shaders/common.wgsl");

/// A stage's complete source: common.wgsl followed by the stage.
pub fn shader_source(stage: &str) -> String {
    format!("{COMMON}\n{stage}")
}

/// The WGSL sources of the stages, embedded at build time.
pub const SHADERS: &[(&str, &str)] = &[
    (
        "filter_threshold.wgsl",
        include_str!("../../shaders/filter_threshold.wgsl"),
    ),
    ("label.wgsl", include_str!("../../shaders/label.wgsl")),
    ("compact.wgsl", include_str!("../../shaders/compact.wgsl")),
    ("subtract.wgsl", include_str!("../../shaders/subtract.wgsl")),
    (
        "meshstats.wgsl",
        include_str!("../../shaders/meshstats.wgsl"),
    ),
];

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
            init: pipeline(&m_label, "init"),
            compress: pipeline(&m_label, "compress"),
            reduce: pipeline(&m_label, "reduce"),
            count: pipeline(&m_compact, "count"),
            scatter: pipeline(&m_compact, "scatter"),
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

    fn check_errors(&self, stage: &str) -> Result<()> {
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

    /// A uniform buffer for one `T`, written with `queue.write_buffer`.
    fn uniform<T>(&self, label: &str) -> wgpu::Buffer {
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: std::mem::size_of::<T>() as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    }

    fn storage(&self, label: &str, bytes: u64, extra: wgpu::BufferUsages) -> wgpu::Buffer {
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes.max(4).div_ceil(4) * 4,
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_DST
                | wgpu::BufferUsages::COPY_SRC
                | extra,
            mapped_at_creation: false,
        })
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
    fn run_passes(
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

    fn read<T: Pod>(&self, buf: &wgpu::Buffer, n: usize) -> Result<Vec<T>> {
        let bytes = (n * std::mem::size_of::<T>()) as u64;
        if bytes == 0 {
            return Ok(Vec::new());
        }
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size: bytes.div_ceil(4) * 4,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut enc = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("readback"),
            });
        enc.copy_buffer_to_buffer(buf, 0, &staging, 0, bytes.div_ceil(4) * 4);
        self.queue.submit([enc.finish()]);
        let slice = staging.slice(..);
        let (tx, rx) = std::sync::mpsc::channel();
        slice.map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Error::Backend(format!("GPU wait failed (device lost?): {e}")))?;
        rx.recv()
            .map_err(|_| Error::Backend("GPU readback never completed".into()))?
            .map_err(|e| Error::Backend(format!("GPU readback failed: {e}")))?;
        let view = slice
            .get_mapped_range()
            .map_err(|e| Error::Backend(format!("GPU readback mapping failed: {e}")))?;
        let out: Vec<T> = bytemuck::cast_slice(&view[..bytes as usize]).to_vec();
        drop(view);
        staging.unmap();
        // Freed now rather than at the next maintenance (lavapipe's memory grew
        // steadily over long streamed runs otherwise).
        staging.destroy();
        Ok(out)
    }

    fn bind(
        &self,
        pipeline: &wgpu::ComputePipeline,
        label: &str,
        buffers: &[(u32, &wgpu::Buffer)],
    ) -> wgpu::BindGroup {
        let layout = pipeline.get_bind_group_layout(0);
        let entries: Vec<wgpu::BindGroupEntry> = buffers
            .iter()
            .map(|&(binding, b)| wgpu::BindGroupEntry {
                binding,
                resource: b.as_entire_binding(),
            })
            .collect();
        self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(label),
            layout: &layout,
            entries: &entries,
        })
    }

    /// The largest strip height (rows) that fits the device's binding limit for an
    /// image `w` wide with `halo` rows above and below and `nodes_len` spline nodes per
    /// row, at most `cap`.
    fn strip_rows_for(
        &self,
        w: usize,
        h: usize,
        halo: usize,
        nodes_len: usize,
        cap: usize,
    ) -> std::result::Result<usize, Failure> {
        let max_bind = self.limits.max_storage_buffer_binding_size as usize;
        let max_rows_by_limit = (max_bind / (4 * w))
            .min(max_bind / (8 * nodes_len))
            .saturating_sub(2 * halo);
        if max_rows_by_limit == 0 {
            return Err(Failure::Other(Error::Backend(format!(
                "an image row of {w} pixels does not fit one GPU storage binding of {max_bind} bytes; use --backend cpu"
            ))));
        }
        // Strip-local indices keep bit 31 free (the compaction's saturation flag).
        Ok(h.min(max_rows_by_limit)
            .min(cap.max(1))
            .min((i32::MAX as usize) / w))
    }

    /// Allocates the buffers and bind groups for strips of at most `strip_rows` rows
    /// (plus `halo` rows on each side) of an image `w` wide.
    #[allow(clippy::too_many_arguments)]
    fn strip_buffers(
        &self,
        w: usize,
        h: usize,
        strip_rows: usize,
        kernel: &Kernel,
        nodes_len: usize,
        per_pixel_thresh: bool,
        has_mask: bool,
        (col_interval, col_weights): (&[u32], &[[f32; 4]]),
    ) -> std::result::Result<StripBuffers, Failure> {
        let halo = kernel.height() / 2;
        let n_strip = strip_rows * w;
        let src_cap_rows = (strip_rows + 2 * halo).min(h);
        let src_cap = src_cap_rows * w;
        let n_groups = n_strip.div_ceil(32);
        let params = self.uniform::<Params>("params");
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let none = wgpu::BufferUsages::empty();
        let raw = self.storage("raw source rows", 4 * src_cap as u64, none);
        let sub = self.storage("subtracted source rows", 4 * src_cap as u64, none);
        let col_i = self.storage("column intervals", 4 * w as u64, none);
        let col_w = self.storage("column weights", 16 * w as u64, none);
        let row_nodes = self.storage("row nodes", 8 * (src_cap_rows * nodes_len) as u64, none);
        let b_kernel = self.storage("kernel", 4 * kernel.data().len() as u64, none);
        let thresh = self.storage(
            "thresholds",
            if per_pixel_thresh {
                4 * n_strip as u64
            } else {
                4
            },
            none,
        );
        let mask = self.storage(
            "mask bits",
            if has_mask {
                4 * src_cap.div_ceil(32) as u64
            } else {
                4
            },
            none,
        );
        let filtered = self.storage("filtered", 4 * n_strip as u64, none);
        let labels = self.storage("labels", 4 * n_strip as u64, none);
        let flags = self.storage("flags", 4, none);
        let counts = self.storage("counts", 4 * n_groups as u64, none);
        let offsets = self.storage("offsets", 4 * n_groups as u64, none);
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(Failure::OutOfMemory {
                rows: strip_rows,
                message: e.to_string(),
            });
        }
        if self
            .simulated_memory_rows
            .is_some_and(|limit| strip_rows > limit)
        {
            return Err(Failure::OutOfMemory {
                rows: strip_rows,
                message: "simulated out-of-memory (test)".into(),
            });
        }
        self.queue
            .write_buffer(&b_kernel, 0, bytemuck::cast_slice(kernel.data()));
        self.queue
            .write_buffer(&col_i, 0, bytemuck::cast_slice(col_interval));
        self.queue
            .write_buffer(&col_w, 0, bytemuck::cast_slice(col_weights));
        let bg_subtract = self.bind(
            &self.subtract,
            "subtract bind group",
            &[
                (0, &params),
                (1, &raw),
                (2, &sub),
                (3, &col_i),
                (4, &col_w),
                (5, &row_nodes),
                (6, &mask),
            ],
        );
        let bg_filter = self.bind(
            &self.filter,
            "filter bind group",
            &[
                (0, &params),
                (1, &sub),
                (2, &b_kernel),
                (3, &thresh),
                (4, &mask),
                (5, &filtered),
                (6, &labels),
            ],
        );
        let bg_label = |p: &wgpu::ComputePipeline| {
            self.bind(
                p,
                "label bind group",
                &[(0, &params), (1, &labels), (2, &flags)],
            )
        };
        let bg_init = self.bind(&self.init, "init bind group", &[(0, &params), (1, &labels)]);
        let bg_compress = bg_label(&self.compress);
        let bg_reduce = bg_label(&self.reduce);
        let bg_count = self.bind(
            &self.count,
            "count bind group",
            &[(0, &params), (1, &labels), (3, &counts)],
        );
        Ok(StripBuffers {
            params,
            raw,
            sub,
            row_nodes,
            thresh,
            mask,
            filtered,
            labels,
            flags,
            counts,
            offsets,
            bg_subtract,
            bg_filter,
            bg_init,
            bg_compress,
            bg_reduce,
            bg_count,
            per_pixel_thresh,
            width: w,
            height: h,
            halo,
            kernel_size: (kernel.width(), kernel.height()),
            nodes_len,
        })
    }

    /// Runs one strip: uploads its raw source rows (strip rows y0..y0+rows with the
    /// halo), subtracts, filters and thresholds, labels it and returns
    /// its detected pixels as four words each (strip-local index with bit 31 set if
    /// saturated, root, filtered value, unfiltered value), in raster order.
    fn run_strip(
        &self,
        b: &StripBuffers,
        (y0, rows): (usize, usize),
        inp: StripInputs,
        s: &StripSettings,
        times: &mut GpuTimings,
    ) -> std::result::Result<Vec<u32>, Failure> {
        let w = b.width;
        let src_y0 = y0.saturating_sub(b.halo);
        let src_rows = inp.raw.len() / w;
        let groups = (rows * w).div_ceil(32);
        let wg_groups = groups.div_ceil(64);
        let gx = wg_groups.min(65535);
        let params = Params {
            width: w as u32,
            rows: rows as u32,
            y0: y0 as u32,
            height: b.height as u32,
            src_y0: src_y0 as u32,
            src_rows: src_rows as u32,
            kw: b.kernel_size.0 as u32,
            kh: b.kernel_size.1 as u32,
            thresh_mode: inp.thresholds.is_some() as u32,
            thresh: s.thresh,
            has_mask: inp.mask.is_some() as u32,
            connectivity: if s.connectivity == Connectivity::Eight {
                8
            } else {
                4
            },
            never: 0,
            groups_x: gx as u32,
            n_groups: groups as u32,
            nodes_len: b.nodes_len as u32,
            satur: s.satur.unwrap_or(0.0),
            has_satur: s.satur.is_some() as u32,
            g_start: 0,
            pad1: 0,
        };
        let t_upload = std::time::Instant::now();
        self.queue
            .write_buffer(&b.params, 0, bytemuck::bytes_of(&params));
        self.queue
            .write_buffer(&b.raw, 0, bytemuck::cast_slice(inp.raw));
        if let Some(t) = inp.row_nodes {
            self.queue
                .write_buffer(&b.row_nodes, 0, bytemuck::cast_slice(t));
        }
        if let Some(t) = &inp.thresholds {
            self.queue
                .write_buffer(&b.thresh, 0, bytemuck::cast_slice(t));
        }
        if let Some(m) = inp.mask {
            self.queue
                .write_buffer(&b.mask, 0, bytemuck::cast_slice(&mask_bits(m)));
        }
        times.upload += t_upload.elapsed().as_secs_f64();
        let t_label = std::time::Instant::now();
        let wx = (w as u32).div_ceil(16);
        let wy = (rows as u32).div_ceil(16);
        let wy_src = (src_rows as u32).div_ceil(16);
        self.run_passes(
            "subtract + filter + init",
            &[
                (&self.subtract, &b.bg_subtract, "subtract", (wx, wy_src)),
                (&self.filter, &b.bg_filter, "filter", (wx, wy)),
                (&self.init, &b.bg_init, "init", (wx, wy)),
            ],
        );
        // compress, reduce, compress until no invocation ran out of steps.
        let mut rounds = 0;
        {
            loop {
                rounds += 1;
                self.queue
                    .write_buffer(&b.flags, 0, bytemuck::bytes_of(&0u32));
                self.run_passes(
                    "union-find",
                    &[
                        (&self.compress, &b.bg_compress, "compress", (wx, wy)),
                        (&self.reduce, &b.bg_reduce, "reduce", (wx, wy)),
                        (&self.compress, &b.bg_compress, "compress", (wx, wy)),
                    ],
                );
                let flag: Vec<u32> = self.read(&b.flags, 1)?;
                self.check_errors("labelling")?;
                if flag[0] == 0 {
                    break;
                }
                if rounds > 10_000 {
                    return Err(Failure::Other(Error::Backend(
                        "GPU labelling did not converge".into(),
                    )));
                }
            }
        }
        times.filter_and_label += t_label.elapsed().as_secs_f64();
        // Compaction.
        let t_compact = std::time::Instant::now();
        let compact_grid = (gx as u32, wg_groups.div_ceil(65535) as u32);
        self.run_passes(
            "count",
            &[(&self.count, &b.bg_count, "count", compact_grid)],
        );
        let counts: Vec<u32> = self.read(&b.counts, groups)?;
        let mut offsets = Vec::with_capacity(groups);
        let mut total = 0u64;
        for &c in &counts {
            offsets.push(total as u32);
            total += c as u64;
        }
        let total = total as usize;
        // The output (16 bytes per detected pixel) goes in windows of whole groups that
        // each fit one storage binding: a strip sized for 4 bytes per pixel may detect
        // more than a quarter of its pixels.
        let window_px = (self.limits.max_storage_buffer_binding_size as usize / 16)
            .min(self.max_output_pixels.unwrap_or(usize::MAX))
            .max(32);
        let mut out: Vec<u32> = Vec::with_capacity(4 * total);
        let mut g0 = 0usize;
        while total > 0 && g0 < groups {
            let base = offsets[g0] as usize;
            let mut g1 = g0 + 1;
            while g1 < groups && offsets[g1] as usize + counts[g1] as usize - base <= window_px {
                g1 += 1;
            }
            let n = offsets[g1 - 1] as usize + counts[g1 - 1] as usize - base;
            if n > 0 {
                let rebased: Vec<u32> = offsets[g0..g1].iter().map(|&o| o - base as u32).collect();
                self.queue
                    .write_buffer(&b.offsets, 4 * g0 as u64, bytemuck::cast_slice(&rebased));
                let win_groups = (g1 - g0).div_ceil(64);
                let wgx = win_groups.min(65535);
                let p = Params {
                    g_start: g0 as u32,
                    n_groups: g1 as u32,
                    groups_x: wgx as u32,
                    ..params
                };
                self.queue
                    .write_buffer(&b.params, 0, bytemuck::bytes_of(&p));
                let b_out = self.storage(
                    "detected pixels",
                    16 * n as u64,
                    wgpu::BufferUsages::empty(),
                );
                let bg_scatter = self.bind(
                    &self.scatter,
                    "scatter bind group",
                    &[
                        (0, &b.params),
                        (1, &b.labels),
                        (2, &b.filtered),
                        (4, &b.offsets),
                        (5, &b_out),
                        (6, &b.sub),
                        (7, &b.raw),
                    ],
                );
                self.run_passes(
                    "scatter",
                    &[(
                        &self.scatter,
                        &bg_scatter,
                        "scatter",
                        (wgx as u32, win_groups.div_ceil(65535) as u32),
                    )],
                );
                out.extend(self.read::<u32>(&b_out, 4 * n)?);
                b_out.destroy();
                self.check_errors("compaction")?;
            }
            g0 = g1;
        }
        for q in out.chunks_exact(4) {
            let i = (q[0] & 0x7fff_ffff) as usize;
            if q[1] == NONE || q[1] as usize >= rows * w || i >= rows * w {
                return Err(Failure::Other(Error::Backend(
                    "GPU labelling returned an invalid label".into(),
                )));
            }
        }
        self.check_errors("filtering")?;
        times.compaction_and_readback += t_compact.elapsed().as_secs_f64();
        Ok(out)
    }

    /// Prepares GPU detection for streaming an image `width` x `height` in strips of
    /// at most `strip_rows` rows (fewer if the device's bindings demand it; see
    /// [`GpuStrips::strip_rows`]): background subtraction with `background`, the
    /// kernel, a constant threshold (or per-pixel ones given to each strip, with
    /// `per_pixel_thresh`), saturation at `satur`, a mask if `has_mask`.
    /// Labelling stays on the CPU, which joins the rows of all strips.
    #[allow(clippy::too_many_arguments)]
    pub fn strips<'a>(
        &'a self,
        width: usize,
        height: usize,
        strip_rows: usize,
        background: &'a Background,
        kernel: Option<&Kernel>,
        thresh: f32,
        satur: f32,
        has_mask: bool,
        per_pixel_thresh: bool,
        connectivity: Connectivity,
    ) -> Result<GpuStrips<'a>> {
        let identity = Kernel::new(1, 1, vec![1.0], false)?;
        let kernel = kernel.unwrap_or(&identity);
        let nodes_len = background.nodes_len();
        let unwrap = |f: Failure| match f {
            Failure::Other(e) => e,
            Failure::OutOfMemory { rows, message } => Error::Backend(format!(
                "the GPU is out of memory for strips of {rows} rows x {width} pixels: {message}; \
                 use a smaller --memory-limit or --backend cpu"
            )),
        };
        let halo = kernel.height() / 2;
        let mut rows = self
            .strip_rows_for(width, height, halo, nodes_len, strip_rows)
            .map_err(unwrap)?;
        let (ci, cw) = background.column_table();
        // Out of device memory for the strips: halve them and retry (down to 16 rows).
        let bufs = loop {
            match self.strip_buffers(
                width,
                height,
                rows,
                kernel,
                nodes_len,
                per_pixel_thresh,
                has_mask,
                (&ci, &cw),
            ) {
                Err(Failure::OutOfMemory { rows: r, message }) if r <= 16 => {
                    return Err(Error::Backend(format!(
                        "the GPU is out of memory even for strips of {r} rows x {width} pixels: \
                         {message}; use --backend cpu"
                    )))
                }
                Err(Failure::OutOfMemory { rows: r, .. }) => rows = r / 2,
                Err(other) => return Err(unwrap(other)),
                Ok(b) => break b,
            }
        };
        Ok(GpuStrips {
            ctx: self,
            bufs,
            background,
            rows,
            settings: StripSettings {
                thresh,
                connectivity,
                satur: Some(satur).filter(|v| v.is_finite()),
            },
            row_table: Vec::new(),
            timings: GpuTimings::default(),
        })
    }
}

/// Device buffers and bind groups for strips of one image, allocated once for the
/// largest strip and reused.
struct StripBuffers {
    params: wgpu::Buffer,
    raw: wgpu::Buffer,
    /// Whether `thresh` holds per-pixel thresholds (else one constant).
    per_pixel_thresh: bool,
    sub: wgpu::Buffer,
    row_nodes: wgpu::Buffer,
    thresh: wgpu::Buffer,
    mask: wgpu::Buffer,
    filtered: wgpu::Buffer,
    labels: wgpu::Buffer,
    flags: wgpu::Buffer,
    counts: wgpu::Buffer,
    offsets: wgpu::Buffer,
    bg_subtract: wgpu::BindGroup,
    bg_filter: wgpu::BindGroup,
    bg_init: wgpu::BindGroup,
    bg_compress: wgpu::BindGroup,
    bg_reduce: wgpu::BindGroup,
    bg_count: wgpu::BindGroup,
    width: usize,
    height: usize,
    halo: usize,
    kernel_size: (usize, usize),
    nodes_len: usize,
}

/// A strip's inputs besides its position: raw source rows (the strip and its halo),
/// their mask flags, the spline's node table for those rows (None: keep what the
/// buffer holds), per-pixel thresholds of the strip rows.
struct StripInputs<'a> {
    raw: &'a [f32],
    mask: Option<&'a [bool]>,
    row_nodes: Option<&'a [f32]>,
    thresholds: Option<Vec<f32>>,
}

/// What stays the same for every strip.
struct StripSettings {
    thresh: f32,
    connectivity: Connectivity,
    satur: Option<f32>,
}

/// One detected pixel of a streamed strip.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DetectedPixel {
    /// Linear index in the whole image.
    pub index: usize,
    /// The linear index of its component's first pixel in the strip (raster order):
    /// pixels with the same root are connected within the strip.
    pub root: usize,
    pub filtered: f32,
    /// The background-subtracted value.
    pub value: f32,
    pub saturated: bool,
}

/// GPU detection for streaming (see [`GpuContext::strips`]).
pub struct GpuStrips<'a> {
    ctx: &'a GpuContext,
    bufs: StripBuffers,
    background: &'a Background,
    rows: usize,
    settings: StripSettings,
    row_table: Vec<f32>,
    /// Where the time went, over all strips so far.
    pub timings: GpuTimings,
}

impl GpuStrips<'_> {
    /// The strip height the device allows (at most the one asked for).
    pub fn strip_rows(&self) -> usize {
        self.rows
    }

    /// The detected pixels of rows `y0..y0 + rows` (at most [`Self::strip_rows`]) in
    /// raster order, from `raw`, the raw rows `src_y0..` that cover the strip and the
    /// kernel's halo (clipped to the image), their mask flags, and the strip rows'
    /// per-pixel thresholds when the strips were prepared for them.
    pub fn detect(
        &mut self,
        raw: &[f32],
        mask: Option<&[bool]>,
        (y0, rows): (usize, usize),
        thresholds: Option<&[f32]>,
    ) -> Result<Vec<DetectedPixel>> {
        let w = self.bufs.width;
        let src_y0 = y0.saturating_sub(self.bufs.halo);
        let problem = match (thresholds, self.bufs.per_pixel_thresh) {
            (Some(_), false) => Some("per-pixel thresholds given to strips prepared without them"),
            (None, true) => Some("strips prepared for per-pixel thresholds got none"),
            (Some(t), true) if t.len() < rows * w => Some("fewer per-pixel thresholds than pixels"),
            _ => None,
        };
        if let Some(problem) = problem {
            return Err(Error::Backend(format!(
                "GPU strip at rows {y0}..{}: {problem}",
                y0 + rows
            )));
        }
        if rows > self.rows || !raw.len().is_multiple_of(w) || y0 + rows > self.bufs.height {
            return Err(Error::Backend(format!(
                "a GPU strip of {rows} rows at row {y0} does not fit the buffers prepared for {} rows",
                self.rows
            )));
        }
        self.background
            .row_node_table(src_y0, raw.len() / w, &mut self.row_table);
        let out = self
            .ctx
            .run_strip(
                &self.bufs,
                (y0, rows),
                StripInputs {
                    raw,
                    mask,
                    row_nodes: Some(&self.row_table),
                    thresholds: thresholds.map(|t| t[..rows * w].to_vec()),
                },
                &self.settings,
                &mut self.timings,
            )
            .map_err(|f| match f {
                Failure::Other(e) => e,
                Failure::OutOfMemory { message, .. } => Error::Backend(format!(
                    "the GPU ran out of memory: {message}; use a smaller --memory-limit or --backend cpu"
                )),
            })?;
        self.timings.strips += 1;
        let base = y0 * w;
        Ok(out
            .chunks_exact(4)
            .map(|q| DetectedPixel {
                index: base + (q[0] & 0x7fff_ffff) as usize,
                root: base + q[1] as usize,
                filtered: f32::from_bits(q[2]),
                value: f32::from_bits(q[3]),
                saturated: q[0] & 0x8000_0000 != 0,
            })
            .collect())
    }
}

/// Uniform parameters of shaders/meshstats.wgsl (mirrors `MeshParams` there).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
struct MeshParams {
    width: u32,
    rows: u32,
    bw: u32,
    bh: u32,
    nx: u32,
    mesh_rows: u32,
    r0: u32,
    r1: u32,
    clip: u32,
    has_mask: u32,
    never: u32,
    pad: u32,
}

/// A mesh's histogram binning for shaders/meshstats.wgsl (`Quant` there); nlevels 0
/// marks a bad mesh.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
struct QuantGpu {
    qscale: f32,
    cste: f32,
    qzero: f32,
    nlevels: u32,
}

/// Workgroup memory the mode pass needs (histogram, partial sums, reduction).
const MESH_WORKGROUP_BYTES: u32 = 4096 * 4 + 256 * 4 + 768 * 8 + 16;

impl GpuContext {
    /// Whether this device computes the mesh statistics (f64 in shaders and enough
    /// workgroup memory); otherwise the CPU does.
    pub fn has_mesh_stats(&self) -> bool {
        self.mesh.is_some()
    }

    /// The background mesh statistics of `img` on the GPU (mesh size `bw` x `bh`, grid
    /// `nx` x `ny`), equal to the CPU's ([`crate::background::mesh_row_stats`]): the
    /// sums are the same sequential f64 sums, the histogram binning the same f32
    /// values, the mode the same f64 arithmetic. The image goes up in chunks of whole
    /// mesh rows that fit one storage binding. Returns None when this device cannot
    /// (see [`GpuContext::has_mesh_stats`], or a mesh row larger than one binding).
    pub fn mesh_stats(
        &self,
        img: &Image,
        mask: Option<&[bool]>,
        (bw, bh): (usize, usize),
        (nx, ny): (usize, usize),
    ) -> Result<Option<Vec<Option<MeshStat>>>> {
        let Some((p_moments, p_mode)) = &self.mesh else {
            return Ok(None);
        };
        let (w, h) = (img.width(), img.height());
        let max_bind = self.limits.max_storage_buffer_binding_size as usize;
        let band_bytes = 4 * bh * w;
        if band_bytes > max_bind || nx > 65535 {
            return Ok(None);
        }
        let chunk_rows = (max_bind / band_bytes).min(ny).min(65535);
        let chunk_meshes = chunk_rows * nx;
        let b_params = self.uniform::<MeshParams>("mesh params");
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let none = wgpu::BufferUsages::empty();
        let b_raw = self.storage("mesh rows", (chunk_rows * band_bytes) as u64, none);
        let b_mask = self.storage(
            "mesh mask bits",
            if mask.is_some() {
                4 * (chunk_rows * bh * w).div_ceil(32) as u64
            } else {
                4
            },
            none,
        );
        let b_counts = self.storage("mesh counts", 4 * chunk_meshes as u64, none);
        let b_sums = self.storage("mesh sums", 16 * chunk_meshes as u64, none);
        let b_cuts = self.storage("mesh cuts", 8 * chunk_meshes as u64, none);
        let b_good = self.storage("mesh good", 4 * chunk_meshes as u64, none);
        let b_quant = self.storage("mesh quantisation", 16 * chunk_meshes as u64, none);
        let b_out = self.storage("mesh mode and sigma", 16 * chunk_meshes as u64, none);
        if pollster::block_on(scope.pop()).is_some() {
            return Ok(None); // the CPU computes them instead
        }
        let bg_moments = self.bind(
            p_moments,
            "mesh moments bind group",
            &[
                (0, &b_params),
                (1, &b_raw),
                (2, &b_mask),
                (3, &b_counts),
                (4, &b_sums),
                (5, &b_cuts),
                (6, &b_good),
            ],
        );
        let bg_mode = self.bind(
            p_mode,
            "mesh mode bind group",
            &[
                (0, &b_params),
                (1, &b_raw),
                (2, &b_mask),
                (7, &b_quant),
                (8, &b_out),
            ],
        );
        // Rows of a mesh per moments dispatch: at most ~30k loop iterations (pixels plus
        // rows) per invocation, under lavapipe's cut-off of 65,535.
        let rows_per_dispatch = (30000 / (bw + 1)).max(1);
        let mut stats = Vec::with_capacity(nx * ny);
        let mut j0 = 0;
        while j0 < ny {
            let j1 = (j0 + chunk_rows).min(ny);
            let (y0, y1) = (j0 * bh, (j1 * bh).min(h));
            let mr = j1 - j0;
            let n = mr * nx;
            self.queue
                .write_buffer(&b_raw, 0, bytemuck::cast_slice(&img.data()[y0 * w..y1 * w]));
            if let Some(m) = mask {
                let bits = mask_bits(&m[y0 * w..y1 * w]);
                self.queue
                    .write_buffer(&b_mask, 0, bytemuck::cast_slice(&bits));
            }
            let base = MeshParams {
                width: w as u32,
                rows: (y1 - y0) as u32,
                bw: bw as u32,
                bh: bh as u32,
                nx: nx as u32,
                mesh_rows: mr as u32,
                has_mask: mask.is_some() as u32,
                ..Default::default()
            };
            let moments = |clip: u32| -> Result<(Vec<u32>, Vec<f64>)> {
                self.queue
                    .write_buffer(&b_counts, 0, bytemuck::cast_slice(&vec![0u32; n]));
                self.queue
                    .write_buffer(&b_sums, 0, bytemuck::cast_slice(&vec![0f64; 2 * n]));
                for r0 in (0..bh).step_by(rows_per_dispatch) {
                    let p = MeshParams {
                        r0: r0 as u32,
                        r1: (r0 + rows_per_dispatch) as u32,
                        clip,
                        ..base
                    };
                    self.queue
                        .write_buffer(&b_params, 0, bytemuck::bytes_of(&p));
                    self.run_passes(
                        "mesh moments",
                        &[(
                            p_moments,
                            &bg_moments,
                            "moments",
                            ((nx as u32).div_ceil(64), mr as u32),
                        )],
                    );
                }
                let counts: Vec<u32> = self.read(&b_counts, n)?;
                let sums: Vec<f64> = self.read(&b_sums, 2 * n)?;
                self.check_errors("mesh statistics")?;
                Ok((counts, sums))
            };
            let total = |k: usize| {
                let (i, j) = (k % nx, j0 + k / nx);
                (((i + 1) * bw).min(w) - i * bw) * (((j + 1) * bh).min(h) - j * bh)
            };
            let (c0, s0) = moments(0)?;
            let mut cuts = vec![[0f32; 2]; n];
            let mut good = vec![0u32; n];
            for k in 0..n {
                if let Some((lo, hi)) =
                    clip_cuts(c0[k] as usize, s0[2 * k], s0[2 * k + 1], total(k))
                {
                    cuts[k] = [lo, hi];
                    good[k] = 1;
                }
            }
            self.queue
                .write_buffer(&b_cuts, 0, bytemuck::cast_slice(&cuts));
            self.queue
                .write_buffer(&b_good, 0, bytemuck::cast_slice(&good));
            let (c1, s1) = moments(1)?;
            let quant: Vec<QuantGpu> = (0..n)
                .map(|k| {
                    match (good[k] == 1)
                        .then(|| Quantisation::of(c1[k] as usize, s1[2 * k], s1[2 * k + 1]))
                        .flatten()
                    {
                        Some(q) => QuantGpu {
                            qscale: q.qscale,
                            cste: q.cste,
                            qzero: q.qzero,
                            nlevels: q.nlevels as u32,
                        },
                        None => QuantGpu::default(),
                    }
                })
                .collect();
            self.queue
                .write_buffer(&b_quant, 0, bytemuck::cast_slice(&quant));
            self.queue
                .write_buffer(&b_params, 0, bytemuck::bytes_of(&base));
            self.run_passes(
                "mesh mode",
                &[(p_mode, &bg_mode, "mode", (nx as u32, mr as u32))],
            );
            let out: Vec<f64> = self.read(&b_out, 2 * n)?;
            self.check_errors("mesh statistics")?;
            for k in 0..n {
                let (mut back, sigma) = (out[2 * k], out[2 * k + 1]);
                if quant[k].nlevels > 0 && sigma == 0.0 {
                    // A constant mesh is its value (background.rs, constant_value).
                    let (i, j) = (k % nx, j0 + k / nx);
                    let (x0, x1) = (i * bw, ((i + 1) * bw).min(w));
                    let d = img.data();
                    let vals = (j * bh..((j + 1) * bh).min(h))
                        .flat_map(|y| (x0..x1).map(move |x| y * w + x))
                        .filter(|&p| crate::image::is_valid(d[p]) && !mask.is_some_and(|m| m[p]))
                        .map(|p| d[p]);
                    if let Some(c) = crate::background::constant_value(vals) {
                        back = c as f64;
                    }
                }
                stats.push((quant[k].nlevels > 0).then(|| MeshStat {
                    back: back as f32,
                    sigma: sigma as f32,
                }));
            }
            j0 = j1;
        }
        for b in [
            &b_params, &b_raw, &b_mask, &b_counts, &b_sums, &b_cuts, &b_good, &b_quant, &b_out,
        ] {
            b.destroy();
        }
        Ok(Some(stats))
    }
}

/// The most loop steps one invocation of the filter shader may take: Mesa's
/// llvmpipe/lavapipe end an invocation silently after about 65,535 loop iterations,
/// and the filter takes about (width + 1) x height steps per pixel. Measured on
/// llvmpipe: 255x255 exact; 256x256, 257x257 and 300 wide x 218 tall not. Applied on
/// every adapter, so that the GPU and CPU catalogs are equal everywhere.
pub const MAX_FILTER_STEPS: usize = 255 * 256;

/// Whether the GPU filter computes `kernel` exactly; larger kernels are filtered on
/// the CPU (the GPU still computes the mesh statistics).
pub fn gpu_filters(kernel: Option<&crate::Kernel>) -> bool {
    kernel.is_none_or(|k| (k.width() + 1).saturating_mul(k.height()) <= MAX_FILTER_STEPS)
}

/// The timing label of a shader entry point's device time (see
/// [`GpuContext::set_profiling`]).
pub fn kernel_label(pass: &str) -> &'static str {
    match pass {
        "moments" => "GPU kernel: mesh moments",
        "mode" => "GPU kernel: mesh histogram + mode",
        "subtract" => "GPU kernel: subtract",
        "filter" => "GPU kernel: filter + threshold",
        "init" => "GPU kernel: label init",
        "compress" => "GPU kernel: label compress",
        "reduce" => "GPU kernel: label reduce",
        "count" => "GPU kernel: compaction count",
        "scatter" => "GPU kernel: compaction scatter",
        _ => "GPU kernel: other",
    }
}

/// Mask flags packed 32 to a word, bit k % 32 of word k / 32 (as the shaders read them).
fn mask_bits(m: &[bool]) -> Vec<u32> {
    let mut bits = vec![0u32; m.len().div_ceil(32)];
    for (k, &b) in m.iter().enumerate() {
        if b {
            bits[k / 32] |= 1 << (k % 32);
        }
    }
    bits
}

#[cfg(test)]
mod tests {
    use super::{shader_source, SHADERS};

    #[test]
    fn every_shader_parses_and_validates_with_naga() {
        for (name, stage) in SHADERS {
            let src = &shader_source(stage);
            let module = naga::front::wgsl::parse_str(src)
                .unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(src)));
            let mut v = naga::valid::Validator::new(
                naga::valid::ValidationFlags::all(),
                naga::valid::Capabilities::FLOAT64,
            );
            v.validate(&module)
                .unwrap_or_else(|e| panic!("{name}: {e:?}"));
        }
    }
}
