use std::collections::VecDeque;

/// The most bytes a block may take: glibc serves a request of up to 1000 bytes from its
/// thread cache or its small bins, without first consolidating the fast bins that a flood
/// of waiters keeps full. BENCHMARKS.md compares this queue with a plain `VecDeque` (which
/// is what a block size of `usize::MAX` makes of it).
const BLOCK_BYTES: usize = 1000;

/// A first-in, first-out queue kept in blocks of at most [`BLOCK_BYTES`], rather than in
/// one buffer that doubles.
///
/// Growing never copies the elements, and a queue that drains gives its memory back block
/// by block, without ever freeing one large buffer: after a flood of waiters a doubling
/// buffer is a large fresh mapping, paid in page faults, and either stays allocated at its
/// largest or, freed, makes the allocator consolidate its free lists (full of the flood's
/// small blocks) all at once. Only the list of blocks still doubles, at 32 bytes per block.
#[derive(Debug)]
pub(crate) struct Blocks<T> {
    /// Never holds an empty block.
    blocks: VecDeque<VecDeque<T>>,
    len: usize,
    /// An emptied block kept for the next push: a queue that hovers around empty does not
    /// allocate at every turn.
    spare: Option<VecDeque<T>>,
}

impl<T> Default for Blocks<T> {
    fn default() -> Self {
        Self {
            blocks: VecDeque::new(),
            len: 0,
            spare: None,
        }
    }
}

impl<T> Blocks<T> {
    /// Elements per block.
    const BLOCK: usize = {
        let size = std::mem::size_of::<T>();
        if size == 0 || size >= BLOCK_BYTES {
            1
        } else {
            BLOCK_BYTES / size
        }
    };

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(crate) fn front(&self) -> Option<&T> {
        self.blocks.front()?.front()
    }

    pub(crate) fn front_mut(&mut self) -> Option<&mut T> {
        self.blocks.front_mut()?.front_mut()
    }

    pub(crate) fn back_mut(&mut self) -> Option<&mut T> {
        self.blocks.back_mut()?.back_mut()
    }

    pub(crate) fn push_back(&mut self, value: T) {
        match self.blocks.back_mut() {
            Some(block) if block.len() < Self::BLOCK => block.push_back(value),
            _ => {
                let mut block = self
                    .spare
                    .take()
                    .unwrap_or_else(|| VecDeque::with_capacity(Self::BLOCK));
                block.push_back(value);
                self.blocks.push_back(block);
            }
        }
        self.len += 1;
    }

    pub(crate) fn pop_front(&mut self) -> Option<T> {
        let block = self.blocks.front_mut()?;
        let value = block.pop_front()?;
        if block.is_empty() {
            let emptied = self.blocks.pop_front();
            self.spare = self.spare.take().or(emptied);
        }
        self.len -= 1;
        Some(value)
    }

    /// The element whose key is `key`, in a queue sorted by key.
    pub(crate) fn find<K: Ord>(&self, key: K, key_of: impl Fn(&T) -> K) -> Option<&T> {
        let (block, index) = self.position(key, key_of)?;
        self.blocks.get(block)?.get(index)
    }

    /// The element whose key is `key`, in a queue sorted by key, to change.
    pub(crate) fn find_mut<K: Ord>(&mut self, key: K, key_of: impl Fn(&T) -> K) -> Option<&mut T> {
        let (block, index) = self.position(key, key_of)?;
        self.blocks.get_mut(block)?.get_mut(index)
    }

    fn position<K: Ord>(&self, key: K, key_of: impl Fn(&T) -> K) -> Option<(usize, usize)> {
        let block = self
            .blocks
            .partition_point(|block| block.back().is_some_and(|last| key_of(last) < key));
        let index = self
            .blocks
            .get(block)?
            .binary_search_by(|value| key_of(value).cmp(&key))
            .ok()?;
        Some((block, index))
    }

    /// Every element, in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> {
        self.blocks.iter().flatten()
    }

    /// Every element, in order, to change.
    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = &mut T> {
        self.blocks.iter_mut().flatten()
    }

    /// Keeps, in order, the elements for which `keep` is true.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&mut T) -> bool) {
        for block in &mut self.blocks {
            block.retain_mut(&mut keep);
        }
        self.blocks.retain(|block| !block.is_empty());
        self.len = self.blocks.iter().map(VecDeque::len).sum();
    }

    /// Empties the queue, in order.
    pub(crate) fn take_all(&mut self) -> impl Iterator<Item = T> {
        self.len = 0;
        std::mem::take(&mut self.blocks).into_iter().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BLOCK: usize = Blocks::<u64>::BLOCK;

    fn filled(count: u64) -> Blocks<u64> {
        let mut blocks = Blocks::default();
        for value in 0..count {
            blocks.push_back(value);
        }
        blocks
    }

    #[test]
    fn is_first_in_first_out_across_blocks() {
        let count = 3 * BLOCK as u64 + 5;
        let mut blocks = filled(count);
        assert_eq!(blocks.blocks.len(), 4);
        assert_eq!(blocks.len(), 3 * BLOCK + 5);
        assert_eq!(blocks.back_mut().copied(), Some(count - 1));
        assert_eq!(blocks.front(), Some(&0));
        let popped = 2 * BLOCK as u64 - 3;
        for expected in 0..popped {
            assert_eq!(blocks.pop_front(), Some(expected));
        }
        blocks.push_back(1000);
        let rest: Vec<u64> = blocks.take_all().collect();
        assert_eq!(rest, (popped..count).chain([1000]).collect::<Vec<_>>());
        assert!(blocks.is_empty());
        assert_eq!(blocks.pop_front(), None);
    }

    #[test]
    fn gives_memory_back_as_it_drains_and_keeps_one_spare_block() {
        let mut blocks = filled(10 * BLOCK as u64);
        assert_eq!(blocks.blocks.len(), 10);
        for _ in 0..5 * BLOCK {
            blocks.pop_front();
        }
        assert_eq!(blocks.blocks.len(), 5);
        assert!(blocks.spare.is_some());
        while blocks.pop_front().is_some() {}
        assert_eq!((blocks.blocks.len(), blocks.len()), (0, 0));
        blocks.push_back(7);
        assert!(blocks.spare.is_none(), "the spare block is used again");
    }

    #[test]
    fn finds_by_key_after_removals_anywhere() {
        // Removes the whole second block, and parts of the others.
        let removed = 70..2 * BLOCK as u64 + 10;
        let keep = |value: &u64| !value.is_multiple_of(3) && !removed.contains(value);
        let mut blocks = filled(5 * BLOCK as u64);
        blocks.retain(|value| keep(value));
        assert_eq!(blocks.blocks.len(), 4);
        let kept: Vec<u64> = (0..5 * BLOCK as u64).filter(keep).collect();
        assert_eq!(blocks.len(), kept.len());
        for value in 0..5 * BLOCK as u64 + 2 {
            let found = blocks.find_mut(value, |v| *v).map(|v| *v);
            assert_eq!(found, kept.contains(&value).then_some(value), "{value}");
        }
        *blocks.find_mut(301, |v| *v).unwrap() = 1_000;
        assert_eq!(blocks.find(301, |v| *v), None);
        assert_eq!(blocks.take_all().filter(|v| *v == 1_000).count(), 1);
    }
}
