//! A planned run → an experiment file describing only that run.
//!
//! In: the experiment's name and one [`PlannedRun`]. Out: KDL text in the
//! experiment language (`docs/dsl.md`) that sets every field of the run's
//! [`RunConfig`] explicitly, derived values included, so that planning the
//! text gives back exactly this run: the same configuration and the same id.
//! The executor stores it as `config.kdl` in the run's folder. Relative data
//! folders are written as they were, so they are still relative to the
//! original experiment file's folder.

use std::fmt::Write;

use kdl::KdlValue;

use super::PlannedRun;
use super::config::*;

/// The text of an experiment file whose plan is exactly `run`.
pub fn experiment_file(experiment: &str, run: &PlannedRun) -> String {
    let c = &run.config;
    let mut out = String::new();
    let labels = if run.labels.is_empty() {
        String::new()
    } else {
        format!(" ({})", run.label_text())
    };
    let _ = writeln!(out, "// Run {} of the experiment `{experiment}`{labels},", run.id);
    out.push_str("// every setting resolved. `runner plan` on this file plans this run alone, with\n");
    out.push_str("// the same id. Relative data folders are relative to the original experiment file.\n");
    let _ = writeln!(out, "experiment {} {{", text(experiment));
    let description = format!("run {} of {experiment}{labels}", run.id);
    let mut top = Section::new(&mut out, 1);
    top.line(format_args!("description {}", text(&description)));
    top.line(format_args!("seed {}", c.seed));
    top.line(format_args!("encoder {}", word(c.encoder)));
    dataset(&mut top, &c.dataset);
    model(&mut top, &c.model);
    top.line(format_args!("loss {}", loss(c.loss)));
    optimizer(&mut top, &c.optimizer);
    top.line(format_args!("schedule {}", schedule(c.schedule)));
    train(&mut top, &c.train, run.device);
    evaluate(&mut top, &c.evaluate);
    out.push_str("}\n");
    out
}

/// Lines at one indentation depth.
struct Section<'a> {
    out: &'a mut String,
    depth: usize,
}

impl Section<'_> {
    fn new(out: &mut String, depth: usize) -> Section<'_> {
        Section { out, depth }
    }

    fn line(&mut self, line: std::fmt::Arguments<'_>) {
        let _ = writeln!(self.out, "{}{line}", "    ".repeat(self.depth));
    }

    /// `name { ... }` with the lines `body` writes inside.
    fn block(&mut self, name: std::fmt::Arguments<'_>, body: impl FnOnce(&mut Section<'_>)) {
        self.line(format_args!("{name} {{"));
        body(&mut Section::new(self.out, self.depth + 1));
        self.line(format_args!("}}"));
    }
}

fn dataset(s: &mut Section<'_>, d: &DatasetConfig) {
    s.block(format_args!("dataset"), |s| {
        s.line(format_args!(
            "source {}",
            match &d.source {
                Source::Bundled => "bundled".to_owned(),
                Source::MidiDir { path } => format!("midi-dir path={}", text(path)),
                Source::HfParquet { path } => format!("hf-parquet path={}", text(path)),
            }
        ));
        match &d.split {
            Split::Fractions {
                train,
                validation,
                test,
                seed,
            } => s.line(format_args!(
                "split fractions train={} validation={} test={} seed={seed}",
                float(*train),
                float(*validation),
                float(*test)
            )),
            Split::Files {
                train,
                validation,
                test,
            } => s.block(format_args!("split files"), |s| {
                for (name, files) in [("train", train), ("validation", validation), ("test", test)] {
                    if !files.is_empty() {
                        let files: Vec<String> = files.iter().map(|f| text(f)).collect();
                        s.line(format_args!("{name} {}", files.join(" ")));
                    }
                }
            }),
            Split::Column => s.line(format_args!("split column")),
            Split::Table {
                path,
                file_column,
                split_column,
            } => s.line(format_args!(
                "split table path={} file-column={} split-column={}",
                text(path),
                text(file_column),
                text(split_column)
            )),
            Split::KFold { k, fold, seed } => s.line(format_args!("split k-fold k={k} seed={seed} fold={fold}")),
        }
        match &d.group {
            Group::File => s.line(format_args!("group file")),
            Group::Folder { depth } => s.line(format_args!("group folder depth={depth}")),
            Group::Pattern { regex } => s.line(format_args!("group pattern regex={}", text(regex))),
            Group::Column {
                name,
                table,
                file_column,
            } => match table {
                Some(table) => s.line(format_args!(
                    "group column name={} table={} file-column={}",
                    text(name),
                    text(table),
                    text(file_column)
                )),
                None => s.line(format_args!("group column name={}", text(name))),
            },
        }
        match d.sustain {
            Some(threshold) => s.line(format_args!("sustain #true threshold={threshold}")),
            None => s.line(format_args!("sustain #false")),
        }
        s.line(format_args!("bad-files {}", word(d.bad_files)));
        s.line(format_args!("duplicates {}", word(d.duplicates)));
        s.line(format_args!("min-velocities {}", d.min_velocities));
        s.line(format_args!("window length={} step={}", d.window.length, d.window.step));
        let q = &d.quantize;
        match &q.edges {
            Edges::Explicit {
                dstart,
                duration,
                velocity,
            } => s.block(format_args!("quantize edges=explicit"), |s| {
                for (name, edges) in [("dstart", dstart), ("duration", duration), ("velocity", velocity)] {
                    let edges: Vec<String> = edges.iter().map(|e| float(*e)).collect();
                    s.line(format_args!("{name}-edges {}", edges.join(" ")));
                }
            }),
            edges => s.line(format_args!(
                "quantize dstart={} duration={} velocity={} edges={}",
                q.dstart,
                q.duration,
                q.velocity,
                if *edges == Edges::Quantile {
                    "quantile"
                } else {
                    "original"
                }
            )),
        }
        let a = &d.augment;
        s.line(format_args!(
            "augment pitch-shift={} time-stretch={} probability={}",
            a.pitch_shift,
            float(a.time_stretch),
            float(a.probability)
        ));
    });
}

fn model(s: &mut Section<'_>, m: &ModelConfig) {
    s.block(format_args!("model"), |s| {
        s.line(format_args!("architecture {}", word(m.architecture)));
        s.line(format_args!("d-model {}", m.d_model));
        s.line(format_args!("d-kv {}", m.d_kv));
        s.line(format_args!("d-ff {}", m.d_ff));
        s.line(format_args!("encoder-layers {}", m.encoder_layers));
        s.line(format_args!("decoder-layers {}", m.decoder_layers));
        s.line(format_args!("heads {}", m.heads));
        s.line(format_args!("dropout {}", float(m.dropout)));
        s.line(format_args!("norm {}", word(m.norm)));
        s.line(format_args!("positions {}", word(m.positions)));
        s.line(format_args!("tie-embeddings #{}", m.tie_embeddings));
        if let Some(buckets) = m.relative_buckets {
            s.line(format_args!("relative-buckets {buckets}"));
        }
        if let Some(distance) = m.relative_max_distance {
            s.line(format_args!("relative-max-distance {distance}"));
        }
        if let Some(p) = m.attention_dropout {
            s.line(format_args!("attention-dropout {}", float(p)));
        }
    });
}

fn loss(loss: Loss) -> String {
    match loss {
        Loss::CrossEntropy => "cross-entropy".to_owned(),
        Loss::LabelSmoothing { epsilon, target } => {
            format!("label-smoothing epsilon={} target={}", float(epsilon), word(target))
        }
    }
}

fn optimizer(s: &mut Section<'_>, o: &OptimizerConfig) {
    let clip = o
        .clip_norm
        .map_or_else(String::new, |clip| format!(" clip-norm={}", float(clip)));
    s.line(format_args!(
        "optimizer {} beta1={} beta2={} eps={} weight-decay={}{clip}",
        word(o.kind),
        float(o.beta1),
        float(o.beta2),
        float(o.eps),
        float(o.weight_decay)
    ));
}

fn schedule(schedule: Schedule) -> String {
    match schedule {
        Schedule::Noam { warmup, factor, counts } => {
            format!("noam warmup={warmup} factor={} counts={}", float(factor), word(counts))
        }
        Schedule::Constant { lr } => format!("constant lr={}", float(lr)),
        Schedule::Cosine { peak, min, warmup } => {
            format!("cosine peak={} min={} warmup={warmup}", float(peak), float(min))
        }
    }
}

fn train(s: &mut Section<'_>, t: &TrainConfig, device: DevicePreference) {
    s.block(format_args!("train"), |s| {
        s.line(format_args!("epochs {}", t.epochs));
        if let Some(max) = t.max_steps {
            s.line(format_args!("max-steps {max}"));
        }
        s.line(format_args!("batch-size {}", t.batch_size));
        s.line(format_args!(
            "accumulate {} gradient={} groups={}",
            t.accumulate,
            word(t.gradient),
            word(t.groups)
        ));
        s.line(format_args!("decoder-input {}", word(t.decoder_input)));
        s.line(format_args!("precision {}", word(t.precision)));
        s.line(format_args!("eval-every {}", t.eval_every));
        if let Some(stop) = t.early_stop {
            s.line(format_args!(
                "early-stop metric={} patience={} min-delta={}",
                stop.metric.name(),
                stop.patience,
                float(stop.min_delta)
            ));
        }
        s.line(format_args!("device {}", text(&device.to_string())));
    });
}

fn evaluate(s: &mut Section<'_>, e: &EvaluateConfig) {
    s.block(format_args!("evaluate"), |s| {
        s.line(format_args!("teacher-forced #{}", e.teacher_forced));
        s.line(format_args!("greedy #{}", e.greedy));
        s.line(format_args!("test #{}", e.test));
        s.line(format_args!("examples {}", e.examples));
        s.line(format_args!("listen {}", e.listen));
        s.line(format_args!("argmax {}", word(e.argmax)));
    });
}

/// A string as KDL writes it: bare when it can be, quoted and escaped otherwise.
fn text(s: &str) -> String {
    KdlValue::String(s.to_owned()).to_string()
}

/// A number in its shortest spelling that reads back exactly (`0.1`, `1e-9`).
fn float(x: f64) -> String {
    KdlValue::Float(x).to_string()
}

/// A unit enum's word, as the configuration's serde form spells it.
fn word(value: impl serde::Serialize) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(word)) => word,
        other => unreachable!("a unit enum serialises to a word, not {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_strings_and_numbers_are_spelt_for_kdl() {
        assert_eq!(word(Scheme::Shared), "shared");
        assert_eq!(word(OptimizerKind::Adamw), "adamw");
        assert_eq!(text("bundled"), "bundled");
        assert_eq!(text("my data/a b"), "\"my data/a b\"");
        assert_eq!(text("true"), "\"true\"");
        assert_eq!(float(1e-9), "1e-9");
        assert_eq!(float(0.1), "0.1");
        assert_eq!(float(1.0), "1.0");
    }
}
