//! The MIDI reader on hand-built files: timing, tempo maps, sustain, channels,
//! running status, and the errors for unusable files.

mod data_support;

use data_support::{Ev, chunk, smf, track_body};
use runner_data::midi::{MidiConfig, MidiError, MidiFileError, MidiRead, MidiWarning, read_midi, read_midi_file};

const SUSTAIN: MidiConfig = MidiConfig {
    sustain_threshold: Some(62),
};
const NO_SUSTAIN: MidiConfig = MidiConfig {
    sustain_threshold: None,
};

fn read(bytes: &[u8], config: &MidiConfig) -> MidiRead {
    read_midi(bytes, "test", config).unwrap_or_else(|e| panic!("{e}"))
}

/// (pitch, start, end, velocity) of each note, times rounded to microseconds.
fn notes(read: &MidiRead) -> Vec<(u8, f64, f64, u8)> {
    let us = |t: f64| (t * 1e6).round() / 1e6;
    read.piece
        .notes
        .iter()
        .map(|n| (n.pitch, us(n.start), us(n.end), n.velocity))
        .collect()
}

fn type0(division: u16, events: &[(u32, Ev)]) -> Vec<u8> {
    smf(0, division, &[track_body(events, false)])
}

#[test]
fn default_tempo_is_half_a_second_per_beat() {
    // 480 ticks per beat, 500,000 µs per beat: 960 ticks = 1 s.
    let bytes = type0(480, &[(960, Ev::On(0, 60, 90)), (480, Ev::Off(0, 60))]);
    let r = read(&bytes, &SUSTAIN);
    assert_eq!(notes(&r), vec![(60, 1.0, 1.5, 90)]);
    assert_eq!(r.piece.name, "test");
}

#[test]
fn a_tempo_change_mid_file_gives_correct_seconds() {
    // Type 1: the tempo track halves the beat length at tick 960 (1.0 s); the
    // notes live in track 1.
    let tempo = track_body(&[(0, Ev::Tempo(500_000)), (960, Ev::Tempo(250_000))], false);
    let music = track_body(
        &[
            (480, Ev::On(0, 60, 80)), // tick 480: 0.5 s
            (960, Ev::Off(0, 60)),    // tick 1440: 1.0 + 480 * 0.25/480 = 1.25 s
            (480, Ev::On(0, 62, 81)), // tick 1920: 1.5 s
            (1920, Ev::Off(0, 62)),   // tick 3840: 2.5 s
        ],
        false,
    );
    let r = read(&smf(1, 480, &[tempo, music]), &SUSTAIN);
    assert_eq!(notes(&r), vec![(60, 0.5, 1.25, 80), (62, 1.5, 2.5, 81)]);
}

#[test]
fn tempo_events_in_any_track_shape_the_one_tempo_map() {
    // The tempo change sits in the last track, the notes in the first.
    let music = track_body(&[(0, Ev::On(0, 60, 80)), (1920, Ev::Off(0, 60))], false);
    let tempo = track_body(&[(960, Ev::Tempo(1_000_000))], false);
    let r = read(&smf(1, 480, &[music, tempo]), &SUSTAIN);
    // 960 ticks at 0.5 s per beat (1 s), then 960 ticks at 1 s per beat (2 s).
    assert_eq!(notes(&r), vec![(60, 0.0, 3.0, 80)]);
}

#[test]
fn smpte_timing_counts_ticks_per_second() {
    // 25 fps x 40 ticks per frame = 1000 ticks per second; tempo is ignored.
    let bytes = type0(
        0xE728,
        &[(0, Ev::Tempo(100_000)), (500, Ev::On(0, 60, 70)), (250, Ev::Off(0, 60))],
    );
    assert_eq!(notes(&read(&bytes, &SUSTAIN)), vec![(60, 0.5, 0.75, 70)]);
}

#[test]
fn sustain_extends_released_notes_until_the_pedal_lifts_or_the_key_is_struck_again() {
    // 480 ticks per beat at 120 bpm: 960 ticks per second.
    let events = [
        (0, Ev::Cc(0, 64, 100)),  // pedal down at 0 s
        (0, Ev::On(0, 60, 50)),   // C4 at 0 s
        (0, Ev::On(0, 64, 51)),   // E4 at 0 s
        (480, Ev::Off(0, 60)),    // C4 released at 0.5 s (pedal down)
        (0, Ev::Off(0, 64)),      // E4 released at 0.5 s (pedal down)
        (480, Ev::On(0, 64, 52)), // E4 again at 1 s: the ringing E4 ends here
        (480, Ev::Off(0, 64)),    // released at 1.5 s (pedal down)
        (480, Ev::Cc(0, 64, 0)),  // pedal up at 2 s: C4 and the second E4 end
        (0, Ev::On(0, 67, 53)),   // G4 at 2 s, pedal up
        (480, Ev::Off(0, 67)),    // ends at 2.5 s, not extended
    ];
    let bytes = type0(480, &events);
    let sustained = read(&bytes, &SUSTAIN);
    assert_eq!(
        notes(&sustained),
        vec![
            (60, 0.0, 2.0, 50),
            (64, 0.0, 1.0, 51),
            (64, 1.0, 2.0, 52),
            (67, 2.0, 2.5, 53)
        ]
    );
    assert_eq!(sustained.stats.sustained, 3);
    let dry = read(&bytes, &NO_SUSTAIN);
    assert_eq!(
        notes(&dry),
        vec![
            (60, 0.0, 0.5, 50),
            (64, 0.0, 0.5, 51),
            (64, 1.0, 1.5, 52),
            (67, 2.0, 2.5, 53)
        ]
    );
    assert_eq!(dry.stats.sustained, 0);
}

#[test]
fn pedal_values_count_as_down_from_the_threshold_on() {
    let bytes = |value| {
        type0(
            480,
            &[
                (0, Ev::Cc(0, 64, value)),
                (0, Ev::On(0, 60, 50)),
                (480, Ev::Off(0, 60)),
                (480, Ev::Cc(0, 64, 0)),
            ],
        )
    };
    assert_eq!(notes(&read(&bytes(62), &SUSTAIN)), vec![(60, 0.0, 1.0, 50)]);
    assert_eq!(notes(&read(&bytes(61), &SUSTAIN)), vec![(60, 0.0, 0.5, 50)]);
    let strict = MidiConfig {
        sustain_threshold: Some(100),
    };
    assert_eq!(notes(&read(&bytes(99), &strict)), vec![(60, 0.0, 0.5, 50)]);
}

#[test]
fn running_status_and_velocity_zero_note_offs_are_understood() {
    let events = [
        (0, Ev::On(0, 60, 40)),
        (480, Ev::On(0, 60, 0)), // note-off as note-on with velocity 0
        (0, Ev::On(0, 62, 41)),
        (480, Ev::On(0, 62, 0)),
    ];
    let body = track_body(&events, true);
    // Only the first event carries a status byte.
    assert_eq!(body.iter().filter(|&&b| b == 0x90).count(), 1);
    let r = read(&smf(0, 480, &[body]), &SUSTAIN);
    assert_eq!(notes(&r), vec![(60, 0.0, 0.5, 40), (62, 0.5, 1.0, 41)]);
}

#[test]
fn all_channels_and_tracks_are_kept_and_pedals_are_per_channel() {
    let right = track_body(
        &[
            (0, Ev::Cc(0, 64, 127)),
            (0, Ev::On(0, 72, 60)),
            (480, Ev::Off(0, 72)),
            (480, Ev::Cc(0, 64, 0)),
        ],
        false,
    );
    let left = track_body(&[(0, Ev::On(1, 48, 61)), (480, Ev::Off(1, 48))], false);
    let r = read(&smf(1, 480, &[right, left]), &SUSTAIN);
    assert_eq!(notes(&r), vec![(48, 0.0, 0.5, 61), (72, 0.0, 1.0, 60)]);
}

#[test]
fn a_pedal_in_another_track_holds_the_same_channel() {
    // Type 1 tracks are merged like a synthesizer hears them.
    let pedal = track_body(&[(0, Ev::Cc(0, 64, 127)), (960, Ev::Cc(0, 64, 0))], false);
    let music = track_body(&[(0, Ev::On(0, 60, 60)), (480, Ev::Off(0, 60))], false);
    let r = read(&smf(1, 480, &[pedal, music]), &SUSTAIN);
    assert_eq!(notes(&r), vec![(60, 0.0, 1.0, 60)]);
}

#[test]
fn a_repeated_note_on_ends_the_sounding_note_and_unreleased_notes_end_at_the_end() {
    let events = [
        (0, Ev::On(0, 60, 40)),
        (480, Ev::On(0, 60, 41)),
        (480, Ev::Off(0, 60)),
        (0, Ev::On(0, 64, 42)),
        (960, Ev::Raw(vec![0xFF, 0x01, 0x01, b'x'])), // a text event at 2 s
    ];
    let r = read(&type0(480, &events), &NO_SUSTAIN);
    assert_eq!(
        notes(&r),
        vec![(60, 0.0, 0.5, 40), (60, 0.5, 1.0, 41), (64, 1.0, 2.0, 42)]
    );
    assert_eq!((r.stats.retriggered, r.stats.unterminated), (1, 1));
}

#[test]
fn notes_outside_the_piano_are_dropped_and_counted() {
    let events = [
        (0, Ev::On(9, 20, 40)),
        (0, Ev::On(0, 21, 41)),
        (0, Ev::On(0, 108, 42)),
        (0, Ev::On(0, 109, 43)),
        (480, Ev::Off(9, 20)),
        (0, Ev::Off(0, 21)),
        (0, Ev::Off(0, 108)),
        (0, Ev::Off(0, 109)),
    ];
    let r = read(&type0(480, &events), &SUSTAIN);
    assert_eq!(notes(&r), vec![(21, 0.0, 0.5, 41), (108, 0.0, 0.5, 42)]);
    assert_eq!(r.stats.out_of_range, 2);
    let drums = type0(480, &[(0, Ev::On(9, 20, 40)), (480, Ev::Off(9, 20))]);
    assert_eq!(
        read_midi(&drums, "d", &SUSTAIN),
        Err(MidiError::NoNotes { out_of_range: 1 })
    );
}

#[test]
fn unknown_chunks_are_skipped() {
    let mut bytes = smf(0, 480, &[track_body(&[(0, Ev::On(0, 60, 1))], false)]);
    bytes.extend(chunk(b"XFIH", b"vendor data"));
    assert_eq!(notes(&read(&bytes, &SUSTAIN)), vec![(60, 0.0, 0.0, 1)]);
    let warnings = read_midi(&bytes, "vendor", &SUSTAIN).unwrap().warnings;
    assert!(
        matches!(warnings[..], [MidiWarning::TrailingBytes { length: 19, .. }]),
        "{warnings:?}"
    );
}

#[test]
fn unusable_files_give_specific_errors() {
    let note = || track_body(&[(0, Ev::On(0, 60, 64)), (480, Ev::Off(0, 60))], false);
    let cases: Vec<(&str, Vec<u8>, MidiError)> = vec![
        ("empty", vec![], MidiError::Empty),
        ("text", b"hello, world".to_vec(), MidiError::NotMidi),
        ("type 2", smf(2, 480, &[note()]), MidiError::Sequential),
        (
            "zero tempo",
            type0(480, &[(0, Ev::Tempo(0)), (0, Ev::On(0, 60, 1))]),
            MidiError::ZeroTempo { track: 0, tick: 0 },
        ),
        ("zero division", smf(0, 0, &[note()]), MidiError::ZeroTicksPerBeat),
        (
            "zero subframes",
            smf(0, 0xE700, &[note()]),
            MidiError::ZeroTicksPerFrame,
        ),
        (
            "no notes",
            type0(480, &[(0, Ev::Cc(0, 64, 127))]),
            MidiError::NoNotes { out_of_range: 0 },
        ),
        (
            "missing track",
            {
                let mut b = smf(1, 480, &[note(), note()]);
                b.truncate(b.len() - note().len() - 8);
                b
            },
            MidiError::TrackCount { declared: 2, found: 1 },
        ),
        (
            "truncated",
            {
                let mut b = smf(0, 480, &[note()]);
                b.pop();
                b
            },
            MidiError::Truncated {
                offset: 14,
                needed: 8 + note().len() as u64,
                available: 8 + note().len() - 1,
            },
        ),
    ];
    for (what, bytes, expected) in cases {
        let got = read_midi(&bytes, what, &SUSTAIN);
        assert_eq!(got, Err(expected), "{what}");
    }
}

#[test]
fn a_second_header_after_the_tracks_is_read_past_with_a_warning() {
    // mido and symusic read such a file; so does runner, and says so.
    let note = track_body(&[(0, Ev::On(0, 60, 64)), (480, Ev::Off(0, 60))], false);
    let mut bytes = smf(0, 480, std::slice::from_ref(&note));
    bytes.extend(chunk(b"MThd", &[0, 0, 0, 1, 1, 224]));
    let read = read_midi(&bytes, "two headers", &SUSTAIN).unwrap();
    assert_eq!(notes(&read), vec![(60, 0.0, 0.5, 64)]);
    assert_eq!(
        read.warnings,
        vec![MidiWarning::TrailingBytes {
            offset: 14 + 8 + note.len(),
            length: 14,
            tracks: 1
        }]
    );
}

#[test]
fn malformed_events_and_huge_delta_times_are_errors() {
    // A system common status byte (0xF1) is not allowed in a file.
    let bad = type0(480, &[(0, Ev::On(0, 60, 64)), (0, Ev::Raw(vec![0xF1, 0x00]))]);
    let err = read_midi(&bad, "bad", &SUSTAIN).unwrap_err();
    assert!(matches!(err, MidiError::Malformed { track: 0, .. }), "{err}");
    // The largest delta time, 2^28 - 1 ticks, at 480 ticks per beat is 77 hours.
    let long = type0(480, &[(0, Ev::On(0, 60, 64)), (0x0FFF_FFFF, Ev::Off(0, 60))]);
    let err = read_midi(&long, "long", &SUSTAIN).unwrap_err();
    assert!(matches!(err, MidiError::TooLong { .. }), "{err}");
}

#[test]
fn file_errors_name_the_path() {
    let dir = std::env::temp_dir().join(format!("runner-data-midi-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("broken.mid");
    std::fs::write(&path, b"MThd").unwrap();
    let err = read_midi_file(&path, &SUSTAIN).unwrap_err();
    assert!(matches!(err, MidiFileError::Midi { .. }));
    let text = err.to_string();
    assert!(text.contains("broken.mid") && text.contains("truncated"), "{text}");
    let missing = read_midi_file(&dir.join("missing.mid"), &SUSTAIN).unwrap_err();
    assert!(matches!(missing, MidiFileError::Io { .. }));
    assert!(missing.to_string().contains("missing.mid"));
    std::fs::write(&path, type0(480, &[(0, Ev::On(0, 60, 1))])).unwrap();
    assert_eq!(read_midi_file(&path, &SUSTAIN).unwrap().piece.name, "broken.mid");
    std::fs::remove_dir_all(&dir).unwrap();
}
