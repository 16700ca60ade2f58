//! Every field an experiment can set: its path, type, range, default and
//! documentation. The parser checks what a file writes against this table;
//! the planner fills in the defaults from it; `docs/dsl.md` describes it.
//!
//! A field's path is its place in the file: `model { d-model 256 }` sets
//! `model.d-model`, `window length=128` inside `dataset` sets
//! `dataset.window.length`. A *choice* (`loss`, `optimizer`, `schedule`,
//! `dataset.source`, `dataset.split`) takes a kind as its first argument and
//! that kind's own fields as properties: `schedule noam warmup=4000`.
//! Writing a choice replaces it whole: properties not written take the
//! kind's defaults.

/// What a field accepts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Type {
    /// `#true` or `#false`.
    Bool,
    /// An integer in `min..=max`.
    Int {
        /// Smallest allowed.
        min: i64,
        /// Largest allowed.
        max: i64,
    },
    /// A number in the range; `open_min` excludes `min` itself.
    Float {
        /// Smallest allowed.
        min: f64,
        /// Largest allowed.
        max: f64,
        /// Whether `min` itself is excluded.
        open_min: bool,
        /// Whether `max` itself is excluded.
        open_max: bool,
    },
    /// One of these words.
    Enum(&'static [&'static str]),
    /// Any string (a path, a name).
    Str,
    /// One or more numbers.
    FloatList,
    /// One or more strings.
    StrList,
}

/// A field's default.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DefaultValue {
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A number.
    Float(f64),
    /// A word or string.
    Str(&'static str),
    /// No value: the field is optional, or derived (see its doc).
    Unset,
}

/// One field.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    /// Its path, e.g. `model.d-model`.
    pub path: &'static str,
    /// What it accepts.
    pub ty: Type,
    /// Its default.
    pub default: DefaultValue,
    /// One line for the documentation and `--help`-style hints.
    pub doc: &'static str,
}

/// One kind of a choice, with its fields (paths relative to the choice).
#[derive(Debug, Clone, Copy)]
pub struct Kind {
    /// The kind's name, e.g. `noam`.
    pub name: &'static str,
    /// Its fields; `path` is the property name, e.g. `warmup`.
    pub fields: &'static [Field],
}

/// A field whose value is one of several kinds, each with its own fields.
#[derive(Debug, Clone, Copy)]
pub struct Choice {
    /// Its path, e.g. `schedule`.
    pub path: &'static str,
    /// The kinds.
    pub kinds: &'static [Kind],
    /// The kind used when a file does not write the choice.
    pub default_kind: &'static str,
    /// Field values, different from the kind's defaults, used when a file
    /// does not write the choice (the write-up's midi-translation set-up).
    pub default_overrides: &'static [(&'static str, DefaultValue)],
    /// One line of documentation.
    pub doc: &'static str,
}

impl Choice {
    /// The kind with this name.
    pub fn kind(&self, name: &str) -> Option<&'static Kind> {
        self.kinds.iter().find(|k| k.name == name)
    }
}

impl Kind {
    /// The field with this property name.
    pub fn field(&self, name: &str) -> Option<&'static Field> {
        self.fields.iter().find(|f| f.path == name)
    }
}

const fn int(min: i64, max: i64) -> Type {
    Type::Int { min, max }
}

const fn closed(min: f64, max: f64) -> Type {
    Type::Float {
        min,
        max,
        open_min: false,
        open_max: false,
    }
}

const fn positive(max: f64) -> Type {
    Type::Float {
        min: 0.0,
        max,
        open_min: true,
        open_max: false,
    }
}

const fn field(path: &'static str, ty: Type, default: DefaultValue, doc: &'static str) -> Field {
    Field { path, ty, default, doc }
}

const BIG: i64 = 1 << 40;

/// What `train.early-stop.metric` accepts: `off` and every metric's name
/// (the planner refuses those not evaluated after each epoch).
const EARLY_STOP_METRICS: &[&str] = &[
    "off",
    "val-loss",
    "val-ls-kl",
    "val-ce-cls",
    "val-dist",
    "greedy-dist",
    "flatness",
    "greedy-flatness",
    "accuracy",
    "test-dist",
    "test-greedy-dist",
];

/// The plain fields (not part of a choice).
pub static FIELDS: &[Field] = &[
    field(
        "seed",
        int(0, BIG),
        DefaultValue::Int(0),
        "base random seed; repeat r of a run uses seed + r",
    ),
    field(
        "encoder",
        Type::Enum(&["separate", "shared"]),
        DefaultValue::Str("separate"),
        "token scheme: separate source/target vocabularies, or one shared vocabulary",
    ),
    field(
        "dataset.sustain",
        Type::Bool,
        DefaultValue::Bool(true),
        "extend notes while the sustain pedal (CC 64) is down",
    ),
    field(
        "dataset.sustain.threshold",
        int(0, 127),
        DefaultValue::Int(62),
        "pedal value at or above which the pedal is down",
    ),
    field(
        "dataset.bad-files",
        Type::Enum(&["skip", "fail"]),
        DefaultValue::Str("skip"),
        "what to do with a corrupt or unreadable MIDI file",
    ),
    field(
        "dataset.duplicates",
        Type::Enum(&["drop", "fail", "keep"]),
        DefaultValue::Str("drop"),
        "pieces whose bytes or notes repeat another's: keep the first by name and report the rest, stop, or keep all (copies made on purpose)",
    ),
    field(
        "dataset.min-velocities",
        int(0, 128),
        DefaultValue::Int(0),
        "leave out pieces with fewer distinct velocities than this (0 keeps all; 2 drops constant-velocity scores)",
    ),
    field(
        "dataset.window.length",
        int(1, 1 << 20),
        DefaultValue::Int(128),
        "notes per window (sequence length)",
    ),
    field(
        "dataset.window.step",
        int(1, 1 << 20),
        DefaultValue::Int(42),
        "notes between the starts of consecutive windows",
    ),
    field(
        "dataset.quantize.dstart",
        int(1, 64),
        DefaultValue::Int(5),
        "bins for the time to the next note",
    ),
    field(
        "dataset.quantize.duration",
        int(1, 64),
        DefaultValue::Int(5),
        "bins for the note duration",
    ),
    field(
        "dataset.quantize.velocity",
        int(1, 128),
        DefaultValue::Int(3),
        "coarse velocity bins given to the model",
    ),
    field(
        "dataset.quantize.edges",
        Type::Enum(&["original", "quantile", "explicit"]),
        DefaultValue::Str("original"),
        "bin edges: the original fixed table, quantiles of the training split, or the lists below",
    ),
    field(
        "dataset.quantize.dstart-edges",
        Type::FloatList,
        DefaultValue::Unset,
        "explicit dstart edges in seconds (edges=explicit)",
    ),
    field(
        "dataset.quantize.duration-edges",
        Type::FloatList,
        DefaultValue::Unset,
        "explicit duration edges in seconds (edges=explicit)",
    ),
    field(
        "dataset.quantize.velocity-edges",
        Type::FloatList,
        DefaultValue::Unset,
        "explicit velocity edges, closing at 128 (edges=explicit)",
    ),
    field(
        "dataset.augment.pitch-shift",
        int(0, 12),
        DefaultValue::Int(0),
        "largest random transposition in semitones (0: none)",
    ),
    field(
        "dataset.augment.time-stretch",
        closed(0.0, 0.5),
        DefaultValue::Float(0.0),
        "largest relative tempo change (0: none)",
    ),
    field(
        "dataset.augment.probability",
        closed(0.0, 1.0),
        DefaultValue::Float(0.0),
        "chance that a training window is augmented",
    ),
    field(
        "model.architecture",
        Type::Enum(&["vanilla", "t5"]),
        DefaultValue::Str("vanilla"),
        "vanilla (Attention Is All You Need, as midi-translation) or t5 (HuggingFace T5 defaults)",
    ),
    field("model.d-model", int(1, 1 << 16), DefaultValue::Int(256), "model width"),
    field(
        "model.d-kv",
        int(1, 1 << 16),
        DefaultValue::Unset,
        "width of one attention head (default d-model / heads)",
    ),
    field(
        "model.d-ff",
        int(1, 1 << 18),
        DefaultValue::Int(1024),
        "feed-forward width",
    ),
    field(
        "model.encoder-layers",
        int(1, 256),
        DefaultValue::Int(4),
        "encoder blocks",
    ),
    field(
        "model.decoder-layers",
        int(1, 256),
        DefaultValue::Int(4),
        "decoder blocks",
    ),
    field("model.heads", int(1, 1024), DefaultValue::Int(4), "attention heads"),
    field(
        "model.dropout",
        Type::Float {
            min: 0.0,
            max: 1.0,
            open_min: false,
            open_max: true,
        },
        DefaultValue::Float(0.1),
        "dropout probability, in [0, 1)",
    ),
    field(
        "model.attention-dropout",
        Type::Float {
            min: 0.0,
            max: 1.0,
            open_min: false,
            open_max: true,
        },
        DefaultValue::Unset,
        "dropout on the attention weights (default: the model's dropout; midi-translation fixes 0.1)",
    ),
    field(
        "model.norm",
        Type::Enum(&["pre", "post"]),
        DefaultValue::Str("pre"),
        "norm placement: pre-norm (both originals) or post-norm",
    ),
    field(
        "model.positions",
        Type::Enum(&["sinusoidal", "relative"]),
        DefaultValue::Unset,
        "position encoding (default: sinusoidal for vanilla, relative bias for t5)",
    ),
    field(
        "model.tie-embeddings",
        Type::Bool,
        DefaultValue::Unset,
        "share input and output embeddings (default: no for vanilla, yes for t5)",
    ),
    field(
        "model.relative-buckets",
        int(1, 1024),
        DefaultValue::Int(32),
        "relative-position buckets (positions=relative)",
    ),
    field(
        "model.relative-max-distance",
        int(1, 1 << 20),
        DefaultValue::Int(128),
        "relative-position max distance (positions=relative)",
    ),
    field(
        "train.epochs",
        int(1, 1 << 20),
        DefaultValue::Int(5),
        "passes over the training split",
    ),
    field(
        "train.max-steps",
        int(1, BIG),
        DefaultValue::Unset,
        "stop after this many optimizer steps, if sooner",
    ),
    field(
        "train.batch-size",
        int(1, 1 << 20),
        DefaultValue::Int(16),
        "windows per forward pass",
    ),
    field(
        "train.accumulate",
        int(1, 1 << 16),
        DefaultValue::Int(10),
        "forward passes per optimizer step",
    ),
    field(
        "train.accumulate.gradient",
        Type::Enum(&["mean", "sum"]),
        DefaultValue::Str("mean"),
        "a step's gradient: the mean of its passes' gradients, or their sum (both originals)",
    ),
    field(
        "train.accumulate.groups",
        Type::Enum(&["even", "first-alone"]),
        DefaultValue::Str("even"),
        "passes per step: even groups, or the originals' (an epoch's first pass steps alone)",
    ),
    field(
        "train.decoder-input",
        Type::Enum(&["cls", "shift-right"]),
        DefaultValue::Str("cls"),
        "decoder reads [CLS, v1..] (midi-translation) or HF's shift-right [0, CLS, v1..] and predicts CLS too",
    ),
    field(
        "train.precision",
        Type::Enum(&["fp32", "bf16"]),
        DefaultValue::Str("fp32"),
        "bf16 autocast (CUDA) or fp32",
    ),
    field(
        "train.eval-every",
        int(1, 1 << 20),
        DefaultValue::Int(1),
        "evaluate every this many epochs",
    ),
    field(
        "train.early-stop.metric",
        Type::Enum(EARLY_STOP_METRICS),
        DefaultValue::Str("off"),
        "stop when this validation metric has not improved for `patience` evaluations; off trains every epoch",
    ),
    field(
        "train.early-stop.patience",
        int(1, 1 << 20),
        DefaultValue::Int(3),
        "evaluations in a row without an improvement before training stops",
    ),
    field(
        "train.early-stop.min-delta",
        closed(0.0, 1e9),
        DefaultValue::Float(0.0),
        "the least change of the metric that counts as an improvement",
    ),
    field(
        "train.device",
        Type::Str,
        DefaultValue::Str("auto"),
        "auto (CUDA when present), cpu, cuda or cuda:K; not part of the run's identity",
    ),
    field(
        "evaluate.teacher-forced",
        Type::Bool,
        DefaultValue::Bool(true),
        "report teacher-forced metrics",
    ),
    field(
        "evaluate.greedy",
        Type::Bool,
        DefaultValue::Bool(true),
        "report greedy (autoregressive) metrics",
    ),
    field(
        "evaluate.test",
        Type::Bool,
        DefaultValue::Bool(true),
        "also evaluate the test split at the end",
    ),
    field(
        "evaluate.examples",
        int(0, 1024),
        DefaultValue::Int(4),
        "validation windows whose predictions are saved for plots",
    ),
    field(
        "evaluate.listen",
        int(0, 1_000_000),
        DefaultValue::Int(4),
        "test pieces written as MIDI, with true and with greedy-predicted velocities, for the report (with test and greedy)",
    ),
    field(
        "evaluate.argmax",
        Type::Enum(&["velocities", "vocabulary"]),
        DefaultValue::Str("velocities"),
        "predictions choose among the velocity ids, or the whole vocabulary (midi-translation's greedy decoding)",
    ),
];

/// `model.layers N` sets both stacks.
pub static ALIASES: &[(&str, &[&str])] = &[("model.layers", &["model.encoder-layers", "model.decoder-layers"])];

static BETA: Type = Type::Float {
    min: 0.0,
    max: 1.0,
    open_min: false,
    open_max: true,
};

/// The choices.
pub static CHOICES: &[Choice] = &[
    Choice {
        path: "dataset.source",
        kinds: &[
            Kind {
                name: "bundled",
                fields: &[],
            },
            Kind {
                name: "midi-dir",
                fields: &[field(
                    "path",
                    Type::Str,
                    DefaultValue::Unset,
                    "folder of .mid/.midi files (relative to the experiment file)",
                )],
            },
            Kind {
                name: "hf-parquet",
                fields: &[field(
                    "path",
                    Type::Str,
                    DefaultValue::Unset,
                    "folder of parquet files in the HuggingFace maestro layout",
                )],
            },
        ],
        default_kind: "bundled",
        default_overrides: &[],
        doc: "where the performances come from",
    },
    Choice {
        path: "dataset.split",
        kinds: &[
            Kind {
                name: "fractions",
                fields: &[
                    field(
                        "train",
                        closed(0.0, 1.0),
                        DefaultValue::Float(0.8),
                        "share of pieces for training",
                    ),
                    field(
                        "validation",
                        closed(0.0, 1.0),
                        DefaultValue::Float(0.1),
                        "share of pieces for validation",
                    ),
                    field(
                        "test",
                        closed(0.0, 1.0),
                        DefaultValue::Float(0.1),
                        "share of pieces for testing",
                    ),
                    field(
                        "seed",
                        int(0, BIG),
                        DefaultValue::Int(0),
                        "seed of the shuffle that assigns pieces",
                    ),
                ],
            },
            Kind {
                name: "files",
                fields: &[
                    field(
                        "train",
                        Type::StrList,
                        DefaultValue::Unset,
                        "file names of the training pieces",
                    ),
                    field(
                        "validation",
                        Type::StrList,
                        DefaultValue::Unset,
                        "file names of the validation pieces",
                    ),
                    field(
                        "test",
                        Type::StrList,
                        DefaultValue::Unset,
                        "file names of the test pieces",
                    ),
                ],
            },
            Kind {
                name: "column",
                fields: &[],
            },
            Kind {
                name: "table",
                fields: &[
                    field(
                        "path",
                        Type::Str,
                        DefaultValue::Unset,
                        "the metadata table (CSV with a header row), relative to the experiment file",
                    ),
                    field(
                        "file-column",
                        Type::Str,
                        DefaultValue::Str("midi_filename"),
                        "the column naming each row's MIDI file, relative to the source folder",
                    ),
                    field(
                        "split-column",
                        Type::Str,
                        DefaultValue::Str("split"),
                        "the column holding train, validation or test",
                    ),
                ],
            },
            Kind {
                name: "k-fold",
                fields: &[
                    field(
                        "k",
                        int(3, 1000),
                        DefaultValue::Int(5),
                        "folds: each run tests on one, validates on the next and trains on the rest",
                    ),
                    field(
                        "seed",
                        int(0, BIG),
                        DefaultValue::Int(0),
                        "seed of the shuffle that deals groups into folds",
                    ),
                    field(
                        "fold",
                        int(0, 999),
                        DefaultValue::Unset,
                        "plan this fold only (default: one run per fold, labelled `fold`)",
                    ),
                ],
            },
        ],
        default_kind: "fractions",
        default_overrides: &[],
        doc: "how groups of pieces (never windows) are split: fractions, explicit file lists, the parquet's split column, a metadata table's split column, or k folds",
    },
    Choice {
        path: "dataset.group",
        kinds: &[
            Kind {
                name: "file",
                fields: &[],
            },
            Kind {
                name: "folder",
                fields: &[field(
                    "depth",
                    int(0, 64),
                    DefaultValue::Int(0),
                    "folder components that name the group (0: the whole folder)",
                )],
            },
            Kind {
                name: "pattern",
                fields: &[field(
                    "regex",
                    Type::Str,
                    DefaultValue::Unset,
                    "regular expression on the path within the source; its match (or first capture group) names the group",
                )],
            },
            Kind {
                name: "column",
                fields: &[
                    field(
                        "name",
                        Type::Str,
                        DefaultValue::Unset,
                        "the column whose value names the group (e.g. canonical_title)",
                    ),
                    field(
                        "table",
                        Type::Str,
                        DefaultValue::Unset,
                        "the metadata table (CSV), relative to the experiment file (default: an hf-parquet source's own metadata)",
                    ),
                    field(
                        "file-column",
                        Type::Str,
                        DefaultValue::Str("midi_filename"),
                        "the table's column naming each row's MIDI file",
                    ),
                ],
            },
        ],
        default_kind: "file",
        default_overrides: &[],
        doc: "which pieces must share a split: each file alone, one folder, one match of a pattern, or one value of a metadata column",
    },
    Choice {
        path: "loss",
        kinds: &[
            Kind {
                name: "cross-entropy",
                fields: &[],
            },
            Kind {
                name: "label-smoothing",
                fields: &[
                    field(
                        "epsilon",
                        Type::Float {
                            min: 0.0,
                            max: 1.0,
                            open_min: true,
                            open_max: true,
                        },
                        DefaultValue::Float(0.1),
                        "probability mass spread over the other classes",
                    ),
                    field(
                        "target",
                        Type::Enum(&["exclude-specials", "original"]),
                        DefaultValue::Str("exclude-specials"),
                        "spread over the other velocity classes, or midi-translation's eps/(V-2) on every other column",
                    ),
                ],
            },
        ],
        default_kind: "label-smoothing",
        default_overrides: &[],
        doc: "training loss over the velocity classes",
    },
    Choice {
        path: "optimizer",
        kinds: &[
            Kind {
                name: "adam",
                fields: &OPTIMIZER_FIELDS,
            },
            Kind {
                name: "adamw",
                fields: &OPTIMIZER_FIELDS,
            },
        ],
        default_kind: "adam",
        default_overrides: &[("beta2", DefaultValue::Float(0.98)), ("eps", DefaultValue::Float(1e-9))],
        doc: "optimizer (written without properties: PyTorch's defaults)",
    },
    Choice {
        path: "schedule",
        kinds: &[
            Kind {
                name: "noam",
                fields: &[
                    field("warmup", int(1, BIG), DefaultValue::Int(4000), "warm-up steps"),
                    field(
                        "factor",
                        positive(1e6),
                        DefaultValue::Float(1.0),
                        "scale of factor * d_model^-0.5 * min(step^-0.5, step * warmup^-1.5)",
                    ),
                    field(
                        "counts",
                        Type::Enum(&["steps", "batches"]),
                        DefaultValue::Str("steps"),
                        "what step counts: optimizer steps, or forward passes (midi-translation)",
                    ),
                ],
            },
            Kind {
                name: "constant",
                fields: &[field("lr", positive(10.0), DefaultValue::Float(1e-4), "learning rate")],
            },
            Kind {
                name: "cosine",
                fields: &[
                    field(
                        "peak",
                        positive(10.0),
                        DefaultValue::Float(1e-3),
                        "learning rate at the end of warm-up",
                    ),
                    field(
                        "min",
                        closed(0.0, 10.0),
                        DefaultValue::Float(1e-5),
                        "learning rate at the last step",
                    ),
                    field("warmup", int(0, BIG), DefaultValue::Int(1000), "linear warm-up steps"),
                ],
            },
        ],
        default_kind: "noam",
        default_overrides: &[],
        doc: "learning rate as a function of the optimizer step",
    },
];

static OPTIMIZER_FIELDS: [Field; 5] = [
    field("beta1", BETA, DefaultValue::Float(0.9), "first-moment decay"),
    field("beta2", BETA, DefaultValue::Float(0.999), "second-moment decay"),
    field("eps", positive(1.0), DefaultValue::Float(1e-8), "denominator epsilon"),
    field(
        "weight-decay",
        closed(0.0, 1.0),
        DefaultValue::Float(0.0),
        "weight decay (decoupled for adamw)",
    ),
    field(
        "clip-norm",
        positive(1e6),
        DefaultValue::Unset,
        "clip the gradient norm to this value (default: no clipping)",
    ),
];

/// The plain field with this path.
pub fn field_at(path: &str) -> Option<&'static Field> {
    FIELDS.iter().find(|f| f.path == path)
}

/// The choice with this path.
pub fn choice_at(path: &str) -> Option<&'static Choice> {
    CHOICES.iter().find(|c| c.path == path)
}

/// A field of some kind of a choice, by its full path (`schedule.warmup`).
pub fn choice_field_at(path: &str) -> Option<(&'static Choice, &'static Field)> {
    let (choice, name) = path.rsplit_once('.')?;
    let choice = choice_at(choice)?;
    let field = choice.kinds.iter().find_map(|k| k.field(name))?;
    Some((choice, field))
}

/// The fields an alias sets.
pub fn alias_at(path: &str) -> Option<&'static [&'static str]> {
    ALIASES.iter().find(|(a, _)| *a == path).map(|(_, targets)| *targets)
}

/// Whether some field, choice or alias lives under `prefix` (a section).
pub fn is_section(prefix: &str) -> bool {
    let under =
        |path: &str| path.len() > prefix.len() && path.starts_with(prefix) && path.as_bytes()[prefix.len()] == b'.';
    FIELDS.iter().any(|f| under(f.path))
        || CHOICES.iter().any(|c| under(c.path))
        || ALIASES.iter().any(|(a, _)| under(a))
}

/// The names that may follow `prefix.` (for did-you-mean suggestions).
pub fn names_under(prefix: &str) -> Vec<&'static str> {
    let all = FIELDS
        .iter()
        .map(|f| f.path)
        .chain(CHOICES.iter().map(|c| c.path))
        .chain(ALIASES.iter().map(|(a, _)| *a));
    let mut names: Vec<&'static str> = all
        .filter_map(|path| {
            let rest = if prefix.is_empty() {
                path
            } else {
                path.strip_prefix(prefix)?.strip_prefix('.')?
            };
            rest.split('.').next()
        })
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

/// Every path an axis may vary: plain fields, choices, the choices' fields
/// and aliases.
pub fn all_paths() -> Vec<String> {
    let mut paths: Vec<String> = FIELDS
        .iter()
        .map(|f| f.path.to_owned())
        .chain(CHOICES.iter().map(|c| c.path.to_owned()))
        .chain(ALIASES.iter().map(|(a, _)| (*a).to_owned()))
        .collect();
    for choice in CHOICES {
        for kind in choice.kinds {
            for field in kind.fields {
                let path = format!("{}.{}", choice.path, field.path);
                if !paths.contains(&path) {
                    paths.push(path);
                }
            }
        }
    }
    paths
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_path_is_unique() {
        let mut paths = all_paths();
        let n = paths.len();
        paths.sort_unstable();
        paths.dedup();
        assert_eq!(paths.len(), n);
    }

    #[test]
    fn sections_and_names_follow_from_the_paths() {
        assert!(is_section("dataset"));
        assert!(is_section("dataset.window"));
        assert!(!is_section("dataset.window.length"));
        assert!(names_under("dataset.window").contains(&"length"));
        assert!(names_under("").contains(&"schedule"));
        assert!(names_under("model").contains(&"layers"));
    }

    #[test]
    fn early_stop_accepts_off_and_every_metric_name() {
        let names: Vec<&str> = crate::file::Metric::ALL.iter().map(|(name, _)| *name).collect();
        assert_eq!(EARLY_STOP_METRICS[0], "off");
        assert_eq!(&EARLY_STOP_METRICS[1..], names.as_slice());
    }

    #[test]
    fn defaults_are_within_their_ranges() {
        let check = |f: &Field| match (f.ty, f.default) {
            (Type::Int { min, max }, DefaultValue::Int(v)) => assert!((min..=max).contains(&v), "{}", f.path),
            (Type::Float { min, max, .. }, DefaultValue::Float(v)) => assert!(v >= min && v <= max, "{}", f.path),
            (Type::Enum(words), DefaultValue::Str(w)) => assert!(words.contains(&w), "{}", f.path),
            _ => {}
        };
        FIELDS.iter().for_each(check);
        CHOICES
            .iter()
            .flat_map(|c| c.kinds)
            .flat_map(|k| k.fields)
            .for_each(check);
        for choice in CHOICES {
            assert!(choice.kind(choice.default_kind).is_some(), "{}", choice.path);
        }
    }
}
