//! The MIDI reader on hundreds of generated and mutated files: it never
//! panics, and files that are certainly broken are rejected with a reason.
//!
//! Mutations start from a generated file (two tracks, tempo changes, pedal,
//! running status) and from the bundled MAESTRO files, with a seeded RNG so
//! every run sees the same files.

mod data_support;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;

use data_support::{Ev, Rng, smf, track_body};
use runner_data::midi::{MidiConfig, MidiError, MidiRead, read_midi};

/// What a mutated file must do besides not panicking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// The file is certainly broken.
    Err,
    /// The file is valid.
    Ok,
    /// Anything but a panic (e.g. a flipped byte may still give a valid file).
    Either,
}

struct Case {
    what: String,
    bytes: Vec<u8>,
    expect: Expect,
}

fn generated() -> Vec<u8> {
    let tempo = track_body(
        &[
            (0, Ev::Tempo(500_000)),
            (700, Ev::Tempo(350_000)),
            (900, Ev::Tempo(650_000)),
        ],
        false,
    );
    let mut events = vec![(0, Ev::Cc(0, 64, 100))];
    for i in 0..60u8 {
        events.push((37, Ev::On(i % 2, 40 + i, 30 + i)));
        events.push((55, Ev::On(i % 2, 40 + i, 0)));
        if i % 7 == 0 {
            events.push((3, Ev::Cc(0, 64, if i % 14 == 0 { 0 } else { 120 })));
        }
    }
    let music = track_body(&events, true);
    smf(1, 384, &[tempo, music])
}

fn bundled() -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/bundled");
    (1..=10)
        .map(|i| {
            let name = format!("Maestro_{i}.mid");
            let bytes = std::fs::read(dir.join(&name)).expect("bundled file");
            (name, bytes)
        })
        .collect()
}

/// Byte offsets of the chunk length fields: (offset of the length, chunk end).
fn chunk_lengths(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 8 <= bytes.len() {
        let len = u32::from_be_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
        out.push((at + 4, at + 8 + len));
        at += 8 + len;
    }
    out
}

fn cases() -> Vec<Case> {
    let mut rng = Rng(0x5EED_CAFE);
    let mut sources = vec![("generated".to_string(), generated())];
    sources.extend(bundled());
    let mut cases = Vec::new();
    for (name, original) in &sources {
        cases.push(Case {
            what: format!("{name} unchanged"),
            bytes: original.clone(),
            expect: Expect::Ok,
        });
        // Truncation anywhere before the end: a chunk is cut short (or, at a
        // chunk boundary, a declared track is missing).
        for _ in 0..8 {
            let at = 1 + rng.below(original.len() - 1);
            cases.push(Case {
                what: format!("{name} truncated to {at} bytes"),
                bytes: original[..at].to_vec(),
                expect: Expect::Err,
            });
        }
        // Flipped bytes: anything but a panic.
        for flips in [1, 1, 2, 4, 16, 64] {
            let mut bytes = original.clone();
            let mut at = Vec::new();
            for _ in 0..flips {
                let i = rng.below(bytes.len());
                bytes[i] ^= 1 << rng.below(8);
                at.push(i);
            }
            cases.push(Case {
                what: format!("{name} with bits flipped at {at:?}"),
                bytes,
                expect: Expect::Either,
            });
        }
        // Flipped bytes inside the header chunk's first 8 bytes break the framing.
        let mut bytes = original.clone();
        let i = rng.below(4);
        bytes[i] ^= 0x20;
        cases.push(Case {
            what: format!("{name} with chunk id byte {i} changed"),
            bytes,
            expect: Expect::Err,
        });
        // Bogus chunk lengths: longer than the file is certainly broken; any
        // other value must merely not panic.
        for (field, end) in chunk_lengths(original) {
            let mut longer = original.clone();
            let bogus = (original.len() - end + 1 + rng.below(1 << 20)) as u32;
            let declared = (end - field - 4) as u32;
            longer[field..field + 4].copy_from_slice(&(declared + bogus).to_be_bytes());
            cases.push(Case {
                what: format!("{name} chunk length at byte {field} grown by {bogus}"),
                bytes: longer,
                expect: Expect::Err,
            });
            let mut random = original.clone();
            random[field..field + 4].copy_from_slice(&(rng.next() as u32).to_be_bytes());
            cases.push(Case {
                what: format!("{name} random chunk length at byte {field}"),
                bytes: random,
                expect: Expect::Either,
            });
            let mut shorter = original.clone();
            let cut = (rng.below(declared.max(1) as usize) as u32).min(declared);
            shorter[field..field + 4].copy_from_slice(&cut.to_be_bytes());
            cases.push(Case {
                what: format!("{name} chunk length at byte {field} cut to {cut}"),
                bytes: shorter,
                expect: Expect::Either,
            });
        }
        // Random garbage after a valid header chunk.
        let mut bytes = original[..14].to_vec();
        bytes.extend((0..rng.below(2000)).map(|_| rng.byte()));
        cases.push(Case {
            what: format!("{name} header then garbage"),
            bytes,
            expect: Expect::Either,
        });
    }
    // Hand-made broken files.
    let note = |p| vec![(0, Ev::On(0, p, 64)), (100, Ev::Off(0, p))];
    let zero_tempo = smf(
        0,
        96,
        &[track_body(
            &[note(60), vec![(50, Ev::Tempo(0))], note(62)].concat(),
            false,
        )],
    );
    let no_note_off = smf(
        0,
        96,
        &[track_body(&[(0, Ev::On(0, 60, 64)), (96, Ev::On(0, 64, 64))], false)],
    );
    let huge_delta = smf(0, 1, &[track_body(&[(0x0FFF_FFFF, Ev::On(0, 60, 64))], false)]);
    let type2 = smf(2, 96, &[track_body(&note(60), false)]);
    let mut riff = b"RIFF\x20\x00\x00\x00RMIDdata".to_vec();
    riff.extend(generated());
    let mut fixed = vec![
        ("zero tempo", zero_tempo, Expect::Err),
        ("notes without note-off", no_note_off, Expect::Ok),
        ("huge delta time", huge_delta, Expect::Err),
        ("type 2", type2, Expect::Err),
        ("RIFF-wrapped", riff, Expect::Err),
        ("empty", vec![], Expect::Err),
        ("one byte", vec![b'M'], Expect::Err),
        ("header id only", b"MThd".to_vec(), Expect::Err),
        ("header without tracks", smf(1, 96, &[]), Expect::Err),
        ("short header", b"MThd\x00\x00\x00\x02\x00\x01".to_vec(), Expect::Err),
        ("text", b"This is not a MIDI file.\n".to_vec(), Expect::Err),
        ("png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR".to_vec(), Expect::Err),
    ];
    for i in 0..20 {
        let bytes: Vec<u8> = (0..rng.below(500)).map(|_| rng.byte()).collect();
        fixed.push((if i % 2 == 0 { "random bytes" } else { "random" }, bytes, Expect::Err));
    }
    for (what, bytes, expect) in fixed {
        cases.push(Case {
            what: what.to_string(),
            bytes,
            expect,
        });
    }
    cases
}

#[test]
fn the_reader_never_panics_and_rejects_broken_files_with_a_reason() {
    let cases = cases();
    assert!(cases.len() >= 200, "only {} cases", cases.len());
    let mut failures = Vec::new();
    let (mut ok, mut err) = (0, 0);
    for case in &cases {
        for config in [
            MidiConfig::default(),
            MidiConfig {
                sustain_threshold: None,
            },
        ] {
            let result = catch_unwind(AssertUnwindSafe(|| read_midi(&case.bytes, "case", &config)));
            let outcome: Result<MidiRead, MidiError> = match result {
                Ok(outcome) => outcome,
                Err(_) => {
                    failures.push(format!("{}: panicked", case.what));
                    continue;
                }
            };
            match (&outcome, case.expect) {
                (Ok(_), Expect::Err) => failures.push(format!("{}: accepted", case.what)),
                (Err(e), Expect::Ok) => failures.push(format!("{}: rejected: {e}", case.what)),
                (Err(e), _) if e.to_string().trim().is_empty() => {
                    failures.push(format!("{}: empty reason", case.what));
                }
                _ => {}
            }
            if let Ok(read) = &outcome {
                let sane = read.piece.notes.iter().all(|n| {
                    n.start.is_finite() && n.start >= 0.0 && n.end >= n.start && (21..=108).contains(&n.pitch)
                });
                if !sane {
                    failures.push(format!("{}: notes with bad times or pitches", case.what));
                }
                ok += 1;
            } else {
                err += 1;
            }
        }
    }
    eprintln!("{} cases: {ok} reads accepted, {err} rejected", cases.len());
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn truncation_and_zero_tempo_errors_say_what_is_wrong() {
    let bytes = generated();
    let err = read_midi(&bytes[..bytes.len() - 3], "cut", &MidiConfig::default()).unwrap_err();
    assert!(matches!(err, MidiError::Truncated { .. }), "{err}");
    assert!(err.to_string().starts_with("truncated: the chunk at byte"), "{err}");
    let zero = smf(
        0,
        96,
        &[track_body(&[(10, Ev::Tempo(0)), (0, Ev::On(0, 60, 1))], false)],
    );
    let err = read_midi(&zero, "zero", &MidiConfig::default()).unwrap_err();
    assert_eq!(err.to_string(), "zero tempo (0 µs per beat) in track 0 at tick 10");
}
