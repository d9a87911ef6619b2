//! Thresholding and connected-component labelling.
//!
//! Each row's detected pixels (filtered value strictly above the threshold, valid
//! and unmasked) are cut into runs; runs on consecutive rows that touch (8- or
//! 4-connectivity) are joined with union-find, the root being the run that comes
//! first in raster order. Components smaller than `minarea` pixels are dropped.
//! Objects are numbered by their first pixel in raster order (y, then x), so the
//! numbering is the same on every run and for any thread count. There is no limit
//! on object size, object count or image size other than memory.

use crate::params::Connectivity;
use rayon::prelude::*;

/// A horizontal run of detected pixels on row `y`, columns `x0..x1` (exclusive).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Run {
    pub y: u32,
    pub x0: u32,
    pub x1: u32,
}

impl Run {
    pub fn len(&self) -> usize {
        (self.x1 - self.x0) as usize
    }
    pub fn is_empty(&self) -> bool {
        self.x1 == self.x0
    }
}

/// The labelled objects as lists of runs (object `k` is label `k + 1`), and
/// optionally one value per pixel of those runs (the filtered detection image: the
/// only part of it that measurement needs, so the full image is never kept).
/// Equality compares the objects' pixels and filtered values, not the unfiltered
/// values a backend may carry along (they are the subtracted image's, see
/// [`Segmentation::object_raw`]).
#[derive(Clone, Debug, Default)]
pub struct Segmentation {
    width: usize,
    height: usize,
    /// All runs, grouped by object, each group in raster order.
    runs: Vec<Run>,
    /// `runs[offsets[k]..offsets[k + 1]]` are object k's runs.
    offsets: Vec<usize>,
    /// Per-pixel values of the runs, in run order (empty if none were given).
    values: Vec<f32>,
    /// `values[value_offsets[k]..value_offsets[k + 1]]` are object k's values.
    value_offsets: Vec<usize>,
    /// Unfiltered (background-subtracted) values of the pixels, laid out as `values`
    /// (empty unless the backend produced them: the GPU path, which subtracts the
    /// background itself and never builds the subtracted image on the CPU).
    raw: Vec<f32>,
}

impl PartialEq for Segmentation {
    fn eq(&self, o: &Self) -> bool {
        (self.width, self.height) == (o.width, o.height)
            && self.runs == o.runs
            && self.offsets == o.offsets
            && self.values == o.values
            && self.value_offsets == o.value_offsets
    }
}

impl Segmentation {
    /// Number of objects.
    pub fn len(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The runs of object `k` (0-based; its label is `k + 1`).
    pub fn object(&self, k: usize) -> &[Run] {
        &self.runs[self.offsets[k]..self.offsets[k + 1]]
    }
    /// The per-pixel values of object `k`, in the order of its runs (empty if the
    /// segmentation was built without values).
    pub fn object_values(&self, k: usize) -> &[f32] {
        if self.values.is_empty() {
            return &[];
        }
        &self.values[self.value_offsets[k]..self.value_offsets[k + 1]]
    }
    /// The unfiltered values of object `k`'s pixels, in the order of its runs
    /// (empty if the segmentation carries none).
    pub fn object_raw(&self, k: usize) -> &[f32] {
        if self.raw.is_empty() {
            return &[];
        }
        &self.raw[self.value_offsets[k]..self.value_offsets[k + 1]]
    }
    pub fn width(&self) -> usize {
        self.width
    }
    pub fn height(&self) -> usize {
        self.height
    }
    /// The segmentation map: 0 = background, k + 1 = object k.
    pub fn to_map(&self) -> Vec<u32> {
        let mut map = vec![0u32; self.width * self.height];
        for k in 0..self.len() {
            for r in self.object(k) {
                let base = r.y as usize * self.width;
                map[base + r.x0 as usize..base + r.x1 as usize].fill(k as u32 + 1);
            }
        }
        map
    }
    /// Builds a segmentation from objects given as run lists with the values of their
    /// pixels (runs in raster order; values in run order).
    pub fn from_parts(width: usize, height: usize, objects: Vec<(Vec<Run>, Vec<f32>)>) -> Self {
        let mut seg = Segmentation::empty(width, height);
        for (r, v) in objects {
            seg.push(&r, &v, &[]);
        }
        seg
    }

    /// A segmentation without objects, to `push` them into.
    pub(crate) fn empty(width: usize, height: usize) -> Self {
        Segmentation {
            width,
            height,
            offsets: vec![0],
            value_offsets: vec![0],
            ..Default::default()
        }
    }

    /// Appends an object: its runs (raster order), their values and, when the
    /// segmentation carries them, their unfiltered values (else empty).
    pub(crate) fn push(&mut self, runs: &[Run], values: &[f32], raw: &[f32]) {
        self.runs.extend_from_slice(runs);
        self.values.extend_from_slice(values);
        self.raw.extend_from_slice(raw);
        self.offsets.push(self.runs.len());
        self.value_offsets.push(self.values.len());
        debug_assert!(self.raw.is_empty() || self.raw.len() == self.values.len());
    }

    /// Builds a segmentation from objects given as run lists (runs in raster order).
    pub fn from_objects(width: usize, height: usize, objects: Vec<Vec<Run>>) -> Self {
        let mut runs = Vec::new();
        let mut offsets = vec![0];
        for o in objects {
            runs.extend(o);
            offsets.push(runs.len());
        }
        Segmentation {
            width,
            height,
            runs,
            offsets,
            ..Default::default()
        }
    }
}

/// Runs of pixels (x, y) given in raster order, without repeats.
pub fn runs_from_raster(pixels: impl IntoIterator<Item = (u32, u32)>) -> Vec<Run> {
    let mut runs: Vec<Run> = Vec::new();
    for (x, y) in pixels {
        match runs.last_mut() {
            Some(r) if r.y == y && r.x1 == x => r.x1 += 1,
            _ => runs.push(Run {
                y,
                x0: x,
                x1: x + 1,
            }),
        }
    }
    runs
}

fn find(parent: &mut [u32], mut i: u32) -> u32 {
    let mut root = i;
    while parent[root as usize] != root {
        root = parent[root as usize];
    }
    while parent[i as usize] != root {
        let next = parent[i as usize];
        parent[i as usize] = root;
        i = next;
    }
    root
}

/// Labels the pixels that `on_row(y, flags)` marks, row by row (see the module docs).
pub fn label<F>(
    width: usize,
    height: usize,
    connectivity: Connectivity,
    minarea: usize,
    on_row: F,
) -> Segmentation
where
    F: Fn(usize, &mut [bool]) + Sync,
{
    let per_row: Vec<(Vec<Run>, Vec<f32>)> = (0..height)
        .into_par_iter()
        .map_init(
            || vec![false; width],
            |buf, y| {
                on_row(y, buf);
                let (runs, _) = row_runs_with_values(y, width, |x| buf[x], |_| 0.0);
                (runs, Vec::new())
            },
        )
        .collect();
    label_runs(width, height, connectivity, minarea, per_row)
}

/// Labels given runs, row by row: `per_row[y]` holds row y's runs (in increasing x)
/// and, optionally, one value per pixel of those runs, which the segmentation keeps
/// grouped by object. Either every row has values or none has.
pub fn label_runs(
    width: usize,
    height: usize,
    connectivity: Connectivity,
    minarea: usize,
    per_row: Vec<(Vec<Run>, Vec<f32>)>,
) -> Segmentation {
    let mut row_start = Vec::with_capacity(height + 1);
    let mut runs = Vec::new();
    let mut values = Vec::new();
    let mut value_start = Vec::new();
    let with_values = per_row.iter().any(|(_, v)| !v.is_empty());
    for (r, v) in per_row {
        row_start.push(runs.len());
        if with_values {
            let mut off = values.len();
            for run in &r {
                value_start.push(off);
                off += run.len();
            }
        }
        runs.extend(r);
        values.extend(v);
    }
    row_start.push(runs.len());
    let n = runs.len();
    assert!(n < u32::MAX as usize, "more than 4e9 runs");
    // Union-find between consecutive rows; the smaller index is the root.
    let mut parent: Vec<u32> = (0..n as u32).collect();
    let reach: u32 = match connectivity {
        Connectivity::Eight => 1,
        Connectivity::Four => 0,
    };
    for y in 1..height {
        let (pa, pb) = (row_start[y - 1], row_start[y]);
        let (ca, cb) = (row_start[y], row_start[y + 1]);
        let (mut p, mut c) = (pa, ca);
        while p < pb && c < cb {
            let (rp, rc) = (runs[p], runs[c]);
            // Touch if rp.x0 <= rc.last + reach and rc.x0 <= rp.last + reach.
            if rp.x0 < rc.x1 + reach && rc.x0 < rp.x1 + reach {
                let a = find(&mut parent, p as u32);
                let b = find(&mut parent, c as u32);
                if a != b {
                    let (lo, hi) = if a < b { (a, b) } else { (b, a) };
                    parent[hi as usize] = lo;
                }
            }
            // Advance the run that ends first.
            if rp.x1 < rc.x1 {
                p += 1;
            } else {
                c += 1;
            }
        }
    }
    // Roots, areas, minimum area, numbering by first run (raster order).
    let mut area = vec![0usize; n];
    let mut root = vec![0u32; n];
    for i in 0..n {
        let r = find(&mut parent, i as u32);
        root[i] = r;
        area[r as usize] += runs[i].len();
    }
    const NONE: u32 = u32::MAX;
    let mut obj_of_root = vec![NONE; n];
    let mut count = 0u32;
    for i in 0..n {
        if root[i] == i as u32 && area[i] >= minarea {
            obj_of_root[i] = count;
            count += 1;
        }
    }
    // Group runs (and values) by object; a counting sort keeps raster order inside.
    let count = count as usize;
    let mut offsets = vec![0usize; count + 1];
    let mut value_offsets = vec![0usize; count + 1];
    for i in 0..n {
        let o = obj_of_root[root[i] as usize];
        if o != NONE {
            offsets[o as usize + 1] += 1;
            value_offsets[o as usize + 1] += runs[i].len();
        }
    }
    for k in 0..count {
        offsets[k + 1] += offsets[k];
        value_offsets[k + 1] += value_offsets[k];
    }
    let mut fill = offsets.clone();
    let mut vfill = value_offsets.clone();
    let mut grouped = vec![Run { y: 0, x0: 0, x1: 0 }; offsets[count]];
    let mut gvalues = if with_values {
        vec![0f32; value_offsets[count]]
    } else {
        Vec::new()
    };
    for i in 0..n {
        let o = obj_of_root[root[i] as usize];
        if o != NONE {
            let o = o as usize;
            grouped[fill[o]] = runs[i];
            fill[o] += 1;
            if with_values {
                let len = runs[i].len();
                gvalues[vfill[o]..vfill[o] + len]
                    .copy_from_slice(&values[value_start[i]..value_start[i] + len]);
                vfill[o] += len;
            }
        }
    }
    Segmentation {
        width,
        height,
        runs: grouped,
        offsets,
        values: gvalues,
        value_offsets: if with_values {
            value_offsets
        } else {
            Vec::new()
        },
        raw: Vec::new(),
    }
}

/// Builds a segmentation from labelled pixels: `pixels[k] = (linear index, _, value)`
/// in raster order, `roots[k]` its component's root, the component's smallest pixel
/// index. Components smaller than `minarea` are dropped; the others are numbered by
/// root, i.e. by first pixel in raster order, as [`label_runs`] numbers them.
/// `raw`, if not empty, holds the pixels' unfiltered values (same order as `pixels`).
pub fn segmentation_from_labelled_pixels(
    width: usize,
    height: usize,
    pixels: &[(usize, usize, f32)],
    raw: &[f32],
    roots: &[usize],
    minarea: usize,
) -> Segmentation {
    let mut area: std::collections::HashMap<usize, usize> = std::collections::HashMap::new();
    for &r in roots {
        *area.entry(r).or_insert(0) += 1;
    }
    let mut kept: Vec<usize> = area
        .iter()
        .filter(|(_, &a)| a >= minarea)
        .map(|(&r, _)| r)
        .collect();
    kept.sort_unstable();
    let number: std::collections::HashMap<usize, usize> =
        kept.iter().enumerate().map(|(k, &r)| (r, k)).collect();
    let count = kept.len();
    // Pixels per object, in raster order (counting sort).
    let mut value_offsets = vec![0usize; count + 1];
    for &r in roots {
        if let Some(&k) = number.get(&r) {
            value_offsets[k + 1] += 1;
        }
    }
    for k in 0..count {
        value_offsets[k + 1] += value_offsets[k];
    }
    let mut fill = value_offsets.clone();
    let mut order = vec![0usize; value_offsets[count]];
    for (i, &r) in roots.iter().enumerate() {
        if let Some(&k) = number.get(&r) {
            order[fill[k]] = i;
            fill[k] += 1;
        }
    }
    let mut runs = Vec::new();
    let mut offsets = vec![0usize];
    let mut values = Vec::with_capacity(order.len());
    let mut raw_out = Vec::with_capacity(if raw.is_empty() { 0 } else { order.len() });
    for k in 0..count {
        let mut current: Option<Run> = None;
        for &i in &order[value_offsets[k]..value_offsets[k + 1]] {
            let (idx, _, v) = pixels[i];
            values.push(v);
            if !raw.is_empty() {
                raw_out.push(raw[i]);
            }
            let (x, y) = ((idx % width) as u32, (idx / width) as u32);
            match current.as_mut() {
                Some(r) if r.y == y && r.x1 == x => r.x1 += 1,
                _ => {
                    if let Some(r) = current.take() {
                        runs.push(r);
                    }
                    current = Some(Run {
                        y,
                        x0: x,
                        x1: x + 1,
                    });
                }
            }
        }
        if let Some(r) = current {
            runs.push(r);
        }
        offsets.push(runs.len());
    }
    Segmentation {
        width,
        height,
        runs,
        offsets,
        values,
        value_offsets,
        raw: raw_out,
    }
}

/// Runs of a row whose pixels pass `on(x)`, with the pixels' values `val(x)`.
pub fn row_runs_with_values(
    y: usize,
    width: usize,
    mut on: impl FnMut(usize) -> bool,
    mut val: impl FnMut(usize) -> f32,
) -> (Vec<Run>, Vec<f32>) {
    let mut runs = Vec::new();
    let mut values = Vec::new();
    let mut start: Option<u32> = None;
    for x in 0..width {
        if on(x) {
            values.push(val(x));
            if start.is_none() {
                start = Some(x as u32);
            }
        } else if let Some(s) = start.take() {
            runs.push(Run {
                y: y as u32,
                x0: s,
                x1: x as u32,
            });
        }
    }
    if let Some(s) = start {
        runs.push(Run {
            y: y as u32,
            x0: s,
            x1: width as u32,
        });
    }
    (runs, values)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from_ascii(rows: &[&str], conn: Connectivity, minarea: usize) -> Segmentation {
        let w = rows[0].len();
        label(w, rows.len(), conn, minarea, |y, buf| {
            for (b, c) in buf.iter_mut().zip(rows[y].bytes()) {
                *b = c == b'#';
            }
        })
    }

    #[test]
    fn diagonal_line_is_one_object_in_8_and_many_in_4() {
        let rows = ["#...", ".#..", "..#.", "...#"];
        assert_eq!(from_ascii(&rows, Connectivity::Eight, 1).len(), 1);
        assert_eq!(from_ascii(&rows, Connectivity::Four, 1).len(), 4);
    }

    #[test]
    fn u_shape_merges_and_numbering_is_raster_order() {
        let rows = ["#.#..#", "#.#...", "###..#", "......", "..##.."];
        let s = from_ascii(&rows, Connectivity::Eight, 1);
        assert_eq!(s.len(), 4);
        let map = s.to_map();
        assert_eq!(map[0], 1); // the U, first pixel at (0,0)
        assert_eq!(map[2], 1);
        assert_eq!(map[5], 2); // (5,0)
        assert_eq!(map[2 * 6 + 5], 3); // (5,2)
        assert_eq!(map[4 * 6 + 2], 4);
        assert_eq!(s.object(0).iter().map(|r| r.len()).sum::<usize>(), 7);
    }

    #[test]
    fn minarea_drops_small_objects() {
        let rows = ["##...", "##..#", "....."];
        let s = from_ascii(&rows, Connectivity::Eight, 2);
        assert_eq!(s.len(), 1);
        assert_eq!(s.object(0).len(), 2);
    }

    #[test]
    fn serpentine_object_spanning_the_image_is_one_object() {
        let mut rows = Vec::new();
        for y in 0..40 {
            let s: String = (0..30)
                .map(|x| {
                    let full = y % 2 == 0;
                    let edge = if (y / 2) % 2 == 0 { x == 29 } else { x == 0 };
                    if full || edge {
                        '#'
                    } else {
                        '.'
                    }
                })
                .collect();
            rows.push(s);
        }
        let refs: Vec<&str> = rows.iter().map(|s| s.as_str()).collect();
        let s = from_ascii(&refs, Connectivity::Four, 1);
        assert_eq!(s.len(), 1);
        assert_eq!(
            s.object(0).iter().map(|r| r.len()).sum::<usize>(),
            20 * 30 + 20
        );
    }
}
