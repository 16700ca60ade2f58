//! TensorBoard event files: the curves `tensorboard --logdir
//! runs/<experiment>` shows while runs train.
//!
//! In: a claimed run (its labels, id and configuration), then what training
//! reports: each step's learning rate and loss, each evaluated epoch, the
//! test metrics. Out: [`Curves`], an event file in the run's curves folder
//! `runs/<experiment>/tensorboard/<labels>-<id8>/` (so TensorBoard names each
//! run of a matrix by its labels), with these tags, each at its optimizer
//! step:
//!
//! | tags | when |
//! |---|---|
//! | `train/lr` | every step |
//! | `train/loss` | whenever training reads the running loss (the mean objective since the last reading) |
//! | `train/epoch`, `train/epoch_loss`, `val/loss`, `val/dist`, `val/accuracy`, `val/flatness` | every evaluation |
//! | `val/ls_kl`, `val/ce_with_cls`, `greedy/dist`, `greedy/accuracy`, `greedy/flatness` | every evaluation, for runs that have them |
//! | `test/dist`, `test/accuracy`, `test/flatness`, `test_greedy/...` | once, at the end, when the run is tested |
//!
//! and the run's hyperparameters for TensorBoard's HParams dashboard: its
//! labels, `run` (the short id) and every value of its configuration under
//! its dotted path (`model.d-model`), numbers as numbers.
//!
//! The format is hand-encoded (a few protobuf messages do not justify a
//! protobuf toolchain): a file is a sequence of TFRecords (`u64` length,
//! little-endian; masked CRC-32C of those 8 bytes; the bytes; their masked
//! CRC-32C), each an `Event` (`wall_time`=1, `step`=2, `file_version`=3,
//! `summary`=5, `session_log`=7). The first event says `brain.Event:2`; a
//! scalar is a `Summary.Value` (`tag`=1, `simple_value`=2); hyperparameters
//! are the HParams plugin's `session_start_info` summary and the end of a
//! finished run its `session_end_info`, as the `tensorboard` package's
//! `hparams.summary_v2` writes them. A resumed run appends a new file that
//! opens with `SessionLog{START}` at the first step it takes again, so that
//! TensorBoard drops what a killed process wrote past its last checkpoint; a
//! run that starts over (no checkpoint, or `--force`) empties its folder.
//!
//! Events are buffered: [`Curves::flush`] hands them to the file (training
//! calls it every few seconds, at every evaluation and checkpoint, and at
//! the end); every write that fails is a [`StoreError`] naming the file.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::metrics::VelocityMetrics;
use crate::records::EpochRecord;
use crate::{ClaimedRun, StoreError};
use runner_plan::PlannedRun;

/// The folder under an experiment's that holds every run's curves.
pub const FOLDER: &str = "tensorboard";

/// What every event file says first: the version TensorBoard expects.
const FILE_VERSION: &str = "brain.Event:2";

/// The longest a run's folder name gets before its id.
const NAME_LENGTH: usize = 96;

/// CRC-32C (Castagnoli), TFRecord's checksum.
const CASTAGNOLI: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);

/// A hyperparameter's value.
#[derive(Debug, Clone, PartialEq)]
pub enum HParam {
    /// A number.
    Number(f64),
    /// Text.
    Text(String),
    /// Yes or no.
    Bool(bool),
}

impl HParam {
    /// A label's value: a number when it reads as one, else its text.
    fn of_label(value: &str) -> HParam {
        match value.parse::<f64>() {
            Ok(number) if number.is_finite() => HParam::Number(number),
            _ => HParam::Text(value.to_owned()),
        }
    }
}

/// The name of a run's curves folder: its labels made safe for a file name
/// (spaces become `,`, anything but letters, digits and `.=,+-` becomes
/// `_`, cut at [`NAME_LENGTH`]), `-`, the first 8 characters of its id.
pub fn run_name(label: &str, id: &str) -> String {
    let mut name: String = label
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(",")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || ".=,+-_".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(NAME_LENGTH)
        .collect();
    if name.starts_with('.') {
        name.replace_range(..1, "_");
    }
    let short: String = id.chars().take(8).collect();
    if name.is_empty() {
        short
    } else {
        format!("{name}-{short}")
    }
}

/// Every curves folder of the run `id` under the experiment folder
/// `experiment` (one per name its labels had), sorted.
pub fn folders_of(experiment: &Path, id: &str) -> Vec<PathBuf> {
    let short: String = id.chars().take(8).collect();
    let mut folders: Vec<PathBuf> = std::fs::read_dir(experiment.join(FOLDER))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|entry| {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            name == short.as_str() || name.ends_with(&format!("-{short}"))
        })
        .map(|entry| entry.path())
        .collect();
    folders.sort();
    folders
}

/// Removes every curves folder of the run `id` (for a run that starts over).
pub fn remove_folders_of(experiment: &Path, id: &str) -> Result<(), StoreError> {
    for folder in folders_of(experiment, id) {
        match std::fs::remove_dir_all(&folder) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(StoreError::at(&folder)(e)),
            _ => {}
        }
    }
    Ok(())
}

/// The hyperparameters of a run: its `labels` (axis → value), `run` (the
/// short id) and every value of its canonical configuration (`config.json`'s
/// text) under its dotted path; nulls are left out, lists are their JSON
/// text, and a label wins over a configuration value of the same name.
pub fn hparams(labels: &[(String, String)], id: &str, canonical: &str) -> BTreeMap<String, HParam> {
    let mut hparams = BTreeMap::new();
    if let Ok(config) = serde_json::from_str::<serde_json::Value>(canonical) {
        flatten("", &config, &mut hparams);
    }
    hparams.insert("run".to_owned(), HParam::Text(id.chars().take(8).collect()));
    for (axis, value) in labels {
        hparams.insert(axis.clone(), HParam::of_label(value));
    }
    hparams
}

/// The scalar leaves of `value` into `out`, named by their dotted paths.
fn flatten(path: &str, value: &serde_json::Value, out: &mut BTreeMap<String, HParam>) {
    use serde_json::Value;
    let hparam = match value {
        Value::Object(fields) => {
            for (key, field) in fields {
                let path = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                flatten(&path, field, out);
            }
            return;
        }
        Value::Null => return,
        Value::Bool(b) => HParam::Bool(*b),
        Value::Number(n) => HParam::Number(n.as_f64().unwrap_or(f64::NAN)),
        Value::String(s) => HParam::Text(s.clone()),
        Value::Array(_) => HParam::Text(value.to_string()),
    };
    out.insert(path.to_owned(), hparam);
}

/// Where a claimed run's curves go, and the hyperparameters they record.
#[derive(Debug, Clone)]
pub struct RunCurves {
    experiment: PathBuf,
    id: String,
    folder: PathBuf,
    hparams: BTreeMap<String, HParam>,
}

impl RunCurves {
    /// The curves of `run`, labelled `label`, in the experiment folder `experiment`.
    pub(crate) fn of(experiment: &Path, run: &PlannedRun, label: &str) -> RunCurves {
        RunCurves {
            experiment: experiment.to_owned(),
            id: run.id.clone(),
            folder: experiment.join(FOLDER).join(run_name(label, &run.id)),
            hparams: hparams(&run.labels, &run.id, &run.config.canonical()),
        }
    }

    /// The curves of the run folder `dir`, named by its id alone, without
    /// hyperparameters.
    pub(crate) fn unlabelled(dir: &Path) -> RunCurves {
        let experiment = dir.parent().unwrap_or(dir).to_owned();
        let id = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        RunCurves {
            folder: experiment.join(FOLDER).join(run_name("", &id)),
            experiment,
            id,
            hparams: BTreeMap::new(),
        }
    }

    /// Removes every curves folder of the run.
    pub(crate) fn remove(&self) -> Result<(), StoreError> {
        remove_folders_of(&self.experiment, &self.id)
    }
}

impl ClaimedRun {
    /// The run's curves folder, `tensorboard/<labels>-<id8>/` in the experiment's.
    pub fn curves_folder(&self) -> &Path {
        &self.curves.folder
    }

    /// A new event file for the run's curves. `resumed_at`: the first step
    /// a resumed run takes again; `None` for a run that starts over, whose
    /// earlier curves (every folder of its id) are removed first.
    pub fn curves(&self, resumed_at: Option<u64>) -> Result<Curves, StoreError> {
        if resumed_at.is_none() {
            self.curves.remove()?;
        }
        Curves::create(&self.curves.folder, &self.curves.hparams, &self.curves.id, resumed_at)
    }
}

/// One run's curves being written: a new event file in its folder.
#[derive(Debug)]
pub struct Curves {
    path: PathBuf,
    file: BufWriter<File>,
}

/// The HParams plugin's session statuses (`tensorboard.plugins.hparams.api_pb2.Status`).
const STATUS_SUCCESS: u64 = 1;
const STATUS_FAILURE: u64 = 2;

impl Curves {
    /// Starts a new event file in `folder` (created when missing) with the
    /// file version and the run's `hparams` (grouped by `group`, the run's
    /// id); `resumed_at`: the first step a resumed run takes again, marked
    /// as a restart.
    pub fn create(
        folder: &Path,
        hparams: &BTreeMap<String, HParam>,
        group: &str,
        resumed_at: Option<u64>,
    ) -> Result<Curves, StoreError> {
        std::fs::create_dir_all(folder).map_err(StoreError::at(folder))?;
        let path = folder.join(file_name());
        let file = File::options()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(StoreError::at(&path))?;
        let mut curves = Curves {
            path,
            // Room for over a thousand steps between two flushes.
            file: BufWriter::with_capacity(1 << 16, file),
        };
        curves.write(&Message::new().string(3, FILE_VERSION), 0)?;
        curves.write(&Message::new().message(5, hparams_summary(hparams, group, now())), 0)?;
        if let Some(step) = resumed_at {
            // SessionLog { status: START }
            curves.write(&Message::new().message(7, Message::new().int(1, 1)), step)?;
        }
        curves.flush()?;
        Ok(curves)
    }

    /// The event file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// An optimizer step: its learning rate, and the running loss when it
    /// was read.
    pub fn step(&mut self, step: u64, lr: f64, loss: Option<f64>) -> Result<(), StoreError> {
        let mut values = vec![("train/lr", lr)];
        values.extend(loss.map(|loss| ("train/loss", loss)));
        self.scalars(step, &values)
    }

    /// An evaluated epoch: every metric of its record, at its step.
    pub fn epoch(&mut self, record: &EpochRecord) -> Result<(), StoreError> {
        let mut values = vec![
            ("train/epoch".to_owned(), record.epoch as f64),
            ("train/epoch_loss".to_owned(), record.train_loss),
            ("val/loss".to_owned(), record.val_loss),
        ];
        values.extend(record.val_ls_kl.map(|v| ("val/ls_kl".to_owned(), v)));
        values.extend(record.val_ce_with_cls.map(|v| ("val/ce_with_cls".to_owned(), v)));
        values.extend(velocity("val", &record.val));
        if let Some(greedy) = &record.greedy {
            values.extend(velocity("greedy", greedy));
        }
        self.scalars(record.step, &values)
    }

    /// The test split's metrics (teacher-forced, then greedy), at the last step.
    pub fn test(
        &mut self,
        step: u64,
        (teacher_forced, greedy): &(VelocityMetrics, Option<VelocityMetrics>),
    ) -> Result<(), StoreError> {
        let mut values = velocity("test", teacher_forced).to_vec();
        if let Some(greedy) = greedy {
            values.extend(velocity("test_greedy", greedy));
        }
        self.scalars(step, &values)
    }

    /// The run finished: the HParams plugin's end of session (success),
    /// then everything is handed to the file.
    pub fn finished(&mut self) -> Result<(), StoreError> {
        self.ended(STATUS_SUCCESS)
    }

    /// The run failed (it diverged, a step could not run): the end of its
    /// session with the status failure, so HParams tells it from a success.
    pub fn failed(&mut self) -> Result<(), StoreError> {
        self.ended(STATUS_FAILURE)
    }

    /// The HParams plugin's end of session with `status`.
    fn ended(&mut self, status: u64) -> Result<(), StoreError> {
        // SessionEndInfo { status, end_time_secs }
        let end = Message::new().int(1, status).double(2, now());
        let data = Message::new().message(4, end);
        self.write(
            &Message::new().message(5, plugin_summary("_hparams_/session_end_info", data)),
            0,
        )?;
        self.flush()
    }

    /// Hands the buffered events to the file.
    pub fn flush(&mut self) -> Result<(), StoreError> {
        self.file.flush().map_err(StoreError::at(&self.path))
    }

    /// One event of scalars at `step`.
    fn scalars(&mut self, step: u64, values: &[(impl AsRef<str>, f64)]) -> Result<(), StoreError> {
        let summary = values.iter().fold(Message::new(), |summary, (tag, value)| {
            // Summary.Value { tag, simple_value }: TensorBoard's scalars are f32.
            summary.message(1, Message::new().string(1, tag.as_ref()).float(2, *value as f32))
        });
        self.write(&Message::new().message(5, summary), step)
    }

    /// One event holding `fields` (an `Event` less its time and step).
    fn write(&mut self, fields: &Message, step: u64) -> Result<(), StoreError> {
        let mut event = Message::new().double(1, now());
        if step != 0 {
            event = event.int(2, step);
        }
        event.0.extend_from_slice(&fields.0);
        self.file
            .write_all(&record(&event.0))
            .map_err(StoreError::at(&self.path))
    }
}

/// The scalars of one set of velocity metrics, tagged `<prefix>/dist` ...
fn velocity(prefix: &str, m: &VelocityMetrics) -> [(String, f64); 3] {
    [
        (format!("{prefix}/dist"), m.dist),
        (format!("{prefix}/accuracy"), m.accuracy),
        (format!("{prefix}/flatness"), m.flatness),
    ]
}

/// A `Summary` of one HParams plugin value: `tag`, metadata naming the
/// plugin with `data` (an `HParamsPluginData` less its version, 0) as
/// content, and an empty float tensor as value.
fn plugin_summary(tag: &str, data: Message) -> Message {
    // SummaryMetadata { plugin_data: PluginData { plugin_name, content } }
    let metadata = Message::new().message(1, Message::new().string(1, "hparams").bytes(2, &data.0));
    // TensorProto { dtype: DT_FLOAT, tensor_shape: { dim: [{ size: 0 }] } }
    let null_tensor = Message::new()
        .int(1, 1)
        .message(2, Message::new().message(2, Message::new()));
    let value = Message::new()
        .string(1, tag)
        .message(8, null_tensor)
        .message(9, metadata);
    Message::new().message(1, value)
}

/// The `session_start_info` summary of a run's hyperparameters.
fn hparams_summary(hparams: &BTreeMap<String, HParam>, group: &str, started: f64) -> Message {
    let mut start = Message::new();
    for (name, value) in hparams {
        // google.protobuf.Value { number_value = 2, string_value = 3, bool_value = 4 }
        let value = match value {
            HParam::Number(n) => Message::new().double(2, *n),
            HParam::Text(s) => Message::new().string(3, s),
            HParam::Bool(b) => Message::new().int(4, u64::from(*b)),
        };
        // map<string, Value> hparams = 1: one entry { key = 1, value = 2 } each.
        start = start.message(1, Message::new().string(1, name).message(2, value));
    }
    let start = start.string(4, group).double(5, started);
    plugin_summary("_hparams_/session_start_info", Message::new().message(3, start))
}

/// A new event file's name: TensorBoard reads files whose names hold
/// `tfevents`, in name order, so the time comes first.
fn file_name() -> String {
    static FILES: AtomicU64 = AtomicU64::new(0);
    let seconds = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "_"))
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned());
    format!(
        "events.out.tfevents.{seconds:010}.{host}.{}.{}",
        std::process::id(),
        FILES.fetch_add(1, Ordering::Relaxed)
    )
}

/// Seconds since the Unix epoch.
fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// TFRecord's checksum: CRC-32C, rotated right by 15 bits plus a constant.
fn masked_crc(bytes: &[u8]) -> u32 {
    CASTAGNOLI.checksum(bytes).rotate_right(15).wrapping_add(0xa282_ead8)
}

/// One TFRecord: length, its masked CRC, the data, its masked CRC.
fn record(data: &[u8]) -> Vec<u8> {
    let length = (data.len() as u64).to_le_bytes();
    let mut out = Vec::with_capacity(data.len() + 16);
    out.extend_from_slice(&length);
    out.extend_from_slice(&masked_crc(&length).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc(data).to_le_bytes());
    out
}

/// A protobuf message being encoded, field by field.
struct Message(Vec<u8>);

impl Message {
    fn new() -> Message {
        Message(Vec::new())
    }

    fn varint(&mut self, mut value: u64) {
        while value >= 0x80 {
            self.0.push((value as u8 & 0x7f) | 0x80);
            value >>= 7;
        }
        self.0.push(value as u8);
    }

    fn key(&mut self, field: u32, wire: u8) {
        self.varint(u64::from(field) << 3 | u64::from(wire));
    }

    /// A varint field (int32, int64, enum, bool).
    fn int(mut self, field: u32, value: u64) -> Message {
        self.key(field, 0);
        self.varint(value);
        self
    }

    fn double(mut self, field: u32, value: f64) -> Message {
        self.key(field, 1);
        self.0.extend_from_slice(&value.to_le_bytes());
        self
    }

    fn float(mut self, field: u32, value: f32) -> Message {
        self.key(field, 5);
        self.0.extend_from_slice(&value.to_le_bytes());
        self
    }

    fn bytes(mut self, field: u32, value: &[u8]) -> Message {
        self.key(field, 2);
        self.varint(value.len() as u64);
        self.0.extend_from_slice(value);
        self
    }

    fn string(self, field: u32, value: &str) -> Message {
        self.bytes(field, value.as_bytes())
    }

    fn message(self, field: u32, value: Message) -> Message {
        self.bytes(field, &value.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// An event at wall time 1.5, as [`Curves::write`] encodes it.
    fn event(fields: Message, step: u64) -> Vec<u8> {
        let mut event = Message::new().double(1, 1.5);
        if step != 0 {
            event = event.int(2, step);
        }
        event.0.extend_from_slice(&fields.0);
        event.0
    }

    #[test]
    fn the_checksum_is_crc32c_masked_as_tfrecord_masks_it() {
        // CRC-32C's check value, and the mask of the tensorboard package's
        // `masked_crc32c(b"123456789")`.
        assert_eq!(CASTAGNOLI.checksum(b"123456789"), 0xe306_9283);
        assert_eq!(masked_crc(b"123456789"), 0xc78a_b0e5);
    }

    /// The bytes below are what the `tensorboard` package's protobufs and
    /// its `RecordWriter` write for the same events.
    #[test]
    fn events_are_encoded_byte_for_byte_as_tensorboard_writes_them() {
        let version = event(Message::new().string(3, FILE_VERSION), 0);
        assert_eq!(hex(&version), "09000000000000f83f1a0d627261696e2e4576656e743a32");
        assert_eq!(
            hex(&record(&version)),
            "1800000000000000a37f4b2209000000000000f83f1a0d627261696e2e4576656e743a322a28646c"
        );
        let scalar = Message::new().message(
            5,
            Message::new().message(1, Message::new().string(1, "val/dist").float(2, 12.25)),
        );
        assert_eq!(
            hex(&event(scalar, 7)),
            "09000000000000f83f10072a110a0f0a0876616c2f646973741500004441"
        );
        let restart = Message::new().message(7, Message::new().int(1, 1));
        assert_eq!(hex(&event(restart, 26)), "09000000000000f83f101a3a020801");
        // summary_v2.hparams_pb({"lr": 0.001, "model": "small", "greedy": True},
        //                       trial_id="abc", start_time_secs=2.0)
        let hparams = BTreeMap::from([
            ("lr".to_owned(), HParam::Number(0.001)),
            ("model".to_owned(), HParam::Text("small".to_owned())),
            ("greedy".to_owned(), HParam::Bool(true)),
        ]);
        let summary = Message::new().message(5, hparams_summary(&hparams, "abc", 2.0));
        assert_eq!(
            hex(&event(summary, 0)),
            "09000000000000f83f2a780a760a1c5f68706172616d735f2f73657373696f6e5f73746172745f696e666f4206080112021200\
             4a4e0a4c0a0768706172616d7312411a3f0a0c0a06677265656479120220010a0f0a026c72120911fca9f1d24d62503f0a10\
             0a056d6f64656c12071a05736d616c6c2203616263290000000000000040"
        );
    }

    #[test]
    fn varints_take_seven_bits_a_byte() {
        let mut m = Message::new();
        m.varint(300);
        assert_eq!(m.0, [0xac, 0x02]);
        let mut m = Message::new();
        m.varint(u64::MAX);
        assert_eq!(m.0.len(), 10);
    }

    #[test]
    fn a_run_is_named_by_its_labels_and_short_id() {
        let id = "0123456789abcdef";
        assert_eq!(run_name("lr=1e-3 model=small", id), "lr=1e-3,model=small-01234567");
        assert_eq!(run_name("path=a/b c:d", id), "path=a_b,c_d-01234567");
        assert_eq!(run_name(".hidden", id), "_hidden-01234567");
        assert_eq!(run_name("", id), "01234567");
        assert_eq!(run_name(&"x".repeat(300), id).len(), NAME_LENGTH + 9);
    }

    #[test]
    fn hparams_hold_the_labels_the_id_and_the_configuration() {
        let labels = [
            ("lr".to_owned(), "2e-3".to_owned()),
            ("variant".to_owned(), "small".to_owned()),
        ];
        let canonical = r#"{"seed":3,"model":{"d-model":16,"norm":"pre","tie":false,"buckets":null},"edges":[1,2]}"#;
        let hparams = hparams(&labels, "0123456789abcdef", canonical);
        let names: Vec<&str> = hparams.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "edges",
                "lr",
                "model.d-model",
                "model.norm",
                "model.tie",
                "run",
                "seed",
                "variant"
            ]
        );
        assert_eq!(hparams["lr"], HParam::Number(0.002));
        assert_eq!(hparams["variant"], HParam::Text("small".to_owned()));
        assert_eq!(hparams["model.tie"], HParam::Bool(false));
        assert_eq!(hparams["edges"], HParam::Text("[1,2]".to_owned()));
        assert_eq!(hparams["run"], HParam::Text("01234567".to_owned()));
    }

    #[test]
    fn a_resumed_run_adds_a_file_and_a_run_that_starts_over_or_is_reset_keeps_none_of_its_old_curves() {
        let root = std::env::temp_dir().join(format!("runner-tb-claim-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        let file = root.join("one.kdl");
        std::fs::write(&file, "experiment one {\n    variant small { seed 3 }\n}\n").unwrap();
        let run = runner_plan::load(&file).unwrap().runs.remove(0);
        let claimed = crate::RunStore::new(&root, "one").claim(&run).unwrap().unwrap();
        let folder = claimed.curves_folder().to_owned();
        assert_eq!(
            folder,
            root.join("one")
                .join(FOLDER)
                .join(format!("variant=small-{}", &run.id[..8]))
        );
        let files = || std::fs::read_dir(&folder).map_or(0, |entries| entries.count());
        let first = claimed.curves(None).unwrap();
        let resumed = claimed.curves(Some(5)).unwrap();
        assert_ne!(first.path(), resumed.path());
        assert_eq!(files(), 2);
        drop((first, resumed));
        claimed.curves(None).unwrap();
        assert_eq!(files(), 1, "a run that starts over starts its curves over");
        claimed.reset().unwrap();
        assert!(!folder.exists(), "--force removes them");
        drop(claimed);
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn an_unwritable_folder_is_a_store_error_naming_it() {
        let file = std::env::temp_dir().join(format!("runner-tb-file-{}", std::process::id()));
        std::fs::write(&file, "not a folder").unwrap();
        let error = Curves::create(&file.join("run"), &BTreeMap::new(), "g", None).unwrap_err();
        assert_eq!(error.path, file.join("run"));
        std::fs::remove_file(&file).unwrap();
    }

    #[test]
    fn a_file_is_whole_records_and_folders_are_found_by_id() {
        let root = std::env::temp_dir().join(format!("runner-tb-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let folder = root.join(FOLDER).join(run_name("seed=1", "0123456789abcdef"));
        let mut curves = Curves::create(&folder, &BTreeMap::new(), "g", Some(11)).unwrap();
        curves.step(11, 0.5, Some(2.0)).unwrap();
        curves.finished().unwrap();
        let bytes = std::fs::read(curves.path()).unwrap();
        let mut rest = &bytes[..];
        let mut records = 0;
        while !rest.is_empty() {
            let length = u64::from_le_bytes(rest[..8].try_into().unwrap()) as usize;
            assert_eq!(
                u32::from_le_bytes(rest[8..12].try_into().unwrap()),
                masked_crc(&rest[..8])
            );
            let data = &rest[12..12 + length];
            let crc = u32::from_le_bytes(rest[12 + length..16 + length].try_into().unwrap());
            assert_eq!(crc, masked_crc(data));
            rest = &rest[16 + length..];
            records += 1;
        }
        // Version, hparams, restart, one step, end of session.
        assert_eq!(records, 5);
        std::fs::create_dir_all(root.join(FOLDER).join("seed=2-01234567")).unwrap();
        std::fs::create_dir_all(root.join(FOLDER).join("seed=1-fedcba98")).unwrap();
        assert_eq!(folders_of(&root, "0123456789abcdef").len(), 2);
        remove_folders_of(&root, "0123456789abcdef").unwrap();
        assert!(folders_of(&root, "0123456789abcdef").is_empty());
        assert_eq!(folders_of(&root, "fedcba9800000000").len(), 1);
        std::fs::remove_dir_all(&root).unwrap();
    }
}
