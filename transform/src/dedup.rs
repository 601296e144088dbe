//! Dropping redelivered copies, deterministically. A record of a partition is a copy when a
//! record kept at one of the `span` offsets before it, in the same partition, has its
//! fingerprint. That depends only on the partition's records and what was kept of them, which
//! is what the `events` table holds: after a restart or a rebalance the window is read back
//! from the table (the kept fingerprints of the `span` offsets up to the committed position),
//! so a replayed batch drops exactly what its first attempt dropped.

use std::collections::hash_map::Entry;
use std::collections::VecDeque;

use foldhash::HashMap;

/// The kept fingerprints of a partition's last `span` offsets.
#[derive(Debug)]
pub struct Window {
    span: i64,
    /// fingerprint -> offset of the kept record (distinct within the window by construction).
    kept: HashMap<i64, i64>,
    /// (offset, fingerprint) in offset order, for eviction.
    order: VecDeque<(i64, i64)>,
}

impl Window {
    /// A window over `span` offsets (0: nothing is ever a copy).
    pub fn new(span: u64) -> Self {
        Window { span: span as i64, kept: HashMap::default(), order: VecDeque::new() }
    }

    /// The first offset whose kept records decide about a record at `offset`.
    pub fn start(span: u64, offset: i64) -> i64 {
        offset.saturating_sub(span as i64)
    }

    /// Fills the window with kept records, in offset order (as read from the warehouse).
    pub fn seed(&mut self, kept: impl IntoIterator<Item = (i64, i64)>) {
        for (offset, fp) in kept {
            self.keep(offset, fp);
        }
    }

    /// Decides about the record at `offset` (offsets only grow): true when it is a copy of a
    /// kept record; otherwise it is kept and remembered.
    pub fn is_copy(&mut self, offset: i64, fp: i64) -> bool {
        if self.span == 0 {
            return false;
        }
        let start = Self::start(self.span as u64, offset);
        while let Some(&(o, f)) = self.order.front() {
            if o >= start {
                break;
            }
            self.order.pop_front();
            // One probe each (an entry, not a lookup then a removal or an insert): the map
            // holds a partition's window, some 100,000 fingerprints, and each probe is
            // likely a cache miss.
            if let Entry::Occupied(kept) = self.kept.entry(f) {
                if *kept.get() == o {
                    kept.remove();
                }
            }
        }
        match self.kept.entry(fp) {
            Entry::Occupied(_) => true,
            Entry::Vacant(slot) => {
                slot.insert(offset);
                self.order.push_back((offset, fp));
                false
            }
        }
    }

    /// The fingerprint kept at `offset`, if the window holds one there.
    pub fn kept_at(&self, offset: i64) -> Option<i64> {
        let at = self.order.binary_search_by_key(&offset, |&(o, _)| o).ok()?;
        Some(self.order[at].1)
    }

    fn keep(&mut self, offset: i64, fp: i64) {
        if self.span == 0 {
            return;
        }
        // Two kept records share a fingerprint only in a table written with a smaller window:
        // the later one counts.
        self.kept.insert(fp, offset);
        self.order.push_back((offset, fp));
    }

    /// Kept fingerprints in the window now.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.kept.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_within_the_span_is_dropped_and_one_beyond_it_kept() {
        let mut w = Window::new(3);
        assert!(!w.is_copy(10, 7));
        assert!(!w.is_copy(11, 8));
        assert!(w.is_copy(12, 7), "offset 10 is within 3 of 12");
        assert!(w.is_copy(13, 7), "10 is still within [10, 13)");
        assert!(!w.is_copy(14, 7), "10 left the window; the copy at 12 and 13 were not kept");
        assert!(w.is_copy(15, 7));
        assert_eq!(w.len(), 1, "offset 11 left too");
    }

    #[test]
    fn a_window_seeded_from_kept_records_decides_like_the_one_that_ran() {
        // The records of a partition, with copies; decide them in one run...
        let fps = [1, 2, 1, 3, 2, 4, 1, 5, 5, 6, 2, 1];
        let mut first = Window::new(4);
        let kept: Vec<(i64, i64)> = fps
            .iter()
            .enumerate()
            .filter(|(o, f)| !first.is_copy(*o as i64, **f))
            .map(|(o, f)| (o as i64, *f))
            .collect();
        // ...then restart after each offset: seed from what was kept, decide the rest.
        for done in 0..fps.len() as i64 {
            let mut again = Window::new(4);
            again.seed(kept.iter().copied().filter(|(o, _)| *o <= done && *o >= Window::start(4, done + 1)));
            let rest: Vec<(i64, i64)> = fps
                .iter()
                .enumerate()
                .skip(done as usize + 1)
                .filter(|(o, f)| !again.is_copy(*o as i64, **f))
                .map(|(o, f)| (o as i64, *f))
                .collect();
            let want: Vec<(i64, i64)> = kept.iter().copied().filter(|(o, _)| *o > done).collect();
            assert_eq!(rest, want, "restart after offset {done}");
        }
    }

    #[test]
    fn span_zero_keeps_everything() {
        let mut w = Window::new(0);
        assert!(!w.is_copy(1, 1));
        assert!(!w.is_copy(2, 1));
        assert_eq!(w.len(), 0);
    }
}
