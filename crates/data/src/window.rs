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

/// Windows that give every note of a piece exactly one prediction
/// (`runner predict`): where the windows are, and which window and position
/// each note's prediction is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cover {
    /// The windows' note ranges, each `len` notes, in order.
    pub windows: Vec<Range<usize>>,
    /// For each note, `(window, position in it)`.
    pub owner: Vec<(usize, usize)>,
}

/// Covers a piece of `notes` notes with `len`-note windows, or `None` when
/// it is shorter than one window. Windows start every `len / 2` notes (at
/// least 1), and one more ends at the last note when they do not reach it.
/// Where windows overlap, a note takes the prediction of the window whose
/// centre is nearest to it (the earlier one on a tie), so that it is read
/// with context on both sides wherever the piece has some.
pub fn cover(notes: usize, len: usize) -> Option<Cover> {
    if len == 0 || notes < len {
        return None;
    }
    let stride = (len / 2).max(1);
    let mut starts: Vec<usize> = (0..=(notes - len) / stride).map(|i| i * stride).collect();
    if starts.last().is_some_and(|&last| last + len < notes) {
        starts.push(notes - len);
    }
    // Twice the distance from note i to the centre of the window at `start`.
    let off_centre = |i: usize, start: usize| (2 * i + 1).abs_diff(2 * start + len);
    let mut owner = Vec::with_capacity(notes);
    let mut first = 0; // the first window that may still contain note i
    for i in 0..notes {
        while starts[first] + len <= i {
            first += 1;
        }
        let best = (first..starts.len())
            .take_while(|&w| starts[w] <= i)
            .min_by_key(|&w| (off_centre(i, starts[w]), w))
            .expect("some window holds every note");
        owner.push((best, i - starts[best]));
    }
    Some(Cover {
        windows: starts.into_iter().map(|start| start..start + len).collect(),
        owner,
    })
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

    #[test]
    fn a_cover_reads_each_note_from_the_window_it_is_most_central_in() {
        let c = cover(10, 4).unwrap();
        assert_eq!(c.windows, vec![0..4, 2..6, 4..8, 6..10]);
        let windows: Vec<usize> = c.owner.iter().map(|&(w, _)| w).collect();
        assert_eq!(windows, [0, 0, 0, 1, 1, 2, 2, 3, 3, 3]);
        assert_eq!(cover(3, 4), None, "shorter than a window");
        assert_eq!(cover(4, 4).unwrap().windows, vec![0..4]);
        // 7 notes in windows of 4 every 2: 0..4, 2..6, then 3..7 ends at the last note.
        assert_eq!(cover(7, 4).unwrap().windows, vec![0..4, 2..6, 3..7]);
    }

    proptest! {
        #[test]
        fn a_cover_gives_every_note_one_prediction_inside_its_window(len in 1usize..40, notes in 0usize..400) {
            match cover(notes, len) {
                None => prop_assert!(notes < len),
                Some(c) => {
                    prop_assert_eq!(c.owner.len(), notes);
                    for (i, &(w, at)) in c.owner.iter().enumerate() {
                        prop_assert_eq!(c.windows[w].len(), len);
                        prop_assert!(c.windows[w].end <= notes);
                        prop_assert_eq!(c.windows[w].start + at, i);
                    }
                    prop_assert_eq!(c.windows.last().unwrap().end, notes);
                    // Every window is used by some note.
                    for w in 0..c.windows.len() {
                        prop_assert!(c.owner.iter().any(|&(o, _)| o == w), "window {} unused", w);
                    }
                }
            }
        }

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
