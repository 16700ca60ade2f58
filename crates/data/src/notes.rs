//! The note table every reader produces and every later stage consumes.
//!
//! In: nothing (plain data types). Out: [`Note`] and [`Piece`], a named
//! performance whose notes are kept sorted by start time, then pitch.

/// One played note: a MIDI pitch, its onset and release in seconds, and how
/// hard it was struck.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Note {
    /// MIDI pitch; readers keep only the piano range 21..=108.
    pub pitch: u8,
    /// Onset in seconds from the start of the piece.
    pub start: f64,
    /// Release in seconds (after any sustain-pedal extension); never before `start`.
    pub end: f64,
    /// MIDI velocity, 1..=127 for a sounding note.
    pub velocity: u8,
}

impl Note {
    /// `end - start`, in seconds.
    pub fn duration(&self) -> f64 {
        self.end - self.start
    }
}

/// A named performance: its notes sorted by start, then pitch.
#[derive(Debug, Clone, PartialEq)]
pub struct Piece {
    /// Where the piece came from, e.g. the MIDI file name; splits match on it.
    pub name: String,
    /// The notes, sorted by `start` then `pitch` (see [`Piece::new`]).
    pub notes: Vec<Note>,
}

impl Piece {
    /// A piece from notes in any order; sorts them by start, then pitch.
    ///
    /// The sort is stable, so notes with equal start and pitch keep the order
    /// they were given in.
    pub fn new(name: impl Into<String>, mut notes: Vec<Note>) -> Piece {
        notes.sort_by(|a, b| a.start.total_cmp(&b.start).then(a.pitch.cmp(&b.pitch)));
        Piece {
            name: name.into(),
            notes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(pitch: u8, start: f64) -> Note {
        Note {
            pitch,
            start,
            end: start + 1.0,
            velocity: 64,
        }
    }

    #[test]
    fn new_sorts_by_start_then_pitch() {
        let piece = Piece::new("p", vec![note(60, 1.0), note(64, 0.5), note(55, 1.0)]);
        let order: Vec<(u8, f64)> = piece.notes.iter().map(|n| (n.pitch, n.start)).collect();
        assert_eq!(order, vec![(64, 0.5), (55, 1.0), (60, 1.0)]);
    }

    #[test]
    fn duration_is_end_minus_start() {
        let n = Note {
            pitch: 60,
            start: 0.25,
            end: 1.0,
            velocity: 1,
        };
        assert_eq!(n.duration(), 0.75);
    }
}
