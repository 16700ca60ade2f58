//! Windowing: a piece's length in notes in, the note ranges of its windows out.
//!
//! In: a note count `N` and a [`WindowConfig`] (`len` notes every `step`
//! notes). Out: `1 + (N - len) / step` windows (integer division), the
//! first starting at note 0; a piece shorter than `len` gives none
//! (FACTS.md section 2). With `step < len` windows overlap, which is why
//! splits are made by piece, never by window.

use std::ops::Range;

/// Why a window configuration is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    /// `len` was 0.
    #[error("the window length must be at least 1 note")]
    ZeroLength,
    /// `step` was 0.
    #[error("the window step must be at least 1 note")]
    ZeroStep,
}

/// Windows of `len` notes, one starting every `step` notes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WindowConfig {
    len: usize,
    step: usize,
}

impl WindowConfig {
    /// Validates a window configuration: both numbers at least 1.
    pub fn new(len: usize, step: usize) -> Result<WindowConfig, WindowError> {
        match (len, step) {
            (0, _) => Err(WindowError::ZeroLength),
            (_, 0) => Err(WindowError::ZeroStep),
            _ => Ok(WindowConfig { len, step }),
        }
    }

    /// Notes per window (`sequence_len`).
    pub fn length(&self) -> usize {
        self.len
    }

    /// Notes between window starts (`sequence_step`).
    pub fn step(&self) -> usize {
        self.step
    }

    /// How many windows a piece of `notes` notes gives: `1 + (notes - len) / step`, or 0.
    pub fn count(&self, notes: usize) -> usize {
        notes.checked_sub(self.len).map_or(0, |extra| 1 + extra / self.step)
    }

    /// The note ranges of those windows, in order.
    pub fn ranges(&self, notes: usize) -> impl ExactSizeIterator<Item = Range<usize>> + use<> {
        let (len, step) = (self.len, self.step);
        (0..self.count(notes)).map(move |i| i * step..i * step + len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn count_follows_the_formula_at_the_boundaries() {
        let w = WindowConfig::new(128, 42).unwrap();
        assert_eq!(w.count(0), 0);
        assert_eq!(w.count(127), 0, "shorter than len: dropped");
        assert_eq!(w.count(128), 1, "exactly len: one window");
        assert_eq!(w.count(169), 1);
        assert_eq!(w.count(170), 2);
        assert_eq!(w.count(2367), 1 + (2367 - 128) / 42);
    }

    #[test]
    fn ranges_start_every_step_and_stay_inside_the_piece() {
        let w = WindowConfig::new(4, 3).unwrap();
        assert_eq!(w.ranges(11).collect::<Vec<_>>(), vec![0..4, 3..7, 6..10]);
        assert_eq!(w.ranges(3).count(), 0);
    }

    #[test]
    fn zero_len_or_step_is_rejected() {
        assert_eq!(WindowConfig::new(0, 1), Err(WindowError::ZeroLength));
        assert_eq!(WindowConfig::new(1, 0), Err(WindowError::ZeroStep));
    }

    proptest! {
        #[test]
        fn windows_are_full_in_range_and_maximal(len in 1usize..50, step in 1usize..50, notes in 0usize..500) {
            let w = WindowConfig::new(len, step).unwrap();
            let ranges: Vec<_> = w.ranges(notes).collect();
            prop_assert_eq!(ranges.len(), w.count(notes));
            for r in &ranges {
                prop_assert_eq!(r.len(), len);
                prop_assert!(r.end <= notes);
                prop_assert_eq!(r.start % step, 0);
            }
            // One more window would not fit.
            prop_assert!(ranges.len() * step + len > notes);
        }
    }
}
