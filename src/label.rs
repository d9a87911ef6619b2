//! Objects as runs: [`Run`] (a row's horizontal stretch of detected pixels) and
//! [`Segmentation`] (the objects of an image as run lists, in catalog order, with
//! the values of their pixels).
//!
//! The labelling itself is the pipeline's ([`crate::stream`]): each row's runs are
//! joined to the previous row's that they touch (8- or 4-connectivity), on the CPU at
//! every row and on the GPU, whose union-find labels the rows of a strip, at each
//! strip's first row. Objects are numbered by their first pixel in raster order, so
//! the numbering is the same for every strip height, backend and thread count.

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
