//! Duplicates: pieces in, the ones that repeat an earlier piece out.
//!
//! Two pieces are duplicates when their files' bytes are identical (the
//! same performance under two names) or, failing that, when their notes
//! are identical after reading (pitch, velocity and bitwise-equal start
//! and end times: the same performance saved by two programs). Of each set
//! the first piece by name is kept; the others are [`Duplicate`]s, to be
//! left out and reported, since a performance in two splits leaks its
//! notes into evaluation and one twice in training counts double.

use std::collections::HashMap;

use sha2::{Digest, Sha256};

use super::source::SourcePiece;

/// How a duplicate repeats the piece it duplicates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Identical {
    /// The files are byte for byte the same.
    Bytes,
    /// The files differ, the notes read from them do not.
    Notes,
}

/// A piece left out because it repeats another.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Duplicate {
    /// The piece left out.
    pub name: String,
    /// The piece kept (first by name).
    pub of: String,
    /// What is identical.
    pub identical: Identical,
}

/// The index of every piece of `pieces` that repeats one earlier by name,
/// with what it repeats, sorted by the duplicate's name.
pub fn find(pieces: &[SourcePiece]) -> Vec<(usize, Duplicate)> {
    let mut order: Vec<usize> = (0..pieces.len()).collect();
    order.sort_by(|&a, &b| pieces[a].piece.name.cmp(&pieces[b].piece.name));
    let mut by_bytes: HashMap<[u8; 32], usize> = HashMap::new();
    let mut by_notes: HashMap<[u8; 32], usize> = HashMap::new();
    let mut found = Vec::new();
    for i in order {
        let piece = &pieces[i];
        let notes = notes_hash(piece);
        let same_bytes = piece.file_sha256.and_then(|sha| by_bytes.get(&sha).copied());
        let same_notes = by_notes.get(&notes).copied();
        let duplicate = match (same_bytes, same_notes) {
            (Some(first), _) => Some((first, Identical::Bytes)),
            (None, Some(first)) => Some((first, Identical::Notes)),
            (None, None) => None,
        };
        match duplicate {
            Some((first, identical)) => found.push((
                i,
                Duplicate {
                    name: piece.piece.name.clone(),
                    of: pieces[first].piece.name.clone(),
                    identical,
                },
            )),
            None => {
                if let Some(sha) = piece.file_sha256 {
                    by_bytes.insert(sha, i);
                }
                by_notes.insert(notes, i);
            }
        }
    }
    found
}

/// SHA-256 of a piece's notes (pitch, velocity, start and end bits).
fn notes_hash(piece: &SourcePiece) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for note in &piece.piece.notes {
        hasher.update([note.pitch, note.velocity]);
        hasher.update(note.start.to_le_bytes());
        hasher.update(note.end.to_le_bytes());
    }
    hasher.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notes::{Note, Piece};

    fn piece(name: &str, sha: Option<u8>, notes: &[(u8, u8, f64)]) -> SourcePiece {
        SourcePiece {
            piece: Piece::new(
                name,
                notes
                    .iter()
                    .map(|&(pitch, velocity, start)| Note {
                        pitch,
                        velocity,
                        start,
                        end: start + 0.5,
                    })
                    .collect(),
            ),
            split: None,
            file_sha256: sha.map(|b| [b; 32]),
            warnings: Vec::new(),
            metadata: Default::default(),
        }
    }

    #[test]
    fn identical_bytes_and_identical_notes_are_found_and_the_first_name_is_kept() {
        let a = [(60, 80, 0.0), (64, 70, 0.5)];
        let pieces = vec![
            piece("z_copy.mid", Some(1), &a),
            piece("a_original.mid", Some(1), &a),
            piece("m_resaved.mid", Some(2), &a),
            piece("other.mid", Some(3), &[(60, 81, 0.0), (64, 70, 0.5)]),
        ];
        let found = find(&pieces);
        assert_eq!(
            found,
            vec![
                (
                    2,
                    Duplicate {
                        name: "m_resaved.mid".into(),
                        of: "a_original.mid".into(),
                        identical: Identical::Notes
                    }
                ),
                (
                    0,
                    Duplicate {
                        name: "z_copy.mid".into(),
                        of: "a_original.mid".into(),
                        identical: Identical::Bytes
                    }
                ),
            ]
        );
    }

    #[test]
    fn rows_without_file_hashes_are_compared_by_notes() {
        let a = [(60, 80, 0.0)];
        let pieces = vec![
            piece("f#row 0", None, &a),
            piece("f#row 1", None, &a),
            piece("f#row 2", None, &[]),
        ];
        let found = find(&pieces);
        assert_eq!(found.len(), 1);
        assert_eq!(
            (found[0].1.name.as_str(), found[0].1.identical),
            ("f#row 1", Identical::Notes)
        );
    }
}
