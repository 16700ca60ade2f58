//! Quantization: a [`Piece`]'s notes in, one [`QuantizedNote`] per note out.
//!
//! In: pieces and a [`Quantizer`] (three sets of bin [`Edges`]: the original
//! fixed tables, quantiles of training pieces, or explicit lists). Out: for
//! each note its pitch, the bins of its `dstart` (time to the next note's
//! start; 0 for the last note, computed on the whole piece before any
//! windowing), its duration (`end - start`) and its velocity, and its exact
//! velocity (FACTS.md section 2).
//!
//! Binning is numpy's `digitize(x, edges) - 1`: the index of the last edge
//! `<= x`, so a value equal to an edge falls in the bin that edge opens, and
//! the last bin is open-ended. Every bin list here starts at 0; a value below
//! it (a negative duration from inconsistent input, or NaN) is clamped to bin
//! 0 where numpy would give -1.
//!
//! [`Edges`] holds one lower edge per bin. FACTS.md writes the velocity
//! tables closed at 128 (`0, 57, 74, 128`); since no velocity reaches 128,
//! that closing edge never changes a bin and is not stored
//! ([`Edges::explicit`] accepts and drops it).

use std::fmt;

use super::notes::Piece;

/// Bins of this many or fewer are supported (bin indices are `u8`).
pub const MAX_BINS: usize = 255;

/// One of the three quantized note features.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Feature {
    /// Time from a note's start to the next note's start, in seconds.
    Dstart,
    /// `end - start`, in seconds.
    Duration,
    /// MIDI velocity.
    Velocity,
}

impl fmt::Display for Feature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Feature::Dstart => "dstart",
            Feature::Duration => "duration",
            Feature::Velocity => "velocity",
        })
    }
}

/// Why bin edges could not be made.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QuantizeError {
    /// The original fixed tables only exist for 3 and 5 bins.
    #[error("no fixed {feature} edges for {bins} bins: the original tables have 3 or 5")]
    NoFixedTable {
        /// The feature asked for.
        feature: Feature,
        /// The bin count asked for.
        bins: usize,
    },
    /// An edge list that is not a valid set of bins.
    #[error("invalid edges {edges:?}: {reason}")]
    InvalidEdges {
        /// The offending list.
        edges: Vec<f64>,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Quantile edges need at least one value.
    #[error("cannot compute {feature} quantile edges from no notes")]
    NoNotes {
        /// The feature asked for.
        feature: Feature,
    },
    /// The data are too concentrated for the asked number of distinct quantiles.
    #[error("the {feature} quantiles for {bins} bins are not distinct ({edges:?}); use fewer bins or explicit edges")]
    DegenerateQuantiles {
        /// The feature asked for.
        feature: Feature,
        /// The bin count asked for.
        bins: usize,
        /// The edges the quantiles gave.
        edges: Vec<f64>,
    },
}

/// Lower edges of consecutive bins: the first is 0, they strictly increase,
/// and the last bin is open-ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Edges(Vec<f64>);

impl Edges {
    /// Validates a list of lower edges: 1..=[`MAX_BINS`] finite edges, the
    /// first exactly 0, strictly increasing.
    pub fn new(edges: Vec<f64>) -> Result<Edges, QuantizeError> {
        let reason = if edges.is_empty() {
            Some("at least one edge is needed")
        } else if edges.len() > MAX_BINS {
            Some("more than 255 bins")
        } else if edges.iter().any(|e| !e.is_finite()) {
            Some("edges must be finite")
        } else if edges.first() != Some(&0.0) {
            Some("the first edge must be 0")
        } else if edges.windows(2).any(|w| w[0] >= w[1]) {
            Some("edges must strictly increase")
        } else {
            None
        };
        match reason {
            Some(reason) => Err(QuantizeError::InvalidEdges { edges, reason }),
            None => Ok(Edges(edges)),
        }
    }

    /// Explicit edges for `feature`, as a user writes them: like
    /// [`Edges::new`], but a velocity list may end with the closing edge 128
    /// of FACTS.md's tables (`0 57 74 128` is three bins), and no other
    /// velocity edge may exceed 127 (its bin could never be reached).
    pub fn explicit(feature: Feature, mut edges: Vec<f64>) -> Result<Edges, QuantizeError> {
        if feature == Feature::Velocity {
            if edges.len() > 1 && edges.last() == Some(&128.0) {
                edges.pop();
            }
            if edges.iter().any(|&e| e > 127.0) {
                return Err(QuantizeError::InvalidEdges {
                    edges,
                    reason: "velocity edges above 127 open bins no velocity reaches",
                });
            }
        }
        Edges::new(edges)
    }

    /// The original projects' fixed edges (FACTS.md section 2) for 3 or 5 bins.
    pub fn fixed(feature: Feature, bins: usize) -> Result<Edges, QuantizeError> {
        let table: &[f64] = match (feature, bins) {
            (Feature::Dstart, 3) => &[0.0, 0.048177, 0.5],
            (Feature::Dstart, 5) => &[0.0, 0.007812, 0.048177, 0.123697, 0.5],
            (Feature::Duration, 3) => &[0.0, 0.145833, 0.45],
            (Feature::Duration, 5) => &[0.0, 0.076822, 0.190104, 0.365885, 0.70625],
            (Feature::Velocity, 3) => &[0.0, 57.0, 74.0],
            (Feature::Velocity, 5) => &[0.0, 48.0, 60.0, 71.0, 82.0],
            _ => return Err(QuantizeError::NoFixedTable { feature, bins }),
        };
        Ok(Edges(table.to_vec()))
    }

    /// Edges from the quantiles of `values` (the feature over the training
    /// notes), as the originals made them: with `q` the quantiles at
    /// `linspace(0, 1, bins + 1)` (numpy's default linear interpolation),
    /// the edges are `q[..bins]` with the first set to 0, and for dstart the
    /// last set to `max(3 * q[bins - 1], 0.5)`. For velocity the upper end
    /// `q[bins]` (forced to 128 by the originals) closes the last bin and is
    /// not stored. One bin is just `[0]`.
    pub fn quantiles(feature: Feature, bins: usize, values: &[f64]) -> Result<Edges, QuantizeError> {
        if bins == 0 || bins > MAX_BINS {
            return Err(QuantizeError::InvalidEdges {
                edges: Vec::new(),
                reason: "the bin count must be 1..=255",
            });
        }
        let mut sorted = values.to_vec();
        sorted.sort_unstable_by(f64::total_cmp);
        if sorted.is_empty() {
            return Err(QuantizeError::NoNotes { feature });
        }
        let step = 1.0 / bins as f64;
        let mut edges: Vec<f64> = (0..bins).map(|i| quantile_sorted(&sorted, i as f64 * step)).collect();
        edges[0] = 0.0;
        if feature == Feature::Dstart && bins > 1 {
            let last = edges.len() - 1;
            edges[last] = (3.0 * edges[last]).max(0.5);
        }
        Edges::new(edges.clone()).map_err(|_| QuantizeError::DegenerateQuantiles { feature, bins, edges })
    }

    /// Number of bins.
    pub fn bins(&self) -> usize {
        self.0.len()
    }

    /// The lower edge of each bin.
    pub fn as_slice(&self) -> &[f64] {
        &self.0
    }

    /// The bin of `x`: numpy's `digitize(x, edges) - 1`, clamped to 0 below
    /// the first edge.
    pub fn bin(&self, x: f64) -> u8 {
        let above = self.0.partition_point(|&edge| edge <= x);
        // `above <= MAX_BINS`, so the cast cannot truncate.
        above.saturating_sub(1) as u8
    }
}

/// numpy's `quantile(values, q)` (method `linear`) of sorted, non-empty
/// `sorted`, for `q` in `[0, 1]`.
fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    let last = sorted.len().saturating_sub(1);
    let virtual_index = (last as f64 * q).clamp(0.0, last as f64);
    let below = virtual_index.floor();
    let lo = below as usize;
    let hi = (lo + 1).min(last);
    let t = virtual_index - below;
    let (a, b) = (sorted.get(lo), sorted.get(hi));
    let (Some(&a), Some(&b)) = (a, b) else {
        return f64::NAN;
    };
    // numpy's `_lerp`, which interpolates from the nearer end.
    let diff = b - a;
    if t >= 0.5 { b - diff * (1.0 - t) } else { a + diff * t }
}

/// A note reduced to what the encoders need.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct QuantizedNote {
    /// MIDI pitch (21..=108 from the readers).
    pub pitch: u8,
    /// Bin of the time to the next note's start.
    pub dstart_bin: u8,
    /// Bin of the note's duration.
    pub duration_bin: u8,
    /// Coarse velocity bin (part of the source token).
    pub velocity_bin: u8,
    /// The exact velocity (the prediction target).
    pub velocity: u8,
}

/// The bin counts of the three features, in token order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Bins {
    /// Number of dstart bins.
    pub dstart: usize,
    /// Number of duration bins.
    pub duration: usize,
    /// Number of velocity bins.
    pub velocity: usize,
}

/// The bin edges of all three features.
#[derive(Debug, Clone, PartialEq)]
pub struct Quantizer {
    /// dstart edges, in seconds.
    pub dstart: Edges,
    /// Duration edges, in seconds.
    pub duration: Edges,
    /// Velocity edges, in MIDI units.
    pub velocity: Edges,
}

impl Quantizer {
    /// The original fixed edges for these bin counts (each 3 or 5).
    pub fn fixed(bins: Bins) -> Result<Quantizer, QuantizeError> {
        Ok(Quantizer {
            dstart: Edges::fixed(Feature::Dstart, bins.dstart)?,
            duration: Edges::fixed(Feature::Duration, bins.duration)?,
            velocity: Edges::fixed(Feature::Velocity, bins.velocity)?,
        })
    }

    /// Quantile edges over all notes of `pieces` (pass the training split only).
    pub fn from_quantiles(pieces: &[Piece], bins: Bins) -> Result<Quantizer, QuantizeError> {
        let notes = pieces.iter().map(|p| p.notes.len()).sum();
        let mut dstarts = Vec::with_capacity(notes);
        let mut durations = Vec::with_capacity(notes);
        let mut velocities = Vec::with_capacity(notes);
        for piece in pieces {
            dstarts.extend(dstarts_of(piece));
            durations.extend(piece.notes.iter().map(|n| n.duration()));
            velocities.extend(piece.notes.iter().map(|n| f64::from(n.velocity)));
        }
        Ok(Quantizer {
            dstart: Edges::quantiles(Feature::Dstart, bins.dstart, &dstarts)?,
            duration: Edges::quantiles(Feature::Duration, bins.duration, &durations)?,
            velocity: Edges::quantiles(Feature::Velocity, bins.velocity, &velocities)?,
        })
    }

    /// The bin counts.
    pub fn bins(&self) -> Bins {
        Bins {
            dstart: self.dstart.bins(),
            duration: self.duration.bins(),
            velocity: self.velocity.bins(),
        }
    }

    /// Quantizes every note of `piece`, in order.
    pub fn quantize(&self, piece: &Piece) -> Vec<QuantizedNote> {
        piece
            .notes
            .iter()
            .zip(dstarts_of(piece))
            .map(|(note, dstart)| QuantizedNote {
                pitch: note.pitch,
                dstart_bin: self.dstart.bin(dstart),
                duration_bin: self.duration.bin(note.duration()),
                velocity_bin: self.velocity.bin(f64::from(note.velocity)),
                velocity: note.velocity,
            })
            .collect()
    }
}

/// Each note's `dstart`: the next note's start minus its own; 0 for the last.
pub fn dstarts_of(piece: &Piece) -> impl Iterator<Item = f64> + '_ {
    let notes = &piece.notes;
    notes
        .iter()
        .enumerate()
        .map(|(i, note)| notes.get(i + 1).map_or(0.0, |next| next.start - note.start))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notes::Note;

    fn piece(spans: &[(f64, f64, u8)]) -> Piece {
        let notes = spans
            .iter()
            .map(|&(start, end, velocity)| Note {
                pitch: 60,
                start,
                end,
                velocity,
            })
            .collect();
        Piece::new("p", notes)
    }

    #[test]
    fn digitize_puts_edge_values_in_the_bin_they_open() {
        let edges = Edges::fixed(Feature::Dstart, 3).unwrap();
        assert_eq!(edges.bin(0.0), 0);
        assert_eq!(edges.bin(0.048176), 0);
        assert_eq!(edges.bin(0.048177), 1);
        assert_eq!(edges.bin(0.499_999), 1);
        assert_eq!(edges.bin(0.5), 2);
        assert_eq!(edges.bin(1e9), 2, "the last bin is open-ended");
        let velocity = Edges::fixed(Feature::Velocity, 3).unwrap();
        let bins: Vec<u8> = [0, 56, 57, 73, 74, 127]
            .iter()
            .map(|&v| velocity.bin(f64::from(v)))
            .collect();
        assert_eq!(bins, vec![0, 0, 1, 1, 2, 2]);
    }

    #[test]
    fn values_below_the_first_edge_clamp_to_bin_zero() {
        let edges = Edges::fixed(Feature::Duration, 5).unwrap();
        assert_eq!(edges.bin(-0.1), 0);
        assert_eq!(edges.bin(f64::NAN), 0);
    }

    #[test]
    fn fixed_tables_exist_for_three_and_five_bins_only() {
        for feature in [Feature::Dstart, Feature::Duration, Feature::Velocity] {
            assert_eq!(Edges::fixed(feature, 3).unwrap().bins(), 3);
            assert_eq!(Edges::fixed(feature, 5).unwrap().bins(), 5);
            assert_eq!(
                Edges::fixed(feature, 4),
                Err(QuantizeError::NoFixedTable { feature, bins: 4 })
            );
        }
        assert_eq!(
            Edges::fixed(Feature::Duration, 5).unwrap().as_slice(),
            &[0.0, 0.076822, 0.190104, 0.365885, 0.70625]
        );
    }

    #[test]
    fn explicit_edges_are_validated() {
        assert!(Edges::new(vec![0.0, 0.1, 0.3]).is_ok());
        for bad in [
            vec![],
            vec![0.1, 0.2],
            vec![0.0, 0.2, 0.2],
            vec![0.0, 0.3, 0.2],
            vec![0.0, f64::INFINITY],
            vec![0.0; 300],
        ] {
            assert!(
                matches!(Edges::new(bad.clone()), Err(QuantizeError::InvalidEdges { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn explicit_velocity_edges_may_close_at_128() {
        let closed = Edges::explicit(Feature::Velocity, vec![0.0, 57.0, 74.0, 128.0]).unwrap();
        assert_eq!(closed, Edges::fixed(Feature::Velocity, 3).unwrap());
        assert!(Edges::explicit(Feature::Velocity, vec![0.0, 57.0, 130.0]).is_err());
        assert!(Edges::explicit(Feature::Velocity, vec![128.0]).is_err());
        // Seconds have no closing edge: 128 s is an ordinary last edge.
        let duration = Edges::explicit(Feature::Duration, vec![0.0, 1.0, 128.0]).unwrap();
        assert_eq!(duration.bins(), 3);
    }

    #[test]
    fn quantiles_interpolate_linearly_like_numpy() {
        let values = [1.0, 2.0, 3.0, 4.0];
        // np.quantile([1,2,3,4], [0, 1/3, 2/3, 1]) = [1, 2, 3, 4]
        assert_eq!(quantile_sorted(&values, 1.0 / 3.0), 2.0);
        assert_eq!(quantile_sorted(&values, 1.0), 4.0);
        // np.quantile([1,2,3,4], 0.5) = 2.5; np.quantile([1,2,3,4], 0.2) = 1.6
        assert_eq!(quantile_sorted(&values, 0.5), 2.5);
        assert!((quantile_sorted(&values, 0.2) - 1.6).abs() < 1e-12);
        assert_eq!(quantile_sorted(&[7.0], 0.7), 7.0);
    }

    #[test]
    fn quantile_edges_follow_the_original_recipes() {
        let values: Vec<f64> = (0..=100).map(f64::from).collect();
        // Quantiles of 0..=100 at linspace(0, 1, 5) are 0, 25, 50, 75, 100.
        let velocity = Edges::quantiles(Feature::Velocity, 4, &values).unwrap();
        assert_eq!(velocity.as_slice(), &[0.0, 25.0, 50.0, 75.0]);
        let duration = Edges::quantiles(Feature::Duration, 4, &values).unwrap();
        assert_eq!(duration.as_slice(), &[0.0, 25.0, 50.0, 75.0]);
        let dstart = Edges::quantiles(Feature::Dstart, 4, &values).unwrap();
        assert_eq!(dstart.as_slice(), &[0.0, 25.0, 50.0, 225.0]);
        // Small dstarts: the hand-made last edge is at least 0.5.
        let small: Vec<f64> = (0..=100).map(|i| f64::from(i) / 1000.0).collect();
        let dstart = Edges::quantiles(Feature::Dstart, 2, &small).unwrap();
        assert_eq!(dstart.as_slice(), &[0.0, 0.5]);
        // The first edge is forced to 0 even when the data start higher.
        let shifted: Vec<f64> = values.iter().map(|v| v + 10.0).collect();
        let velocity = Edges::quantiles(Feature::Velocity, 2, &shifted).unwrap();
        assert_eq!(velocity.as_slice(), &[0.0, 60.0]);
    }

    #[test]
    fn quantile_edges_reject_degenerate_data() {
        assert_eq!(
            Edges::quantiles(Feature::Duration, 3, &[]),
            Err(QuantizeError::NoNotes {
                feature: Feature::Duration
            })
        );
        assert!(matches!(
            Edges::quantiles(Feature::Duration, 3, &[0.0; 10]),
            Err(QuantizeError::DegenerateQuantiles { .. })
        ));
        assert_eq!(
            Edges::quantiles(Feature::Velocity, 1, &[5.0]).unwrap().as_slice(),
            &[0.0]
        );
    }

    #[test]
    fn dstart_is_the_gap_to_the_next_start_and_zero_for_the_last_note() {
        let p = piece(&[(0.0, 1.0, 10), (0.25, 0.5, 10), (1.0, 2.0, 10)]);
        assert_eq!(dstarts_of(&p).collect::<Vec<_>>(), vec![0.25, 0.75, 0.0]);
    }

    #[test]
    fn quantize_bins_each_feature() {
        let q = Quantizer::fixed(Bins {
            dstart: 3,
            duration: 3,
            velocity: 3,
        })
        .unwrap();
        let p = piece(&[(0.0, 0.2, 56), (0.048177, 0.6, 57), (1.0, 1.1, 127)]);
        let got: Vec<(u8, u8, u8, u8)> = q
            .quantize(&p)
            .iter()
            .map(|n| (n.dstart_bin, n.duration_bin, n.velocity_bin, n.velocity))
            .collect();
        assert_eq!(got, vec![(1, 1, 0, 56), (2, 2, 1, 57), (0, 0, 2, 127)]);
        assert_eq!(
            q.bins(),
            Bins {
                dstart: 3,
                duration: 3,
                velocity: 3
            }
        );
    }

    #[test]
    fn quantizer_from_quantiles_uses_every_note_of_every_piece() {
        let a = piece(&[(0.0, 1.0, 10), (1.0, 3.0, 20)]);
        let b = piece(&[(0.0, 3.0, 30), (0.5, 4.5, 40)]);
        let bins = Bins {
            dstart: 2,
            duration: 2,
            velocity: 2,
        };
        let q = Quantizer::from_quantiles(&[a, b], bins).unwrap();
        // durations 1, 2, 3, 4 -> median 2.5; velocities 10..40 -> median 25;
        // dstarts 1, 0, 0.5, 0 -> median 0.25 -> last edge max(0.75, 0.5).
        assert_eq!(q.duration.as_slice(), &[0.0, 2.5]);
        assert_eq!(q.velocity.as_slice(), &[0.0, 25.0]);
        assert_eq!(q.dstart.as_slice(), &[0.0, 0.75]);
    }
}
