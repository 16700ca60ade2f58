//! Splits: pieces (names and groups) in, one [`Split`] per piece out.
//!
//! In: the names of the pieces (e.g. MIDI file names), the group of each
//! (its own name, its folder, a pattern's match: see the `group` module)
//! and a [`SplitRule`]: fractions with a seed, explicit name lists, one
//! fold of a k-fold cross-validation, or splits given with the pieces.
//! Out: [`Splits`], which assigns every piece to exactly one of train /
//! validation / test. Splits are made by group, never by window or by
//! file alone: overlapping windows of one piece in two splits would leak
//! training notes into evaluation (FACTS.md section 6, pitfall 4), and so
//! would two performances of one composition. The result is checked to
//! hold each piece once and each group in one split.
//!
//! With fractions the distinct groups are ordered by name, shuffled with a
//! seeded SplitMix64 Fisher–Yates shuffle, and cut into
//! `round(train * G)`, `round(validation * G)` and the rest, where `G` is
//! the number of groups: the same groups and seed give the same split on
//! every machine, whatever order the files were listed in. When every
//! piece is its own group this is the split by piece.
//!
//! With k folds the same shuffle deals the groups round-robin into `k`
//! folds (sizes differ by at most one group); fold `f` tests on fold `f`,
//! validates on fold `f + 1 (mod k)` and trains on the other `k - 2`, so
//! over the `k` runs every group is tested once and validated once.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use runner_plan::show::count;

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

    /// A split as metadata writes it: any case, `valid` and `val` for validation.
    pub fn parse(text: &str) -> Option<Split> {
        match text.trim().to_ascii_lowercase().as_str() {
            "train" => Some(Split::Train),
            "validation" | "valid" | "val" => Some(Split::Validation),
            "test" => Some(Split::Test),
            _ => None,
        }
    }
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
    /// Random by group: shares of the groups (each `>= 0`, summing to 1).
    Fractions {
        /// Share of training groups.
        train: f64,
        /// Share of validation groups.
        validation: f64,
        /// Share of test groups.
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
    /// Fold `fold` of `k` (see the module docs).
    KFold {
        /// Number of folds (`>= 3`).
        k: usize,
        /// The fold tested on (`< k`).
        fold: usize,
        /// Seed of the shuffle that deals groups into folds.
        seed: u64,
    },
    /// Each piece's split, given with it (a parquet's split column).
    Given(Vec<Split>),
}

/// Why pieces could not be split; [`SplitError::Problems`] collects every
/// problem found, not just the first.
#[derive(Debug, Clone, PartialEq, thiserror::Error, miette::Diagnostic)]
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
    /// More folds than groups, fewer than three folds, or a fold out of range.
    #[error("k-fold with k={k}: {problem}")]
    BadFolds {
        /// The number of folds.
        k: usize,
        /// What is wrong.
        problem: String,
    },
    /// Problems with the piece names, the lists or the groups.
    #[error("cannot split the pieces:\n  {}", .0.join("\n  "))]
    #[diagnostic(help(
        "a split that is given (file lists, the parquet's split column, a metadata table) must name each piece once and keep every group in one split: correct it, or group more finely (e.g. `group file`)"
    ))]
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

/// Assigns each of the pieces named `names`, in the groups `groups`
/// (aligned with `names`), to one split by `rule`.
///
/// Names must be unique (two pieces with one name could be one piece in two
/// splits), and no group may end up in two splits (with lists or given
/// splits, a group split across them is a problem).
pub fn split(names: &[String], groups: &[String], rule: &SplitRule) -> Result<Splits, SplitError> {
    let mut problems = Vec::new();
    if names.len() != groups.len() {
        problems.push(format!("{} pieces but {} groups", names.len(), groups.len()));
        return Err(SplitError::Problems(problems));
    }
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
            by_fractions(groups, train, validation, seed)
        }
        SplitRule::Lists {
            train,
            validation,
            test,
        } => by_lists(names, [train, validation, test], &mut problems),
        &SplitRule::KFold { k, fold, seed } => by_folds(groups, k, fold, seed)?,
        SplitRule::Given(given) => {
            if given.len() != names.len() {
                problems.push(format!("{} pieces but {} given splits", names.len(), given.len()));
                return Err(SplitError::Problems(problems));
            }
            given.clone()
        }
    };
    problems.extend(groups_in_two_splits(groups, &splits));
    if !problems.is_empty() {
        return Err(SplitError::Problems(problems));
    }
    let splits = Splits(splits);
    assert_disjoint(names, groups, &splits);
    Ok(splits)
}

/// The distinct groups, ordered by name and shuffled by `seed`.
fn shuffled_groups(groups: &[String], seed: u64) -> Vec<&str> {
    let mut order: Vec<&str> = groups.iter().map(String::as_str).collect();
    order.sort_unstable();
    order.dedup();
    let mut rng = SplitMix64(seed);
    for i in (1..order.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        order.swap(i, j);
    }
    order
}

/// Each piece's split when each group takes the split `of_group` gives its
/// rank in the shuffled order.
fn by_rank(groups: &[String], seed: u64, of_rank: impl Fn(usize) -> Split) -> Vec<Split> {
    let split_of: HashMap<&str, Split> = shuffled_groups(groups, seed)
        .into_iter()
        .enumerate()
        .map(|(rank, group)| (group, of_rank(rank)))
        .collect();
    groups.iter().map(|g| split_of[g.as_str()]).collect()
}

/// The seeded shuffle-and-cut of the module docs.
fn by_fractions(groups: &[String], train: f64, validation: f64, seed: u64) -> Vec<Split> {
    let n = shuffled_groups(groups, seed).len();
    let n_train = ((train * n as f64).round() as usize).min(n);
    let n_validation = ((validation * n as f64).round() as usize).min(n - n_train);
    by_rank(groups, seed, |rank| {
        if rank < n_train {
            Split::Train
        } else if rank < n_train + n_validation {
            Split::Validation
        } else {
            Split::Test
        }
    })
}

/// The seeded round-robin deal into folds of the module docs.
fn by_folds(groups: &[String], k: usize, fold: usize, seed: u64) -> Result<Vec<Split>, SplitError> {
    let bad = |problem: String| SplitError::BadFolds { k, problem };
    let n = shuffled_groups(groups, seed).len();
    if k < 3 {
        return Err(bad(
            "needs k >= 3 (one fold tests, one validates, the rest train)".to_owned()
        ));
    }
    if k > n {
        return Err(bad(format!(
            "there are only {} to deal into {k} folds",
            count(n, "group")
        )));
    }
    if fold >= k {
        return Err(bad(format!("fold {fold} does not exist (folds are 0 to {})", k - 1)));
    }
    Ok(by_rank(groups, seed, |rank| match rank % k {
        f if f == fold => Split::Test,
        f if f == (fold + 1) % k => Split::Validation,
        _ => Split::Train,
    }))
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

/// A problem for each group whose pieces are in more than one split.
fn groups_in_two_splits(groups: &[String], splits: &[Split]) -> Vec<String> {
    let mut of_group: BTreeMap<&str, Vec<Split>> = BTreeMap::new();
    for (group, &split) in groups.iter().zip(splits) {
        let seen = of_group.entry(group).or_default();
        if !seen.contains(&split) {
            seen.push(split);
        }
    }
    of_group
        .into_iter()
        .filter(|(_, splits)| splits.len() > 1)
        .map(|(group, mut splits)| {
            splits.sort_unstable();
            let names: Vec<String> = splits.iter().map(Split::to_string).collect();
            format!("group {group:?} has pieces in {}", names.join(" and "))
        })
        .collect()
}

/// Panics if any piece name or group falls in two splits: the invariant
/// every evaluation rests on.
fn assert_disjoint(names: &[String], groups: &[String], splits: &Splits) {
    assert_eq!(names.len(), splits.as_slice().len(), "every piece has one split");
    for keys in [names, groups] {
        let mut owner: HashMap<&str, Split> = HashMap::new();
        for (key, &split) in keys.iter().zip(splits.as_slice()) {
            if let Some(other) = owner.insert(key.as_str(), split) {
                assert_eq!(other, split, "{key:?} is in both {other} and {split}");
            }
        }
    }
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
        let s = split(&names(100), &names(100), &fractions(0.8, 0.1, 0.1, 7)).unwrap();
        assert_eq!(
            (s.count(Split::Train), s.count(Split::Validation), s.count(Split::Test)),
            (80, 10, 10)
        );
        let s = split(&names(7), &names(7), &fractions(0.5, 0.25, 0.25, 7)).unwrap();
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
        let a = split(&forward, &forward, &rule).unwrap();
        let b = split(&backward, &backward, &rule).unwrap();
        for (i, name) in forward.iter().enumerate() {
            let j = backward.iter().position(|n| n == name).unwrap();
            assert_eq!(a.as_slice()[i], b.as_slice()[j], "{name}");
        }
        let c = split(&forward, &forward, &fractions(0.6, 0.2, 0.2, 43)).unwrap();
        assert_ne!(a, c);
    }

    #[test]
    fn bad_fractions_are_rejected() {
        for (t, v, s) in [(0.5, 0.5, 0.5), (1.2, -0.1, -0.1), (f64::NAN, 0.0, 1.0)] {
            assert!(matches!(
                split(&names(3), &names(3), &fractions(t, v, s, 0)),
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
        let s = split(&all, &all, &rule).unwrap();
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
        let Err(SplitError::Problems(problems)) = split(&all, &all, &rule) else {
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
            split(&dup, &dup, &fractions(1.0, 0.0, 0.0, 0)),
            Err(SplitError::Problems(_))
        ));
    }

    /// `Composer_c/Piece_p/perf_k.mid` names and their `Composer/Piece` groups.
    fn performances(pieces: &[usize]) -> (Vec<String>, Vec<String>) {
        let mut names = Vec::new();
        let mut groups = Vec::new();
        for (p, &count) in pieces.iter().enumerate() {
            for k in 0..count {
                groups.push(format!("c{}/p{p}", p % 3));
                names.push(format!("c{}/p{p}/perf_{k}.mid", p % 3));
            }
        }
        (names, groups)
    }

    #[test]
    fn fractions_cut_groups_not_pieces() {
        // 10 groups of 1 to 4 performances: 8 / 1 / 1 groups.
        let (names, groups) = performances(&[1, 2, 3, 4, 1, 2, 3, 4, 1, 2]);
        let s = split(&names, &groups, &fractions(0.8, 0.1, 0.1, 3)).unwrap();
        let groups_in = |split: Split| {
            let mut g: Vec<&String> = s.indices(split).iter().map(|&i| &groups[i]).collect();
            g.dedup();
            g.len()
        };
        assert_eq!(
            (
                groups_in(Split::Train),
                groups_in(Split::Validation),
                groups_in(Split::Test)
            ),
            (8, 1, 1)
        );
    }

    #[test]
    fn one_group_per_piece_splits_as_by_piece() {
        let all = names(40);
        let rule = fractions(0.7, 0.15, 0.15, 11);
        let by_piece = split(&all, &all, &rule).unwrap();
        let renamed: Vec<String> = all.iter().map(|n| format!("group of {n}")).collect();
        assert_eq!(split(&all, &renamed, &rule).unwrap(), by_piece);
    }

    #[test]
    fn k_folds_test_and_validate_every_group_once() {
        let (names, groups) = performances(&[2, 1, 3, 1, 1, 2, 2, 1, 1, 3, 1]);
        let k = 4;
        let mut tested: HashMap<&str, usize> = HashMap::new();
        let mut validated: HashMap<&str, usize> = HashMap::new();
        let mut test_groups = Vec::new();
        for fold in 0..k {
            let s = split(&names, &groups, &SplitRule::KFold { k, fold, seed: 5 }).unwrap();
            let mut in_test: Vec<&str> = s.indices(Split::Test).iter().map(|&i| groups[i].as_str()).collect();
            in_test.dedup();
            test_groups.push(in_test.len());
            for &i in &s.indices(Split::Test) {
                *tested.entry(groups[i].as_str()).or_default() += 1;
            }
            for &i in &s.indices(Split::Validation) {
                *validated.entry(groups[i].as_str()).or_default() += 1;
            }
        }
        // 11 groups into 4 folds: 3, 3, 3, 2.
        test_groups.sort_unstable();
        assert_eq!(test_groups, vec![2, 3, 3, 3]);
        // Counted per piece: every group's pieces are tested once and validated once.
        let mut pieces_of: HashMap<&str, usize> = HashMap::new();
        for group in &groups {
            *pieces_of.entry(group.as_str()).or_default() += 1;
        }
        assert_eq!(tested, pieces_of);
        assert_eq!(validated, pieces_of);
    }

    #[test]
    fn bad_folds_are_rejected_with_the_reason() {
        let (names, groups) = performances(&[1, 2, 1]);
        let err = |k, fold| {
            split(&names, &groups, &SplitRule::KFold { k, fold, seed: 0 })
                .unwrap_err()
                .to_string()
        };
        assert!(err(2, 0).contains("needs k >= 3"), "{}", err(2, 0));
        assert!(err(1, 0).contains("needs k >= 3"));
        assert_eq!(
            err(4, 0),
            "k-fold with k=4: there are only 3 groups to deal into 4 folds"
        );
        assert!(err(3, 3).contains("fold 3 does not exist"));
    }

    #[test]
    fn lists_or_given_splits_that_divide_a_group_are_refused() {
        let (names, groups) = performances(&[2, 1]);
        let rule = SplitRule::Lists {
            train: vec![names[0].clone(), names[2].clone()],
            validation: vec![],
            test: vec![names[1].clone()],
        };
        let Err(SplitError::Problems(problems)) = split(&names, &groups, &rule) else {
            panic!("expected problems");
        };
        assert_eq!(
            problems,
            vec!["group \"c0/p0\" has pieces in train and test".to_owned()]
        );
        let given = SplitRule::Given(vec![Split::Train, Split::Validation, Split::Train]);
        assert!(split(&names, &groups, &given).is_err());
        let given = SplitRule::Given(vec![Split::Test, Split::Test, Split::Train]);
        assert_eq!(
            split(&names, &groups, &given).unwrap().as_slice(),
            &[Split::Test, Split::Test, Split::Train]
        );
    }

    proptest! {
        #[test]
        fn no_group_is_in_two_splits(
            sizes in proptest::collection::vec(1usize..5, 1..40),
            train in 0.0f64..1.0,
            share in 0.0f64..1.0,
            seed: u64,
            k in 3usize..8,
        ) {
            let (names, groups) = performances(&sizes);
            let validation = (1.0 - train) * share;
            let by_fractions = split(&names, &groups, &fractions(train, validation, 1.0 - train - validation, seed)).unwrap();
            prop_assert!(groups_in_two_splits(&groups, by_fractions.as_slice()).is_empty());
            for fold in 0..k {
                match split(&names, &groups, &SplitRule::KFold { k, fold, seed }) {
                    Ok(s) => prop_assert!(groups_in_two_splits(&groups, s.as_slice()).is_empty()),
                    Err(SplitError::BadFolds { .. }) => prop_assert!(k > sizes.len()),
                    Err(other) => prop_assert!(false, "{other}"),
                }
            }
        }
        #[test]
        fn every_piece_lands_in_exactly_one_split(n in 0usize..200, train in 0.0f64..1.0, share in 0.0f64..1.0, seed: u64) {
            let validation = (1.0 - train) * share;
            let test = 1.0 - train - validation;
            let all = names(n);
            let s = split(&all, &all, &fractions(train, validation, test, seed)).unwrap();
            prop_assert_eq!(s.as_slice().len(), n);
            let mut seen: Vec<usize> = Split::ALL.iter().flat_map(|&sp| s.indices(sp)).collect();
            seen.sort_unstable();
            prop_assert_eq!(seen, (0..n).collect::<Vec<_>>());
        }
    }
}
