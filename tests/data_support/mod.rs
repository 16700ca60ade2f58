//! Test helpers shared by the `data_*` integration tests: a tiny Standard
//! MIDI File writer (independent of the reader under test) and a seeded RNG.

#![allow(dead_code)] // Each test crate uses a different part of this module.

/// A track event, written with the given delta time before it.
#[derive(Debug, Clone)]
pub enum Ev {
    /// Note-on (channel, pitch, velocity); velocity 0 is a note-off.
    On(u8, u8, u8),
    /// Note-off (channel, pitch).
    Off(u8, u8),
    /// Control change (channel, controller, value).
    Cc(u8, u8, u8),
    /// Tempo meta event, microseconds per beat (24 bits).
    Tempo(u32),
    /// Raw bytes, written as they are.
    Raw(Vec<u8>),
}

/// A variable-length quantity.
pub fn vlq(mut value: u32) -> Vec<u8> {
    let mut bytes = vec![(value & 0x7F) as u8];
    value >>= 7;
    while value > 0 {
        bytes.push(0x80 | (value & 0x7F) as u8);
        value >>= 7;
    }
    bytes.reverse();
    bytes
}

/// A track body: the events with their deltas, then End of Track. With
/// `running_status`, a channel status byte equal to the previous one is left out.
pub fn track_body(events: &[(u32, Ev)], running_status: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let mut status: Option<u8> = None;
    for (delta, event) in events {
        out.extend(vlq(*delta));
        let (byte, data): (u8, Vec<u8>) = match event {
            Ev::On(ch, p, v) => (0x90 | ch, vec![*p, *v]),
            Ev::Off(ch, p) => (0x80 | ch, vec![*p, 64]),
            Ev::Cc(ch, c, v) => (0xB0 | ch, vec![*c, *v]),
            Ev::Tempo(t) => {
                out.extend([0xFF, 0x51, 0x03]);
                out.extend(&t.to_be_bytes()[1..]);
                status = None;
                continue;
            }
            Ev::Raw(bytes) => {
                out.extend(bytes);
                status = None;
                continue;
            }
        };
        if !(running_status && status == Some(byte)) {
            out.push(byte);
        }
        status = Some(byte);
        out.extend(data);
    }
    out.extend([0x00, 0xFF, 0x2F, 0x00]);
    out
}

/// A chunk: id, big-endian length, body.
pub fn chunk(id: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut out = id.to_vec();
    out.extend((body.len() as u32).to_be_bytes());
    out.extend(body);
    out
}

/// A whole file: header (format, track count, division) and the track chunks.
pub fn smf(format: u16, division: u16, tracks: &[Vec<u8>]) -> Vec<u8> {
    let mut header = format.to_be_bytes().to_vec();
    header.extend((tracks.len() as u16).to_be_bytes());
    header.extend(division.to_be_bytes());
    let mut out = chunk(b"MThd", &header);
    for body in tracks {
        out.extend(chunk(b"MTrk", body));
    }
    out
}

/// SplitMix64: a seeded generator for reproducible mutations.
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..bound` (slightly biased; fine for tests).
    pub fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound.max(1) as u64) as usize
    }

    /// A random byte.
    pub fn byte(&mut self) -> u8 {
        self.next() as u8
    }
}

/// A fresh folder under the system temp folder, removed when dropped.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    /// A new empty folder whose name starts with `prefix`.
    pub fn new(prefix: &str) -> TempDir {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("runner-{prefix}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    /// The folder.
    pub fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The runs of `experiments/pathetique.kdl`: midi-translation (separate
/// scheme) first, then hf-t5 (shared scheme).
pub fn pathetique_runs() -> Vec<runner_plan::config::RunConfig> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/pathetique.kdl");
    let plan = runner_plan::load(&path).expect("pathetique.kdl plans");
    plan.runs.into_iter().map(|r| r.config).collect()
}

/// The bundled MIDI folder.
pub fn bundled_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/bundled")
}

/// `runner ARGS` in `cwd`, without colours.
pub fn runner(cwd: &std::path::Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_runner"))
        .args(args)
        .current_dir(cwd)
        .env("NO_COLOR", "1")
        .output()
        .expect("runner starts")
}

/// Output bytes as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
