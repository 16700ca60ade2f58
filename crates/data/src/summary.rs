//! What a built dataset holds, in numbers: quantized notes in, a
//! [`DatasetSummary`] out.
//!
//! A [`Tally`] counts the quantized notes of a piece (notes per bin of each
//! feature, velocity moments); tallies of the pieces of a split merge into
//! its [`SplitSummary`]. The summary is small plain data (serialised as JSON
//! in the dataset cache) and is what `runner data inspect` prints.

use serde::{Deserialize, Serialize};

use super::duplicates::Duplicate;
use super::quantize::{Bins, QuantizedNote};
use super::source::Skipped;
use super::split::Split;
use runner_plan::config::{Scheme, Window};
use runner_plan::show::count;

/// Everything `runner data inspect` shows about a dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetSummary {
    /// Where the pieces came from, e.g. `10 MIDI files in data/bundled`.
    pub source: String,
    /// Train, validation and test, in that order.
    pub splits: Vec<SplitSummary>,
    /// The bin edges in use.
    pub edges: EdgeLists,
    /// Window length and step.
    pub window: Window,
    /// The token scheme.
    pub scheme: Scheme,
    /// Files and rows left out, with the reasons.
    pub skipped: Vec<Skipped>,
    /// Notes dropped because their pitch lies outside the piano range.
    pub dropped_notes: usize,
    /// Pieces that repeat another (left out unless `kept_duplicates`).
    #[serde(default)]
    pub duplicates: Vec<Duplicate>,
    /// Whether the duplicates were kept (`duplicates keep`).
    #[serde(default)]
    pub kept_duplicates: bool,
    /// With `split k-fold`: the number of folds (this is one of them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub folds: Option<usize>,
    /// How each metadata table (`split table`, `group column`) met the source.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tables: Vec<TableJoin>,
}

/// How a metadata table met the source's pieces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableJoin {
    /// The table's path as the experiment writes it.
    pub table: String,
    /// Pieces the table has no row for (left out, listed with the skipped).
    pub files_not_in_table: usize,
    /// Rows that name no piece of the source.
    pub rows_without_file: usize,
    /// The first of those rows' file values.
    pub first_row_without_file: Option<String>,
}

/// A piece with fewer distinct velocities than this is warned about: a
/// score's few dynamics marks, not a performance's touch (a real
/// performance has dozens).
pub const FEW_VELOCITIES: usize = 8;

/// A validation or test split with fewer pieces than this, or fewer notes
/// than [`SMALL_SPLIT_NOTES`], is warned about: its metrics rest on too little.
pub const SMALL_SPLIT_PIECES: usize = 5;

/// See [`SMALL_SPLIT_PIECES`].
pub const SMALL_SPLIT_NOTES: usize = 10_000;

impl DatasetSummary {
    /// The summary of `split`.
    pub fn split(&self, split: Split) -> Option<&SplitSummary> {
        self.splits.iter().find(|s| s.split == split)
    }

    /// What a researcher should know before trusting results on this data,
    /// one line each: [`DatasetSummary::content_warnings`], then the small
    /// splits.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = self.content_warnings();
        for split in self.small_splits() {
            let advice = match self.folds {
                Some(k) => format!("read it with the other {} folds", k - 1),
                None => "`split k-fold` evaluates on every piece in turn".to_owned(),
            };
            warnings.push(format!(
                "the {} split holds {} ({} notes): its metrics rest on little data; {advice}",
                split.split,
                count(split.pieces.len(), "piece"),
                split.notes
            ));
        }
        warnings
    }

    /// The validation and test splits under [`SMALL_SPLIT_PIECES`] pieces
    /// or [`SMALL_SPLIT_NOTES`] notes.
    pub fn small_splits(&self) -> Vec<&SplitSummary> {
        self.splits
            .iter()
            .filter(|s| s.split != Split::Train && (s.pieces.len() < SMALL_SPLIT_PIECES || s.notes < SMALL_SPLIT_NOTES))
            .collect()
    }

    /// The warnings about the data itself, one line each: files and rows a
    /// metadata table did not match, duplicates left out, pieces with few
    /// velocities or no window, what the reader let pass, dropped notes.
    pub fn content_warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        for join in &self.tables {
            if join.files_not_in_table > 0 {
                warnings.push(format!(
                    "{} of the source not in {} left out (listed with the skipped files)",
                    count(join.files_not_in_table, "piece"),
                    join.table
                ));
            }
            if let Some(first) = &join.first_row_without_file {
                warnings.push(format!(
                    "{} of {} {} no file of the source (first: {first})",
                    count(join.rows_without_file, "row"),
                    join.table,
                    if join.rows_without_file == 1 { "names" } else { "name" }
                ));
            }
        }
        if !self.duplicates.is_empty() {
            let first = &self.duplicates[0];
            warnings.push(format!(
                "{} {} (first: {} repeats {})",
                count(self.duplicates.len(), "duplicate piece"),
                if self.kept_duplicates {
                    "kept, as `duplicates keep` asks"
                } else {
                    "left out"
                },
                first.name,
                first.of
            ));
        }
        for split in &self.splits {
            for piece in &split.pieces {
                for warning in self.piece_warnings(piece) {
                    warnings.push(format!("{}: {warning}", piece.name));
                }
            }
        }
        if self.dropped_notes > 0 {
            warnings.push(format!(
                "{} outside the piano range (A0 to C8) dropped",
                count(self.dropped_notes, "note")
            ));
        }
        warnings
    }

    /// What is odd about one of its pieces: one velocity or few, no
    /// window, what the reader let pass.
    pub fn piece_warnings(&self, piece: &PieceSummary) -> Vec<String> {
        let mut warnings = Vec::new();
        if piece.velocities == 1 {
            warnings.push("every note has the same velocity (`min-velocities 2` leaves such pieces out)".to_owned());
        } else if piece.velocities > 1 && piece.velocities < FEW_VELOCITIES {
            warnings.push(format!("only {} distinct velocities", piece.velocities));
        }
        if piece.windows == 0 {
            warnings.push(format!(
                "{} notes, fewer than one window of {}: it gives no windows",
                piece.notes, self.window.length
            ));
        }
        warnings.extend(piece.warnings.iter().cloned());
        warnings
    }
}

/// The lower bin edges of the three features.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EdgeLists {
    /// dstart edges, in seconds.
    pub dstart: Vec<f64>,
    /// Duration edges, in seconds.
    pub duration: Vec<f64>,
    /// Velocity edges.
    pub velocity: Vec<f64>,
}

/// One split in numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SplitSummary {
    /// Which split.
    pub split: Split,
    /// Its pieces, in the order their windows are stored.
    pub pieces: Vec<PieceSummary>,
    /// Notes in all its pieces.
    pub notes: usize,
    /// Windows in all its pieces.
    pub windows: usize,
    /// Notes per bin of each feature.
    pub bins: BinCounts,
    /// Velocity statistics (`None` without notes).
    pub velocity: Option<VelocityStats>,
}

impl SplitSummary {
    /// The summary of `split` from its pieces and the merged tally of their notes.
    pub fn new(split: Split, pieces: Vec<PieceSummary>, tally: &Tally) -> SplitSummary {
        SplitSummary {
            split,
            notes: pieces.iter().map(|p| p.notes).sum(),
            windows: pieces.iter().map(|p| p.windows).sum(),
            pieces,
            bins: tally.bins.clone(),
            velocity: tally.velocity(),
        }
    }

    /// How many groups its pieces form (a summary from before groups
    /// were recorded counts each piece as its own).
    pub fn groups(&self) -> usize {
        let mut groups: Vec<&str> = self
            .pieces
            .iter()
            .map(|p| {
                if p.group.is_empty() {
                    p.name.as_str()
                } else {
                    p.group.as_str()
                }
            })
            .collect();
        groups.sort_unstable();
        groups.dedup();
        groups.len()
    }
}

/// One piece in numbers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PieceSummary {
    /// The piece's name.
    pub name: String,
    /// Its notes.
    pub notes: usize,
    /// Its windows.
    pub windows: usize,
    /// The group it shares a split with.
    #[serde(default)]
    pub group: String,
    /// How many different velocities its notes have.
    #[serde(default)]
    pub velocities: usize,
    /// What the reader let pass in its file.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// Notes per bin, for each feature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BinCounts {
    /// Per dstart bin.
    pub dstart: Vec<u64>,
    /// Per duration bin.
    pub duration: Vec<u64>,
    /// Per velocity bin.
    pub velocity: Vec<u64>,
}

/// Minimum, maximum, mean and (population) standard deviation of velocities.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct VelocityStats {
    /// Smallest velocity.
    pub min: u8,
    /// Largest velocity.
    pub max: u8,
    /// Mean velocity.
    pub mean: f64,
    /// Standard deviation (numpy's default, dividing by n).
    pub std: f64,
}

/// Running counts over quantized notes.
#[derive(Debug, Clone, PartialEq)]
pub struct Tally {
    bins: BinCounts,
    notes: u64,
    sum: u64,
    sum_of_squares: u64,
    min: u8,
    max: u8,
}

impl Tally {
    /// No notes yet, for these bin counts.
    pub fn new(bins: Bins) -> Tally {
        Tally {
            bins: BinCounts {
                dstart: vec![0; bins.dstart],
                duration: vec![0; bins.duration],
                velocity: vec![0; bins.velocity],
            },
            notes: 0,
            sum: 0,
            sum_of_squares: 0,
            min: u8::MAX,
            max: 0,
        }
    }

    /// Counts `notes` (their bins must be below the bin counts).
    pub fn add(&mut self, notes: &[QuantizedNote]) {
        for note in notes {
            let bump = |counts: &mut Vec<u64>, bin: u8| {
                if let Some(count) = counts.get_mut(usize::from(bin)) {
                    *count += 1;
                }
            };
            bump(&mut self.bins.dstart, note.dstart_bin);
            bump(&mut self.bins.duration, note.duration_bin);
            bump(&mut self.bins.velocity, note.velocity_bin);
            let v = u64::from(note.velocity);
            self.sum += v;
            self.sum_of_squares += v * v;
            self.min = self.min.min(note.velocity);
            self.max = self.max.max(note.velocity);
        }
        self.notes += notes.len() as u64;
    }

    /// Adds the counts of `other` (made for the same bin counts).
    pub fn merge(&mut self, other: &Tally) {
        let add = |into: &mut Vec<u64>, from: &[u64]| into.iter_mut().zip(from).for_each(|(a, b)| *a += b);
        add(&mut self.bins.dstart, &other.bins.dstart);
        add(&mut self.bins.duration, &other.bins.duration);
        add(&mut self.bins.velocity, &other.bins.velocity);
        self.notes += other.notes;
        self.sum += other.sum;
        self.sum_of_squares += other.sum_of_squares;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    /// The velocity statistics, or `None` without notes.
    pub fn velocity(&self) -> Option<VelocityStats> {
        if self.notes == 0 {
            return None;
        }
        let n = self.notes as f64;
        let mean = self.sum as f64 / n;
        let variance = (self.sum_of_squares as f64 / n - mean * mean).max(0.0);
        Some(VelocityStats {
            min: self.min,
            max: self.max,
            mean,
            std: variance.sqrt(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(velocity: u8, bins: (u8, u8, u8)) -> QuantizedNote {
        QuantizedNote {
            pitch: 60,
            dstart_bin: bins.0,
            duration_bin: bins.1,
            velocity_bin: bins.2,
            velocity,
        }
    }

    #[test]
    fn tallies_count_bins_and_velocity_moments() {
        let bins = Bins {
            dstart: 2,
            duration: 2,
            velocity: 3,
        };
        let mut a = Tally::new(bins);
        a.add(&[note(10, (0, 1, 0)), note(20, (1, 1, 2))]);
        let mut b = Tally::new(bins);
        b.add(&[note(30, (1, 0, 2))]);
        a.merge(&b);
        assert_eq!(a.bins.dstart, vec![1, 2]);
        assert_eq!(a.bins.duration, vec![1, 2]);
        assert_eq!(a.bins.velocity, vec![1, 0, 2]);
        let stats = a.velocity().unwrap();
        assert_eq!((stats.min, stats.max, stats.mean), (10, 30, 20.0));
        assert!((stats.std - (200.0f64 / 3.0).sqrt()).abs() < 1e-12);
        assert_eq!(Tally::new(bins).velocity(), None);
    }
}
