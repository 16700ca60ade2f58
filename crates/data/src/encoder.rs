//! Encoders: quantized notes in, token ids out (and back).
//!
//! In: a window of [`QuantizedNote`]s and a [`Vocab`] (a [`Scheme`] plus the
//! bin counts). Out: source ids (one note token per note) and target ids (one
//! velocity token per note), each with `<CLS>` (id 0) prepended and nothing
//! appended; [`Vocab::decode_source`] / [`Vocab::decode_target`] turn ids
//! back into [`Token`]s (FACTS.md section 3).
//!
//! A note token is `"{pitch}-{dstart_bin}-{duration_bin}-{velocity_bin}"`;
//! the note tokens are ordered pitch 21..=108 (outer), then dstart bin, then
//! duration bin, then velocity bin (inner).
//!
//! - [`Scheme::Separate`] (midi-translation): source vocabulary
//!   `["<CLS>"] + notes`, target vocabulary `["<CLS>", "0", .., "127"]`.
//! - [`Scheme::Shared`] (midi-hf-transformers): one vocabulary
//!   `["<CLS>", "<PAD>"] + notes + ["0", .., "127"]` for both sides; `<PAD>`
//!   doubles as end of sequence.

use std::fmt;
use std::str::FromStr;

use super::midi::PIANO_PITCHES;
use super::quantize::{Bins, MAX_BINS, QuantizedNote};

/// The id of `<CLS>` in every vocabulary.
pub const CLS: u32 = 0;

/// The id of `<PAD>` in the shared vocabulary.
pub const PAD: u32 = 1;

/// Number of MIDI velocities, 0..=127.
const VELOCITIES: u32 = 128;

/// Number of piano keys.
const PITCHES: u32 = 88;

/// Which of the two original vocabulary layouts to use (the run
/// configuration's `encoder`).
pub use runner_plan::config::Scheme;

/// A source note token: a pitch and its three bins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NoteToken {
    /// MIDI pitch, 21..=108.
    pub pitch: u8,
    /// dstart bin.
    pub dstart_bin: u8,
    /// Duration bin.
    pub duration_bin: u8,
    /// Coarse velocity bin.
    pub velocity_bin: u8,
}

impl From<&QuantizedNote> for NoteToken {
    fn from(note: &QuantizedNote) -> NoteToken {
        NoteToken {
            pitch: note.pitch,
            dstart_bin: note.dstart_bin,
            duration_bin: note.duration_bin,
            velocity_bin: note.velocity_bin,
        }
    }
}

/// One entry of a vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Token {
    /// `<CLS>`, prepended to every sequence.
    Cls,
    /// `<PAD>` (shared scheme only).
    Pad,
    /// A source note.
    Note(NoteToken),
    /// A target velocity, 0..=127.
    Velocity(u8),
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Token::Cls => f.write_str("<CLS>"),
            Token::Pad => f.write_str("<PAD>"),
            Token::Note(n) => write!(f, "{}-{}-{}-{}", n.pitch, n.dstart_bin, n.duration_bin, n.velocity_bin),
            Token::Velocity(v) => write!(f, "{v}"),
        }
    }
}

impl FromStr for Token {
    type Err = EncodeError;

    /// Parses the [`Display`](fmt::Display) form: `<CLS>`, `<PAD>`, `42-0-1-0` or `6`.
    fn from_str(text: &str) -> Result<Token, EncodeError> {
        let bad = || EncodeError::BadToken(text.to_owned());
        match text {
            "<CLS>" => return Ok(Token::Cls),
            "<PAD>" => return Ok(Token::Pad),
            _ => {}
        }
        let parts: Vec<u8> = text
            .split('-')
            .map(|part| part.parse::<u8>().map_err(|_| bad()))
            .collect::<Result<_, _>>()?;
        match parts[..] {
            [v] if u32::from(v) < VELOCITIES => Ok(Token::Velocity(v)),
            [pitch, dstart_bin, duration_bin, velocity_bin] => Ok(Token::Note(NoteToken {
                pitch,
                dstart_bin,
                duration_bin,
                velocity_bin,
            })),
            _ => Err(bad()),
        }
    }
}

/// Why ids or tokens could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// A bin count of 0 or above [`MAX_BINS`].
    #[error("bin counts must be 1..=255, got {0:?}")]
    BadBins(Bins),
    /// A note whose pitch or bins the vocabulary does not have.
    #[error("note token {0} is not in the vocabulary")]
    UnknownNote(String),
    /// A velocity above 127.
    #[error("velocity {0} is not in the vocabulary (0..=127)")]
    UnknownVelocity(u8),
    /// An id at or beyond the vocabulary size.
    #[error("id {id} is outside the {side} vocabulary (size {size})")]
    IdOutOfRange {
        /// The id.
        id: u32,
        /// `source` or `target`.
        side: &'static str,
        /// The vocabulary size.
        size: u32,
    },
    /// Text that is no token.
    #[error("{0:?} is not a token")]
    BadToken(String),
    /// A target sequence that is not `<CLS>` followed by velocities.
    #[error("target position {position} holds {token}, expected {expected}")]
    UnexpectedToken {
        /// Position in the sequence.
        position: usize,
        /// What was there.
        token: Token,
        /// What belongs there.
        expected: &'static str,
    },
}

/// A vocabulary layout: the scheme and the bin counts it was built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Vocab {
    scheme: Scheme,
    bins: Bins,
    /// `88 * dstart * duration * velocity` bins.
    notes: u32,
}

impl Vocab {
    /// The vocabulary of `scheme` for these bin counts (each 1..=[`MAX_BINS`]).
    pub fn new(scheme: Scheme, bins: Bins) -> Result<Vocab, EncodeError> {
        let counts = [bins.dstart, bins.duration, bins.velocity];
        if counts.iter().any(|&b| b == 0 || b > MAX_BINS) {
            return Err(EncodeError::BadBins(bins));
        }
        // At most 88 * 255^3 < 2^32.
        let notes = counts.iter().fold(PITCHES, |acc, &b| acc * b as u32);
        Ok(Vocab { scheme, bins, notes })
    }

    /// The scheme.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The bin counts.
    pub fn bins(&self) -> Bins {
        self.bins
    }

    /// Number of special tokens before the notes (1 separate, 2 shared).
    fn specials(&self) -> u32 {
        match self.scheme {
            Scheme::Separate => 1,
            Scheme::Shared => 2,
        }
    }

    /// Size of the source vocabulary (the whole vocabulary when shared).
    pub fn source_size(&self) -> u32 {
        match self.scheme {
            Scheme::Separate => 1 + self.notes,
            Scheme::Shared => 2 + self.notes + VELOCITIES,
        }
    }

    /// Size of the target vocabulary (the whole vocabulary when shared).
    pub fn target_size(&self) -> u32 {
        match self.scheme {
            Scheme::Separate => 1 + VELOCITIES,
            Scheme::Shared => self.source_size(),
        }
    }

    /// The id of a note token.
    pub fn note_id(&self, note: NoteToken) -> Result<u32, EncodeError> {
        let Bins {
            dstart,
            duration,
            velocity,
        } = self.bins;
        let fits = PIANO_PITCHES.contains(&note.pitch)
            && usize::from(note.dstart_bin) < dstart
            && usize::from(note.duration_bin) < duration
            && usize::from(note.velocity_bin) < velocity;
        if !fits {
            return Err(EncodeError::UnknownNote(Token::Note(note).to_string()));
        }
        let index = ((u32::from(note.pitch - PIANO_PITCHES.start()) * dstart as u32 + u32::from(note.dstart_bin))
            * duration as u32
            + u32::from(note.duration_bin))
            * velocity as u32
            + u32::from(note.velocity_bin);
        Ok(self.specials() + index)
    }

    /// The id of a velocity token.
    pub fn velocity_id(&self, velocity: u8) -> Result<u32, EncodeError> {
        if u32::from(velocity) >= VELOCITIES {
            return Err(EncodeError::UnknownVelocity(velocity));
        }
        Ok(match self.scheme {
            Scheme::Separate => 1 + u32::from(velocity),
            Scheme::Shared => 2 + self.notes + u32::from(velocity),
        })
    }

    /// Appends the ids of `window` to `source` and `target`: `<CLS>` and then
    /// one note (source) or velocity (target) per note.
    pub fn encode_into(
        &self,
        window: &[QuantizedNote],
        source: &mut Vec<u32>,
        target: &mut Vec<u32>,
    ) -> Result<(), EncodeError> {
        source.reserve(window.len() + 1);
        target.reserve(window.len() + 1);
        source.push(CLS);
        target.push(CLS);
        for note in window {
            source.push(self.note_id(NoteToken::from(note))?);
            target.push(self.velocity_id(note.velocity)?);
        }
        Ok(())
    }

    /// The source and target ids of `window` (see [`Vocab::encode_into`]).
    pub fn encode(&self, window: &[QuantizedNote]) -> Result<(Vec<u32>, Vec<u32>), EncodeError> {
        let (mut source, mut target) = (Vec::new(), Vec::new());
        self.encode_into(window, &mut source, &mut target)?;
        Ok((source, target))
    }

    /// The token of a source id.
    pub fn source_token(&self, id: u32) -> Result<Token, EncodeError> {
        let specials = self.specials();
        let out_of_range = EncodeError::IdOutOfRange {
            id,
            side: "source",
            size: self.source_size(),
        };
        if id >= self.source_size() {
            return Err(out_of_range);
        }
        Ok(match id {
            CLS => Token::Cls,
            PAD if self.scheme == Scheme::Shared => Token::Pad,
            _ if id - specials < self.notes => Token::Note(self.note_at(id - specials)),
            // Only the shared vocabulary continues after the notes.
            _ => Token::Velocity((id - specials - self.notes) as u8),
        })
    }

    /// The token of a target id.
    pub fn target_token(&self, id: u32) -> Result<Token, EncodeError> {
        match self.scheme {
            Scheme::Shared => self.source_token(id).map_err(|_| EncodeError::IdOutOfRange {
                id,
                side: "target",
                size: self.target_size(),
            }),
            Scheme::Separate => match id {
                CLS => Ok(Token::Cls),
                _ if id < self.target_size() => Ok(Token::Velocity((id - 1) as u8)),
                _ => Err(EncodeError::IdOutOfRange {
                    id,
                    side: "target",
                    size: self.target_size(),
                }),
            },
        }
    }

    /// The note token at `index` among the note tokens (index < `self.notes`).
    fn note_at(&self, index: u32) -> NoteToken {
        let Bins {
            dstart,
            duration,
            velocity,
        } = self.bins;
        let (rest, velocity_bin) = (index / velocity as u32, index % velocity as u32);
        let (rest, duration_bin) = (rest / duration as u32, rest % duration as u32);
        let (pitch, dstart_bin) = (rest / dstart as u32, rest % dstart as u32);
        // Each part is below its bin count (<= 255) or 88, so the casts are exact.
        NoteToken {
            pitch: PIANO_PITCHES.start() + pitch as u8,
            dstart_bin: dstart_bin as u8,
            duration_bin: duration_bin as u8,
            velocity_bin: velocity_bin as u8,
        }
    }

    /// The tokens of source ids.
    pub fn decode_source(&self, ids: &[u32]) -> Result<Vec<Token>, EncodeError> {
        ids.iter().map(|&id| self.source_token(id)).collect()
    }

    /// The tokens of target ids.
    pub fn decode_target(&self, ids: &[u32]) -> Result<Vec<Token>, EncodeError> {
        ids.iter().map(|&id| self.target_token(id)).collect()
    }

    /// The velocities of a target sequence: `<CLS>` followed only by velocity ids.
    pub fn decode_velocities(&self, ids: &[u32]) -> Result<Vec<u8>, EncodeError> {
        let mut velocities = Vec::with_capacity(ids.len().saturating_sub(1));
        for (position, &id) in ids.iter().enumerate() {
            match (position, self.target_token(id)?) {
                (0, Token::Cls) => {}
                (0, token) => {
                    return Err(EncodeError::UnexpectedToken {
                        position,
                        token,
                        expected: "<CLS>",
                    });
                }
                (_, Token::Velocity(v)) => velocities.push(v),
                (_, token) => {
                    return Err(EncodeError::UnexpectedToken {
                        position,
                        token,
                        expected: "a velocity",
                    });
                }
            }
        }
        Ok(velocities)
    }

    /// The id of any token of the source vocabulary (of the whole vocabulary when shared).
    pub fn source_id(&self, token: Token) -> Result<u32, EncodeError> {
        match (token, self.scheme) {
            (Token::Cls, _) => Ok(CLS),
            (Token::Pad, Scheme::Shared) => Ok(PAD),
            (Token::Note(note), _) => self.note_id(note),
            (Token::Velocity(v), Scheme::Shared) => self.velocity_id(v),
            (token, Scheme::Separate) => Err(EncodeError::BadToken(token.to_string())),
        }
    }

    /// The id of any token of the target vocabulary (of the whole vocabulary when shared).
    pub fn target_id(&self, token: Token) -> Result<u32, EncodeError> {
        match (token, self.scheme) {
            (_, Scheme::Shared) => self.source_id(token),
            (Token::Cls, Scheme::Separate) => Ok(CLS),
            (Token::Velocity(v), Scheme::Separate) => self.velocity_id(v),
            (token, Scheme::Separate) => Err(EncodeError::BadToken(token.to_string())),
        }
    }

    /// The source vocabulary as strings, in id order (the whole vocabulary when shared).
    pub fn source_vocab(&self) -> Vec<String> {
        (0..self.source_size())
            .filter_map(|id| self.source_token(id).ok())
            .map(|t| t.to_string())
            .collect()
    }

    /// The target vocabulary as strings, in id order (the whole vocabulary when shared).
    pub fn target_vocab(&self) -> Vec<String> {
        (0..self.target_size())
            .filter_map(|id| self.target_token(id).ok())
            .map(|t| t.to_string())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn bins(dstart: usize, duration: usize, velocity: usize) -> Bins {
        Bins {
            dstart,
            duration,
            velocity,
        }
    }

    fn vocab(scheme: Scheme, b: (usize, usize, usize)) -> Vocab {
        Vocab::new(scheme, bins(b.0, b.1, b.2)).unwrap()
    }

    fn id_of(vocab: &Vocab, text: &str) -> u32 {
        let token: Token = text.parse().unwrap();
        match token {
            Token::Velocity(_) => vocab.target_id(token).unwrap(),
            _ => vocab.source_id(token).unwrap(),
        }
    }

    #[test]
    fn facts_known_answer_ids() {
        let separate = vocab(Scheme::Separate, (3, 3, 3));
        let shared = vocab(Scheme::Shared, (3, 3, 3));
        assert_eq!(id_of(&separate, "42-0-1-0"), 571);
        assert_eq!(id_of(&shared, "42-0-1-0"), 572);
        assert_eq!(id_of(&separate, "6"), 7);
        assert_eq!(id_of(&shared, "6"), 2384);
    }

    #[test]
    fn facts_vocab_sizes() {
        assert_eq!(vocab(Scheme::Separate, (3, 3, 3)).source_size(), 2377);
        assert_eq!(vocab(Scheme::Separate, (5, 5, 3)).source_size(), 6601);
        assert_eq!(vocab(Scheme::Separate, (5, 5, 3)).target_size(), 129);
        let shared = vocab(Scheme::Shared, (5, 5, 3));
        assert_eq!(shared.source_size(), 2 + 6600 + 128);
        assert_eq!(shared.target_size(), shared.source_size());
    }

    #[test]
    fn the_write_up_sequence_maps_to_its_ids() {
        let notes = [
            "42-0-1-0", "67-0-1-1", "55-0-1-0", "59-0-1-0", "49-0-1-0", "53-1-1-1", "63-0-2-1",
        ];
        let velocities = ["6", "73", "53", "42"];
        let separate = vocab(Scheme::Separate, (3, 3, 3));
        let shared = vocab(Scheme::Shared, (3, 3, 3));
        let src: Vec<u32> = notes.iter().map(|t| id_of(&separate, t)).collect();
        assert_eq!(src[..5], [571, 1247, 922, 1030, 760]);
        let tgt: Vec<u32> = velocities.iter().map(|t| id_of(&separate, t)).collect();
        assert_eq!(tgt, [7, 74, 54, 43]);
        let src: Vec<u32> = notes.iter().map(|t| id_of(&shared, t)).collect();
        assert_eq!(src[..2], [572, 1248]);
        let tgt: Vec<u32> = velocities.iter().map(|t| id_of(&shared, t)).collect();
        assert_eq!(tgt[..2], [2384, 2451]);
        // The whole window, CLS first.
        let window: Vec<QuantizedNote> = notes[..4]
            .iter()
            .zip([6, 73, 53, 42])
            .map(|(text, velocity)| match text.parse().unwrap() {
                Token::Note(n) => QuantizedNote {
                    pitch: n.pitch,
                    dstart_bin: n.dstart_bin,
                    duration_bin: n.duration_bin,
                    velocity_bin: n.velocity_bin,
                    velocity,
                },
                other => panic!("{other}"),
            })
            .collect();
        let (s, t) = separate.encode(&window).unwrap();
        assert_eq!(s, [0, 571, 1247, 922, 1030]);
        assert_eq!(t, [0, 7, 74, 54, 43]);
        let (s, t) = shared.encode(&window).unwrap();
        assert_eq!(s, [0, 572, 1248, 923, 1031]);
        assert_eq!(t, [0, 2384, 2451, 2431, 2420]);
    }

    #[test]
    fn vocab_lists_follow_the_original_order() {
        let separate = vocab(Scheme::Separate, (3, 3, 3));
        let src = separate.source_vocab();
        assert_eq!(src.len(), 2377);
        assert_eq!(src[..4], ["<CLS>", "21-0-0-0", "21-0-0-1", "21-0-0-2"]);
        assert_eq!(src[571], "42-0-1-0");
        assert_eq!(src.last().unwrap(), "108-2-2-2");
        let tgt = separate.target_vocab();
        assert_eq!(tgt.len(), 129);
        assert_eq!(
            (tgt[0].as_str(), tgt[1].as_str(), tgt[128].as_str()),
            ("<CLS>", "0", "127")
        );
        let shared = vocab(Scheme::Shared, (3, 3, 3)).source_vocab();
        assert_eq!(shared[..3], ["<CLS>", "<PAD>", "21-0-0-0"]);
        assert_eq!(shared[2384], "6");
        assert_eq!(shared.last().unwrap(), "127");
    }

    #[test]
    fn ids_outside_the_vocabulary_are_errors() {
        let separate = vocab(Scheme::Separate, (3, 3, 3));
        assert!(matches!(
            separate.source_token(2377),
            Err(EncodeError::IdOutOfRange {
                id: 2377,
                size: 2377,
                ..
            })
        ));
        assert!(matches!(
            separate.target_token(129),
            Err(EncodeError::IdOutOfRange { size: 129, .. })
        ));
        let shared = vocab(Scheme::Shared, (3, 3, 3));
        assert!(shared.decode_target(&[0, 2384, 2506]).is_err());
        assert_eq!(shared.target_token(2505), Ok(Token::Velocity(127)));
    }

    #[test]
    fn notes_and_velocities_outside_the_vocabulary_are_errors() {
        let v = vocab(Scheme::Separate, (3, 3, 3));
        let note = |pitch, d| NoteToken {
            pitch,
            dstart_bin: d,
            duration_bin: 0,
            velocity_bin: 0,
        };
        assert!(v.note_id(note(20, 0)).is_err());
        assert!(v.note_id(note(109, 0)).is_err());
        assert!(v.note_id(note(60, 3)).is_err());
        assert_eq!(v.velocity_id(128), Err(EncodeError::UnknownVelocity(128)));
        assert!(v.source_id(Token::Pad).is_err(), "separate has no <PAD>");
        assert!(v.source_id(Token::Velocity(3)).is_err());
        assert!(Vocab::new(Scheme::Shared, bins(0, 3, 3)).is_err());
    }

    #[test]
    fn decode_velocities_wants_cls_then_velocities() {
        let shared = vocab(Scheme::Shared, (3, 3, 3));
        assert_eq!(shared.decode_velocities(&[0, 2384, 2451]), Ok(vec![6, 73]));
        assert!(matches!(
            shared.decode_velocities(&[2384]),
            Err(EncodeError::UnexpectedToken { position: 0, .. })
        ));
        assert!(matches!(
            shared.decode_velocities(&[0, 1]),
            Err(EncodeError::UnexpectedToken {
                position: 1,
                token: Token::Pad,
                ..
            })
        ));
    }

    #[test]
    fn token_text_round_trips_and_rejects_junk() {
        for text in ["<CLS>", "<PAD>", "42-0-1-0", "0", "127"] {
            assert_eq!(text.parse::<Token>().unwrap().to_string(), text);
        }
        for junk in ["", "128", "1-2", "a-b-c-d", "1-2-3-4-5", "-1"] {
            assert!(junk.parse::<Token>().is_err(), "{junk:?}");
        }
    }

    fn scheme() -> impl Strategy<Value = Scheme> {
        prop_oneof![Just(Scheme::Separate), Just(Scheme::Shared)]
    }

    fn vocab_and_window() -> impl Strategy<Value = (Vocab, Vec<QuantizedNote>)> {
        (scheme(), 1usize..8, 1usize..8, 1usize..8).prop_flat_map(|(s, d, du, v)| {
            let note = (21u8..=108, 0..d as u8, 0..du as u8, 0..v as u8, 0u8..=127).prop_map(
                |(pitch, dstart_bin, duration_bin, velocity_bin, velocity)| QuantizedNote {
                    pitch,
                    dstart_bin,
                    duration_bin,
                    velocity_bin,
                    velocity,
                },
            );
            (
                Just(Vocab::new(s, bins(d, du, v)).unwrap()),
                proptest::collection::vec(note, 0..40),
            )
        })
    }

    proptest! {
        #[test]
        fn encode_then_decode_gives_the_window_back((vocab, window) in vocab_and_window()) {
            let (source, target) = vocab.encode(&window).unwrap();
            prop_assert_eq!(source.len(), window.len() + 1);
            prop_assert!(source.iter().all(|&id| id < vocab.source_size()));
            prop_assert!(target.iter().all(|&id| id < vocab.target_size()));
            let mut expected = vec![Token::Cls];
            expected.extend(window.iter().map(|n| Token::Note(NoteToken::from(n))));
            prop_assert_eq!(vocab.decode_source(&source).unwrap(), expected);
            let velocities: Vec<u8> = window.iter().map(|n| n.velocity).collect();
            prop_assert_eq!(vocab.decode_velocities(&target).unwrap(), velocities);
        }

        #[test]
        fn every_id_decodes_to_a_token_that_encodes_back((vocab, _) in vocab_and_window(), pick in 0.0f64..1.0) {
            let id = (pick * f64::from(vocab.source_size())) as u32;
            let token = vocab.source_token(id).unwrap();
            prop_assert_eq!(vocab.source_id(token).unwrap(), id);
            let id = (pick * f64::from(vocab.target_size())) as u32;
            let token = vocab.target_token(id).unwrap();
            prop_assert_eq!(vocab.target_id(token).unwrap(), id);
            prop_assert_eq!(token.to_string().parse::<Token>().unwrap(), token);
        }
    }
}
