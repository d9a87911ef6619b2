//! Detection of a strip on the GPU, the device twin of [`super::cpu`]: background
//! subtraction, filtering and thresholding (shaders/subtract.wgsl,
//! filter_threshold.wgsl), union-find labelling (label.wgsl) and compaction of the
//! detected pixels (compact.wgsl). The strip buffers are allocated once for the
//! tallest strip and reused.

use crate::background::Background;
use crate::detect::{
    strip_fields, strip_thresholds, PixelMode, RowDetections, StripDetector, StripRows,
};
use crate::error::{Error, Result};
use crate::gpu::uniforms::{Params, NONE};
use crate::gpu::{mask_bits, Failure, GpuContext, GpuTimings};
use crate::kernel::Kernel;
use crate::params::Connectivity;

impl GpuContext {
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
        let raw = self.storage("raw source rows", 4 * src_cap as u64);
        let sub = self.storage("subtracted source rows", 4 * src_cap as u64);
        let col_i = self.storage("column intervals", 4 * w as u64);
        let col_w = self.storage("column weights", 16 * w as u64);
        let row_nodes = self.storage("row nodes", 8 * (src_cap_rows * nodes_len) as u64);
        let b_kernel = self.storage("kernel", 4 * kernel.data().len() as u64);
        let thresh = self.storage(
            "thresholds",
            if per_pixel_thresh {
                4 * n_strip as u64
            } else {
                4
            },
        );
        let mask = self.storage(
            "mask bits",
            if has_mask {
                4 * src_cap.div_ceil(32) as u64
            } else {
                4
            },
        );
        let filtered = self.storage("filtered", 4 * n_strip as u64);
        let labels = self.storage("labels", 4 * n_strip as u64);
        let flags = self.storage("flags", 4);
        let counts = self.storage("counts", 4 * n_groups as u64);
        let offsets = self.storage("offsets", 4 * n_groups as u64);
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
        self.upload(&b_kernel, bytemuck::cast_slice(kernel.data()));
        self.upload(&col_i, bytemuck::cast_slice(col_interval));
        self.upload(&col_w, bytemuck::cast_slice(col_weights));
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
        self.upload(&b.params, bytemuck::bytes_of(&params));
        self.upload(&b.raw, bytemuck::cast_slice(inp.raw));
        self.upload(&b.row_nodes, bytemuck::cast_slice(inp.row_nodes));
        if let Some(t) = inp.thresholds {
            self.upload(&b.thresh, bytemuck::cast_slice(t));
        }
        if let Some(m) = inp.mask {
            self.upload(&b.mask, bytemuck::cast_slice(&mask_bits(m)));
        }
        times.upload += t_upload.elapsed().as_secs_f64();
        let t_label = std::time::Instant::now();
        let wx = (w as u32).div_ceil(16);
        let wy = (rows as u32).div_ceil(16);
        let wy_src = (src_rows as u32).div_ceil(16);
        // Subtraction, filtering and thresholding (each detected pixel its own root),
        // and how many pixels each group of 32 detects.
        let compact_grid = (gx as u32, wg_groups.div_ceil(65535) as u32);
        self.run_passes(
            "subtract + filter + count",
            &[
                (&self.subtract, &b.bg_subtract, "subtract", (wx, wy_src)),
                (&self.filter, &b.bg_filter, "filter", (wx, wy)),
                (&self.count, &b.bg_count, "count", compact_grid),
            ],
        );
        let counts: Vec<u32> = self.read(&b.counts, groups)?;
        let mut offsets = Vec::with_capacity(groups);
        let mut total = 0u64;
        for &c in &counts {
            offsets.push(total as u32);
            total += c as u64;
        }
        let total = total as usize;
        times.filter_and_label += t_label.elapsed().as_secs_f64();
        let mut out: Vec<u32> = Vec::with_capacity(4 * total);
        if total > 0 {
            let t_list = std::time::Instant::now();
            // The list of the detected pixels, then union-find over it: `reduce` unites
            // each with its causal neighbours and `compress` points it at its root,
            // both again while an invocation ran out of steps.
            self.upload(&b.offsets, bytemuck::cast_slice(&offsets));
            let list = self.storage("detected pixel list", 4 * total as u64);
            let bg_list = self.bind(
                &self.index_list,
                "list bind group",
                &[(0, &b.params), (1, &b.labels), (4, &b.offsets), (5, &list)],
            );
            self.run_passes(
                "list",
                &[(&self.index_list, &bg_list, "index_list", compact_grid)],
            );
            let list_wg = total.div_ceil(64);
            let list_grid = (list_wg.min(65535) as u32, list_wg.div_ceil(65535) as u32);
            let label_params = Params {
                n_groups: total as u32,
                groups_x: list_grid.0,
                ..params
            };
            self.upload(&b.params, bytemuck::bytes_of(&label_params));
            let bg_label = |p: &wgpu::ComputePipeline| {
                self.bind(
                    p,
                    "label bind group",
                    &[(0, &b.params), (1, &b.labels), (2, &b.flags), (3, &list)],
                )
            };
            let (bg_reduce, bg_compress) = (bg_label(&self.reduce), bg_label(&self.compress));
            let union_find = [
                (&self.reduce, &bg_reduce, "reduce", list_grid),
                (&self.compress, &bg_compress, "compress", list_grid),
            ];
            let mut rounds = 0;
            loop {
                rounds += 1;
                if rounds > 10_000 {
                    return Err(Failure::Other(Error::Backend(
                        "GPU labelling did not converge".into(),
                    )));
                }
                self.upload(&b.flags, bytemuck::bytes_of(&0u32));
                self.run_passes("union-find", &union_find);
                let flag: Vec<u32> = self.read(&b.flags, 1)?;
                self.check_errors("labelling")?;
                if flag[0] == 0 {
                    break;
                }
            }
            times.filter_and_label += t_list.elapsed().as_secs_f64();
            // The output (16 bytes per detected pixel) goes in windows of the list that
            // each fit one storage binding: a strip sized for 4 bytes per pixel may
            // detect more than a quarter of its pixels.
            let t_compact = std::time::Instant::now();
            let window_px = (self.limits.max_storage_buffer_binding_size as usize / 16)
                .min(self.max_output_pixels.unwrap_or(usize::MAX))
                .max(1);
            let mut k0 = 0usize;
            while k0 < total {
                let k1 = (k0 + window_px).min(total);
                let win_wg = (k1 - k0).div_ceil(64);
                let win_grid = (win_wg.min(65535) as u32, win_wg.div_ceil(65535) as u32);
                let p = Params {
                    g_start: k0 as u32,
                    n_groups: k1 as u32,
                    groups_x: win_grid.0,
                    ..params
                };
                self.upload(&b.params, bytemuck::bytes_of(&p));
                let b_out = self.storage("detected pixels", 16 * (k1 - k0) as u64);
                let bg_gather = self.bind(
                    &self.gather,
                    "gather bind group",
                    &[
                        (0, &b.params),
                        (1, &b.labels),
                        (2, &b.filtered),
                        (5, &b_out),
                        (6, &b.sub),
                        (7, &b.raw),
                        (8, &list),
                    ],
                );
                self.run_passes("gather", &[(&self.gather, &bg_gather, "gather", win_grid)]);
                out.extend(self.read::<u32>(&b_out, 4 * (k1 - k0))?);
                b_out.destroy();
                self.check_errors("compaction")?;
                k0 = k1;
            }
            list.destroy();
            times.compaction_and_readback += t_compact.elapsed().as_secs_f64();
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
        Ok(out)
    }

    /// Prepares GPU detection for streaming an image `width` x `height` in strips of
    /// at most `strip_rows` rows (fewer if the device's bindings demand it; see
    /// [`GpuStrips::strip_rows`]): background subtraction with `background`, the
    /// kernel, a constant threshold (or per-pixel ones given to each strip, with
    /// `per_pixel_thresh`), saturation at `satur`, a mask if `has_mask`, union-find
    /// labelling with `connectivity` within each strip (the pipeline joins the strips
    /// at their seams).
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
            mode: PixelMode::Const,
            thr: Vec::new(),
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
    bg_count: wgpu::BindGroup,
    width: usize,
    height: usize,
    halo: usize,
    kernel_size: (usize, usize),
    nodes_len: usize,
}

/// A strip's inputs besides its position: raw source rows (the strip and its halo),
/// their mask flags, the spline's node table for those rows, per-pixel thresholds of
/// the strip rows.
struct StripInputs<'a> {
    raw: &'a [f32],
    mask: Option<&'a [bool]>,
    row_nodes: &'a [f32],
    thresholds: Option<&'a [f32]>,
}

/// What stays the same for every strip.
struct StripSettings {
    thresh: f32,
    connectivity: Connectivity,
    satur: Option<f32>,
}

/// GPU detection for streaming (see [`GpuContext::strips`]).
pub struct GpuStrips<'a> {
    ctx: &'a GpuContext,
    bufs: StripBuffers,
    background: &'a Background,
    rows: usize,
    settings: StripSettings,
    row_table: Vec<f32>,
    /// How the thresholds vary (the pipeline's strips, [`StripDetector`]).
    pub(crate) mode: PixelMode,
    /// Per-pixel thresholds k·rms of a strip's rows.
    thr: Vec<f32>,
    /// Where the time went, over all strips so far.
    pub timings: GpuTimings,
}

impl StripDetector for GpuStrips<'_> {
    fn detect_strip(
        &mut self,
        strip: &mut StripRows,
        (y0, rows): (usize, usize),
        _sy0: usize,
        dets: &mut Vec<RowDetections>,
    ) -> Result<()> {
        let mut field = Vec::new();
        let mut thr = std::mem::take(&mut self.thr);
        let tvals = strip.thresholds.take();
        strip_fields(
            self.mode,
            self.background,
            (y0, rows),
            tvals,
            &mut field,
            &mut thr,
        );
        let thresholds =
            (self.mode != PixelMode::Const).then_some(strip_thresholds(self.mode, &field, &thr));
        let found = self.detect(
            &strip.raw,
            strip.mask.as_deref(),
            (y0, rows),
            thresholds,
            &field,
        );
        self.thr = thr;
        *dets = found?;
        Ok(())
    }
}

impl GpuStrips<'_> {
    /// The strip height the device allows (at most the one asked for).
    pub fn strip_rows(&self) -> usize {
        self.rows
    }

    /// The detections of rows `y0..y0 + rows` (at most [`Self::strip_rows`]), one
    /// per strip row, each run with its root (the linear index of its component's
    /// first pixel in the strip: runs with the same root are connected within the
    /// strip), from `raw`, the raw rows that cover the strip and the kernel's halo
    /// (clipped to the image), their mask flags, and the strip rows' per-pixel
    /// thresholds when the strips were prepared for them. `field` holds the per-pixel
    /// values objects carry for the strip rows (empty with constant thresholds).
    pub fn detect(
        &mut self,
        raw: &[f32],
        mask: Option<&[bool]>,
        (y0, rows): (usize, usize),
        thresholds: Option<&[f32]>,
        field: &[f32],
    ) -> Result<Vec<RowDetections>> {
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
                    row_nodes: &self.row_table,
                    thresholds: thresholds.map(|t| &t[..rows * w]),
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
        // Each pixel: strip index (bit 31: saturated), root, filtered, unfiltered value.
        let mut dets: Vec<RowDetections> = Vec::new();
        dets.resize_with(rows, Default::default);
        for q in out.chunks_exact(4) {
            let i = (q[0] & 0x7fff_ffff) as usize;
            let (d, x) = (&mut dets[i / w], i % w);
            match d.runs.last_mut() {
                Some(r) if r.1 == x => r.1 += 1,
                _ => {
                    d.runs.push((x, x + 1));
                    d.roots.push(y0 * w + q[1] as usize);
                }
            }
            d.filtered.push(f32::from_bits(q[2]));
            d.values.push(f32::from_bits(q[3]));
            if !field.is_empty() {
                d.field.push(field[i]);
            }
            if q[0] & 0x8000_0000 != 0 {
                d.saturated.push(x);
            }
        }
        Ok(dets)
    }
}
