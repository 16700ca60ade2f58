//! Overrides → a typed [`RunConfig`].
//!
//! In: the overrides that make one run, in order (base settings, variant,
//! axis values). Out: the run's [`RunConfig`] and device preference, or the
//! problems found in the combination (e.g. `d-model` not divisible by
//! `heads`), each pointing at where the offending value was written.

use std::collections::BTreeMap;

use super::config::*;
use runner_spec::error::count;
use runner_spec::file::Metric;
use runner_spec::schema::{self, CHOICES, DefaultValue, FIELDS};
use runner_spec::value::Value;
use runner_spec::{Kind, Override, Problem, Span};

/// Every field's value for one run, with where it was set (`None`: default).
#[derive(Debug, Clone)]
struct Settings {
    values: BTreeMap<String, (Value, Option<Span>)>,
    /// Where to point when a problem involves only defaults.
    fallback: Span,
}

impl Settings {
    fn defaults(fallback: Span) -> Self {
        let mut settings = Settings {
            values: BTreeMap::new(),
            fallback,
        };
        for field in FIELDS {
            if let Some(value) = default_value(field.default) {
                settings.values.insert(field.path.to_owned(), (value, None));
            }
        }
        for choice in CHOICES {
            settings.choose(choice.path, choice.default_kind, None);
            for (name, default) in choice.default_overrides {
                if let Some(value) = default_value(*default) {
                    settings.values.insert(format!("{}.{name}", choice.path), (value, None));
                }
            }
        }
        settings
    }

    /// Sets a choice to a kind, with the kind's default fields.
    fn choose(&mut self, path: &str, kind: &str, span: Option<Span>) {
        let choice = schema::choice_at(path).expect("choices come from the schema");
        let prefix = format!("{path}.");
        self.values.retain(|key, _| !key.starts_with(&prefix));
        self.values.insert(path.to_owned(), (Value::Str(kind.to_owned()), span));
        let kind = choice.kind(kind).expect("kinds come from the schema");
        for field in kind.fields {
            if let Some(value) = default_value(field.default) {
                self.values.insert(format!("{path}.{}", field.path), (value, None));
            }
        }
    }

    /// Applies one override; a tweak of a field the current kind lacks is a problem.
    fn apply(&mut self, item: &Override, problems: &mut Vec<Problem>) {
        match item {
            Override::Set { path, value, span } => {
                self.values.insert((*path).to_owned(), (value.clone(), Some(*span)));
            }
            Override::Tweak {
                choice,
                field,
                value,
                span,
            } => {
                let kind = self.word(choice).to_owned();
                let has_field = schema::choice_at(choice)
                    .and_then(|c| c.kind(&kind))
                    .and_then(|k| k.field(field));
                if has_field.is_none() {
                    problems.push(
                        Problem::at(
                            Kind::KindLacksField {
                                choice: (*choice).to_owned(),
                                field: (*field).to_owned(),
                                kind: kind.clone(),
                            },
                            *span,
                        )
                        .also(self.span(choice), format!("{choice} set here")),
                    );
                }
                self.values
                    .insert(format!("{choice}.{field}"), (value.clone(), Some(*span)));
            }
            Override::Choose {
                path,
                kind,
                fields,
                span,
            } => {
                self.choose(path, kind, Some(*span));
                for (name, value, field_span) in fields {
                    self.values
                        .insert(format!("{path}.{name}"), (value.clone(), Some(*field_span)));
                }
            }
        }
    }

    fn get(&self, path: &str) -> Option<&Value> {
        self.values.get(path).map(|(v, _)| v)
    }

    /// Where the file set `path`; `None` when it takes its default.
    fn written(&self, path: &str) -> Option<Span> {
        self.values.get(path).and_then(|(_, s)| *s)
    }

    fn span(&self, path: &str) -> Span {
        self.values.get(path).and_then(|(_, s)| *s).unwrap_or(self.fallback)
    }

    fn int(&self, path: &str) -> i64 {
        match self.get(path) {
            Some(Value::Int(i)) => *i,
            _ => unreachable!("{path} holds an integer; the parser checks types"),
        }
    }

    fn opt_int(&self, path: &str) -> Option<i64> {
        self.get(path).map(|_| self.int(path))
    }

    fn float(&self, path: &str) -> f64 {
        self.get(path)
            .and_then(Value::as_f64)
            .unwrap_or_else(|| unreachable!("{path} is a number"))
    }

    fn opt_float(&self, path: &str) -> Option<f64> {
        self.get(path).and_then(Value::as_f64)
    }

    fn word(&self, path: &str) -> &str {
        self.get(path)
            .and_then(Value::as_str)
            .unwrap_or_else(|| unreachable!("{path} is a word"))
    }

    fn bool(&self, path: &str) -> Option<bool> {
        match self.get(path) {
            Some(Value::Bool(b)) => Some(*b),
            _ => None,
        }
    }

    fn floats(&self, path: &str) -> Option<Vec<f64>> {
        match self.get(path) {
            Some(Value::List(items)) => Some(items.iter().filter_map(Value::as_f64).collect()),
            _ => None,
        }
    }

    fn strings(&self, path: &str) -> Vec<String> {
        match self.get(path) {
            Some(Value::List(items)) => items.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect(),
            _ => Vec::new(),
        }
    }
}

fn default_value(default: DefaultValue) -> Option<Value> {
    match default {
        DefaultValue::Bool(b) => Some(Value::Bool(b)),
        DefaultValue::Int(i) => Some(Value::Int(i)),
        DefaultValue::Float(f) => Some(Value::Float(f)),
        DefaultValue::Str(s) => Some(Value::Str(s.to_owned())),
        DefaultValue::Unset => None,
    }
}

/// A run's configuration and where it asks to be placed.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The configuration.
    pub config: RunConfig,
    /// The device preference.
    pub device: DevicePreference,
    /// With `split k-fold` and no `fold` given: the number of folds, one
    /// run each (the planner sets the fold).
    pub folds: Option<usize>,
}

/// Applies the overrides in order on top of the defaults and checks the
/// result. `fallback` is where problems about defaults point.
pub fn resolve<'a>(
    overrides: impl IntoIterator<Item = &'a Override>,
    fallback: Span,
) -> Result<Resolved, Vec<Problem>> {
    let mut s = Settings::defaults(fallback);
    let mut problems = Vec::new();
    for item in overrides {
        s.apply(item, &mut problems);
    }
    let config = build(&s, &mut problems);
    if let Some(stop) = config.train.early_stop
        && let Some(cannot) = config.unwatchable(stop.metric)
    {
        let mut problem = cannot_watch("early-stop", stop.metric, cannot, s.span("train.early-stop.metric"));
        if let Some((path, what)) = cannot.setting {
            problem = problem.also(s.span(path), what);
        }
        problems.push(problem);
    }
    let device = match DevicePreference::parse(s.word("train.device")) {
        Some(device) => device,
        None => {
            problems.push(
                Problem::at(
                    Kind::UnknownDevice {
                        device: s.word("train.device").to_owned(),
                    },
                    s.span("train.device"),
                )
                .help("use auto, cpu, cuda or cuda:K"),
            );
            DevicePreference::Auto
        }
    };
    let folds = (s.word("dataset.split") == "k-fold" && s.get("dataset.split.fold").is_none())
        .then(|| s.int("dataset.split.k") as usize);
    if problems.is_empty() {
        Ok(Resolved { config, device, folds })
    } else {
        Err(problems)
    }
}

/// The problem of `watcher` (early stopping, a search) watching `metric`,
/// at `at`, which `cannot` says why it cannot.
pub(crate) fn cannot_watch(watcher: &str, metric: Metric, cannot: Unwatchable, at: Span) -> Problem {
    Problem::at(
        Kind::CannotWatch {
            watcher: watcher.to_owned(),
            metric: metric.name().to_owned(),
            why: cannot.why.to_owned(),
        },
        at,
    )
    .help(cannot.help)
}

/// `train { early-stop metric=M patience=P min-delta=D }`, or `None` when
/// its metric is off (then a patience or min-delta written is a problem).
fn early_stop(s: &Settings, problems: &mut Vec<Problem>) -> Option<EarlyStop> {
    const METRIC: &str = "train.early-stop.metric";
    let word = s.word(METRIC);
    let Some(metric) = Metric::named(word) else {
        for field in ["train.early-stop.patience", "train.early-stop.min-delta"] {
            if let Some(span) = s.written(field) {
                problems.push(
                    Problem::at(
                        Kind::EarlyStopOff {
                            field: field.to_owned(),
                        },
                        span,
                    )
                    .help("add metric=val-dist (or another validation metric) to `early-stop`"),
                );
            }
        }
        return None;
    };
    Some(EarlyStop {
        metric,
        patience: s.int("train.early-stop.patience") as u64,
        min_delta: s.float("train.early-stop.min-delta"),
    })
}

fn build(s: &Settings, problems: &mut Vec<Problem>) -> RunConfig {
    let architecture = match s.word("model.architecture") {
        "t5" => Architecture::T5,
        _ => Architecture::Vanilla,
    };
    let d_model = s.int("model.d-model") as usize;
    let heads = s.int("model.heads") as usize;
    let d_kv = match s.opt_int("model.d-kv") {
        Some(d_kv) => {
            if architecture == Architecture::Vanilla && d_kv as usize * heads != d_model {
                problems.push(
                    Problem::at(Kind::KvTimesHeads { d_kv, heads, d_model }, s.span("model.d-kv"))
                        .help("leave d-kv out (it defaults to d-model / heads), or use architecture t5"),
                );
            }
            d_kv as usize
        }
        None => {
            if !d_model.is_multiple_of(heads) {
                problems.push(
                    Problem::at(Kind::HeadsDivide { d_model, heads }, s.span("model.heads"))
                        .also(s.span("model.d-model"), format!("d-model {d_model}")),
                );
            }
            (d_model / heads.max(1)).max(1)
        }
    };
    let positions = match s.get("model.positions").and_then(Value::as_str) {
        Some("relative") => Positions::Relative,
        Some(_) => Positions::Sinusoidal,
        None if architecture == Architecture::T5 => Positions::Relative,
        None => Positions::Sinusoidal,
    };
    let relative = positions == Positions::Relative;
    let model = ModelConfig {
        architecture,
        d_model,
        d_kv,
        d_ff: s.int("model.d-ff") as usize,
        encoder_layers: s.int("model.encoder-layers") as usize,
        decoder_layers: s.int("model.decoder-layers") as usize,
        heads,
        dropout: s.float("model.dropout"),
        norm: if s.word("model.norm") == "post" {
            Norm::Post
        } else {
            Norm::Pre
        },
        positions,
        tie_embeddings: s
            .bool("model.tie-embeddings")
            .unwrap_or(architecture == Architecture::T5),
        relative_buckets: relative.then(|| s.int("model.relative-buckets") as usize),
        relative_max_distance: relative.then(|| s.int("model.relative-max-distance") as usize),
        // Written equal to the dropout, it is the default: the same run.
        attention_dropout: s
            .opt_float("model.attention-dropout")
            .filter(|&p| p != s.float("model.dropout")),
    };
    RunConfig {
        seed: s.int("seed") as u64,
        dataset: dataset(s, problems),
        encoder: if s.word("encoder") == "shared" {
            Scheme::Shared
        } else {
            Scheme::Separate
        },
        model,
        loss: match s.word("loss") {
            "cross-entropy" => Loss::CrossEntropy,
            _ => Loss::LabelSmoothing {
                epsilon: s.float("loss.epsilon"),
                target: if s.word("loss.target") == "original" {
                    SmoothingTarget::Original
                } else {
                    SmoothingTarget::ExcludeSpecials
                },
            },
        },
        optimizer: OptimizerConfig {
            kind: if s.word("optimizer") == "adamw" {
                OptimizerKind::Adamw
            } else {
                OptimizerKind::Adam
            },
            beta1: s.float("optimizer.beta1"),
            beta2: s.float("optimizer.beta2"),
            eps: s.float("optimizer.eps"),
            weight_decay: s.float("optimizer.weight-decay"),
            clip_norm: s.opt_float("optimizer.clip-norm"),
        },
        schedule: schedule(s, problems),
        train: TrainConfig {
            epochs: s.int("train.epochs") as u64,
            max_steps: s.opt_int("train.max-steps").map(|n| n as u64),
            batch_size: s.int("train.batch-size") as usize,
            accumulate: s.int("train.accumulate") as usize,
            gradient: if s.word("train.accumulate.gradient") == "sum" {
                Gradient::Sum
            } else {
                Gradient::Mean
            },
            groups: if s.word("train.accumulate.groups") == "first-alone" {
                StepGroups::FirstAlone
            } else {
                StepGroups::Even
            },
            decoder_input: if s.word("train.decoder-input") == "shift-right" {
                DecoderInput::ShiftRight
            } else {
                DecoderInput::Cls
            },
            precision: if s.word("train.precision") == "bf16" {
                Precision::Bf16
            } else {
                Precision::Fp32
            },
            eval_every: s.int("train.eval-every") as u64,
            early_stop: early_stop(s, problems),
        },
        evaluate: EvaluateConfig {
            teacher_forced: s.bool("evaluate.teacher-forced").unwrap_or(true),
            greedy: s.bool("evaluate.greedy").unwrap_or(true),
            test: s.bool("evaluate.test").unwrap_or(true),
            examples: s.int("evaluate.examples") as usize,
            listen: s.int("evaluate.listen") as usize,
            argmax: if s.word("evaluate.argmax") == "vocabulary" {
                Argmax::Vocabulary
            } else {
                Argmax::Velocities
            },
        },
    }
}

fn schedule(s: &Settings, problems: &mut Vec<Problem>) -> Schedule {
    match s.word("schedule") {
        "constant" => Schedule::Constant {
            lr: s.float("schedule.lr"),
        },
        "cosine" => {
            let (peak, min) = (s.float("schedule.peak"), s.float("schedule.min"));
            if min > peak {
                problems.push(Problem::at(Kind::MinAbovePeak { min, peak }, s.span("schedule.min")));
            }
            Schedule::Cosine {
                peak,
                min,
                warmup: s.int("schedule.warmup") as u64,
            }
        }
        _ => Schedule::Noam {
            warmup: s.int("schedule.warmup") as u64,
            factor: s.float("schedule.factor"),
            counts: if s.word("schedule.counts") == "batches" {
                NoamCounts::Batches
            } else {
                NoamCounts::Steps
            },
        },
    }
}

fn dataset(s: &Settings, problems: &mut Vec<Problem>) -> DatasetConfig {
    let path_of = |kind: &str, problems: &mut Vec<Problem>| match s.get("dataset.source.path").and_then(Value::as_str) {
        Some(path) => path.to_owned(),
        None => {
            problems.push(Problem::at(
                Kind::SourceNeedsPath { kind: kind.to_owned() },
                s.span("dataset.source"),
            ));
            String::new()
        }
    };
    let source = match s.word("dataset.source") {
        "midi-dir" => Source::MidiDir {
            path: path_of("midi-dir", problems),
        },
        "hf-parquet" => Source::HfParquet {
            path: path_of("hf-parquet", problems),
        },
        _ => Source::Bundled,
    };
    let split = match s.word("dataset.split") {
        "files" => {
            let lists = ["train", "validation", "test"].map(|name| s.strings(&format!("dataset.split.{name}")));
            if lists[0].is_empty() {
                problems.push(Problem::at(Kind::NoTrainList, s.span("dataset.split")));
            }
            let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
            for (name, list) in ["train", "validation", "test"].iter().zip(&lists) {
                for file in list {
                    if let Some(first) = seen.insert(file, name) {
                        problems.push(Problem::at(
                            Kind::SplitOverlap {
                                file: file.clone(),
                                first: (*first).to_owned(),
                                second: (*name).to_owned(),
                            },
                            s.span(&format!("dataset.split.{name}")),
                        ));
                    }
                }
            }
            let [train, validation, test] = lists;
            Split::Files {
                train,
                validation,
                test,
            }
        }
        "k-fold" => {
            let k = s.int("dataset.split.k") as usize;
            let fold = s.opt_int("dataset.split.fold").map_or(0, |f| f as usize);
            if fold >= k {
                problems.push(Problem::at(
                    Kind::OutOfRange {
                        path: "dataset.split.fold".to_owned(),
                        range: format!("0..={} (k={k})", k - 1),
                        value: fold.to_string(),
                    },
                    s.span("dataset.split.fold"),
                ));
            }
            Split::KFold {
                k,
                fold,
                seed: s.int("dataset.split.seed") as u64,
            }
        }
        "table" => Split::Table {
            path: match s.get("dataset.split.path").and_then(Value::as_str) {
                Some(path) => path.to_owned(),
                None => {
                    problems.push(Problem::at(Kind::TableNeedsPath, s.span("dataset.split")));
                    String::new()
                }
            },
            file_column: s.word("dataset.split.file-column").to_owned(),
            split_column: s.word("dataset.split.split-column").to_owned(),
        },
        "column" => {
            if s.word("dataset.source") != "hf-parquet" {
                problems.push(Problem::at(Kind::ColumnNeedsParquet, s.span("dataset.split")));
            }
            Split::Column
        }
        _ => {
            let [train, validation, test] =
                ["train", "validation", "test"].map(|name| s.float(&format!("dataset.split.{name}")));
            let sum = train + validation + test;
            if (sum - 1.0).abs() > 1e-9 {
                problems.push(Problem::at(Kind::FractionsSum { sum }, s.span("dataset.split")));
            }
            if train <= 0.0 {
                problems.push(Problem::at(Kind::NoTrainFraction, s.span("dataset.split.train")));
            }
            Split::Fractions {
                train,
                validation,
                test,
                seed: s.int("dataset.split.seed") as u64,
            }
        }
    };
    DatasetConfig {
        source,
        split,
        group: group(s, problems),
        sustain: (s.bool("dataset.sustain") == Some(true)).then(|| s.int("dataset.sustain.threshold") as u8),
        bad_files: if s.word("dataset.bad-files") == "fail" {
            BadFiles::Fail
        } else {
            BadFiles::Skip
        },
        duplicates: match s.word("dataset.duplicates") {
            "fail" => Duplicates::Fail,
            "keep" => Duplicates::Keep,
            _ => Duplicates::Drop,
        },
        min_velocities: s.int("dataset.min-velocities") as u8,
        window: Window {
            length: s.int("dataset.window.length") as usize,
            step: s.int("dataset.window.step") as usize,
        },
        quantize: quantize(s, problems),
        augment: Augment {
            pitch_shift: s.int("dataset.augment.pitch-shift") as u8,
            time_stretch: s.float("dataset.augment.time-stretch"),
            probability: s.float("dataset.augment.probability"),
        },
    }
}

/// The `group` rule; a pattern must be given and be a regular expression,
/// a column needs its name, and a table unless the source is parquet.
fn group(s: &Settings, problems: &mut Vec<Problem>) -> Group {
    match s.word("dataset.group") {
        "column" => {
            let table = s.get("dataset.group.table").and_then(Value::as_str).map(str::to_owned);
            if table.is_none() && s.word("dataset.source") != "hf-parquet" {
                problems.push(Problem::at(Kind::GroupColumnNeedsTable, s.span("dataset.group")));
            }
            let Some(name) = s.get("dataset.group.name").and_then(Value::as_str) else {
                problems.push(Problem::at(Kind::NoColumnName, s.span("dataset.group")));
                return Group::File;
            };
            Group::Column {
                name: name.to_owned(),
                table,
                file_column: s.word("dataset.group.file-column").to_owned(),
            }
        }
        "folder" => Group::Folder {
            depth: s.int("dataset.group.depth") as usize,
        },
        "pattern" => {
            let Some(regex) = s.get("dataset.group.regex").and_then(Value::as_str) else {
                problems.push(Problem::at(Kind::NoPattern, s.span("dataset.group")));
                return Group::File;
            };
            if let Err(error) = regex::Regex::new(regex) {
                problems.push(Problem::at(
                    Kind::BadPattern {
                        problem: error.to_string(),
                    },
                    s.span("dataset.group.regex"),
                ));
            }
            Group::Pattern {
                regex: regex.to_owned(),
            }
        }
        _ => Group::File,
    }
}

fn quantize(s: &Settings, problems: &mut Vec<Problem>) -> Quantize {
    let bins = ["dstart", "duration", "velocity"].map(|name| s.int(&format!("dataset.quantize.{name}")) as usize);
    match s.word("dataset.quantize.edges") {
        "explicit" => {
            let mut lists = Vec::new();
            for name in ["dstart", "duration", "velocity"] {
                let path = format!("dataset.quantize.{name}-edges");
                match s.floats(&path) {
                    Some(edges) => {
                        check_edges(name, &edges, s.span(&path), problems);
                        check_bins(s, name, &edges, problems);
                        lists.push(edges);
                    }
                    None => {
                        problems.push(Problem::at(
                            Kind::NoEdges { name: name.to_owned() },
                            s.span("dataset.quantize.edges"),
                        ));
                        lists.push(Vec::new());
                    }
                }
            }
            let velocity = lists.pop().unwrap_or_default();
            let duration = lists.pop().unwrap_or_default();
            let dstart = lists.pop().unwrap_or_default();
            Quantize {
                dstart: bins_of("dstart", &dstart),
                duration: bins_of("duration", &duration),
                velocity: bins_of("velocity", &velocity),
                edges: Edges::Explicit {
                    dstart,
                    duration,
                    velocity,
                },
            }
        }
        mode => {
            if mode == "original" {
                for (name, asked) in ["dstart", "duration", "velocity"].iter().zip(bins) {
                    if asked != 3 && asked != 5 {
                        let path = format!("dataset.quantize.{name}");
                        problems.push(
                            Problem::at(
                                Kind::OriginalBins {
                                    name: (*name).to_owned(),
                                    asked,
                                },
                                s.span(&path),
                            )
                            .help("use 3 or 5 bins, or edges=quantile to compute edges from the training split"),
                        );
                    }
                }
            }
            let edges = if mode == "quantile" {
                Edges::Quantile
            } else {
                Edges::Original
            };
            Quantize {
                dstart: bins[0],
                duration: bins[1],
                velocity: bins[2],
                edges,
            }
        }
    }
}

/// The number of bins explicit edges make: an open last bin for dstart and
/// duration, a closed one (at 128) for velocity.
fn bins_of(name: &str, edges: &[f64]) -> usize {
    if name == "velocity" {
        edges.len().saturating_sub(1)
    } else {
        edges.len()
    }
}

/// A bin count written beside explicit edges must be the count they make.
fn check_bins(s: &Settings, name: &str, edges: &[f64], problems: &mut Vec<Problem>) {
    let count_path = format!("dataset.quantize.{name}");
    let Some(span) = s.written(&count_path) else { return };
    let asked = s.int(&count_path) as usize;
    let made = bins_of(name, edges);
    if asked != made {
        let closing = if name == "velocity" {
            ", the last closing the top bin"
        } else {
            ""
        };
        problems.push(
            Problem::at(
                Kind::BinsContradictEdges {
                    name: name.to_owned(),
                    asked,
                    made,
                },
                span,
            )
            .also(
                s.span(&format!("dataset.quantize.{name}-edges")),
                format!("{}{closing}", count(edges.len(), "edge")),
            )
            .help(format!(
                "leave `{name}` out: with edges=explicit the edges give the bins"
            )),
        );
    }
}

fn check_edges(name: &str, edges: &[f64], span: Span, problems: &mut Vec<Problem>) {
    if edges.first() != Some(&0.0) {
        problems.push(Problem::at(Kind::EdgesStart { name: name.to_owned() }, span));
    }
    if edges.windows(2).any(|w| w[0] >= w[1]) {
        problems.push(Problem::at(Kind::EdgesIncreasing { name: name.to_owned() }, span));
    }
    if name == "velocity" && (edges.len() < 2 || edges.last().is_some_and(|last| *last > 128.0)) {
        problems.push(Problem::at(Kind::VelocityEdges, span));
    }
}
