//! Standard MIDI File reader: bytes in, a [`Piece`] of piano notes out.
//!
//! In: the bytes of a Standard MIDI File (type 0 or 1) and a [`MidiConfig`].
//! Out: a [`MidiRead`] — the [`Piece`] (seconds-accurate notes, sorted) and
//! [`MidiStats`] counting what the reader had to decide on the way — or a
//! [`MidiError`] saying why the bytes are not a usable performance.
//!
//! How the bytes become notes:
//!
//! 1. The chunk framing is checked here, as strictly as the major readers
//!    (mido, symusic, pretty_midi) are and no more. Strict: the file starts
//!    with a complete, usable `MThd` header, and every chunk up to the last
//!    track the header declares is fully present, so a file with fewer `MTrk`
//!    chunks than declared, or one cut inside a track, is an error. Lenient,
//!    with a [`MidiWarning`] in [`MidiRead::warnings`]: an unknown chunk type
//!    or a second `MThd` among the tracks is skipped (the SMF spec asks that
//!    alien chunks be skipped), and whatever follows the last declared track
//!    (padding, a partial chunk, more chunks, a second file) is ignored. The
//!    events of each track are decoded by the `midly` crate (running status
//!    included) in its strict mode, so a malformed event is an error rather
//!    than a silently shortened track.
//! 2. Time: with metrical timing (ticks per beat) the tempo events of *all*
//!    tracks form one tempo map (500,000 µs per beat until the first tempo
//!    event); with SMPTE timecode timing a tick is `1 / (fps * subframes)`
//!    seconds (29.97 fps for the drop-frame code) and tempo events are
//!    ignored.
//! 3. The tracks are merged into one stream ordered by tick (ties keep track
//!    order, then file order), the way a synthesizer hears them, and notes are
//!    paired per channel and pitch: a note-on with velocity 0 is a note-off; a
//!    note-on for a pitch that is already sounding on that channel ends the
//!    sounding one; a note never released ends at the end of the file (the
//!    latest event of any track).
//! 4. Sustain (when [`MidiConfig::sustain_threshold`] is set): the pedal of a
//!    channel (CC 64) is down while its last value is `>=` the threshold. A
//!    note released while its channel's pedal is down ends when the pedal lifts
//!    or when the same pitch is struck again on that channel, whichever comes
//!    first (FACTS.md section 1); if neither happens, at the end of the file.
//! 5. Notes outside the piano range [`PIANO_PITCHES`] are dropped and counted
//!    in [`MidiStats::out_of_range`]: the models' vocabularies only know the 88
//!    piano keys, and dropping (rather than rejecting the file) keeps a piano
//!    performance with a stray controller note usable.
//!
//! The reader never panics: every length is checked before it is used, tick
//! sums saturate, and a file whose events lie more than [`MAX_SECONDS`] in is
//! rejected as corrupt (a flipped delta-time byte easily yields days of
//! silence).

use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

use midly::{EventIter, MetaMessage, MidiMessage, TrackEventKind};

use super::notes::{Note, Piece};

/// The pitches of the 88 piano keys, A0 to C8.
pub const PIANO_PITCHES: RangeInclusive<u8> = 21..=108;

/// The sustain-pedal threshold of the original datasets: CC 64 values `>= 62`
/// hold the pedal down.
pub const DEFAULT_SUSTAIN_THRESHOLD: u8 = 62;

/// Files whose last event lies later than this (one day, in seconds) are
/// rejected as corrupt.
pub const MAX_SECONDS: f64 = 86_400.0;

/// The tempo in force before the first tempo event: 120 beats per minute.
const DEFAULT_TEMPO_US_PER_BEAT: u32 = 500_000;

/// The sustain-pedal controller number.
const SUSTAIN_CONTROLLER: u8 = 64;

/// How notes are read from a MIDI file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MidiConfig {
    /// `Some(t)`: extend released notes while CC 64 is `>= t`; `None`: ignore
    /// the pedal and end every note at its note-off.
    pub sustain_threshold: Option<u8>,
}

impl Default for MidiConfig {
    /// Sustain on, with the original threshold [`DEFAULT_SUSTAIN_THRESHOLD`].
    fn default() -> MidiConfig {
        MidiConfig {
            sustain_threshold: Some(DEFAULT_SUSTAIN_THRESHOLD),
        }
    }
}

/// What the reader decided while turning events into notes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MidiStats {
    /// Notes dropped because their pitch lies outside [`PIANO_PITCHES`].
    pub out_of_range: usize,
    /// Notes ended by a new note-on of the same pitch and channel while still held.
    pub retriggered: usize,
    /// Notes that were never released and end at the end of the file.
    pub unterminated: usize,
    /// Notes whose end the sustain pedal moved later than their note-off.
    pub sustained: usize,
}

/// A successfully read performance.
#[derive(Debug, Clone, PartialEq)]
pub struct MidiRead {
    /// The piano notes, sorted by start then pitch.
    pub piece: Piece,
    /// Counts of the reader's decisions (dropped, retriggered, ... notes).
    pub stats: MidiStats,
    /// The framing oddities that were skipped over, in file order; empty for
    /// a clean file.
    pub warnings: Vec<MidiWarning>,
    /// For each note of `piece` (same order), the byte offset in the file of
    /// its note-on's velocity byte: what [`set_velocities`] rewrites.
    pub velocity_offsets: Vec<usize>,
}

/// Bytes of a readable file that the reader skipped (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum MidiWarning {
    /// Bytes after the last track the header declares.
    TrailingBytes {
        /// Byte offset where the ignored bytes start.
        offset: usize,
        /// How many bytes were ignored (to the end of the file).
        length: usize,
        /// Tracks the header declares (all of which were read).
        tracks: u16,
    },
    /// A chunk of an unknown type among the tracks.
    UnknownChunk {
        /// Byte offset of the chunk.
        offset: usize,
        /// Its 4-byte type, non-printable bytes escaped.
        id: String,
        /// Its declared body length in bytes.
        length: usize,
    },
    /// A second `MThd` chunk among the tracks.
    SecondHeader {
        /// Byte offset of the second header.
        offset: usize,
    },
}

impl std::fmt::Display for MidiWarning {
    /// One line saying what was ignored and where.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MidiWarning::TrailingBytes { offset, length, tracks } => write!(
                f,
                "ignored {length} trailing bytes after the {tracks} declared tracks (from byte {offset})"
            ),
            MidiWarning::UnknownChunk { offset, id, length } => {
                write!(
                    f,
                    "ignored an unknown chunk \"{id}\" of {length} bytes at byte {offset}"
                )
            }
            MidiWarning::SecondHeader { offset } => write!(f, "ignored a second MThd header at byte {offset}"),
        }
    }
}

/// Why some bytes are not a usable MIDI performance.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MidiError {
    /// Zero bytes.
    #[error("the file is empty")]
    Empty,
    /// The bytes do not start with an `MThd` header chunk.
    #[error("not a Standard MIDI File: it does not start with an `MThd` header")]
    NotMidi,
    /// A chunk's header or body runs past the end of the file.
    #[error("truncated: the chunk at byte {offset} needs {needed} bytes but only {available} remain")]
    Truncated {
        /// Byte offset of the chunk in the file.
        offset: usize,
        /// Bytes the chunk needs (its 8-byte header plus declared length).
        needed: u64,
        /// Bytes left in the file from `offset`.
        available: usize,
    },
    /// The header chunk is unusable.
    #[error("bad header chunk: {reason}")]
    BadHeader {
        /// What is wrong with it.
        reason: String,
    },
    /// Type 2 (sequential) files hold independent songs, not one performance.
    #[error("type 2 (sequential) MIDI files are not supported: they hold separate songs")]
    Sequential,
    /// The file ends before all the tracks the header declares.
    #[error("the header declares {declared} tracks but the file holds {found}")]
    TrackCount {
        /// Tracks the header declares.
        declared: u16,
        /// `MTrk` chunks in the file.
        found: usize,
    },
    /// Metrical timing with zero ticks per beat.
    #[error("the header gives zero ticks per beat")]
    ZeroTicksPerBeat,
    /// SMPTE timing with zero ticks per frame.
    #[error("the header gives SMPTE timing with zero ticks per frame")]
    ZeroTicksPerFrame,
    /// An event that `midly` cannot decode.
    #[error("malformed event in track {track} at byte {offset}: {reason}")]
    Malformed {
        /// Track index (0-based).
        track: usize,
        /// Byte offset of the event in the file.
        offset: usize,
        /// The decoder's reason.
        reason: String,
    },
    /// A tempo event of 0 µs per beat.
    #[error("zero tempo (0 µs per beat) in track {track} at tick {tick}")]
    ZeroTempo {
        /// Track index (0-based).
        track: usize,
        /// Absolute tick of the event.
        tick: u64,
    },
    /// The last event lies implausibly late (see [`MAX_SECONDS`]).
    #[error("the file lasts {seconds:.0} s, more than the {MAX_SECONDS} s a performance can")]
    TooLong {
        /// Time of the last event, in seconds.
        seconds: f64,
    },
    /// No notes in the piano range.
    #[error("no piano notes ({out_of_range} notes outside 21..=108 were dropped)")]
    NoNotes {
        /// Notes dropped for their pitch.
        out_of_range: usize,
    },
}

/// A MIDI file that could not be read, with its path.
#[derive(Debug, thiserror::Error)]
pub enum MidiFileError {
    /// The file could not be read from disk.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file was read but its contents are not a usable performance.
    #[error("{}: {reason}", path.display())]
    Midi {
        /// The file.
        path: PathBuf,
        /// Why its bytes were rejected.
        reason: MidiError,
    },
}

/// Reads the MIDI file at `path`; the piece is named after the file name.
pub fn read_midi_file(path: &Path, config: &MidiConfig) -> Result<MidiRead, MidiFileError> {
    let bytes = std::fs::read(path).map_err(|source| MidiFileError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let name = path
        .file_name()
        .map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
    read_midi(&bytes, name, config).map_err(|reason| MidiFileError::Midi {
        path: path.to_path_buf(),
        reason,
    })
}

/// Reads a Standard MIDI File from `bytes` into a piece called `name`.
pub fn read_midi(bytes: &[u8], name: impl Into<String>, config: &MidiConfig) -> Result<MidiRead, MidiError> {
    let file = frame(bytes)?;
    let (events, tempos, end_tick) = decode_tracks(&file.tracks)?;
    let clock = Clock::new(file.timing, tempos);
    let end_seconds = clock.seconds(end_tick);
    if end_seconds > MAX_SECONDS {
        return Err(MidiError::TooLong { seconds: end_seconds });
    }
    let (raw_notes, mut stats) = pair_notes(&events, end_tick, config.sustain_threshold);
    let mut notes = Vec::with_capacity(raw_notes.len());
    for raw in raw_notes {
        if PIANO_PITCHES.contains(&raw.pitch) {
            let note = Note {
                pitch: raw.pitch,
                start: clock.seconds(raw.start),
                end: clock.seconds(raw.end),
                velocity: raw.velocity,
            };
            notes.push((note, raw.velocity_offset));
        } else {
            stats.out_of_range += 1;
        }
    }
    if notes.is_empty() {
        return Err(MidiError::NoNotes {
            out_of_range: stats.out_of_range,
        });
    }
    // Piece::new's order (stable, by start then pitch), kept with the offsets;
    // Piece::new keeps notes already in that order as they are.
    notes.sort_by(|(a, _), (b, _)| a.start.total_cmp(&b.start).then(a.pitch.cmp(&b.pitch)));
    let (notes, velocity_offsets) = notes.into_iter().unzip();
    Ok(MidiRead {
        piece: Piece::new(name, notes),
        stats,
        warnings: file.warnings,
        velocity_offsets,
    })
}

/// Why velocities could not be written into a file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SetVelocityError {
    /// Not one velocity per offset.
    #[error("{velocities} velocities for {notes} notes")]
    Count {
        /// Notes (offsets) given.
        notes: usize,
        /// Velocities given.
        velocities: usize,
    },
    /// An offset past the end or at a byte no velocity can be (0, or a
    /// status byte): the offsets are not of these bytes.
    #[error("byte {offset} is not the velocity of a note-on")]
    NotAVelocity {
        /// The offset.
        offset: usize,
    },
}

/// The file `bytes` with the velocity byte at each of `offsets` (from
/// [`MidiRead::velocity_offsets`] of the same bytes) set to the matching
/// entry of `velocities`, clamped to 1..=127: a note-on of velocity 0 would
/// be a note-off. Every other byte (timing, pedal, other events, running
/// status) is kept as it is, so the file reads back as the same notes.
pub fn set_velocities(bytes: &[u8], offsets: &[usize], velocities: &[u8]) -> Result<Vec<u8>, SetVelocityError> {
    if offsets.len() != velocities.len() {
        return Err(SetVelocityError::Count {
            notes: offsets.len(),
            velocities: velocities.len(),
        });
    }
    let mut out = bytes.to_vec();
    for (&offset, &velocity) in offsets.iter().zip(velocities) {
        match out.get_mut(offset) {
            // A velocity byte of a sounding note-on is 1..=127.
            Some(byte) if (1..=127).contains(byte) => *byte = velocity.clamp(1, 127),
            _ => return Err(SetVelocityError::NotAVelocity { offset }),
        }
    }
    Ok(out)
}

/// Ticks per beat of the files [`write_piece`] writes; at its fixed 120
/// beats per minute a tick is 1/960 s.
const WRITE_TICKS_PER_BEAT: u16 = 480;

/// A type-0 Standard MIDI File of `piece`'s notes on channel 0 at 120 beats
/// per minute (a tick is 1/960 s, so times are rounded to about 1 ms), for
/// pieces that come without a file of their own (parquet rows). Notes are
/// already pedal-extended, so it has no pedal events.
pub fn write_piece(piece: &Piece) -> Vec<u8> {
    use midly::num::{u4, u7, u15, u28};
    use midly::{Format, Header, Smf, Timing as SmfTiming, TrackEvent};
    let ticks_per_second = f64::from(WRITE_TICKS_PER_BEAT) * 2.0;
    let tick = |seconds: f64| (seconds.max(0.0) * ticks_per_second).round() as u64;
    // (tick, off before on at one tick, pitch, velocity)
    let mut events: Vec<(u64, u8, u8, u8)> = Vec::with_capacity(2 * piece.notes.len());
    for note in &piece.notes {
        events.push((tick(note.start), 1, note.pitch, note.velocity.clamp(1, 127)));
        events.push((tick(note.end).max(tick(note.start)), 0, note.pitch, 0));
    }
    events.sort_by_key(|&(at, order, ..)| (at, order));
    let mut track = Vec::with_capacity(events.len() + 1);
    let mut last = 0u64;
    for (at, _, pitch, velocity) in events {
        let delta = u28::new(u32::try_from(at - last).unwrap_or(u32::MAX).min(0x0FFF_FFFF));
        last = at;
        let message = if velocity == 0 {
            MidiMessage::NoteOff {
                key: u7::new(pitch & 0x7F),
                vel: u7::new(0),
            }
        } else {
            MidiMessage::NoteOn {
                key: u7::new(pitch & 0x7F),
                vel: u7::new(velocity),
            }
        };
        track.push(TrackEvent {
            delta,
            kind: TrackEventKind::Midi {
                channel: u4::new(0),
                message,
            },
        });
    }
    track.push(TrackEvent {
        delta: u28::new(0),
        kind: TrackEventKind::Meta(MetaMessage::EndOfTrack),
    });
    let smf = Smf {
        header: Header::new(Format::SingleTrack, SmfTiming::Metrical(u15::new(WRITE_TICKS_PER_BEAT))),
        tracks: vec![track],
    };
    let mut bytes = Vec::new();
    smf.write_std(&mut bytes).expect("writing to memory does not fail");
    bytes
}

/// How ticks become seconds, as the header says.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Timing {
    /// Ticks per quarter note; seconds follow the tempo map.
    Metrical(u16),
    /// A fixed number of ticks per second (SMPTE frames times subframes).
    Timecode(f64),
}

/// The checked chunk layout of a file: its timing, the body of each track,
/// and what was skipped.
struct Framed<'a> {
    timing: Timing,
    tracks: Vec<Track<'a>>,
    warnings: Vec<MidiWarning>,
}

/// One `MTrk` chunk body and where it starts in the file.
struct Track<'a> {
    offset: usize,
    body: &'a [u8],
}

/// Checks the header and the chunks up to the last declared track; returns
/// the timing, the tracks, and a warning for each skipped chunk and for any
/// bytes after the last track.
fn frame(bytes: &[u8]) -> Result<Framed<'_>, MidiError> {
    if bytes.is_empty() {
        return Err(MidiError::Empty);
    }
    if !bytes.starts_with(b"MThd") {
        return Err(MidiError::NotMidi);
    }
    let (_, header) = chunk_at(bytes, 0)?;
    let field = |at: usize| {
        header
            .get(at..at + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
            .ok_or_else(|| MidiError::BadHeader {
                reason: format!("{} bytes long, expected at least 6", header.len()),
            })
    };
    let (format, declared, division) = (field(0)?, field(2)?, field(4)?);
    match format {
        0 | 1 => {}
        2 => return Err(MidiError::Sequential),
        other => {
            return Err(MidiError::BadHeader {
                reason: format!("unknown format {other}"),
            });
        }
    }
    if format == 0 && declared != 1 {
        return Err(MidiError::BadHeader {
            reason: format!("type 0 with {declared} tracks, expected 1"),
        });
    }
    let timing = timing(division)?;
    let mut tracks = Vec::new();
    let mut warnings = Vec::new();
    let mut offset = 8 + header.len();
    while tracks.len() < usize::from(declared) {
        if offset >= bytes.len() {
            return Err(MidiError::TrackCount {
                declared,
                found: tracks.len(),
            });
        }
        let (id, body) = chunk_at(bytes, offset)?;
        match id {
            b"MTrk" => tracks.push(Track {
                offset: offset + 8,
                body,
            }),
            b"MThd" => warnings.push(MidiWarning::SecondHeader { offset }),
            _ => warnings.push(MidiWarning::UnknownChunk {
                offset,
                id: id.escape_ascii().to_string(),
                length: body.len(),
            }),
        }
        offset += 8 + body.len();
    }
    if let Some(length) = bytes.len().checked_sub(offset).filter(|&n| n > 0) {
        warnings.push(MidiWarning::TrailingBytes {
            offset,
            length,
            tracks: declared,
        });
    }
    Ok(Framed {
        timing,
        tracks,
        warnings,
    })
}

/// The chunk starting at `offset`: its 4-byte type and its body; `Truncated`
/// when its 8-byte header or its declared body runs past the end of `bytes`.
fn chunk_at(bytes: &[u8], offset: usize) -> Result<(&[u8; 4], &[u8]), MidiError> {
    let rest = bytes.get(offset..).unwrap_or_default();
    let truncated = |needed: u64| MidiError::Truncated {
        offset,
        needed,
        available: rest.len(),
    };
    let (Some(id), Some(length)) = (rest.first_chunk::<4>(), rest.get(4..8)) else {
        return Err(truncated(8));
    };
    let needed = 8 + u64::from(u32::from_be_bytes([length[0], length[1], length[2], length[3]]));
    let body = usize::try_from(needed)
        .ok()
        .and_then(|end| rest.get(8..end))
        .ok_or_else(|| truncated(needed))?;
    Ok((id, body))
}

/// Decodes the header's division field.
fn timing(division: u16) -> Result<Timing, MidiError> {
    let [high, low] = division.to_be_bytes();
    if high & 0x80 == 0 {
        return match division {
            0 => Err(MidiError::ZeroTicksPerBeat),
            ticks => Ok(Timing::Metrical(ticks)),
        };
    }
    // SMPTE: the high byte is minus the frames per second, in two's complement.
    let fps = match high.wrapping_neg() {
        24 => 24.0,
        25 => 25.0,
        29 => 30_000.0 / 1_001.0,
        30 => 30.0,
        other => {
            return Err(MidiError::BadHeader {
                reason: format!("SMPTE timing with {other} frames per second"),
            });
        }
    };
    match low {
        0 => Err(MidiError::ZeroTicksPerFrame),
        subframes => Ok(Timing::Timecode(fps * f64::from(subframes))),
    }
}

/// A channel event that matters for notes, at an absolute tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Event {
    tick: u64,
    channel: u8,
    kind: EventKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EventKind {
    /// `velocity_offset`: where its velocity byte is in the file.
    On {
        pitch: u8,
        velocity: u8,
        velocity_offset: usize,
    },
    Off {
        pitch: u8,
    },
    Pedal {
        value: u8,
    },
}

/// A tempo change: from `tick` on, a beat lasts `us_per_beat` microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Tempo {
    tick: u64,
    us_per_beat: u32,
}

/// Decodes every track; returns the note and pedal events of all tracks
/// merged in tick order, the tempo changes in tick order, and the last tick.
fn decode_tracks(tracks: &[Track<'_>]) -> Result<(Vec<Event>, Vec<Tempo>, u64), MidiError> {
    let mut events = Vec::new();
    let mut tempos = Vec::new();
    let mut end_tick = 0u64;
    for (index, track) in tracks.iter().enumerate() {
        let mut tick = 0u64;
        let mut iter = EventIter::new(track.body);
        loop {
            let offset = track.offset + (track.body.len() - iter.unread().len());
            let Some(event) = iter.next() else { break };
            // A channel event ends with its last data byte: a note-on's velocity.
            let last_byte = track.offset + (track.body.len() - iter.unread().len()).saturating_sub(1);
            let event = event.map_err(|err| MidiError::Malformed {
                track: index,
                offset,
                reason: err.to_string(),
            })?;
            tick = tick.saturating_add(u64::from(event.delta.as_int()));
            match event.kind {
                TrackEventKind::Midi { channel, message } => {
                    let channel = channel.as_int();
                    let kind = match message {
                        MidiMessage::NoteOn { key, vel } if vel.as_int() > 0 => EventKind::On {
                            pitch: key.as_int(),
                            velocity: vel.as_int(),
                            velocity_offset: last_byte,
                        },
                        MidiMessage::NoteOn { key, .. } | MidiMessage::NoteOff { key, .. } => {
                            EventKind::Off { pitch: key.as_int() }
                        }
                        MidiMessage::Controller { controller, value } if controller.as_int() == SUSTAIN_CONTROLLER => {
                            EventKind::Pedal { value: value.as_int() }
                        }
                        _ => continue,
                    };
                    events.push(Event { tick, channel, kind });
                }
                TrackEventKind::Meta(MetaMessage::Tempo(us)) => match us.as_int() {
                    0 => return Err(MidiError::ZeroTempo { track: index, tick }),
                    us_per_beat => tempos.push(Tempo { tick, us_per_beat }),
                },
                _ => {}
            }
        }
        end_tick = end_tick.max(tick);
    }
    // Stable sorts: equal ticks keep track order, then file order.
    events.sort_by_key(|e| e.tick);
    tempos.sort_by_key(|t| t.tick);
    Ok((events, tempos, end_tick))
}

/// Converts ticks to seconds.
#[derive(Debug, Clone, PartialEq)]
enum Clock {
    /// Piecewise-linear tempo map, one segment per tempo change.
    TempoMap(Vec<Segment>),
    /// A fixed rate.
    TicksPerSecond(f64),
}

/// From `tick` on (until the next segment), time advances `seconds_per_tick`
/// per tick, starting from `seconds`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Segment {
    tick: u64,
    seconds: f64,
    seconds_per_tick: f64,
}

impl Segment {
    fn seconds_at(&self, tick: u64) -> f64 {
        self.seconds + tick.saturating_sub(self.tick) as f64 * self.seconds_per_tick
    }
}

impl Clock {
    /// The clock for `timing`; `tempos` (sorted by tick) only matter for metrical timing.
    fn new(timing: Timing, tempos: Vec<Tempo>) -> Clock {
        match timing {
            Timing::Timecode(ticks_per_second) => Clock::TicksPerSecond(ticks_per_second),
            Timing::Metrical(ticks_per_beat) => {
                let rate = |us_per_beat: u32| f64::from(us_per_beat) / (f64::from(ticks_per_beat) * 1_000_000.0);
                let mut segments = vec![Segment {
                    tick: 0,
                    seconds: 0.0,
                    seconds_per_tick: rate(DEFAULT_TEMPO_US_PER_BEAT),
                }];
                for tempo in tempos {
                    let seconds_per_tick = rate(tempo.us_per_beat);
                    match segments.last_mut() {
                        // Several changes at one tick: the last one holds.
                        Some(last) if last.tick == tempo.tick => {
                            last.seconds_per_tick = seconds_per_tick;
                        }
                        Some(last) => {
                            let seconds = last.seconds_at(tempo.tick);
                            segments.push(Segment {
                                tick: tempo.tick,
                                seconds,
                                seconds_per_tick,
                            });
                        }
                        None => {}
                    }
                }
                Clock::TempoMap(segments)
            }
        }
    }

    /// Seconds from the start of the file to `tick`.
    fn seconds(&self, tick: u64) -> f64 {
        match self {
            Clock::TicksPerSecond(rate) => tick as f64 / rate,
            Clock::TempoMap(segments) => {
                let after = segments.partition_point(|s| s.tick <= tick);
                after
                    .checked_sub(1)
                    .and_then(|i| segments.get(i))
                    .map_or(0.0, |s| s.seconds_at(tick))
            }
        }
    }
}

/// A note in ticks, before conversion to seconds and the pitch filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TickNote {
    pitch: u8,
    start: u64,
    end: u64,
    velocity: u8,
    velocity_offset: usize,
}

/// Pairs note-ons with their ends (see the module docs for the rules).
fn pair_notes(events: &[Event], end_tick: u64, sustain_threshold: Option<u8>) -> (Vec<TickNote>, MidiStats) {
    const KEYS: usize = 16 * 128;
    let key = |channel: u8, pitch: u8| usize::from(channel & 0x0F) * 128 + usize::from(pitch & 0x7F);
    let mut notes: Vec<TickNote> = Vec::new();
    let mut stats = MidiStats::default();
    // Index into `notes` of the note held down, and of the note released while
    // the pedal was down, per channel and pitch.
    let mut held: Vec<Option<usize>> = vec![None; KEYS];
    let mut ringing: Vec<Option<usize>> = vec![None; KEYS];
    let mut pedal_down = [false; 16];

    for event in events {
        let channel = usize::from(event.channel & 0x0F);
        match event.kind {
            EventKind::On {
                pitch,
                velocity,
                velocity_offset,
            } => {
                let k = key(event.channel, pitch);
                if let Some(index) = ringing[k].take() {
                    end_ringing(&mut notes, &mut stats, index, event.tick);
                }
                if let Some(note) = held[k].take().and_then(|i| notes.get_mut(i)) {
                    note.end = event.tick;
                    stats.retriggered += 1;
                }
                held[k] = Some(notes.len());
                notes.push(TickNote {
                    pitch,
                    start: event.tick,
                    end: event.tick,
                    velocity,
                    velocity_offset,
                });
            }
            EventKind::Off { pitch } => {
                let k = key(event.channel, pitch);
                if let Some(index) = held[k].take() {
                    if let Some(note) = notes.get_mut(index) {
                        note.end = event.tick;
                    }
                    if pedal_down[channel] {
                        ringing[k] = Some(index);
                    }
                }
            }
            EventKind::Pedal { value } => {
                let down = sustain_threshold.is_some_and(|threshold| value >= threshold);
                if pedal_down[channel] && !down {
                    for slot in &mut ringing[channel * 128..(channel + 1) * 128] {
                        if let Some(index) = slot.take() {
                            end_ringing(&mut notes, &mut stats, index, event.tick);
                        }
                    }
                }
                pedal_down[channel] = down;
            }
        }
    }
    for slot in &mut ringing {
        if let Some(index) = slot.take() {
            end_ringing(&mut notes, &mut stats, index, end_tick);
        }
    }
    for slot in &mut held {
        if let Some(note) = slot.take().and_then(|i| notes.get_mut(i)) {
            note.end = end_tick;
            stats.unterminated += 1;
        }
    }
    (notes, stats)
}

/// Ends a note that was released while the pedal was down at `tick`.
fn end_ringing(notes: &mut [TickNote], stats: &mut MidiStats, index: usize, tick: u64) {
    if let Some(note) = notes.get_mut(index)
        && tick > note.end
    {
        note.end = tick;
        stats.sustained += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A chunk: `id`, the body's length (big-endian), the body.
    fn chunk(id: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let length = u32::try_from(body.len()).unwrap().to_be_bytes();
        [id.as_slice(), &length, body].concat()
    }

    /// A track body: `pitch` on at tick 0 and off at tick 96, then end of track.
    fn note_track(pitch: u8) -> Vec<u8> {
        chunk(
            b"MTrk",
            &[0x00, 0x90, pitch, 64, 0x60, 0x80, pitch, 0, 0x00, 0xFF, 0x2F, 0x00],
        )
    }

    /// A type 1 file, 96 ticks per beat, with two tracks: pitch 60, then pitch 64.
    fn two_tracks() -> Vec<u8> {
        let header = chunk(b"MThd", &[0, 1, 0, 2, 0, 96]);
        [header, note_track(60), note_track(64)].concat()
    }

    fn read(bytes: &[u8]) -> Result<MidiRead, MidiError> {
        read_midi(bytes, "t", &MidiConfig::default())
    }

    #[test]
    fn velocities_are_rewritten_in_place_and_read_back_on_the_same_notes() {
        // Track 2 uses running status for its note-off-as-note-on.
        let running = chunk(
            b"MTrk",
            &[
                0x00, 0x90, 62, 50, 0x10, 0xB0, 64, 127, 0x20, 0x90, 62, 0, 0x00, 0xFF, 0x2F, 0x00,
            ],
        );
        let bytes = [
            chunk(b"MThd", &[0, 1, 0, 3, 0, 96]),
            note_track(60),
            note_track(64),
            running,
        ]
        .concat();
        let before = read(&bytes).unwrap();
        let notes: Vec<(u8, u8)> = before.piece.notes.iter().map(|n| (n.pitch, n.velocity)).collect();
        assert_eq!(notes, [(60, 64), (62, 50), (64, 64)]);
        let written = set_velocities(&bytes, &before.velocity_offsets, &[1, 0, 127]).unwrap();
        let changed: Vec<usize> = (0..bytes.len()).filter(|&i| bytes[i] != written[i]).collect();
        assert_eq!(changed.len(), 3, "only the velocity bytes change");
        let after = read(&written).unwrap();
        let velocities: Vec<u8> = after.piece.notes.iter().map(|n| n.velocity).collect();
        assert_eq!(velocities, [1, 1, 127], "0 is written as 1, which stays a note-on");
        for (a, b) in before.piece.notes.iter().zip(&after.piece.notes) {
            assert_eq!((a.pitch, a.start, a.end), (b.pitch, b.start, b.end));
        }
        assert_eq!(
            set_velocities(&bytes, &before.velocity_offsets, &[1]),
            Err(SetVelocityError::Count {
                notes: 3,
                velocities: 1
            })
        );
        // Byte 23 is a note-on status (0x90); the last offset is past the end.
        for offset in [23, bytes.len()] {
            assert_eq!(
                set_velocities(&bytes, &[offset], &[1]),
                Err(SetVelocityError::NotAVelocity { offset })
            );
        }
    }

    #[test]
    fn a_written_piece_reads_back_within_a_tick() {
        let piece = Piece::new(
            "p",
            vec![
                Note {
                    pitch: 60,
                    start: 0.0,
                    end: 0.5,
                    velocity: 40,
                },
                Note {
                    pitch: 64,
                    start: 0.25,
                    end: 1.0,
                    velocity: 100,
                },
                Note {
                    pitch: 60,
                    start: 0.5,
                    end: 0.75,
                    velocity: 70,
                },
            ],
        );
        let back = read(&write_piece(&piece)).unwrap().piece;
        assert_eq!(back.notes.len(), 3);
        for (a, b) in piece.notes.iter().zip(&back.notes) {
            assert_eq!((a.pitch, a.velocity), (b.pitch, b.velocity));
            assert!(
                (a.start - b.start).abs() < 1e-3 && (a.end - b.end).abs() < 1e-3,
                "{a:?} {b:?}"
            );
        }
    }

    #[test]
    fn a_clean_file_has_no_warnings() {
        let got = read(&two_tracks()).unwrap();
        assert_eq!(got.piece.notes.len(), 2);
        assert_eq!(got.warnings, vec![]);
    }

    #[test]
    fn trailing_zeros_and_partial_chunks_are_ignored_with_a_warning() {
        let clean = read(&two_tracks()).unwrap();
        let end = two_tracks().len();
        for tail in [vec![0u8; 37], b"MTr".to_vec(), b"MTrk\x00\x00\x01\x00abc".to_vec()] {
            let bytes = [two_tracks(), tail.clone()].concat();
            let got = read(&bytes).unwrap();
            assert_eq!((&got.piece, got.stats), (&clean.piece, clean.stats));
            let warning = MidiWarning::TrailingBytes {
                offset: end,
                length: tail.len(),
                tracks: 2,
            };
            assert_eq!(got.warnings, vec![warning]);
        }
        let got = read(&[two_tracks(), vec![0; 37]].concat()).unwrap();
        assert_eq!(
            got.warnings[0].to_string(),
            format!("ignored 37 trailing bytes after the 2 declared tracks (from byte {end})")
        );
    }

    #[test]
    fn a_second_file_after_the_tracks_is_ignored_with_a_warning() {
        let bytes = [two_tracks(), chunk(b"MThd", &[0, 0, 0, 1, 0, 96]), note_track(70)].concat();
        let got = read(&bytes).unwrap();
        assert_eq!(got.piece, read(&two_tracks()).unwrap().piece);
        assert!(
            matches!(got.warnings.as_slice(), [MidiWarning::TrailingBytes { offset, .. }] if *offset == two_tracks().len()),
            "{:?}",
            got.warnings
        );
    }

    #[test]
    fn unknown_chunks_and_second_headers_among_the_tracks_are_skipped_with_a_warning() {
        let header = chunk(b"MThd", &[0, 1, 0, 2, 0, 96]);
        let first = [header, note_track(60)].concat();
        let alien = chunk(b"XF\x01H", &[7; 120]);
        let second_header = chunk(b"MThd", &[0, 0, 0, 1, 0, 96]);
        let bytes = [first.clone(), alien, second_header, note_track(64)].concat();
        let got = read(&bytes).unwrap();
        assert_eq!(got.piece, read(&two_tracks()).unwrap().piece);
        let at = first.len();
        assert_eq!(
            got.warnings,
            vec![
                MidiWarning::UnknownChunk {
                    offset: at,
                    id: "XF\\x01H".to_string(),
                    length: 120,
                },
                MidiWarning::SecondHeader { offset: at + 128 },
            ]
        );
        assert_eq!(
            got.warnings[0].to_string(),
            format!("ignored an unknown chunk \"XF\\x01H\" of 120 bytes at byte {at}")
        );
        assert_eq!(
            got.warnings[1].to_string(),
            format!("ignored a second MThd header at byte {}", at + 128)
        );
    }

    #[test]
    fn missing_or_cut_tracks_and_broken_headers_stay_errors() {
        let full = two_tracks();
        let one_track = &full[..full.len() - note_track(64).len()];
        assert_eq!(read(one_track), Err(MidiError::TrackCount { declared: 2, found: 1 }));
        // A partial chunk, or an unknown chunk, where the second track should be.
        let partial = [one_track, b"MTr"].concat();
        assert!(matches!(read(&partial), Err(MidiError::Truncated { needed: 8, .. })));
        let alien = [one_track, &chunk(b"XFIH", b"data")].concat();
        assert_eq!(read(&alien), Err(MidiError::TrackCount { declared: 2, found: 1 }));
        // The last track's declared length runs past the end of the file.
        let cut = &full[..full.len() - 1];
        let at = one_track.len();
        assert_eq!(
            read(cut),
            Err(MidiError::Truncated {
                offset: at,
                needed: note_track(64).len() as u64,
                available: note_track(64).len() - 1,
            })
        );
        // The header chunk runs past the end, or is too short.
        assert!(matches!(read(&full[..10]), Err(MidiError::Truncated { offset: 0, .. })));
        let short = [chunk(b"MThd", &[0, 1, 0, 2]), note_track(60), note_track(64)].concat();
        assert!(matches!(read(&short), Err(MidiError::BadHeader { .. })));
    }

    proptest! {
        #[test]
        fn appended_bytes_never_change_the_notes(tail in proptest::collection::vec(any::<u8>(), 0..300)) {
            let clean = read(&two_tracks()).unwrap();
            let got = read(&[two_tracks(), tail.clone()].concat());
            let got = got.map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(&got.piece, &clean.piece);
            prop_assert_eq!(got.stats, clean.stats);
            prop_assert_eq!(got.warnings.len(), usize::from(!tail.is_empty()));
        }
    }

    fn on(tick: u64, pitch: u8) -> Event {
        Event {
            tick,
            channel: 0,
            kind: EventKind::On {
                pitch,
                velocity: 80,
                velocity_offset: 0,
            },
        }
    }
    fn off(tick: u64, pitch: u8) -> Event {
        Event {
            tick,
            channel: 0,
            kind: EventKind::Off { pitch },
        }
    }
    fn pedal(tick: u64, value: u8) -> Event {
        Event {
            tick,
            channel: 0,
            kind: EventKind::Pedal { value },
        }
    }
    fn spans(notes: &[TickNote]) -> Vec<(u8, u64, u64)> {
        notes.iter().map(|n| (n.pitch, n.start, n.end)).collect()
    }

    #[test]
    fn tempo_map_integrates_piecewise() {
        // 100 ticks per beat; 0.5 s per beat, then 1 s per beat from tick 200.
        let clock = Clock::new(
            Timing::Metrical(100),
            vec![Tempo {
                tick: 200,
                us_per_beat: 1_000_000,
            }],
        );
        assert_eq!(clock.seconds(0), 0.0);
        assert_eq!(clock.seconds(100), 0.5);
        assert_eq!(clock.seconds(200), 1.0);
        assert_eq!(clock.seconds(300), 2.0);
    }

    #[test]
    fn the_last_of_several_tempo_changes_at_one_tick_holds() {
        let clock = Clock::new(
            Timing::Metrical(10),
            vec![
                Tempo {
                    tick: 0,
                    us_per_beat: 2_000_000,
                },
                Tempo {
                    tick: 0,
                    us_per_beat: 1_000_000,
                },
            ],
        );
        assert_eq!(clock.seconds(10), 1.0);
    }

    #[test]
    fn smpte_division_gives_ticks_per_second() {
        // -25 fps (0xE7), 40 ticks per frame: 1000 ticks per second.
        assert_eq!(timing(0xE728), Ok(Timing::Timecode(1000.0)));
        // -29 (drop frame) is 29.97 fps.
        assert_eq!(timing(0xE302), Ok(Timing::Timecode(2.0 * 30_000.0 / 1_001.0)));
        assert_eq!(timing(0xE700), Err(MidiError::ZeroTicksPerFrame));
        assert!(matches!(timing(0x9C01), Err(MidiError::BadHeader { .. })));
        assert_eq!(timing(0), Err(MidiError::ZeroTicksPerBeat));
        assert_eq!(timing(384), Ok(Timing::Metrical(384)));
    }

    #[test]
    fn a_released_note_rings_until_the_pedal_lifts() {
        let events = [pedal(0, 100), on(10, 60), off(20, 60), pedal(50, 0)];
        let (notes, stats) = pair_notes(&events, 100, Some(62));
        assert_eq!(spans(&notes), vec![(60, 10, 50)]);
        assert_eq!(stats.sustained, 1);
    }

    #[test]
    fn a_ringing_note_ends_when_its_pitch_is_struck_again() {
        let events = [
            pedal(0, 127),
            on(10, 60),
            off(20, 60),
            on(30, 60),
            off(40, 60),
            pedal(90, 0),
        ];
        let (notes, _) = pair_notes(&events, 100, Some(62));
        assert_eq!(spans(&notes), vec![(60, 10, 30), (60, 30, 90)]);
    }

    #[test]
    fn the_threshold_is_inclusive_and_sustain_can_be_off() {
        let events = [pedal(0, 62), on(10, 60), off(20, 60), pedal(50, 61)];
        assert_eq!(spans(&pair_notes(&events, 100, Some(62)).0), vec![(60, 10, 50)]);
        assert_eq!(spans(&pair_notes(&events, 100, Some(63)).0), vec![(60, 10, 20)]);
        assert_eq!(spans(&pair_notes(&events, 100, None).0), vec![(60, 10, 20)]);
    }

    #[test]
    fn a_note_released_after_the_pedal_lifts_is_not_extended() {
        let events = [pedal(0, 127), on(10, 60), pedal(15, 0), off(20, 60)];
        let (notes, stats) = pair_notes(&events, 100, Some(62));
        assert_eq!(spans(&notes), vec![(60, 10, 20)]);
        assert_eq!(stats.sustained, 0);
    }

    #[test]
    fn the_pedal_of_one_channel_does_not_hold_another() {
        let mut other = on(10, 60);
        other.channel = 1;
        let mut other_off = off(20, 60);
        other_off.channel = 1;
        let events = [pedal(0, 127), other, other_off, pedal(50, 0)];
        assert_eq!(spans(&pair_notes(&events, 100, Some(62)).0), vec![(60, 10, 20)]);
    }

    #[test]
    fn retriggers_and_missing_note_offs_are_counted() {
        let events = [on(0, 60), on(10, 60), on(20, 64)];
        let (notes, stats) = pair_notes(&events, 100, None);
        assert_eq!(spans(&notes), vec![(60, 0, 10), (60, 10, 100), (64, 20, 100)]);
        assert_eq!(stats.retriggered, 1);
        assert_eq!(stats.unterminated, 2);
    }

    #[test]
    fn pedal_held_to_the_end_rings_to_the_end() {
        let events = [pedal(0, 127), on(10, 60), off(20, 60)];
        assert_eq!(spans(&pair_notes(&events, 70, Some(62)).0), vec![(60, 10, 70)]);
    }
}
