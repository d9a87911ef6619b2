//! The background mesh statistics on the GPU (shaders/meshstats.wgsl), the device
//! twin of [`super::cpu_mesh_stats`]: the same sequential f64 sums, histogram binning
//! and mode.

use super::{clip_cuts, MeshStat, Quantisation};
use crate::error::Result;
use crate::gpu::uniforms::{MeshParams, QuantGpu};
use crate::gpu::{mask_bits, GpuContext};
use crate::image::Image;

/// Workgroup memory the mode pass needs (histogram, partial sums, reduction).
pub(crate) const MESH_WORKGROUP_BYTES: u32 = 4096 * 4 + 256 * 4 + 768 * 8 + 16;

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
        let b_raw = self.storage("mesh rows", (chunk_rows * band_bytes) as u64);
        let b_mask = self.storage(
            "mesh mask bits",
            if mask.is_some() {
                4 * (chunk_rows * bh * w).div_ceil(32) as u64
            } else {
                4
            },
        );
        let b_counts = self.storage("mesh counts", 4 * chunk_meshes as u64);
        let b_sums = self.storage("mesh sums", 16 * chunk_meshes as u64);
        let b_cuts = self.storage("mesh cuts", 8 * chunk_meshes as u64);
        let b_good = self.storage("mesh good", 4 * chunk_meshes as u64);
        let b_quant = self.storage("mesh quantisation", 16 * chunk_meshes as u64);
        let b_out = self.storage("mesh mode and sigma", 16 * chunk_meshes as u64);
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
            self.upload(&b_raw, bytemuck::cast_slice(&img.data()[y0 * w..y1 * w]));
            if let Some(m) = mask {
                let bits = mask_bits(&m[y0 * w..y1 * w]);
                self.upload(&b_mask, bytemuck::cast_slice(&bits));
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
                self.upload(&b_counts, bytemuck::cast_slice(&vec![0u32; n]));
                self.upload(&b_sums, bytemuck::cast_slice(&vec![0f64; 2 * n]));
                for r0 in (0..bh).step_by(rows_per_dispatch) {
                    let p = MeshParams {
                        r0: r0 as u32,
                        r1: (r0 + rows_per_dispatch) as u32,
                        clip,
                        ..base
                    };
                    self.upload(&b_params, bytemuck::bytes_of(&p));
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
            self.upload(&b_cuts, bytemuck::cast_slice(&cuts));
            self.upload(&b_good, bytemuck::cast_slice(&good));
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
            self.upload(&b_quant, bytemuck::cast_slice(&quant));
            self.upload(&b_params, bytemuck::bytes_of(&base));
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
