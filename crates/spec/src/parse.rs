//! KDL text → [`ExperimentFile`], checking every node, property and value
//! against the [schema](super::schema) and collecting every problem.

use std::collections::HashMap;

use kdl::{KdlDocument, KdlEntry, KdlNode};

use super::error::{Problem, did_you_mean};
use super::file::{
    Axis, AxisValue, Claim, Expectation, ExperimentFile, Factor, Matrix, Metric, Override, Rule, Variant,
};
use super::schema::{self, Choice, Field, Type};
use super::source::{FileId, Span, Spanned};
use super::value::Value;

/// Parses one experiment file. Returns the file when it has no problems.
pub fn parse(text: &str, file: FileId) -> Result<ExperimentFile, Vec<Problem>> {
    let mut parser = Parser {
        file,
        problems: Vec::new(),
    };
    let doc = match text.parse::<KdlDocument>() {
        Ok(doc) => doc,
        Err(error) => return Err(syntax_problems(&error, file)),
    };
    let parsed = parser.document(&doc);
    match parsed {
        Some(parsed) if parser.problems.is_empty() => Ok(parsed),
        _ => Err(parser.problems),
    }
}

fn syntax_problems(error: &kdl::KdlError, file: FileId) -> Vec<Problem> {
    error
        .diagnostics
        .iter()
        .map(|d| {
            let span = Span { file, range: d.span };
            let label = d.label.clone().unwrap_or_else(|| "here".to_owned());
            let message = d.message.clone().unwrap_or_else(|| "invalid KDL".to_owned());
            let problem = Problem::at("syntax", span, label, format!("KDL syntax error: {message}"));
            match &d.help {
                Some(help) => problem.help(help.clone()),
                None => problem,
            }
        })
        .collect()
}

const TOP_LEVEL: [&str; 6] = ["description", "extends", "repeats", "variant", "matrix", "expect"];

struct Parser {
    file: FileId,
    problems: Vec<Problem>,
}

/// Paths already set in one scope (the settings, a variant, an axis value),
/// so that setting one twice is reported.
type Seen = HashMap<String, Span>;

impl Parser {
    fn span(&self, range: miette::SourceSpan) -> Span {
        Span { file: self.file, range }
    }

    fn node_span(&self, node: &KdlNode) -> Span {
        self.span(node.name().span())
    }

    fn report(&mut self, problem: Problem) {
        self.problems.push(problem);
    }

    fn document(&mut self, doc: &KdlDocument) -> Option<ExperimentFile> {
        let mut experiments = doc.nodes().iter().filter(|n| n.name().value() == "experiment");
        for node in doc.nodes().iter().filter(|n| n.name().value() != "experiment") {
            let span = self.node_span(node);
            let mut problem = Problem::at(
                "unknown-node",
                span,
                "not allowed here",
                format!(
                    "unknown top-level node `{}`: a file holds one `experiment NAME {{ ... }}`",
                    node.name().value()
                ),
            );
            if let Some(help) = did_you_mean(node.name().value(), ["experiment"]) {
                problem = problem.help(help);
            }
            self.report(problem);
        }
        let Some(node) = experiments.next() else {
            self.report(
                Problem::whole("no-experiment", "the file declares no `experiment NAME { ... }`")
                    .help("start the file with `experiment my-name {` and put the settings inside"),
            );
            return None;
        };
        for extra in experiments {
            let span = self.node_span(extra);
            self.report(
                Problem::at("duplicate", span, "second experiment", "a file declares one experiment")
                    .also(self.node_span(node), "first declared here"),
            );
        }
        self.experiment(node)
    }

    fn experiment(&mut self, node: &KdlNode) -> Option<ExperimentFile> {
        let name = match self.single_string(node, "experiment", "a name, e.g. `experiment pathetique { ... }`") {
            Some(name) => name,
            None => Spanned::new(String::new(), self.node_span(node)),
        };
        self.no_properties(node);
        let mut file = ExperimentFile {
            name,
            description: None,
            extends: None,
            repeats: None,
            settings: Vec::new(),
            variants: Vec::new(),
            matrix: None,
            expectations: Vec::new(),
        };
        let mut seen_settings = Seen::new();
        let mut seen_top: HashMap<String, Span> = HashMap::new();
        for child in children(node) {
            let word = child.name().value();
            if matches!(word, "description" | "extends" | "repeats" | "matrix") {
                let span = self.node_span(child);
                if let Some(first) = seen_top.insert(word.to_owned(), span) {
                    self.report(
                        Problem::at("duplicate", span, "set again", format!("`{word}` is set twice"))
                            .also(first, "first set here"),
                    );
                }
            }
            match word {
                "description" => file.description = self.single_string(child, word, "a string").map(|s| s.value),
                "extends" => file.extends = self.single_string(child, word, "the path of another experiment file"),
                "repeats" => file.repeats = self.repeats(child),
                "variant" => {
                    if let Some(variant) = self.variant(child, &file.variants) {
                        file.variants.push(variant);
                    }
                }
                "matrix" => file.matrix = Some(self.matrix(child)),
                "expect" => {
                    if let Some(expectation) = self.expectation(child) {
                        file.expectations.push(expectation);
                    }
                }
                _ => self.setting(child, "", &mut file.settings, &mut seen_settings),
            }
        }
        Some(file)
    }

    fn variant(&mut self, node: &KdlNode, earlier: &[Variant]) -> Option<Variant> {
        let name = self.single_string(node, "variant", "a name, e.g. `variant hf-t5 { ... }`")?;
        self.no_properties(node);
        if let Some(first) = earlier.iter().find(|v| v.name.value == name.value) {
            self.report(
                Problem::at(
                    "duplicate",
                    name.span,
                    "declared again",
                    format!("variant `{}` is declared twice", name.value),
                )
                .also(first.name.span, "first declared here"),
            );
        }
        let mut overrides = Vec::new();
        let mut seen = Seen::new();
        for child in children(node) {
            self.setting(child, "", &mut overrides, &mut seen);
        }
        Some(Variant { name, overrides })
    }

    /// A node inside `experiment`, a variant or a section, at `prefix`.
    fn setting(&mut self, node: &KdlNode, prefix: &str, out: &mut Vec<Override>, seen: &mut Seen) {
        let name = node.name().value();
        let path = join(prefix, name);
        let span = self.node_span(node);
        if prefix.is_empty() && TOP_LEVEL.contains(&name) {
            self.report(Problem::at(
                "misplaced",
                span,
                "only at the top of the experiment",
                format!("`{name}` cannot be set inside a variant"),
            ));
        } else if let Some(targets) = schema::alias_at(&path) {
            let field = schema::field_at(targets[0]).expect("alias targets are fields");
            if let Some(value) = self.node_value(node, field) {
                for target in targets {
                    let target = schema::field_at(target).expect("alias targets are fields").path;
                    self.push(
                        out,
                        seen,
                        Override::Set {
                            path: target,
                            value: value.clone(),
                            span,
                        },
                    );
                }
            }
            self.no_properties(node);
            self.no_children(node);
        } else if let Some(choice) = schema::choice_at(&path) {
            if let Some(choose) = self.choose(node, choice) {
                self.push(out, seen, choose);
            }
        } else if let Some(field) = schema::field_at(&path) {
            if !node.entries().iter().any(|e| e.name().is_none()) && field.ty == Type::Bool {
                // `sustain threshold=62`: a bool field written for its sub-fields only.
            } else if let Some(value) = self.node_value(node, field) {
                self.push(
                    out,
                    seen,
                    Override::Set {
                        path: field.path,
                        value,
                        span,
                    },
                );
            }
            self.properties(node, &path, out, seen);
            for child in children(node) {
                self.setting(child, &path, out, seen);
            }
        } else if schema::is_section(&path) {
            for entry in node.entries().iter().filter(|e| e.name().is_none()) {
                let span = self.span(entry.span());
                let props = schema::names_under(&path).join(", ");
                self.report(
                    Problem::at(
                        "unexpected-argument",
                        span,
                        "unexpected argument",
                        format!("`{name}` takes properties or children, not arguments"),
                    )
                    .help(format!("`{name}` holds: {props}")),
                );
            }
            self.properties(node, &path, out, seen);
            for child in children(node) {
                self.setting(child, &path, out, seen);
            }
        } else {
            let place = if prefix.is_empty() {
                "the experiment".to_owned()
            } else {
                format!("`{prefix}`")
            };
            let mut problem = Problem::at(
                "unknown-field",
                span,
                "unknown",
                format!("unknown field `{name}` in {place}"),
            );
            let mut candidates = schema::names_under(prefix);
            if prefix.is_empty() {
                candidates.extend(TOP_LEVEL);
            }
            problem = match did_you_mean(name, candidates.iter().copied()) {
                Some(help) => problem.help(help),
                None => problem.help(format!("{place} holds: {}", candidates.join(", "))),
            };
            self.report(problem);
        }
    }

    fn push(&mut self, out: &mut Vec<Override>, seen: &mut Seen, item: Override) {
        if let Some(first) = seen.insert(item.path(), item.span()) {
            self.report(
                Problem::at(
                    "duplicate",
                    item.span(),
                    "set again",
                    format!("`{}` is set twice", item.path()),
                )
                .also(first, "first set here")
                .help("remove one of them"),
            );
        }
        out.push(item);
    }

    /// The properties of a field or section node: each must be a plain field.
    fn properties(&mut self, node: &KdlNode, path: &str, out: &mut Vec<Override>, seen: &mut Seen) {
        for entry in node.entries() {
            let Some(key) = entry.name() else { continue };
            let span = self.span(entry.span());
            let prop_path = join(path, key.value());
            match schema::field_at(&prop_path) {
                Some(field) => {
                    if let Some(value) = self.entry_value(entry, field) {
                        self.push(
                            out,
                            seen,
                            Override::Set {
                                path: field.path,
                                value,
                                span,
                            },
                        );
                    }
                }
                None => {
                    let mut problem = Problem::at(
                        "unknown-property",
                        self.span(key.span()),
                        "unknown",
                        format!("unknown property `{}` on `{}`", key.value(), node.name().value()),
                    );
                    let names = schema::names_under(path);
                    problem = match did_you_mean(key.value(), names.iter().copied()) {
                        Some(help) => problem.help(help),
                        None if names.is_empty() => {
                            problem.help(format!("`{}` takes no properties", node.name().value()))
                        }
                        None => problem.help(format!("`{}` takes: {}", node.name().value(), names.join(", "))),
                    };
                    self.report(problem);
                }
            }
        }
    }

    /// `schedule noam warmup=4000`, `split files { train "a.mid" }`.
    fn choose(&mut self, node: &KdlNode, choice: &'static Choice) -> Option<Override> {
        let span = self.node_span(node);
        let kinds: Vec<&str> = choice.kinds.iter().map(|k| k.name).collect();
        let args: Vec<&KdlEntry> = node.entries().iter().filter(|e| e.name().is_none()).collect();
        let Some(first) = args.first() else {
            self.report(Problem::at(
                "missing-value",
                span,
                "needs a kind",
                format!("`{}` needs a kind: {}", node.name().value(), kinds.join(", ")),
            ));
            return None;
        };
        let kind_span = self.span(first.span());
        let Some(word) = first.value().as_string() else {
            self.report(Problem::at(
                "wrong-type",
                kind_span,
                "not a kind",
                format!(
                    "`{}` needs a kind ({}), not {}",
                    node.name().value(),
                    kinds.join(", "),
                    kdl_type(first)
                ),
            ));
            return None;
        };
        let Some(kind) = choice.kind(word) else {
            let problem = Problem::at(
                "unknown-kind",
                kind_span,
                "unknown",
                format!("unknown {} `{word}`", node.name().value()),
            );
            let help = did_you_mean(word, kinds.iter().copied())
                .unwrap_or_else(|| format!("choose one of: {}", kinds.join(", ")));
            self.report(problem.help(help));
            return None;
        };
        for extra in &args[1..] {
            self.report(Problem::at(
                "unexpected-argument",
                self.span(extra.span()),
                "unexpected",
                format!(
                    "`{} {}` takes properties, not more arguments",
                    node.name().value(),
                    kind.name
                ),
            ));
        }
        let mut fields: Vec<(&'static str, Value, Span)> = Vec::new();
        let mut written: Vec<(&'static str, Span)> = Vec::new();
        let mut add = |parser: &mut Parser, field: &'static Field, value: Value, span: Span| {
            if let Some((_, first)) = written.iter().find(|(p, _)| *p == field.path) {
                parser.report(
                    Problem::at("duplicate", span, "set again", format!("`{}` is set twice", field.path))
                        .also(*first, "first set here"),
                );
            }
            written.push((field.path, span));
            fields.push((field.path, value, span));
        };
        for entry in node.entries() {
            let Some(key) = entry.name() else { continue };
            match self.kind_field(node, choice, kind, key.value(), self.span(key.span())) {
                Some(field) => {
                    if let Some(value) = self.entry_value(entry, field) {
                        add(self, field, value, self.span(entry.span()));
                    }
                }
                None => continue,
            }
        }
        for child in children(node) {
            let child_span = self.node_span(child);
            if let Some(field) = self.kind_field(node, choice, kind, child.name().value(), child_span) {
                if let Some(value) = self.node_value(child, field) {
                    add(self, field, value, child_span);
                }
                self.no_properties(child);
                self.no_children(child);
            }
        }
        Some(Override::Choose {
            path: choice.path,
            kind: kind.name,
            fields,
            span: kind_span,
        })
    }

    fn kind_field(
        &mut self,
        node: &KdlNode,
        choice: &Choice,
        kind: &schema::Kind,
        name: &str,
        span: Span,
    ) -> Option<&'static Field> {
        let kind = choice.kind(kind.name)?;
        if let Some(field) = kind.field(name) {
            return Some(field);
        }
        let mut problem = Problem::at(
            "unknown-property",
            span,
            "unknown",
            format!("`{} {}` has no property `{name}`", node.name().value(), kind.name),
        );
        let owner = choice.kinds.iter().find(|k| k.field(name).is_some());
        let names: Vec<&str> = kind.fields.iter().map(|f| f.path).collect();
        problem = match (owner, did_you_mean(name, names.iter().copied())) {
            (_, Some(help)) => problem.help(help),
            (Some(owner), None) => {
                problem.help(format!("`{name}` belongs to `{} {}`", node.name().value(), owner.name))
            }
            (None, None) if names.is_empty() => problem.help(format!("`{}` takes no properties", kind.name)),
            (None, None) => problem.help(format!("`{}` takes: {}", kind.name, names.join(", "))),
        };
        self.report(problem);
        None
    }

    /// The value of a field written as a node's arguments (`d-model 256`,
    /// `dstart-edges 0 0.1 0.5`).
    fn node_value(&mut self, node: &KdlNode, field: &Field) -> Option<Value> {
        let args: Vec<&KdlEntry> = node.entries().iter().filter(|e| e.name().is_none()).collect();
        let span = self.node_span(node);
        let name = node.name().value();
        if matches!(field.ty, Type::FloatList | Type::StrList) {
            if args.is_empty() {
                self.report(Problem::at(
                    "missing-value",
                    span,
                    "needs values",
                    format!("`{name}` needs one or more values"),
                ));
                return None;
            }
            let items: Vec<Option<Value>> = args.iter().map(|a| self.entry_value(a, field)).collect();
            return items.into_iter().collect::<Option<Vec<Value>>>().map(Value::List);
        }
        match args.as_slice() {
            [] => {
                self.report(
                    Problem::at(
                        "missing-value",
                        span,
                        "needs a value",
                        format!("`{name}` needs a value"),
                    )
                    .help(format!("{}: {}", field.doc, describe(field.ty))),
                );
                None
            }
            [arg] => self.entry_value(arg, field),
            [_, extra, ..] => {
                self.report(Problem::at(
                    "unexpected-argument",
                    self.span(extra.span()),
                    "unexpected",
                    format!("`{name}` takes one value"),
                ));
                None
            }
        }
    }

    /// Checks one KDL entry against a field's type and range.
    fn entry_value(&mut self, entry: &KdlEntry, field: &Field) -> Option<Value> {
        let span = self.span(entry.span());
        let Some(value) = Value::from_kdl(entry.value()) else {
            self.report(
                Problem::at(
                    "wrong-type",
                    span,
                    "not allowed",
                    format!("`{}` cannot be {}", field.path, kdl_type(entry)),
                )
                .help(describe(field.ty)),
            );
            return None;
        };
        match check(&value, field.ty) {
            Ok(value) => Some(value),
            Err((code, message)) => {
                let label = match code {
                    "out-of-range" => "out of range",
                    "unknown-value" => "unknown value",
                    _ => "wrong type",
                };
                let problem = Problem::at(code, span, label, format!("`{}` {message}", field.path));
                let help = match (field.ty, value.as_str()) {
                    (Type::Enum(words), Some(word)) => did_you_mean(word, words.iter().copied()),
                    _ => None,
                };
                self.report(problem.help(help.unwrap_or_else(|| describe(field.ty))));
                None
            }
        }
    }

    fn matrix(&mut self, node: &KdlNode) -> Matrix {
        self.no_arguments(node);
        self.no_properties(node);
        let mut matrix = Matrix {
            factors: Vec::new(),
            exclude: Vec::new(),
            include: Vec::new(),
            span: self.node_span(node),
        };
        for child in children(node) {
            match child.name().value() {
                "axis" => {
                    if let Some(axis) = self.axis(child) {
                        matrix.factors.push(Factor::Axis(axis));
                    }
                }
                "zip" => {
                    let span = self.node_span(child);
                    let axes: Vec<Axis> = children(child)
                        .filter_map(|a| {
                            if a.name().value() == "axis" {
                                self.axis(a)
                            } else {
                                self.report(Problem::at(
                                    "unknown-node",
                                    self.node_span(a),
                                    "not an axis",
                                    "a `zip` holds only `axis` nodes",
                                ));
                                None
                            }
                        })
                        .collect();
                    if let Some(first) = axes.first() {
                        for axis in &axes[1..] {
                            if axis.values.len() != first.values.len() {
                                self.report(
                                    Problem::at(
                                        "zip-length",
                                        axis.name.span,
                                        count(axis.values.len(), "value"),
                                        "the axes of a `zip` must have the same number of values",
                                    )
                                    .also(first.name.span, count(first.values.len(), "value")),
                                );
                            }
                        }
                    }
                    if axes.len() < 2 {
                        self.report(Problem::at(
                            "zip-length",
                            span,
                            "fewer than two axes",
                            "a `zip` needs at least two axes",
                        ));
                    }
                    matrix.factors.push(Factor::Zip { axes, span });
                }
                "exclude" => matrix.exclude.push(self.rule(child)),
                "include" => matrix.include.push(self.rule(child)),
                other => {
                    let problem = Problem::at(
                        "unknown-node",
                        self.node_span(child),
                        "unknown",
                        format!("unknown node `{other}` in `matrix`"),
                    );
                    let help = did_you_mean(other, ["axis", "zip", "exclude", "include"])
                        .unwrap_or_else(|| "a matrix holds `axis`, `zip`, `exclude` and `include`".to_owned());
                    self.report(problem.help(help));
                }
            }
        }
        matrix
    }

    /// `axis PATH v1 v2`, `axis CHOICE kind1 kind2`, `axis CHOICE { kind props }`,
    /// `axis variant a b`, `axis NAME { label { overrides } }`.
    fn axis(&mut self, node: &KdlNode) -> Option<Axis> {
        let name = self.first_string(node, "axis", "the field to vary, e.g. `axis model.d-model 128 256`")?;
        self.no_properties(node);
        let args: Vec<&KdlEntry> = node.entries().iter().filter(|e| e.name().is_none()).skip(1).collect();
        let path = name.value.as_str();
        let mut values = Vec::new();
        let field = schema::alias_at(path)
            .and_then(|t| schema::field_at(t[0]))
            .or_else(|| schema::field_at(path));
        if path == "variant" {
            for arg in &args {
                let span = self.span(arg.span());
                match arg.value().as_string() {
                    Some(label) => values.push(AxisValue {
                        label: label.to_owned(),
                        span,
                        overrides: Vec::new(),
                    }),
                    None => self.report(Problem::at(
                        "wrong-type",
                        span,
                        "not a name",
                        "an axis over variants lists variant names",
                    )),
                }
            }
            self.no_children(node);
        } else if let Some(field) = field {
            if matches!(field.ty, Type::FloatList | Type::StrList) {
                self.report(
                    Problem::at(
                        "unsupported-axis",
                        name.span,
                        "a list field",
                        format!("`{path}` holds a list; vary it with a bundle axis"),
                    )
                    .help(
                        "axis edges { narrow { dataset { quantize { velocity-edges 0 60 70 128 } } }; wide { ... } }",
                    ),
                );
                return None;
            }
            let targets: Vec<&'static str> = match schema::alias_at(path) {
                Some(targets) => targets.to_vec(),
                None => vec![field.path],
            };
            for arg in &args {
                if let Some(value) = self.entry_value(arg, field) {
                    let span = self.span(arg.span());
                    let overrides = targets
                        .iter()
                        .map(|t| Override::Set {
                            path: t,
                            value: value.clone(),
                            span,
                        })
                        .collect();
                    values.push(AxisValue {
                        label: value.to_string(),
                        span,
                        overrides,
                    });
                }
            }
            self.no_children(node);
        } else if let Some((choice, field)) = schema::choice_field_at(path) {
            for arg in &args {
                if let Some(value) = self.entry_value(arg, field) {
                    let span = self.span(arg.span());
                    let label = value.to_string();
                    let tweak = Override::Tweak {
                        choice: choice.path,
                        field: field.path,
                        value,
                        span,
                    };
                    values.push(AxisValue {
                        label,
                        span,
                        overrides: vec![tweak],
                    });
                }
            }
            self.no_children(node);
        } else if let Some(choice) = schema::choice_at(path) {
            for arg in &args {
                let span = self.span(arg.span());
                match arg.value().as_string().and_then(|w| choice.kind(w)) {
                    Some(kind) => values.push(AxisValue {
                        label: kind.name.to_owned(),
                        span,
                        overrides: vec![Override::Choose {
                            path: choice.path,
                            kind: kind.name,
                            fields: Vec::new(),
                            span,
                        }],
                    }),
                    None => {
                        let kinds: Vec<&str> = choice.kinds.iter().map(|k| k.name).collect();
                        self.report(
                            Problem::at(
                                "unknown-kind",
                                span,
                                "unknown",
                                format!("`{path}` has no kind `{}`", arg.value()),
                            )
                            .help(format!("choose from: {}", kinds.join(", "))),
                        );
                    }
                }
            }
            let kinds: Vec<&str> = children(node).map(|c| c.name().value()).collect();
            for child in children(node) {
                // Each child reads like the choice itself: `noam warmup=4000`.
                let mut as_choice = child.clone();
                let kind_entry = KdlEntry::new(child.name().value());
                as_choice.entries_mut().insert(0, kind_entry);
                if let Some(over) = self.choose_with_kind_span(&as_choice, choice, self.node_span(child)) {
                    // Label by kind, unless the axis uses one kind twice.
                    let kind = child.name().value();
                    let label = if kinds.iter().filter(|k| **k == kind).count() == 1 {
                        kind.to_owned()
                    } else {
                        choice_label(child)
                    };
                    values.push(AxisValue {
                        label,
                        span: self.node_span(child),
                        overrides: vec![over],
                    });
                }
            }
        } else {
            // A bundle axis: children `label { overrides }`.
            let bundles: Vec<&KdlNode> = children(node).collect();
            if bundles.is_empty() || !args.is_empty() {
                let mut candidates = schema::all_paths();
                candidates.push("variant".to_owned());
                let problem = Problem::at(
                    "unknown-axis",
                    name.span,
                    "unknown",
                    format!("unknown axis path `{path}`"),
                );
                let help = did_you_mean(path, candidates.iter().map(String::as_str)).unwrap_or_else(|| {
                    "an axis names a field (e.g. `model.d-model`), a choice (`schedule`), `variant`, \
                     or is a bundle: `axis NAME { label { settings } }`"
                        .to_owned()
                });
                self.report(problem.help(help));
                return None;
            }
            for bundle in bundles {
                let span = self.node_span(bundle);
                self.no_arguments(bundle);
                self.no_properties(bundle);
                let mut overrides = Vec::new();
                let mut seen = Seen::new();
                for setting in children(bundle) {
                    self.setting(setting, "", &mut overrides, &mut seen);
                }
                values.push(AxisValue {
                    label: bundle.name().value().to_owned(),
                    span,
                    overrides,
                });
            }
        }
        let mut labels: HashMap<&str, Span> = HashMap::new();
        for value in &values {
            if let Some(first) = labels.insert(&value.label, value.span) {
                self.report(
                    Problem::at(
                        "duplicate",
                        value.span,
                        "repeated",
                        format!("axis `{path}` lists `{}` twice", value.label),
                    )
                    .also(first, "first listed here"),
                );
            }
        }
        if values.is_empty() && self.problems.is_empty() {
            self.report(Problem::at(
                "empty-axis",
                name.span,
                "no values",
                format!("axis `{path}` has no values"),
            ));
        }
        Some(Axis { name, values })
    }

    fn choose_with_kind_span(&mut self, node: &KdlNode, choice: &'static Choice, span: Span) -> Option<Override> {
        match self.choose(node, choice)? {
            Override::Choose { path, kind, fields, .. } => Some(Override::Choose {
                path,
                kind,
                fields,
                span,
            }),
            set => Some(set),
        }
    }

    fn rule(&mut self, node: &KdlNode) -> Rule {
        self.no_arguments(node);
        self.no_children(node);
        let pairs: Vec<_> = node
            .entries()
            .iter()
            .filter_map(|e| {
                let key = e.name()?;
                let value = Value::from_kdl(e.value()).map(|v| v.to_string()).unwrap_or_default();
                Some((
                    Spanned::new(key.value().to_owned(), self.span(key.span())),
                    Spanned::new(value, self.span(e.span())),
                ))
            })
            .collect();
        if pairs.is_empty() {
            self.report(Problem::at(
                "missing-value",
                self.node_span(node),
                "empty",
                format!(
                    "`{}` needs axis=value properties, e.g. `schedule=constant`",
                    node.name().value()
                ),
            ));
        }
        Rule {
            pairs,
            span: self.node_span(node),
        }
    }

    fn expectation(&mut self, node: &KdlNode) -> Option<Expectation> {
        self.no_children(node);
        let span = self.node_span(node);
        let args: Vec<&KdlEntry> = node.entries().iter().filter(|e| e.name().is_none()).collect();
        let names: Vec<&str> = Metric::ALL.iter().map(|(n, _)| *n).collect();
        let (Some(metric_entry), Some(subject_entry)) = (args.first(), args.get(1)) else {
            self.report(
                Problem::at(
                    "missing-value",
                    span,
                    "incomplete",
                    "`expect` needs a metric and the runs it is about",
                )
                .help("e.g. `expect val-dist \"midi-translation\" better-than=\"hf-t5\" ratio=2.0`"),
            );
            return None;
        };
        let metric_span = self.span(metric_entry.span());
        let metric_word = metric_entry.value().as_string().unwrap_or_default();
        let metric = Metric::ALL.iter().find(|(n, _)| *n == metric_word).map(|(_, m)| *m);
        if metric.is_none() {
            let help = did_you_mean(metric_word, names.iter().copied())
                .unwrap_or_else(|| format!("metrics: {}", names.join(", ")));
            self.report(
                Problem::at(
                    "unknown-metric",
                    metric_span,
                    "unknown",
                    format!("unknown metric `{}`", metric_entry.value()),
                )
                .help(help),
            );
        }
        let subject_span = self.span(subject_entry.span());
        let subject = match subject_entry.value().as_string() {
            Some(s) => Spanned::new(s.to_owned(), subject_span),
            None => {
                self.report(Problem::at(
                    "wrong-type",
                    subject_span,
                    "not a selector",
                    "the runs are named by a string",
                ));
                return None;
            }
        };
        for extra in args.iter().skip(2) {
            self.report(Problem::at(
                "unexpected-argument",
                self.span(extra.span()),
                "unexpected",
                "`expect` takes a metric and one selector",
            ));
        }
        let mut better_than = None;
        let mut ratio = None;
        let mut bound = None;
        for entry in node.entries() {
            let Some(key) = entry.name() else { continue };
            let entry_span = self.span(entry.span());
            let number = || Value::from_kdl(entry.value()).and_then(|v| v.as_f64());
            match key.value() {
                "better-than" => match entry.value().as_string() {
                    Some(other) => better_than = Some(Spanned::new(other.to_owned(), entry_span)),
                    None => self.report(Problem::at(
                        "wrong-type",
                        entry_span,
                        "not a selector",
                        "`better-than` names runs with a string",
                    )),
                },
                "ratio" => match number() {
                    Some(r) if r >= 1.0 => ratio = Some((r, entry_span)),
                    _ => self.report(Problem::at(
                        "out-of-range",
                        entry_span,
                        "out of range",
                        "`ratio` must be a number >= 1",
                    )),
                },
                word @ ("below" | "above") => match number() {
                    Some(x) if bound.is_none() => bound = Some((word == "below", x)),
                    Some(_) => self.report(Problem::at(
                        "conflict",
                        entry_span,
                        "second bound",
                        "give one of `below` and `above`",
                    )),
                    None => self.report(Problem::at(
                        "wrong-type",
                        entry_span,
                        "not a number",
                        format!("`{word}` needs a number"),
                    )),
                },
                other => {
                    let help = did_you_mean(other, ["better-than", "ratio", "below", "above"])
                        .unwrap_or_else(|| "`expect` takes better-than= (with ratio=), below= or above=".to_owned());
                    self.report(
                        Problem::at(
                            "unknown-property",
                            self.span(key.span()),
                            "unknown",
                            format!("unknown property `{other}` on `expect`"),
                        )
                        .help(help),
                    );
                }
            }
        }
        let claim = match (better_than, bound) {
            (Some(other), None) => Claim::BetterThan {
                other,
                ratio: ratio.map_or(1.0, |(r, _)| r),
            },
            (None, Some((true, x))) => Claim::Below(x),
            (None, Some((false, x))) => Claim::Above(x),
            (Some(_), Some(_)) => {
                self.report(Problem::at(
                    "conflict",
                    span,
                    "two claims",
                    "an `expect` makes one claim: better-than=, below= or above=",
                ));
                return None;
            }
            (None, None) => {
                self.report(Problem::at(
                    "missing-value",
                    span,
                    "no claim",
                    "`expect` needs better-than=, below= or above=",
                ));
                return None;
            }
        };
        if let (Some((_, ratio_span)), false) = (ratio, matches!(claim, Claim::BetterThan { .. })) {
            self.report(Problem::at(
                "conflict",
                ratio_span,
                "needs better-than",
                "`ratio` goes with `better-than`",
            ));
        }
        Some(Expectation {
            metric: metric?,
            subject,
            claim,
            span,
        })
    }

    fn first_string(&mut self, node: &KdlNode, what: &str, expected: &str) -> Option<Spanned<String>> {
        let span = self.node_span(node);
        match node.entries().iter().find(|e| e.name().is_none()) {
            Some(entry) => match entry.value().as_string() {
                Some(s) => Some(Spanned::new(s.to_owned(), self.span(entry.span()))),
                None => {
                    self.report(Problem::at(
                        "wrong-type",
                        self.span(entry.span()),
                        "not a string",
                        format!("`{what}` needs {expected}"),
                    ));
                    None
                }
            },
            None => {
                self.report(Problem::at(
                    "missing-value",
                    span,
                    "needs a value",
                    format!("`{what}` needs {expected}"),
                ));
                None
            }
        }
    }

    fn single_string(&mut self, node: &KdlNode, what: &str, expected: &str) -> Option<Spanned<String>> {
        let value = self.first_string(node, what, expected)?;
        for extra in node.entries().iter().filter(|e| e.name().is_none()).skip(1) {
            self.report(Problem::at(
                "unexpected-argument",
                self.span(extra.span()),
                "unexpected",
                format!("`{what}` takes one value"),
            ));
        }
        Some(value)
    }

    /// `repeats N`: seeds per run, 1..=1000.
    fn repeats(&mut self, node: &KdlNode) -> Option<Spanned<u32>> {
        const REPEATS: Field = Field {
            path: "repeats",
            ty: Type::Int { min: 1, max: 1000 },
            default: schema::DefaultValue::Unset,
            doc: "seeds per run",
        };
        self.no_properties(node);
        self.no_children(node);
        let span = node
            .entries()
            .first()
            .map_or_else(|| self.node_span(node), |e| self.span(e.span()));
        match self.node_value(node, &REPEATS)? {
            Value::Int(n) => Some(Spanned::new(n as u32, span)),
            _ => None,
        }
    }

    fn no_properties(&mut self, node: &KdlNode) {
        for entry in node.entries() {
            if let Some(key) = entry.name() {
                self.report(Problem::at(
                    "unknown-property",
                    self.span(key.span()),
                    "unexpected",
                    format!("`{}` takes no property `{}`", node.name().value(), key.value()),
                ));
            }
        }
    }

    fn no_arguments(&mut self, node: &KdlNode) {
        for entry in node.entries().iter().filter(|e| e.name().is_none()) {
            self.report(Problem::at(
                "unexpected-argument",
                self.span(entry.span()),
                "unexpected",
                format!("`{}` takes no arguments", node.name().value()),
            ));
        }
    }

    fn no_children(&mut self, node: &KdlNode) {
        if let Some(first) = children(node).next() {
            self.report(Problem::at(
                "unexpected-children",
                self.node_span(first),
                "unexpected",
                format!("`{}` takes no children", node.name().value()),
            ));
        }
    }
}

/// Checks a value against a type; the error is (code, message).
fn check(value: &Value, ty: Type) -> Result<Value, (&'static str, String)> {
    let wrong = |what: &str| Err(("wrong-type", format!("expects {what}, not {}", value.type_name())));
    match (ty, value) {
        (Type::Bool, Value::Bool(_)) => Ok(value.clone()),
        (Type::Bool, _) => wrong("#true or #false"),
        (Type::Int { min, max }, Value::Int(i)) => {
            if (min..=max).contains(i) {
                Ok(value.clone())
            } else {
                Err(("out-of-range", format!("must be in {min}..={max}, not {i}")))
            }
        }
        (Type::Int { .. }, _) => wrong("an integer"),
        (
            Type::Float {
                min,
                max,
                open_min,
                open_max,
            },
            v,
        ) => {
            let Some(x) = v.as_f64() else { return wrong("a number") };
            let low_ok = if open_min { x > min } else { x >= min };
            let high_ok = if open_max { x < max } else { x <= max };
            if low_ok && high_ok && x.is_finite() {
                Ok(Value::Float(x))
            } else {
                Err((
                    "out-of-range",
                    format!("must be in {}, not {x}", range_text(min, max, open_min, open_max)),
                ))
            }
        }
        (Type::Enum(words), Value::Str(s)) => {
            if words.contains(&s.as_str()) {
                Ok(value.clone())
            } else {
                Err((
                    "unknown-value",
                    format!("cannot be `{s}`: choose one of {}", words.join(", ")),
                ))
            }
        }
        (Type::Enum(words), _) => wrong(&format!("one of {}", words.join(", "))),
        (Type::Str | Type::StrList, Value::Str(_)) => Ok(value.clone()),
        (Type::Str | Type::StrList, _) => wrong("a string"),
        (Type::FloatList, v) => match v.as_f64() {
            Some(x) if x.is_finite() => Ok(Value::Float(x)),
            _ => wrong("numbers"),
        },
    }
}

fn range_text(min: f64, max: f64, open_min: bool, open_max: bool) -> String {
    format!(
        "{}{min}, {max}{}",
        if open_min { "(" } else { "[" },
        if open_max { ")" } else { "]" }
    )
}

/// What a type accepts, for help lines.
fn describe(ty: Type) -> String {
    match ty {
        Type::Bool => "a boolean: #true or #false".to_owned(),
        Type::Int { min, max } => format!("an integer in {min}..={max}"),
        Type::Float {
            min,
            max,
            open_min,
            open_max,
        } => format!("a number in {}", range_text(min, max, open_min, open_max)),
        Type::Enum(words) => format!("one of: {}", words.join(", ")),
        Type::Str => "a string".to_owned(),
        Type::FloatList => "one or more numbers".to_owned(),
        Type::StrList => "one or more strings".to_owned(),
    }
}

fn kdl_type(entry: &KdlEntry) -> &'static str {
    match entry.value() {
        kdl::KdlValue::String(_) => "a string",
        kdl::KdlValue::Integer(_) => "an integer this large",
        kdl::KdlValue::Float(_) => "a number",
        kdl::KdlValue::Bool(_) => "a boolean",
        kdl::KdlValue::Null => "#null",
    }
}

fn choice_label(node: &KdlNode) -> String {
    let mut label = node.name().value().to_owned();
    for entry in node.entries() {
        if let (Some(key), Some(value)) = (entry.name(), Value::from_kdl(entry.value())) {
            label.push_str(&format!(" {}={value}", key.value()));
        }
    }
    label
}

fn children(node: &KdlNode) -> impl Iterator<Item = &KdlNode> {
    node.children().into_iter().flat_map(|doc| doc.nodes())
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}.{name}")
    }
}

/// `1 value`, `2 values`.
fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}
