//! The viewer's bounded cache: a few fixed-size blocks of the file near
//! what is shown, so memory stays bounded however big the file is.

use std::borrow::Cow;
use std::collections::BTreeMap;

use bytes::Bytes;

/// Bytes per block: one read request (the server answers at most 1 MiB).
pub const BLOCK: u64 = 256 * 1024;
/// Blocks kept: 2 MiB, enough for a screen of the longest rows plus the
/// bytes scanned back for a line start and a block read ahead.
pub const CAPACITY: usize = 8;

/// A block that must be read before the bytes asked for can be given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Missing(pub u64);

/// Blocks of one file by index, and the file's size as last read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockCache {
    block: u64,
    capacity: usize,
    blocks: BTreeMap<u64, Bytes>,
    /// The file's size, as the last read found it.
    pub size: u64,
}

impl BlockCache {
    /// An empty cache of `capacity` blocks of `block` bytes for a file of
    /// `size` bytes.
    pub fn new(block: u64, capacity: usize, size: u64) -> BlockCache {
        BlockCache {
            block: block.max(1),
            capacity: capacity.max(2),
            blocks: BTreeMap::new(),
            size,
        }
    }

    /// Bytes per block.
    pub fn block_size(&self) -> u64 {
        self.block
    }

    /// True when block `index` is held.
    pub fn has(&self, index: u64) -> bool {
        self.blocks.contains_key(&index)
    }

    /// How many blocks are held.
    pub fn len(&self) -> usize {
        self.blocks.len()
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    /// Bytes held, all blocks together.
    pub fn held(&self) -> usize {
        self.blocks.values().map(|b| b.len()).sum()
    }

    /// Keeps block `index` as read (the file then had `size` bytes); when
    /// full, drops the blocks farthest from byte `near` (what is shown).
    pub fn insert(&mut self, index: u64, data: Bytes, size: u64, near: u64) {
        self.size = size;
        self.blocks.insert(index, data);
        let here = near / self.block;
        while self.blocks.len() > self.capacity {
            let far = self
                .blocks
                .keys()
                .copied()
                .max_by_key(|i| i.abs_diff(here))
                .unwrap_or(index);
            self.blocks.remove(&far);
        }
    }

    /// Forgets every block (the file changed, or the view closes).
    pub fn clear(&mut self) {
        self.blocks.clear();
    }

    /// Up to `len` bytes from `from`, fewer at the end of the file (a block
    /// read shorter than a block is the end too, whatever the size says):
    /// borrowed when they lie in one block, else copied. The first block
    /// not held is `Missing`.
    pub fn window(&self, from: u64, len: usize) -> Result<Cow<'_, [u8]>, Missing> {
        let end = from.saturating_add(len as u64).min(self.size);
        if from >= end {
            return Ok(Cow::Borrowed(&[]));
        }
        let first = from / self.block;
        let last = (end - 1) / self.block;
        let part = |i: u64| -> Result<&[u8], Missing> {
            let data = self.blocks.get(&i).ok_or(Missing(i))?;
            let base = i * self.block;
            let a = (from.max(base) - base) as usize;
            let b = ((end.min(base + self.block) - base) as usize).min(data.len());
            Ok(data.get(a..b).unwrap_or(&[]))
        };
        if first == last {
            return part(first).map(Cow::Borrowed);
        }
        let mut out = Vec::with_capacity((end - from) as usize);
        for i in first..=last {
            let p = part(i)?;
            out.extend_from_slice(p);
            let base = i * self.block;
            let wanted = (end.min(base + self.block) - from.max(base)) as usize;
            if p.len() < wanted {
                break; // a short block ends the file
            }
        }
        Ok(Cow::Owned(out))
    }
}

impl BlockCache {
    /// The bytes held from `from` on, up to `len` (fewer at the end of the
    /// file), and the block that cut them short if one is not held.
    pub fn window_partial(&self, from: u64, len: usize) -> (Cow<'_, [u8]>, Option<Missing>) {
        let end = from.saturating_add(len as u64).min(self.size);
        if from >= end {
            return (Cow::Borrowed(&[]), None);
        }
        let mut reach = end;
        let mut missing = None;
        let mut i = from / self.block;
        while i * self.block < end {
            if !self.has(i) {
                reach = (i * self.block).max(from);
                missing = Some(Missing(i));
                break;
            }
            i += 1;
        }
        match self.window(from, (reach - from) as usize) {
            Ok(w) => (w, missing),
            Err(m) => (Cow::Borrowed(&[]), Some(m)),
        }
    }

    /// The offset of the last `byte` in `from..to`, looking back from `to`
    /// one block at a time (so only the blocks looked at must be held).
    pub fn rfind(&self, byte: u8, from: u64, to: u64) -> Result<Option<u64>, Missing> {
        let to = to.min(self.size);
        if from >= to {
            return Ok(None);
        }
        let mut i = (to - 1) / self.block;
        loop {
            let base = i * self.block;
            let a = from.max(base);
            let w = self.window(a, (to.min(base + self.block) - a) as usize)?;
            if let Some(p) = w.iter().rposition(|b| *b == byte) {
                return Ok(Some(a + p as u64));
            }
            if a == from {
                return Ok(None);
            }
            i -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cache of `data` in blocks of `block`, all held.
    pub(crate) fn full(data: &[u8], block: u64) -> BlockCache {
        let blocks = data.len().div_ceil(block as usize).max(1);
        let mut c = BlockCache::new(block, blocks + 1, data.len() as u64);
        for (i, chunk) in data.chunks(block as usize).enumerate() {
            c.insert(
                i as u64,
                Bytes::copy_from_slice(chunk),
                data.len() as u64,
                0,
            );
        }
        c
    }

    #[test]
    fn a_window_within_a_block_is_borrowed_and_across_blocks_is_whole() {
        let data: Vec<u8> = (0..100u8).collect();
        let c = full(&data, 16);
        let w = c.window(3, 5).unwrap();
        assert!(matches!(w, Cow::Borrowed(_)));
        assert_eq!(&*w, &data[3..8]);
        let w = c.window(10, 40).unwrap();
        assert_eq!(&*w, &data[10..50]);
        // The end of the file cuts it; past the end is empty.
        assert_eq!(&*c.window(90, 40).unwrap(), &data[90..]);
        assert!(c.window(100, 4).unwrap().is_empty());
        assert!(c.window(500, 4).unwrap().is_empty());
    }

    #[test]
    fn a_block_not_held_is_named() {
        let mut c = BlockCache::new(16, 4, 100);
        c.insert(0, Bytes::from(vec![1; 16]), 100, 0);
        assert_eq!(c.window(0, 16).unwrap().len(), 16);
        assert_eq!(c.window(8, 16), Err(Missing(1)));
        assert_eq!(c.window(40, 1), Err(Missing(2)));
    }

    #[test]
    fn memory_stays_bounded_and_the_far_blocks_go_first() {
        let mut c = BlockCache::new(16, 4, 1 << 40);
        for i in 0..1000u64 {
            c.insert(i, Bytes::from(vec![0; 16]), 1 << 40, i * 16);
            assert!(c.len() <= 4);
        }
        assert_eq!(c.held(), 64);
        // The four nearest the view are held; a jump far away drops the
        // farthest of them.
        assert!(c.has(999) && c.has(996));
        c.insert(5, Bytes::from(vec![0; 16]), 1 << 40, 5 * 16);
        assert!(c.has(5) && !c.has(999), "the farthest from the view went");
    }

    #[test]
    fn a_short_block_is_the_end_even_if_the_size_said_more() {
        // The file shrank between two reads.
        let mut c = BlockCache::new(16, 4, 64);
        c.insert(0, Bytes::from(vec![7; 16]), 64, 0);
        c.insert(1, Bytes::from(vec![8; 5]), 64, 0);
        assert_eq!(c.window(10, 30).unwrap().len(), 11);
        assert_eq!(c.window(16, 30).unwrap().len(), 5);
    }

    #[test]
    fn partial_windows_stop_at_the_first_block_not_held() {
        let mut c = BlockCache::new(4, 8, 20);
        c.insert(0, Bytes::from_static(b"ab\nc"), 20, 0);
        c.insert(1, Bytes::from_static(b"efgh"), 20, 0);
        c.insert(3, Bytes::from_static(b"\nxyz"), 20, 0);
        let (w, m) = c.window_partial(1, 30);
        assert_eq!((&*w, m), (&b"b\ncefgh"[..], Some(Missing(2))));
        let (w, m) = c.window_partial(8, 3);
        assert_eq!((&*w, m), (&b""[..], Some(Missing(2))));
        assert_eq!(c.rfind(b'\n', 0, 8), Ok(Some(2)));
        assert_eq!(c.rfind(b'\n', 0, 2), Ok(None));
        assert_eq!(c.rfind(b'\n', 0, 16), Ok(Some(12)));
        assert_eq!(c.rfind(b'\n', 0, 12), Err(Missing(2)));
    }

    #[test]
    fn an_empty_file_has_an_empty_window() {
        let c = BlockCache::new(BLOCK, CAPACITY, 0);
        assert!(c.window(0, 4096).unwrap().is_empty());
    }
}
