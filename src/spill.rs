//! The pixels of a streamed run's objects, kept on disk so that its segmentation (and
//! other check images) can be written after the run in blocks of rows, in memory
//! bounded by a block.
//!
//! Each object's runs are added when its detection completes, under an id; its
//! catalog number is set when it is numbered (a cleaned object takes the number of
//! the object it was merged into). Runs are kept in one temporary file, grouped by
//! block of rows: each block has a small buffer in memory, written out as a chunk
//! when full, and a block is read back by reading its chunks.

use crate::error::{Error, Result};
use crate::label::{Run, Segmentation};
use std::io::{Read, Seek, SeekFrom, Write};

/// Runs of objects by block of rows, on disk; see the module's text.
pub struct SegmentSpill {
    width: usize,
    height: usize,
    block_rows: usize,
    file: std::fs::File,
    len: u64,
    /// Per block: runs not written yet, as (y, x0, x1, id).
    buffers: Vec<Vec<[u32; 4]>>,
    /// Per block: the chunks written, as (byte offset, run count).
    chunks: Vec<Vec<(u64, u32)>>,
    /// Buffered runs per block before a chunk is written.
    cap: usize,
    /// Catalog number of each id (0 until numbered).
    numbers: Vec<u32>,
}

fn io_err(e: std::io::Error) -> Error {
    Error::System(format!(
        "the temporary file that keeps the objects' pixels for the check images failed: {e} \
         (it goes in the output's folder)"
    ))
}

impl SegmentSpill {
    /// A spill for a `width` x `height` image read back in blocks of `block_rows`; its
    /// file goes in `dir` (e.g. the output's folder, usually on disk, where the system's
    /// temporary folder may be in memory), or the system's temporary folder.
    pub fn new(
        width: usize,
        height: usize,
        block_rows: usize,
        dir: Option<&std::path::Path>,
    ) -> Result<SegmentSpill> {
        let block_rows = block_rows.max(1);
        let blocks = height.div_ceil(block_rows).max(1);
        // About 4 MiB of buffers in all, at least 256 runs per block.
        let cap = ((4 << 20) / 16 / blocks).max(256);
        Ok(SegmentSpill {
            width,
            height,
            block_rows,
            file: dir
                .map_or_else(tempfile::tempfile, tempfile::tempfile_in)
                .map_err(io_err)?,
            len: 0,
            buffers: vec![Vec::new(); blocks],
            chunks: vec![Vec::new(); blocks],
            cap,
            numbers: Vec::new(),
        })
    }

    /// The image's width and height.
    pub fn shape(&self) -> (usize, usize) {
        (self.width, self.height)
    }

    pub fn block_rows(&self) -> usize {
        self.block_rows
    }

    pub fn blocks(&self) -> usize {
        self.buffers.len()
    }

    /// Adds an object's runs; returns its id.
    pub(crate) fn add(&mut self, runs: &[Run]) -> Result<u32> {
        let id = self.numbers.len() as u32;
        self.numbers.push(0);
        for r in runs {
            let b = r.y as usize / self.block_rows;
            self.buffers[b].push([r.y, r.x0, r.x1, id]);
            if self.buffers[b].len() >= self.cap {
                self.flush(b)?;
            }
        }
        Ok(id)
    }

    /// Adds runs that all carry `number` (marks such as aperture outlines).
    pub fn add_numbered(&mut self, runs: &[Run], number: u32) -> Result<()> {
        let id = self.add(runs)?;
        self.set_number(id, number);
        Ok(())
    }

    /// The catalog number of object `id`.
    pub(crate) fn set_number(&mut self, id: u32, number: u32) {
        self.numbers[id as usize] = number;
    }

    fn flush(&mut self, b: usize) -> Result<()> {
        if self.buffers[b].is_empty() {
            return Ok(());
        }
        let bytes: &[u8] = bytemuck::cast_slice(&self.buffers[b]);
        self.file.seek(SeekFrom::Start(self.len)).map_err(io_err)?;
        self.file.write_all(bytes).map_err(io_err)?;
        self.chunks[b].push((self.len, self.buffers[b].len() as u32));
        self.len += bytes.len() as u64;
        self.buffers[b].clear();
        Ok(())
    }

    /// Rows of block `b` (`b·block_rows ..`, at most `block_rows` of them).
    pub fn block_span(&self, b: usize) -> (usize, usize) {
        let y0 = b * self.block_rows;
        (y0, self.block_rows.min(self.height - y0))
    }

    /// Paints block `b` into `out` (its rows, `width` pixels each): each pixel the
    /// number of the object it belongs to, 0 where none does.
    pub fn paint(&mut self, b: usize, out: &mut Vec<u32>) -> Result<()> {
        let (y0, rows) = self.block_span(b);
        out.clear();
        out.resize(rows * self.width, 0);
        let mut runs: Vec<[u32; 4]> = Vec::new();
        for &(offset, count) in &self.chunks[b] {
            let start = runs.len();
            runs.resize(start + count as usize, [0; 4]);
            self.file.seek(SeekFrom::Start(offset)).map_err(io_err)?;
            self.file
                .read_exact(bytemuck::cast_slice_mut(&mut runs[start..]))
                .map_err(io_err)?;
        }
        runs.extend_from_slice(&self.buffers[b]);
        for [y, x0, x1, id] in runs {
            let n = self.numbers[id as usize];
            let row = (y as usize - y0) * self.width;
            out[row + x0 as usize..row + x1 as usize].fill(n);
        }
        Ok(())
    }
}

/// Runs of a set of pixels (x, y), in raster order (duplicates merged).
pub fn runs_of_pixels(mut px: Vec<(usize, usize)>) -> Vec<Run> {
    px.sort_unstable_by_key(|&(x, y)| (y, x));
    px.dedup();
    crate::label::runs_from_raster(px.into_iter().map(|(x, y)| (x as u32, y as u32)))
}

fn spill_err(e: std::io::Error) -> Error {
    Error::System(format!(
        "the temporary file of the objects waiting for cleaning (about 330 bytes per object, \
         in the output's folder) failed: {e}; free some disk space there, or use --no-clean"
    ))
}

/// Measured objects kept on disk as fixed-size records while a streamed run waits to
/// clean them (cleaning may pair any two objects, so none is final before the end):
/// only what cleaning reads stays in memory.
pub(crate) struct ObjectSpill {
    file: std::fs::File,
    /// Records not written yet (words).
    buf: Vec<u64>,
    /// One record read back.
    record: Vec<u64>,
    /// Records in the file.
    written: u64,
    count: u32,
}

impl ObjectSpill {
    /// Records written out in chunks of this many words (1 MiB).
    const CHUNK: usize = 1 << 17;

    pub(crate) fn new(dir: Option<&std::path::Path>) -> Result<ObjectSpill> {
        let file = dir
            .map_or_else(tempfile::tempfile, tempfile::tempfile_in)
            .map_err(spill_err)?;
        Ok(ObjectSpill {
            file,
            buf: Vec::with_capacity(Self::CHUNK + crate::measure::Object::WORDS),
            record: vec![0; crate::measure::Object::WORDS],
            written: 0,
            count: 0,
        })
    }

    fn bytes_per_record() -> u64 {
        8 * crate::measure::Object::WORDS as u64
    }

    fn flush(&mut self) -> Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let bytes: &[u8] = bytemuck::cast_slice(&self.buf);
        self.file
            .seek(SeekFrom::Start(self.written * Self::bytes_per_record()))
            .map_err(spill_err)?;
        self.file.write_all(bytes).map_err(spill_err)?;
        self.written += (self.buf.len() / crate::measure::Object::WORDS) as u64;
        self.buf.clear();
        Ok(())
    }

    /// Keeps an object; returns its slot.
    pub(crate) fn push(&mut self, o: &crate::measure::Object) -> Result<u32> {
        let slot = self.count;
        self.count = self.count.checked_add(1).ok_or_else(|| {
            Error::System("more than 2³² objects wait for cleaning: use --no-clean".into())
        })?;
        o.to_words(&mut self.buf);
        if self.buf.len() >= Self::CHUNK {
            self.flush()?;
        }
        Ok(slot)
    }

    /// The object kept in `slot`.
    pub(crate) fn get(&mut self, slot: u32) -> Result<crate::measure::Object> {
        self.flush()?;
        self.file
            .seek(SeekFrom::Start(slot as u64 * Self::bytes_per_record()))
            .map_err(spill_err)?;
        self.file
            .read_exact(bytemuck::cast_slice_mut(&mut self.record))
            .map_err(spill_err)?;
        Ok(crate::measure::Object::from_words(&self.record))
    }
}

/// The objects' runs kept in memory (the in-memory twin of [`SegmentSpill`]), for a
/// [`crate::label::Segmentation`] in catalog order at the end of the run.
#[derive(Default)]
pub(crate) struct SegmentRuns {
    runs: Vec<Vec<Run>>,
    numbers: Vec<u32>,
    /// Cleaned objects: (id, the row on which it was merged).
    pasted: Vec<(u32, u32)>,
}

/// What cleaning leaves in the measurement image (photometry.md §1.1.5): each merged
/// object's own pixels with the row of its merge, and the survivors' own pixels
/// (before their victims joined them), by catalog index.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PasteBack {
    /// (a cleaned object's runs, the completion row of its merge's newcomer).
    pub victims: Vec<(Vec<Run>, u32)>,
    /// (catalog index, its own runs), in index order: the objects that merged others.
    pub own: Vec<(usize, Vec<Run>)>,
}

impl PasteBack {
    /// The pixels written back for good, to clear from the detected (neighbour) bits
    /// of a view whose rows are `y0..y1`: the victims' runs on rows ≤ merge row + 1 −
    /// `blankh` (the rows the scan had blanked when the merge happened).
    pub fn restored(&self, blankh: usize, (y0, y1): (usize, usize)) -> impl Iterator<Item = &Run> {
        self.victims.iter().flat_map(move |(runs, at)| {
            let below = (*at as usize + 2).saturating_sub(blankh);
            runs.iter()
                .filter(move |r| (r.y as usize) < below && (y0..y1).contains(&(r.y as usize)))
        })
    }

    /// The own runs of catalog object `k` when it merged others.
    pub fn own_of(&self, k: usize) -> Option<&[Run]> {
        self.own
            .binary_search_by_key(&k, |o| o.0)
            .ok()
            .map(|i| &self.own[i].1[..])
    }
}

impl SegmentRuns {
    /// The segmentation ([`Self::into_segmentation`]) and what cleaning pasted back.
    pub(crate) fn into_parts(mut self, width: usize, height: usize) -> (Segmentation, PasteBack) {
        let mut paste = PasteBack::default();
        if !self.pasted.is_empty() {
            let victims: std::collections::HashSet<u32> = self.pasted.iter().map(|p| p.0).collect();
            for &(id, at) in &self.pasted {
                paste.victims.push((self.runs[id as usize].clone(), at));
            }
            let eaters: std::collections::HashSet<u32> = self
                .pasted
                .iter()
                .map(|p| self.numbers[p.0 as usize])
                .collect();
            for (id, &k) in self.numbers.iter().enumerate() {
                if k > 0 && eaters.contains(&k) && !victims.contains(&(id as u32)) {
                    paste.own.push((k as usize - 1, self.runs[id].clone()));
                }
            }
            paste.own.sort_unstable_by_key(|o| o.0);
            self.pasted.clear();
        }
        (self.into_segmentation(width, height), paste)
    }

    /// The segmentation: object k is every id numbered k + 1, their runs merged in
    /// raster order (a cleaned object's pixels join the object it was merged into).
    pub(crate) fn into_segmentation(self, width: usize, height: usize) -> Segmentation {
        let n = self.numbers.iter().copied().max().unwrap_or(0) as usize;
        let mut ids: Vec<Vec<usize>> = vec![Vec::new(); n];
        for (id, &k) in self.numbers.iter().enumerate() {
            if k > 0 {
                ids[k as usize - 1].push(id);
            }
        }
        let mut runs = self.runs;
        let mut seg = Segmentation::empty(width, height);
        for group in ids {
            if let [one] = group[..] {
                seg.push(&runs[one]);
                continue;
            }
            let mut all: Vec<Run> = group
                .iter()
                .flat_map(|&id| std::mem::take(&mut runs[id]))
                .collect();
            all.sort_unstable_by_key(|r| (r.y, r.x0));
            let mut merged: Vec<Run> = Vec::with_capacity(all.len());
            for r in all {
                match merged.last_mut() {
                    Some(m) if m.y == r.y && m.x1 == r.x0 => m.x1 = r.x1,
                    _ => merged.push(r),
                }
            }
            seg.push(&merged);
        }
        seg
    }
}

/// Where a run puts its objects' pixels: a file for check images written after a
/// streamed run, or memory for a [`crate::label::Segmentation`].
pub(crate) enum Segments<'a> {
    File(&'a mut SegmentSpill),
    Memory(&'a mut SegmentRuns),
    /// Both: a streamed run's check images and its photometry pass.
    Both(&'a mut SegmentSpill, &'a mut SegmentRuns),
}

impl SegmentRuns {
    fn add(&mut self, runs: &[Run]) -> u32 {
        self.runs.push(runs.to_vec());
        self.numbers.push(0);
        self.runs.len() as u32 - 1
    }
}

impl Segments<'_> {
    /// Adds an object's runs; returns its id.
    pub(crate) fn add(&mut self, runs: &[Run]) -> Result<u32> {
        match self {
            Segments::File(s) => s.add(runs),
            Segments::Memory(m) => Ok(m.add(runs)),
            Segments::Both(s, m) => {
                let id = s.add(runs)?;
                let same = m.add(runs);
                debug_assert_eq!(id, same, "one id in both");
                Ok(id)
            }
        }
    }

    /// The catalog number of object `id`.
    pub(crate) fn set_number(&mut self, id: u32, number: u32) {
        match self {
            Segments::File(s) => s.set_number(id, number),
            Segments::Memory(m) => m.numbers[id as usize] = number,
            Segments::Both(s, m) => {
                s.set_number(id, number);
                m.numbers[id as usize] = number;
            }
        }
    }

    /// Records that object `id` was cleaned on row `at` (photometry reads it; check
    /// images need only the numbers).
    pub(crate) fn set_pasted(&mut self, id: u32, at: u32) {
        if let Segments::Memory(m) | Segments::Both(_, m) = self {
            m.pasted.push((id, at));
        }
    }
}

/// Measured objects waiting for cleaning: on disk ([`ObjectSpill`]) in runs bounded by
/// a memory limit, else in memory.
pub(crate) enum ObjectStore {
    File(ObjectSpill),
    Memory(Vec<Option<crate::measure::Object>>),
}

impl ObjectStore {
    /// Keeps an object; returns its slot.
    pub(crate) fn push(&mut self, o: crate::measure::Object) -> Result<u32> {
        match self {
            ObjectStore::File(f) => f.push(&o),
            ObjectStore::Memory(m) => {
                m.push(Some(o));
                Ok(m.len() as u32 - 1)
            }
        }
    }

    /// The object kept in `slot` (each slot is read once).
    pub(crate) fn take(&mut self, slot: u32) -> Result<crate::measure::Object> {
        match self {
            ObjectStore::File(f) => f.get(slot),
            ObjectStore::Memory(m) => m[slot as usize]
                .take()
                .ok_or_else(|| Error::System(format!("object slot {slot} was read twice"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_come_back_from_their_slots() {
        let mut s = ObjectSpill::new(None).unwrap();
        let objs: Vec<crate::measure::Object> = (0..20_000)
            .map(|k| crate::measure::Object {
                number: k,
                x: k as f64 * 0.5,
                flux: -(k as f64),
                flags: k % 7,
                ..Default::default()
            })
            .collect();
        let slots: Vec<u32> = objs.iter().map(|o| s.push(o).unwrap()).collect();
        assert_eq!(slots, (0..20_000).collect::<Vec<u32>>());
        for k in [19_999usize, 0, 7_777, 16_383, 16_384, 12] {
            assert_eq!(s.get(slots[k]).unwrap(), objs[k]);
        }
    }

    #[test]
    fn runs_come_back_by_block_with_their_numbers() {
        // Tiny buffers: most runs go through the file.
        let mut s = SegmentSpill::new(10, 7, 3, None).unwrap();
        s.cap = 2;
        let a = s
            .add(&[
                Run { y: 0, x0: 1, x1: 3 },
                Run { y: 2, x0: 0, x1: 4 },
                Run { y: 3, x0: 2, x1: 3 },
                Run {
                    y: 6,
                    x0: 9,
                    x1: 10,
                },
            ])
            .unwrap();
        let b = s.add(&[Run { y: 4, x0: 5, x1: 8 }]).unwrap();
        s.add_numbered(&runs_of_pixels(vec![(0, 6), (1, 6), (1, 6), (3, 6)]), 9)
            .unwrap();
        s.set_number(a, 1);
        s.set_number(b, 2);
        let mut map = Vec::new();
        for blk in 0..s.blocks() {
            let mut out = Vec::new();
            s.paint(blk, &mut out).unwrap();
            assert_eq!(out.len(), s.block_span(blk).1 * 10);
            map.extend(out);
        }
        let mut want = vec![0u32; 70];
        for (y, x0, x1, n) in [
            (0, 1, 3, 1),
            (2, 0, 4, 1),
            (3, 2, 3, 1),
            (6, 9, 10, 1),
            (4, 5, 8, 2),
            (6, 0, 2, 9),
            (6, 3, 4, 9),
        ] {
            want[y * 10 + x0..y * 10 + x1].fill(n);
        }
        assert_eq!(map, want);
    }
}
