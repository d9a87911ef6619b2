//! Labelling and objects as runs: [`Run`] (a row's horizontal stretch of detected
//! pixels), the `Labeller` that joins runs row by row into components (open while a
//! later row may join them), and [`Segmentation`] (the objects of an image as run
//! lists, in catalog order).
//!
//! Each row's runs join the previous row's that they touch (8- or 4-connectivity):
//! on the CPU at every row; on the GPU, whose union-find (shaders/label.wgsl) already
//! joins the rows of a strip, only at each strip's first row. Objects are numbered by
//! their first pixel in raster order, so the numbering is the same for every strip
//! height, backend and thread count. There is no limit on object size, object count
//! or image size other than memory.

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

/// The labelled objects as lists of runs (object `k` is label `k + 1`, catalog row
/// `k`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Segmentation {
    width: usize,
    height: usize,
    /// All runs, grouped by object, each group in raster order.
    runs: Vec<Run>,
    /// `runs[offsets[k]..offsets[k + 1]]` are object k's runs.
    offsets: Vec<usize>,
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
    /// A segmentation without objects, to `push` them into.
    pub(crate) fn empty(width: usize, height: usize) -> Self {
        Segmentation {
            width,
            height,
            runs: Vec::new(),
            offsets: vec![0],
        }
    }

    /// Appends an object: its runs (raster order).
    pub(crate) fn push(&mut self, runs: &[Run]) {
        self.runs.extend_from_slice(runs);
        self.offsets.push(self.runs.len());
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

/// An open component: its runs with the filtered and unfiltered values of their
/// pixels, its saturated pixels, and the last row it reached.
#[derive(Default)]
pub(crate) struct Comp {
    pub(crate) runs: Vec<Run>,
    /// Start of each run's values in `filtered`, `values` and `field`.
    pub(crate) starts: Vec<usize>,
    pub(crate) filtered: Vec<f32>,
    /// The background-subtracted values.
    pub(crate) values: Vec<f32>,
    /// The per-pixel field at each pixel: the background RMS (RMS-map thresholds, the
    /// matched filter) or the threshold image's value; empty with constant thresholds.
    pub(crate) field: Vec<f32>,
    /// Linear indices of the saturated pixels.
    pub(crate) saturated: Vec<usize>,
    /// The flag maps' values of each pixel (one per map, pixel after pixel).
    pub(crate) flags: Vec<u32>,
    /// Dual-image mode: the measurement image's values (empty otherwise).
    pub(crate) mvalues: Vec<f32>,
    pub(crate) last_y: u32,
    /// Its first pixel (row, column): the smallest key any object made from it can have.
    pub(crate) first: (u32, u32),
}

impl Comp {
    pub(crate) fn npix(&self) -> usize {
        self.filtered.len()
    }
    fn absorb(&mut self, other: Comp) {
        let off = self.filtered.len();
        self.runs.extend(other.runs);
        self.starts
            .extend(other.starts.into_iter().map(|s| s + off));
        self.filtered.extend(other.filtered);
        self.values.extend(other.values);
        self.field.extend(other.field);
        self.flags.extend(other.flags);
        self.mvalues.extend(other.mvalues);
        self.saturated.extend(other.saturated);
        self.last_y = self.last_y.max(other.last_y);
        self.first = self.first.min(other.first);
    }
}

/// The open components: slots (None once completed or merged away), forwarding of
/// merged-away slots to the component that absorbed them, and reusable slots.
#[derive(Default)]
struct Open {
    comps: Vec<Option<Comp>>,
    fwd: Vec<usize>,
    free: Vec<usize>,
    /// Slots merged away during the current row (forwarding still needed until the
    /// row's runs are resolved).
    merged_away: Vec<usize>,
}

impl Open {
    /// The live component that slot `c` now belongs to, if any.
    fn resolve(&self, mut c: usize) -> Option<usize> {
        while self.comps[c].is_none() {
            c = self.fwd[c];
            if c == usize::MAX {
                return None;
            }
        }
        Some(c)
    }
    fn create(&mut self) -> usize {
        let slot = self.free.pop().unwrap_or_else(|| {
            self.comps.push(None);
            self.fwd.push(usize::MAX);
            self.comps.len() - 1
        });
        self.comps[slot] = Some(Comp::default());
        self.fwd[slot] = usize::MAX;
        slot
    }
    /// Merges two live components (the smaller into the larger); returns the survivor.
    fn merge(&mut self, a: usize, b: usize) -> usize {
        let size = |c: usize| self.comps[c].as_ref().map_or(0, |q| q.npix());
        let (keep, gone) = if size(a) >= size(b) { (a, b) } else { (b, a) };
        let g = self.comps[gone].take().expect("open component");
        self.comps[keep].as_mut().expect("open component").absorb(g);
        self.fwd[gone] = keep;
        self.merged_away.push(gone);
        keep
    }
    /// At the end of a row, once nothing refers to merged-away slots any more, makes
    /// them reusable.
    fn end_row(&mut self) {
        for s in self.merged_away.drain(..) {
            self.fwd[s] = usize::MAX;
            self.free.push(s);
        }
    }
    /// Takes a completed component out; its slot can be reused.
    fn complete(&mut self, c: usize) -> Comp {
        let comp = self.comps[c].take().expect("open component");
        self.fwd[c] = usize::MAX;
        self.free.push(c);
        comp
    }
}

/// The labelling: runs of detected pixels joined row by row into components. A
/// component stays open while a later row may still join it and is complete after a
/// row that does not continue it. Each row's runs join the components of the previous
/// row that they touch (8- or 4-connectivity) at a seam; between seams, runs with the
/// same device root (see [`crate::detect::RowDetections::roots`]) join one component.
/// On the CPU every row is a seam; on the GPU only a strip's first row is.
pub(crate) struct Labeller {
    open: Open,
    /// The previous row's runs and their components.
    prev: Vec<(Run, usize)>,
    /// The current strip's device roots (ascending) with the component each joined.
    strip_roots: Vec<(usize, usize)>,
    /// Detected pixels held by the open components.
    pub(crate) open_px: usize,
    /// How far a run reaches sideways into the previous row: 1 with 8-connectivity.
    reach: u32,
    width: usize,
}

impl Labeller {
    pub(crate) fn new(connectivity: crate::params::Connectivity, width: usize) -> Self {
        Labeller {
            open: Open::default(),
            prev: Vec::new(),
            strip_roots: Vec::new(),
            open_px: 0,
            reach: (connectivity == crate::params::Connectivity::Eight) as u32,
            width,
        }
    }

    /// Forgets the last strip's device roots.
    pub(crate) fn start_strip(&mut self) {
        self.strip_roots.clear();
    }

    /// Joins row `y`'s detections `d` (with device roots if `labelled`; compared with
    /// the previous row at a `seam`); hands each component this row completes to
    /// `done`. `strip_end`: nothing refers to merged-away components after this row
    /// (the last row of a strip with device roots, or every row without).
    pub(crate) fn join_row(
        &mut self,
        y: usize,
        d: &crate::detect::RowDetections,
        labelled: bool,
        seam: bool,
        strip_end: bool,
        done: &mut dyn FnMut(Comp),
    ) {
        let (open, prev, reach) = (&mut self.open, &self.prev, self.reach);
        let mut current: Vec<(Run, usize)> = Vec::new();
        let mut pi = 0usize;
        let mut off = 0usize;
        for (ri, &(x0, x)) in d.runs.iter().enumerate() {
            let run = Run {
                y: y as u32,
                x0: x0 as u32,
                x1: x as u32,
            };
            let root = labelled.then(|| d.roots[ri]);
            let known = root.and_then(|r| {
                self.strip_roots
                    .binary_search_by_key(&r, |e: &(usize, usize)| e.0)
                    .ok()
            });
            let mut target = known.and_then(|k| open.resolve(self.strip_roots[k].1));
            // Components of the previous row that this run touches.
            while seam && pi < prev.len() && prev[pi].0.x1 + reach <= run.x0 {
                pi += 1;
            }
            let mut k = pi;
            while seam && k < prev.len() && prev[k].0.x0 < run.x1 + reach {
                if let Some(c) = open.resolve(prev[k].1) {
                    target = Some(match target {
                        Some(t) if t != c => open.merge(t, c),
                        _ => c,
                    });
                }
                k += 1;
            }
            let id = match target {
                Some(t) => t,
                None => open.create(),
            };
            if let (Some(r), None) = (root, known) {
                // Roots come in raster order: the list stays sorted.
                self.strip_roots.push((r, id));
            }
            let comp = open.comps[id].as_mut().expect("open component");
            let len = x - x0;
            if comp.runs.is_empty() {
                comp.first = (run.y, run.x0);
            }
            comp.starts.push(comp.filtered.len());
            comp.runs.push(run);
            comp.filtered.extend_from_slice(&d.filtered[off..off + len]);
            self.open_px += len;
            comp.values.extend_from_slice(&d.values[off..off + len]);
            if !d.field.is_empty() {
                comp.field.extend_from_slice(&d.field[off..off + len]);
            }
            if !d.mvalues.is_empty() {
                comp.mvalues.extend_from_slice(&d.mvalues[off..off + len]);
            }
            if !d.flags.is_empty() {
                let nm = d.flags.len() / d.filtered.len();
                comp.flags
                    .extend_from_slice(&d.flags[off * nm..(off + len) * nm]);
            }
            off += len;
            // The row's saturated columns are ascending: this run's are one stretch.
            let (s0, s1) = (
                d.saturated.partition_point(|&sx| sx < x0),
                d.saturated.partition_point(|&sx| sx < x),
            );
            comp.saturated
                .extend(d.saturated[s0..s1].iter().map(|&sx| y * self.width + sx));
            comp.last_y = y as u32;
            current.push((run, id));
        }
        // Components of the previous row that this row did not continue are complete.
        for &(_, c0) in prev {
            if let Some(c) = open.resolve(c0) {
                if open.comps[c]
                    .as_ref()
                    .is_some_and(|q| (q.last_y as usize) < y)
                {
                    let comp = open.complete(c);
                    self.open_px -= comp.npix();
                    done(comp);
                }
            }
        }
        // Merges during this row may have moved components.
        for item in current.iter_mut() {
            item.1 = open.resolve(item.1).expect("continued component is open");
        }
        // Merged-away slots are reused once nothing refers to them.
        if strip_end {
            open.end_row();
        }
        self.prev = current;
    }

    /// The open component holding the most pixels.
    pub(crate) fn largest(&self) -> Option<&Comp> {
        self.open.comps.iter().flatten().max_by_key(|c| c.npix())
    }
    /// How many components are open.
    pub(crate) fn live(&self) -> usize {
        self.open.comps.iter().filter(|c| c.is_some()).count()
    }
    /// The smallest first pixel of the open components ((MAX, MAX) if none).
    pub(crate) fn first_key(&self) -> (u32, u32) {
        let firsts = self.open.comps.iter().flatten().map(|c| c.first);
        firsts.min().unwrap_or((u32::MAX, u32::MAX))
    }
    /// The components still open at the end of the image (all complete then).
    pub(crate) fn into_open(self) -> impl Iterator<Item = Comp> {
        self.open.comps.into_iter().flatten()
    }
}

/// An index into a union-find forest (u32 for compact lists, usize for large ones).
pub(crate) trait Node: Copy + Eq {
    fn at(self) -> usize;
}
impl Node for u32 {
    fn at(self) -> usize {
        self as usize
    }
}
impl Node for usize {
    fn at(self) -> usize {
        self
    }
}

/// The root of `i` in the union-find forest `parent` (a root is its own parent),
/// halving the path on the way. The one `find` of the crate (deblending's tree,
/// cleaning's pixel-list order).
pub(crate) fn find<N: Node>(parent: &mut [N], mut i: N) -> N {
    while parent[i.at()] != i {
        let p = parent[i.at()];
        parent[i.at()] = parent[p.at()];
        i = p;
    }
    i
}

#[cfg(test)]
mod tests {
    use crate::params::{Connectivity, ThreshType};
    use crate::{Extractor, Image, Inputs};

    /// The objects of an image drawn in ASCII (`#` detected), as the pipeline labels
    /// them in one strip and in strips of 1, 2 and 3 rows; all must agree.
    fn from_ascii(rows: &[&str], conn: Connectivity, minarea: usize) -> Vec<u32> {
        let (w, h) = (rows[0].len(), rows.len());
        let data = rows
            .iter()
            .flat_map(|r| r.bytes().map(|c| if c == b'#' { 100.0 } else { 0.0 }))
            .collect();
        let img = Image::new(w, h, data).unwrap();
        let mut e = Extractor::default();
        e.extract.kernel = None;
        e.extract.thresh_type = ThreshType::Absolute;
        e.extract.detect_thresh = 50.0;
        e.extract.analysis_thresh = 50.0;
        e.extract.minarea = minarea;
        e.extract.connectivity = conn;
        e.extract.clean = false;
        e.background.manual_value = Some(0.0);
        let whole = e.extract(&img, Inputs::default()).unwrap();
        for strip in [1, 2, 3] {
            let mut src = crate::stream::ImageRows(&img);
            let streamed = crate::stream::extract_streaming(&mut src, &e, strip).unwrap();
            assert_eq!(streamed.catalog, whole.catalog, "strips of {strip} rows");
        }
        whole.segmentation.to_map()
    }

    fn count(map: &[u32]) -> u32 {
        map.iter().copied().max().unwrap_or(0)
    }

    #[test]
    fn diagonal_line_is_one_object_in_8_and_many_in_4() {
        let rows = ["#...", ".#..", "..#.", "...#"];
        assert_eq!(count(&from_ascii(&rows, Connectivity::Eight, 1)), 1);
        assert_eq!(count(&from_ascii(&rows, Connectivity::Four, 1)), 4);
    }

    #[test]
    fn u_shape_merges_and_numbering_is_raster_order() {
        let rows = ["#.#..#", "#.#...", "###..#", "......", "..##.."];
        let map = from_ascii(&rows, Connectivity::Eight, 1);
        assert_eq!(count(&map), 4);
        assert_eq!(map[0], 1); // the U, first pixel at (0,0)
        assert_eq!(map[2], 1);
        assert_eq!(map[5], 2); // (5,0)
        assert_eq!(map[2 * 6 + 5], 3); // (5,2)
        assert_eq!(map[4 * 6 + 2], 4);
        assert_eq!(map.iter().filter(|&&m| m == 1).count(), 7);
    }

    #[test]
    fn minarea_drops_small_objects() {
        let rows = ["##...", "##..#", "....."];
        let map = from_ascii(&rows, Connectivity::Eight, 2);
        assert_eq!(count(&map), 1);
        assert_eq!(map.iter().filter(|&&m| m == 1).count(), 4);
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
        let map = from_ascii(&refs, Connectivity::Four, 1);
        assert_eq!(count(&map), 1);
        assert_eq!(map.iter().filter(|&&m| m == 1).count(), 20 * 30 + 20);
    }
}
