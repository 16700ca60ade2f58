//! Splits: piece names in, one [`Split`] per piece out.
//!
//! In: the names of the pieces (e.g. MIDI file names) and a [`SplitRule`]:
//! fractions with a seed, or explicit name lists. Out: [`Splits`], which
//! assigns every piece to exactly one of train / validation / test. Splits
//! are made by piece, never by window: overlapping windows of one piece
//! in two splits would leak training notes into evaluation (FACTS.md
//! section 6, pitfall 4), so the result is checked to hold each piece once.
//!
//! With fractions the pieces are ordered by name, shuffled with a seeded
//! SplitMix64 Fisher–Yates shuffle, and cut into
//! `round(train * N)`, `round(validation * N)` and the rest: the same names and
//! seed give the same split on every machine, whatever order the files were
//! listed in.

use std::collections::{HashMap, HashSet};
use std::fmt;

/// One of the three splits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// Training pieces (the only ones quantile edges may be computed from).
    Train,
    /// Validation pieces.
    Validation,
    /// Test pieces.
    Test,
}

impl Split {
    /// The three splits in order.
    pub const ALL: [Split; 3] = [Split::Train, Split::Validation, Split::Test];
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Split::Train => "train",
            Split::Validation => "validation",
            Split::Test => "test",
        })
    }
}

/// How to split pieces.
#[derive(Debug, Clone, PartialEq)]
pub enum SplitRule {
    /// Random by piece: shares of the pieces (each `>= 0`, summing to 1).
    Fractions {
        /// Share of training pieces.
        train: f64,
        /// Share of validation pieces.
        validation: f64,
        /// Share of test pieces.
        test: f64,
        /// Seed of the shuffle.
        seed: u64,
    },
    /// Named pieces: every piece must be in exactly one list.
    Lists {
        /// Names of the training pieces.
        train: Vec<String>,
        /// Names of the validation pieces.
        validation: Vec<String>,
        /// Names of the test pieces.
        test: Vec<String>,
    },
}

/// Why pieces could not be split; [`SplitError::Problems`] collects every
/// problem found, not just the first.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SplitError {
    /// Fractions that are negative, not finite or do not sum to 1.
    #[error("split fractions {train}/{validation}/{test} must be >= 0 and sum to 1")]
    BadFractions {
        /// Share of training pieces.
        train: f64,
        /// Share of validation pieces.
        validation: f64,
        /// Share of test pieces.
        test: f64,
    },
    /// Problems with the piece names or the lists.
    #[error("cannot split the pieces:\n  {}", .0.join("\n  "))]
    Problems(Vec<String>),
}

/// Every piece's split, in the order the pieces were given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Splits(Vec<Split>);

impl Splits {
    /// The split of each piece, aligned with the names given to [`split`].
    pub fn as_slice(&self) -> &[Split] {
        &self.0
    }

    /// The indices of the pieces in `split`, ascending.
    pub fn indices(&self, split: Split) -> Vec<usize> {
        (0..self.0.len()).filter(|&i| self.0[i] == split).collect()
    }

    /// How many pieces are in `split`.
    pub fn count(&self, split: Split) -> usize {
        self.0.iter().filter(|&&s| s == split).count()
    }
}

/// Assigns each of the pieces named `names` to one split by `rule`.
///
/// Names must be unique (two pieces with one name could be one piece in two
/// splits).
pub fn split(names: &[String], rule: &SplitRule) -> Result<Splits, SplitError> {
    let mut problems = Vec::new();
    let mut seen = HashSet::new();
    for name in names {
        if !seen.insert(name.as_str()) {
            problems.push(format!("two pieces are named {name:?}"));
        }
    }
    let splits = match rule {
        &SplitRule::Fractions {
            train,
            validation,
            test,
            seed,
        } => {
            let shares = [train, validation, test];
            let valid =
                shares.iter().all(|s| s.is_finite() && *s >= 0.0) && (shares.iter().sum::<f64>() - 1.0).abs() < 1e-9;
            if !valid {
                return Err(SplitError::BadFractions {
                    train,
                    validation,
                    test,
                });
            }
            by_fractions(names, train, validation, seed)
        }
        SplitRule::Lists {
            train,
            validation,
            test,
        } => by_lists(names, [train, validation, test], &mut problems),
    };
    if !problems.is_empty() {
        return Err(SplitError::Problems(problems));
    }
    let splits = Splits(splits);
    assert_disjoint(names, &splits);
    Ok(splits)
}

/// The seeded shuffle-and-cut of the module docs.
fn by_fractions(names: &[String], train: f64, validation: f64, seed: u64) -> Vec<Split> {
    let n = names.len();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| names[a].cmp(&names[b]));
    let mut rng = SplitMix64(seed);
    for i in (1..n).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        order.swap(i, j);
    }
    let n_train = ((train * n as f64).round() as usize).min(n);
    let n_validation = ((validation * n as f64).round() as usize).min(n - n_train);
    let mut splits = vec![Split::Test; n];
    for (rank, &piece) in order.iter().enumerate() {
        if rank < n_train {
            splits[piece] = Split::Train;
        } else if rank < n_train + n_validation {
            splits[piece] = Split::Validation;
        }
    }
    splits
}

/// Looks every piece up in the three lists, noting unlisted, doubly listed
/// and unknown names.
fn by_lists(names: &[String], lists: [&Vec<String>; 3], problems: &mut Vec<String>) -> Vec<Split> {
    let mut listed: HashMap<&str, Split> = HashMap::new();
    for (split, list) in Split::ALL.into_iter().zip(lists) {
        for name in list {
            match listed.insert(name.as_str(), split) {
                Some(other) if other != split => {
                    problems.push(format!("{name:?} is listed in both {other} and {split}"));
                }
                Some(_) => problems.push(format!("{name:?} is listed twice in {split}")),
                None => {}
            }
        }
    }
    let known: HashSet<&str> = names.iter().map(String::as_str).collect();
    for (split, list) in Split::ALL.into_iter().zip(lists) {
        for name in list.iter().filter(|n| !known.contains(n.as_str())) {
            problems.push(format!("{name:?} is listed in {split} but there is no such piece"));
        }
    }
    names
        .iter()
        .map(|name| {
            listed.get(name.as_str()).copied().unwrap_or_else(|| {
                problems.push(format!("{name:?} is in no split list"));
                Split::Test
            })
        })
        .collect()
}

/// Panics if any piece name falls in two splits: the invariant every
/// evaluation rests on.
fn assert_disjoint(names: &[String], splits: &Splits) {
    let mut owner: HashMap<&str, Split> = HashMap::new();
    for (name, &split) in names.iter().zip(splits.as_slice()) {
        if let Some(other) = owner.insert(name.as_str(), split) {
            assert_eq!(other, split, "piece {name:?} is in both {other} and {split}");
        }
    }
    assert_eq!(names.len(), splits.as_slice().len(), "every piece has one split");
}

/// SplitMix64 (Steele, Lea and Flood 2014): a tiny, well-mixed seeded generator.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform integer in `0..bound` (`bound >= 1`), by rejection.
    fn below(&mut self, bound: u64) -> u64 {
        let zone = u64::MAX - u64::MAX % bound;
        loop {
            let x = self.next();
            if x < zone {
                return x % bound;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("piece_{i:03}.mid")).collect()
    }

    fn fractions(train: f64, validation: f64, test: f64, seed: u64) -> SplitRule {
        SplitRule::Fractions {
            train,
            validation,
            test,
            seed,
        }
    }

    #[test]
    fn splitmix64_matches_the_reference_sequence() {
        // First outputs of the reference implementation seeded with 1234567.
        let mut rng = SplitMix64(1_234_567);
        assert_eq!(rng.next(), 6_457_827_717_110_365_317);
        assert_eq!(rng.next(), 3_203_168_211_198_807_973);
    }

    #[test]
    fn fractions_give_rounded_counts_and_the_rest_to_test() {
        let s = split(&names(100), &fractions(0.8, 0.1, 0.1, 7)).unwrap();
        assert_eq!(
            (s.count(Split::Train), s.count(Split::Validation), s.count(Split::Test)),
            (80, 10, 10)
        );
        let s = split(&names(7), &fractions(0.5, 0.25, 0.25, 7)).unwrap();
        assert_eq!(
            s.count(Split::Train) + s.count(Split::Validation) + s.count(Split::Test),
            7
        );
        assert_eq!(s.count(Split::Train), 4); // round(3.5) = 4
    }

    #[test]
    fn fractions_depend_on_the_seed_and_not_on_the_input_order() {
        let forward = names(50);
        let backward: Vec<String> = forward.iter().rev().cloned().collect();
        let rule = fractions(0.6, 0.2, 0.2, 42);
        let a = split(&forward, &rule).unwrap();
        let b = split(&backward, &rule).unwrap();
        for (i, name) in forward.iter().enumerate() {
            let j = backward.iter().position(|n| n == name).unwrap();
            assert_eq!(a.as_slice()[i], b.as_slice()[j], "{name}");
        }
        let c = split(&forward, &fractions(0.6, 0.2, 0.2, 43)).unwrap();
        assert_ne!(a, c);
    }

    #[test]
    fn bad_fractions_are_rejected() {
        for (t, v, s) in [(0.5, 0.5, 0.5), (1.2, -0.1, -0.1), (f64::NAN, 0.0, 1.0)] {
            assert!(matches!(
                split(&names(3), &fractions(t, v, s, 0)),
                Err(SplitError::BadFractions { .. })
            ));
        }
    }

    #[test]
    fn lists_assign_named_pieces() {
        let all = names(3);
        let rule = SplitRule::Lists {
            train: vec![all[2].clone(), all[0].clone()],
            validation: vec![],
            test: vec![all[1].clone()],
        };
        let s = split(&all, &rule).unwrap();
        assert_eq!(s.as_slice(), &[Split::Train, Split::Test, Split::Train]);
        assert_eq!(s.indices(Split::Train), vec![0, 2]);
    }

    #[test]
    fn list_problems_are_all_reported() {
        let all = names(3);
        let rule = SplitRule::Lists {
            train: vec![all[0].clone(), "ghost.mid".into()],
            validation: vec![all[0].clone()],
            test: vec![],
        };
        let Err(SplitError::Problems(problems)) = split(&all, &rule) else {
            panic!("expected problems");
        };
        assert_eq!(problems.len(), 4, "{problems:#?}");
        let text = problems.join("\n");
        assert!(text.contains("listed in both train and validation"));
        assert!(text.contains("\"ghost.mid\" is listed in train but there is no such piece"));
        assert!(text.contains("\"piece_001.mid\" is in no split list"));
        assert!(text.contains("\"piece_002.mid\" is in no split list"));
    }

    #[test]
    fn duplicate_piece_names_are_rejected() {
        let dup = vec!["a.mid".to_string(), "a.mid".to_string()];
        assert!(matches!(
            split(&dup, &fractions(1.0, 0.0, 0.0, 0)),
            Err(SplitError::Problems(_))
        ));
    }

    proptest! {
        #[test]
        fn every_piece_lands_in_exactly_one_split(n in 0usize..200, train in 0.0f64..1.0, share in 0.0f64..1.0, seed: u64) {
            let validation = (1.0 - train) * share;
            let test = 1.0 - train - validation;
            let all = names(n);
            let s = split(&all, &fractions(train, validation, test, seed)).unwrap();
            prop_assert_eq!(s.as_slice().len(), n);
            let mut seen: Vec<usize> = Split::ALL.iter().flat_map(|&sp| s.indices(sp)).collect();
            seen.sort_unstable();
            prop_assert_eq!(seen, (0..n).collect::<Vec<_>>());
        }
    }
}
