//! Groups: piece names and a [`Group`] rule in, each piece's group out.
//!
//! Pieces of one group always share a split (see [`split`](super::split)):
//! performances of one composition, kept in one folder or named alike,
//! must not be trained on and tested on at once. The rules:
//!
//! - `file`: every piece is its own group (the split by piece).
//! - `folder depth=D`: the piece's folder within the source, cut to its
//!   first `D` components (`0`: the whole folder). For
//!   `Composer/Piece/performance.mid`, depth 2 (or 0) groups by piece and
//!   depth 1 by composer. A file directly in the source folder has no
//!   folder and is its own group.
//! - `pattern regex=R`: the first match of `R` in the piece's name, or of
//!   its first capture group when it has one. A name `R` does not match is
//!   its own group; a pattern that matches no name at all is an error (it
//!   is surely a typo).
//!
//! - `column name=C`: the piece's value in column `C` of a metadata table
//!   (or of a parquet row's own metadata), e.g. MAESTRO's
//!   `canonical_title`. A piece without a value is its own group.
//!
//! Parquet rows are named `FILE#row N`: `file` groups them by row, `folder`
//! by the parquet file's folder.

use regex::Regex;

use runner_plan::config::Group;

/// Why pieces could not be grouped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, miette::Diagnostic)]
pub enum GroupError {
    /// A pattern that is not a regular expression (the planner checks this first).
    #[error("group pattern {regex:?} is not a regular expression: {problem}")]
    BadPattern {
        /// The pattern.
        regex: String,
        /// What the regex parser said.
        problem: String,
    },
    /// A pattern that matches none of the pieces' names.
    #[error("group pattern {regex:?} matches none of the {pieces} piece names (first: {first:?})")]
    #[diagnostic(help("the pattern is matched against paths relative to the source folder, with `/` separators"))]
    NoMatch {
        /// The pattern.
        regex: String,
        /// How many names were tried.
        pieces: usize,
        /// The first name, to compare the pattern with.
        first: String,
    },
}

/// The group of each piece named in `names`, by `rule`. For
/// `Group::Column`, `column` holds each piece's value in the column
/// (a piece without one is its own group); other rules ignore it.
pub fn group_keys(names: &[String], rule: &Group, column: &[Option<String>]) -> Result<Vec<String>, GroupError> {
    match rule {
        Group::Column { name: column_name, .. } => Ok(names
            .iter()
            .enumerate()
            .map(|(i, name)| match column.get(i).cloned().flatten() {
                Some(value) => format!("{column_name}={value}"),
                None => name.clone(),
            })
            .collect()),
        Group::File => Ok(names.to_vec()),
        &Group::Folder { depth } => Ok(names.iter().map(|name| folder_key(name, depth)).collect()),
        Group::Pattern { regex } => {
            let pattern = Regex::new(regex).map_err(|e| GroupError::BadPattern {
                regex: regex.clone(),
                problem: e.to_string(),
            })?;
            let matched: Vec<Option<String>> = names.iter().map(|name| pattern_key(&pattern, name)).collect();
            if !names.is_empty() && matched.iter().all(Option::is_none) {
                return Err(GroupError::NoMatch {
                    regex: regex.clone(),
                    pieces: names.len(),
                    first: names[0].clone(),
                });
            }
            Ok(matched
                .into_iter()
                .zip(names)
                .map(|(key, name)| key.unwrap_or_else(|| name.clone()))
                .collect())
        }
    }
}

/// The first `depth` folder components of `name` (all of them for 0), or
/// the name itself when it lies in no folder. Parquet row suffixes
/// (`#row N`) belong to the file name and are cut with it.
fn folder_key(name: &str, depth: usize) -> String {
    let Some((folder, _file)) = name.rsplit_once('/') else {
        return name.to_owned();
    };
    let components: Vec<&str> = folder.split('/').collect();
    let keep = if depth == 0 {
        components.len()
    } else {
        depth.min(components.len())
    };
    format!("{}/", components[..keep].join("/"))
}

/// The first match of `pattern` in `name` (its first capture group when it
/// has one), marked so it cannot collide with a piece's own name.
fn pattern_key(pattern: &Regex, name: &str) -> Option<String> {
    let captures = pattern.captures(name)?;
    let matched = captures.get(1).or_else(|| captures.get(0))?;
    Some(format!("~{}", matched.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn folders_group_by_their_first_components() {
        let all = names(&[
            "Bach/Fugue/a.mid",
            "Bach/Fugue/b.mid",
            "Bach/Prelude/a.mid",
            "loose.mid",
        ]);
        let by = |depth| group_keys(&all, &Group::Folder { depth }, &[]).unwrap();
        assert_eq!(
            by(0),
            names(&["Bach/Fugue/", "Bach/Fugue/", "Bach/Prelude/", "loose.mid"])
        );
        assert_eq!(by(2), by(0));
        assert_eq!(by(1), names(&["Bach/", "Bach/", "Bach/", "loose.mid"]));
        assert_eq!(by(5), by(0));
    }

    #[test]
    fn a_folder_named_like_a_loose_file_is_another_group() {
        let all = names(&["x/a.mid", "x"]);
        let keys = group_keys(&all, &Group::Folder { depth: 0 }, &[]).unwrap();
        assert_ne!(keys[0], keys[1]);
    }

    #[test]
    fn patterns_group_by_the_match_or_its_first_capture() {
        let all = names(&[
            "chopin_op9_take1.mid",
            "chopin_op9_take2.mid",
            "liszt_s244.mid",
            "notes.mid",
        ]);
        let captured = group_keys(
            &all,
            &Group::Pattern {
                regex: "^(.+)_take".into(),
            },
            &[],
        )
        .unwrap();
        assert_eq!(captured[0], captured[1]);
        assert_eq!(captured[0], "~chopin_op9");
        assert_eq!(&captured[2..], &names(&["liszt_s244.mid", "notes.mid"]));
        let whole = group_keys(
            &all,
            &Group::Pattern {
                regex: "op[0-9]+".into(),
            },
            &[],
        )
        .unwrap();
        assert_eq!(whole[..2], ["~op9".to_owned(), "~op9".to_owned()]);
    }

    #[test]
    fn a_pattern_that_matches_nothing_is_an_error() {
        let all = names(&["a.mid", "b.mid"]);
        let err = group_keys(&all, &Group::Pattern { regex: "^Bach/".into() }, &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "group pattern \"^Bach/\" matches none of the 2 piece names (first: \"a.mid\")"
        );
        assert!(matches!(
            group_keys(&all, &Group::Pattern { regex: "(".into() }, &[]),
            Err(GroupError::BadPattern { .. })
        ));
    }

    #[test]
    fn a_column_groups_by_its_value_and_a_piece_without_one_is_alone() {
        let all = names(&["2004/a.midi", "2006/b.midi", "2008/c.midi"]);
        let rule = Group::Column {
            name: "canonical_title".into(),
            table: Some("maestro.csv".into()),
            file_column: "midi_filename".into(),
        };
        let values = [Some("Op. 13".to_owned()), Some("Op. 13".to_owned()), None];
        assert_eq!(
            group_keys(&all, &rule, &values).unwrap(),
            names(&["canonical_title=Op. 13", "canonical_title=Op. 13", "2008/c.midi"])
        );
    }
}
