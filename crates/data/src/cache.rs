//! The dataset cache: a dataset's key in, its token windows and summary out.
//!
//! [`dataset_key`] hashes (SHA-256) everything that shapes a dataset: a
//! format version, the kind of source and, for each of its files in sorted
//! order, its name and the hash of its bytes; the split rule, the grouping,
//! the sustain threshold, the bad-file and duplicate policies, the least
//! number of distinct velocities, the bin counts and edges, the window and
//! the token scheme. Training-time augmentation is not part of it. Each
//! split's windows are stored in their own file whose header holds a
//! [`split_key`] (the dataset key and the split's name, hashed), checked on
//! reading: windows are only ever read back as the split they were written
//! for (the original project's cache ignored the split and served training
//! windows as validation windows).
//!
//! An entry is the folder `<cache dir>/<key>/` with `summary.json` and
//! `train.bin`, `validation.bin`, `test.bin`. Each `.bin` file is a 64-byte
//! header (magic, format version, split key, window width, window count,
//! bytes per id), the source ids then the target ids as little-endian `u16`
//! (or `u32` when an id does not fit), then the SHA-256 of all that. Entries
//! are written to a `.tmp-` folder, synced, and renamed into place, so a
//! half-written entry is never read; a missing, truncated or altered file
//! makes [`Cache::load`] report the entry as corrupt, to be rebuilt.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::TokenWindows;
use super::source::{FileKind, SourceFiles, hex};
use super::split::Split;
use super::summary::DatasetSummary;
use super::table::Tables;
use runner_plan::config::{BadFiles, DatasetConfig, Quantize, Scheme, Window};

/// Bumped whenever the entry layout or the way datasets are built changes.
pub const FORMAT_VERSION: u32 = 2;

/// First bytes of every window file.
const MAGIC: &[u8; 8] = b"RNRWIN01";

/// Bytes before the ids in a window file.
const HEADER_LEN: usize = 64;

/// The hash of everything that shapes a dataset, as 64 hex digits.
/// `tables` are the metadata tables the config names (their bytes' hashes).
pub fn dataset_key(files: &SourceFiles, tables: &Tables, dataset: &DatasetConfig, scheme: Scheme) -> String {
    /// What the key covers, serialised as JSON and hashed.
    #[derive(Serialize)]
    struct KeyInput<'a> {
        format: u32,
        kind: FileKind,
        files: Vec<(&'a str, String)>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        tables: Vec<(&'a str, String)>,
        split: &'a runner_plan::config::Split,
        group: &'a runner_plan::config::Group,
        sustain: Option<u8>,
        bad_files: BadFiles,
        duplicates: runner_plan::config::Duplicates,
        min_velocities: u8,
        quantize: &'a Quantize,
        window: Window,
        scheme: Scheme,
    }
    let input = KeyInput {
        format: FORMAT_VERSION,
        kind: files.kind,
        files: files.files.iter().map(|f| (f.name.as_str(), hex(&f.sha256))).collect(),
        tables: tables.hashes().map(|(name, sha)| (name, hex(sha))).collect(),
        split: &dataset.split,
        group: &dataset.group,
        sustain: dataset.sustain,
        bad_files: dataset.bad_files,
        duplicates: dataset.duplicates,
        min_velocities: dataset.min_velocities,
        quantize: &dataset.quantize,
        window: dataset.window,
        scheme,
    };
    let json = serde_json::to_string(&input).unwrap_or_default();
    hex(&Sha256::digest(json.as_bytes()))
}

/// The key of one split's windows within the dataset `key`.
pub fn split_key(key: &str, split: Split) -> [u8; 32] {
    Sha256::digest(format!("{key}/{split}").as_bytes()).into()
}

/// A dataset as the cache holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The summary (with the bin edges).
    pub summary: DatasetSummary,
    /// Training windows.
    pub train: TokenWindows,
    /// Validation windows.
    pub validation: TokenWindows,
    /// Test windows.
    pub test: TokenWindows,
}

/// Why an entry could not be written.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("cannot write the dataset cache at {}: {source}", path.display())]
#[diagnostic(help("the cache lives in .datasets inside the runs store (--store, default runs/); it must be writable"))]
pub struct CacheError {
    /// The file or folder.
    pub path: PathBuf,
    /// The I/O error.
    pub source: std::io::Error,
}

/// Why a stored entry cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("cache entry {}: {reason}", path.display())]
pub struct Corrupt {
    /// The entry's file.
    pub path: PathBuf,
    /// What is wrong with it.
    pub reason: String,
}

/// The summary file's contents.
#[derive(Serialize, Deserialize)]
struct SummaryFile {
    format: u32,
    key: String,
    summary: DatasetSummary,
}

/// A cache folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cache {
    dir: PathBuf,
}

impl Cache {
    /// The cache in `dir` (created when the first entry is stored).
    pub fn new(dir: impl Into<PathBuf>) -> Cache {
        Cache { dir: dir.into() }
    }

    /// The folder of the entry `key`.
    pub fn entry_dir(&self, key: &str) -> PathBuf {
        self.dir.join(key)
    }

    /// The summary of the entry `key` alone (its windows are not read):
    /// `None` when there is no such entry or its summary is unusable.
    pub fn summary(&self, key: &str) -> Option<DatasetSummary> {
        let text = std::fs::read_to_string(self.entry_dir(key).join("summary.json")).ok()?;
        let file: SummaryFile = serde_json::from_str(&text).ok()?;
        (file.format == FORMAT_VERSION && file.key == key).then_some(file.summary)
    }

    /// The entry `key`: `Ok(None)` if there is none, `Err` if it is unusable.
    pub fn load(&self, key: &str) -> Result<Option<Entry>, Corrupt> {
        let dir = self.entry_dir(key);
        if !dir.exists() {
            return Ok(None);
        }
        let path = dir.join("summary.json");
        let corrupt = |reason: String| Corrupt {
            path: path.clone(),
            reason,
        };
        let text = std::fs::read_to_string(&path).map_err(|e| corrupt(e.to_string()))?;
        let file: SummaryFile = serde_json::from_str(&text).map_err(|e| corrupt(e.to_string()))?;
        if file.format != FORMAT_VERSION || file.key != key {
            return Err(corrupt(format!(
                "written for format {} and key {}",
                file.format, file.key
            )));
        }
        let read = |split| read_windows(&dir.join(format!("{split}.bin")), &split_key(key, split));
        Ok(Some(Entry {
            summary: file.summary,
            train: read(Split::Train)?,
            validation: read(Split::Validation)?,
            test: read(Split::Test)?,
        }))
    }

    /// Stores a dataset's summary and its train, validation and test windows
    /// as `key`. A usable entry that another process stored meanwhile is
    /// kept (same key, same contents); an unusable one is replaced.
    pub fn store(&self, key: &str, summary: &DatasetSummary, windows: [&TokenWindows; 3]) -> Result<(), CacheError> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| CacheError { path, source }
        };
        std::fs::create_dir_all(&self.dir).map_err(io(&self.dir))?;
        let unique = COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = self.dir.join(format!(".tmp-{key}-{}-{unique}", std::process::id()));
        std::fs::create_dir(&tmp).map_err(io(&tmp))?;
        let written = (|| {
            let summary = SummaryFile {
                format: FORMAT_VERSION,
                key: key.to_owned(),
                summary: summary.clone(),
            };
            let json = serde_json::to_vec_pretty(&summary).map_err(std::io::Error::other);
            let path = tmp.join("summary.json");
            write_synced(&path, |w| w.write_all(&json?)).map_err(io(&path))?;
            for (split, windows) in Split::ALL.into_iter().zip(windows) {
                let path = tmp.join(format!("{split}.bin"));
                write_synced(&path, |w| write_windows(w, windows, &split_key(key, split))).map_err(io(&path))?;
            }
            File::open(&tmp).and_then(|d| d.sync_all()).map_err(io(&tmp))?;
            let target = self.entry_dir(key);
            if let Err(error) = std::fs::rename(&tmp, &target) {
                if !target.exists() {
                    return Err(io(&target)(error));
                }
                // Another process (a second `runner exec`, a parallel worker)
                // stored the same key meanwhile: its entry is as good as ours.
                // Only an unusable entry in the way is replaced.
                if matches!(self.load(key), Ok(Some(_))) {
                    return Ok(false);
                }
                std::fs::remove_dir_all(&target).map_err(io(&target))?;
                std::fs::rename(&tmp, &target).map_err(io(&target))?;
            }
            File::open(&self.dir)
                .and_then(|d| d.sync_all())
                .map_err(io(&self.dir))
                .map(|()| true)
        })();
        if !matches!(written, Ok(true)) {
            // Best effort: the temporary folder is never read, only wasted space.
            let _ = std::fs::remove_dir_all(&tmp);
        }
        written.map(|_| ())
    }
}

/// Creates `path`, lets `write` fill it through a buffer, and syncs it to disk.
fn write_synced(path: &Path, write: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>) -> std::io::Result<()> {
    let mut out = BufWriter::with_capacity(1 << 20, File::create(path)?);
    write(&mut out)?;
    out.into_inner().map_err(|e| e.into_error())?.sync_all()
}

/// A writer that hashes what passes through it.
struct Hashing<'a, W: Write> {
    inner: &'a mut W,
    hasher: Sha256,
}

impl<W: Write> Write for Hashing<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Writes one split's window file (see the module docs).
fn write_windows(out: &mut impl Write, windows: &TokenWindows, key: &[u8; 32]) -> std::io::Result<()> {
    let wide = windows
        .source()
        .iter()
        .chain(windows.target())
        .any(|&id| id > u32::from(u16::MAX));
    let id_bytes: u8 = if wide { 4 } else { 2 };
    let width = u32::try_from(windows.width()).map_err(std::io::Error::other)?;
    let mut header = [0u8; HEADER_LEN];
    header[0..8].copy_from_slice(MAGIC);
    header[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    header[12..44].copy_from_slice(key);
    header[44..48].copy_from_slice(&width.to_le_bytes());
    header[48..56].copy_from_slice(&(windows.len() as u64).to_le_bytes());
    header[56] = id_bytes;
    let mut hashing = Hashing {
        inner: out,
        hasher: Sha256::new(),
    };
    hashing.write_all(&header)?;
    let mut buffer = Vec::with_capacity(1 << 16);
    for ids in [windows.source(), windows.target()] {
        for chunk in ids.chunks(1 << 14) {
            buffer.clear();
            for &id in chunk {
                match id_bytes {
                    2 => buffer.extend_from_slice(&(id as u16).to_le_bytes()),
                    _ => buffer.extend_from_slice(&id.to_le_bytes()),
                }
            }
            hashing.write_all(&buffer)?;
        }
    }
    let digest = hashing.hasher.finalize();
    out.write_all(&digest)
}

/// Reads and checks one split's window file.
fn read_windows(path: &Path, key: &[u8; 32]) -> Result<TokenWindows, Corrupt> {
    let corrupt = |reason: &str| Corrupt {
        path: path.to_path_buf(),
        reason: reason.to_owned(),
    };
    let bytes = std::fs::read(path).map_err(|e| corrupt(&e.to_string()))?;
    let body_len = bytes
        .len()
        .checked_sub(32)
        .filter(|&n| n >= HEADER_LEN)
        .ok_or_else(|| corrupt("shorter than its header"))?;
    let (body, digest) = bytes.split_at(body_len);
    if Sha256::digest(body).as_slice() != digest {
        return Err(corrupt("checksum mismatch (truncated or altered)"));
    }
    let u32_at = |at: usize| u32::from_le_bytes([body[at], body[at + 1], body[at + 2], body[at + 3]]);
    if &body[0..8] != MAGIC || u32_at(8) != FORMAT_VERSION {
        return Err(corrupt("not a window file of this format version"));
    }
    if &body[12..44] != key {
        return Err(corrupt("written for another dataset or split"));
    }
    let width = u32_at(44) as usize;
    let windows = u64::from_le_bytes(body[48..56].try_into().unwrap_or_default());
    let id_bytes = usize::from(body[56]);
    let ids = usize::try_from(windows)
        .ok()
        .and_then(|w| w.checked_mul(width))
        .ok_or_else(|| corrupt("implausible window count"))?;
    let expected = ids.checked_mul(2 * id_bytes).and_then(|n| n.checked_add(HEADER_LEN));
    if !matches!(id_bytes, 2 | 4) || expected != Some(body.len()) {
        return Err(corrupt("its length does not match its header"));
    }
    let decode = |bytes: &[u8]| -> Vec<u32> {
        match id_bytes {
            2 => bytes
                .chunks_exact(2)
                .map(|b| u32::from(u16::from_le_bytes([b[0], b[1]])))
                .collect(),
            _ => bytes
                .chunks_exact(4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
        }
    };
    let (source, target) = body[HEADER_LEN..].split_at(ids * id_bytes);
    TokenWindows::from_ids(width, decode(source), decode(target)).ok_or_else(|| corrupt("a zero window width"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn windows(ids: &[u32]) -> TokenWindows {
        TokenWindows::from_ids(3, ids.to_vec(), ids.iter().map(|i| i + 1).collect()).unwrap()
    }

    fn round_trip(w: &TokenWindows, key: &[u8; 32]) -> Result<TokenWindows, Corrupt> {
        let dir = std::env::temp_dir().join(format!("runner-cache-unit-{}-{}", std::process::id(), w.len()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("w.bin");
        write_synced(&path, |out| write_windows(out, w, key)).unwrap();
        let read = read_windows(&path, key);
        std::fs::remove_dir_all(&dir).unwrap();
        read
    }

    #[test]
    fn window_files_round_trip_narrow_and_wide_ids() {
        let key = split_key("k", Split::Train);
        let narrow = windows(&[0, 5, 65_534, 0, 7, 8]);
        assert_eq!(round_trip(&narrow, &key).unwrap(), narrow);
        let wide = windows(&[0, 70_000, 5, 0, 1, 2, 0, 3, 4]);
        assert_eq!(round_trip(&wide, &key).unwrap(), wide);
    }

    #[test]
    fn split_keys_differ_by_split_and_dataset() {
        let keys = [
            split_key("a", Split::Train),
            split_key("a", Split::Validation),
            split_key("a", Split::Test),
            split_key("b", Split::Train),
        ];
        for i in 0..keys.len() {
            for j in i + 1..keys.len() {
                assert_ne!(keys[i], keys[j]);
            }
        }
    }
}
