//! The `matrix` block: axes, `zip`s and `exclude` / `include` rules.

use std::collections::HashMap;

use kdl::{KdlEntry, KdlNode};

use super::nodes::{Parser, Seen, children, written};
use super::sampled;
use crate::error::{Kind, Problem, count, did_you_mean};
use crate::file::{Axis, AxisValue, Factor, Matrix, Override, Rule, SampleTarget, Sampling};
use crate::schema::{self, Choice, Field, Type};
use crate::source::{Span, Spanned};
use crate::value::Value;

impl Parser {
    pub(super) fn matrix(&mut self, node: &KdlNode) -> Matrix {
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
                "zip" => matrix.factors.push(self.zip(child)),
                "exclude" => matrix.exclude.push(self.rule(child)),
                "include" => matrix.include.push(self.rule(child)),
                other => {
                    let problem = Problem::at(
                        Kind::UnknownMatrixNode { name: other.to_owned() },
                        self.node_span(child),
                    );
                    let help = did_you_mean(other, ["axis", "zip", "exclude", "include"])
                        .unwrap_or_else(|| "a matrix holds `axis`, `zip`, `exclude` and `include`".to_owned());
                    self.report(problem.help(help));
                }
            }
        }
        matrix
    }

    /// `zip { axis ...; axis ... }`: two or more axes of equal length.
    fn zip(&mut self, node: &KdlNode) -> Factor {
        let span = self.node_span(node);
        let axes: Vec<Axis> = children(node)
            .filter_map(|a| {
                if a.name().value() == "axis" {
                    self.axis(a)
                } else {
                    self.report(Problem::at(Kind::NotAnAxis, self.node_span(a)));
                    None
                }
            })
            .collect();
        if let Some(first) = axes.first() {
            for axis in axes[1..].iter().filter(|a| a.len() != first.len()) {
                self.report(
                    Problem::at(Kind::ZipLength { values: axis.len() }, axis.name.span)
                        .also(first.name.span, count(first.len(), "value")),
                );
            }
        }
        if axes.len() < 2 {
            self.report(Problem::at(Kind::ZipTooShort, span));
        }
        Factor::Zip { axes, span }
    }

    /// `axis PATH v1 v2`, `axis CHOICE kind1 kind2`, `axis CHOICE { kind props }`,
    /// `axis variant a b`, `axis NAME { label { overrides } }`.
    pub(super) fn axis(&mut self, node: &KdlNode) -> Option<Axis> {
        let name = self.first_string(node, "axis", "the field to vary, e.g. `axis model.d-model 128 256`")?;
        let args: Vec<&KdlEntry> = node.entries().iter().filter(|e| e.name().is_none()).skip(1).collect();
        let path = name.value.as_str();
        let field = schema::alias_at(path)
            .and_then(|t| schema::field_at(t[0]))
            .or_else(|| schema::field_at(path));
        if let Some(sampling) = self.sampled_axis(node, &name, field, &args) {
            self.no_children(node);
            return sampling.map(|sampling| Axis {
                name,
                values: Vec::new(),
                sampling: Some(sampling),
            });
        }
        self.no_properties(node);
        let values = if path == "variant" {
            self.no_children(node);
            self.variant_values(&args)
        } else if let Some(field) = field {
            self.no_children(node);
            self.field_values(&name, field, &args)?
        } else if let Some((choice, field)) = schema::choice_field_at(path) {
            self.no_children(node);
            self.tweak_values(choice, field, &args)
        } else if let Some(choice) = schema::choice_at(path) {
            self.kind_values(node, path, choice, &args)
        } else {
            self.bundle_values(node, &name, &args)?
        };
        self.distinct_labels(path, &values);
        if values.is_empty() && self.problems.is_empty() {
            self.report(Problem::at(Kind::EmptyAxis { axis: path.to_owned() }, name.span));
        }
        Some(Axis {
            name,
            values,
            sampling: None,
        })
    }

    /// A sampled axis over a plain field or a choice's field
    /// (`axis schedule.lr log-uniform 1e-5 1e-3 samples=8`): `None` when the
    /// axis is not a sampled one, `Some(None)` when it is but has problems.
    fn sampled_axis(
        &mut self,
        node: &KdlNode,
        name: &Spanned<String>,
        field: Option<&'static Field>,
        args: &[&KdlEntry],
    ) -> Option<Option<Sampling>> {
        let path = name.value.as_str();
        let (field, target) = match field {
            Some(field) if !matches!(field.ty, Type::FloatList | Type::StrList) => {
                let targets = schema::alias_at(path).map_or_else(|| vec![field.path], <[_]>::to_vec);
                (field, SampleTarget::Fields(targets))
            }
            Some(_) => return None,
            None => {
                let (choice, field) = schema::choice_field_at(path)?;
                let target = SampleTarget::ChoiceField {
                    choice: choice.path,
                    field: field.path,
                };
                (field, target)
            }
        };
        sampled::is_sampled(node, field, args.first().copied())
            .then(|| self.sampling(node, name.span, field, target, args))
    }

    /// `axis variant a b`: the planner takes each variant's overrides.
    fn variant_values(&mut self, args: &[&KdlEntry]) -> Vec<AxisValue> {
        let mut values = Vec::new();
        for arg in args {
            let span = self.span(arg.span());
            match arg.value().as_string() {
                Some(label) => values.push(AxisValue {
                    label: label.to_owned(),
                    span,
                    overrides: Vec::new(),
                }),
                None => self.report(Problem::at(Kind::NotAVariantName, span)),
            }
        }
        values
    }

    /// `axis model.dropout 0 0.1`: one value of a plain field (or alias) each.
    /// A value with a problem keeps its label, so rules and selectors that
    /// name it are not reported too.
    fn field_values(&mut self, name: &Spanned<String>, field: &Field, args: &[&KdlEntry]) -> Option<Vec<AxisValue>> {
        let path = name.value.as_str();
        if matches!(field.ty, Type::FloatList | Type::StrList) {
            self.report(
                Problem::at(Kind::ListAxis { path: path.to_owned() }, name.span).help(
                    "axis edges { narrow { dataset { quantize { velocity-edges 0 60 70 128 } } }; wide { ... } }",
                ),
            );
            return None;
        }
        let targets: Vec<&'static str> = match schema::alias_at(path) {
            Some(targets) => targets.to_vec(),
            None => vec![field.path],
        };
        let mut values = Vec::new();
        let mut seen: Vec<(Value, String, Span)> = Vec::new();
        for arg in args {
            let span = self.span(arg.span());
            let value = self.entry_value(arg, field);
            if let Some(value) = &value {
                self.same_value_twice(path, (value, &written(arg), span), &mut seen);
            }
            let overrides = value.iter().flat_map(|value| {
                targets.iter().map(|t| Override::Set {
                    path: t,
                    value: value.clone(),
                    span,
                })
            });
            values.push(AxisValue {
                label: written(arg),
                span,
                overrides: overrides.collect(),
            });
        }
        Some(values)
    }

    /// `0.1` and `1e-1` are different labels but the same value (the same
    /// label twice is reported by [`Parser::distinct_labels`]).
    pub(super) fn same_value_twice(
        &mut self,
        path: &str,
        this: (&Value, &str, Span),
        seen: &mut Vec<(Value, String, Span)>,
    ) {
        let (value, label, span) = this;
        if let Some((_, first_label, first)) = seen.iter().find(|(v, l, _)| v == value && l != label) {
            self.report(
                Problem::at(
                    Kind::SameValueTwice {
                        axis: path.to_owned(),
                        first: first_label.clone(),
                        written: label.to_owned(),
                    },
                    span,
                )
                .also(*first, "first listed here"),
            );
        }
        seen.push((value.clone(), label.to_owned(), span));
    }

    /// `axis schedule.warmup 1000 2000`: one field of a choice, whatever its kind.
    fn tweak_values(&mut self, choice: &Choice, field: &'static Field, args: &[&KdlEntry]) -> Vec<AxisValue> {
        let mut values = Vec::new();
        for arg in args {
            let span = self.span(arg.span());
            let tweak = self.entry_value(arg, field).map(|value| Override::Tweak {
                choice: choice.path,
                field: field.path,
                value,
                span,
            });
            // A value with a problem keeps its label, as in `field_values`.
            values.push(AxisValue {
                label: written(arg),
                span,
                overrides: tweak.into_iter().collect(),
            });
        }
        values
    }

    /// `axis schedule noam constant` or `axis schedule { noam warmup=4000; ... }`.
    fn kind_values(
        &mut self,
        node: &KdlNode,
        path: &str,
        choice: &'static Choice,
        args: &[&KdlEntry],
    ) -> Vec<AxisValue> {
        let mut values = Vec::new();
        for arg in args {
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
                            Kind::NoSuchKind {
                                path: path.to_owned(),
                                word: written(arg),
                            },
                            span,
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
            as_choice.entries_mut().insert(0, KdlEntry::new(child.name().value()));
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
        values
    }

    /// A bundle axis: children `label { overrides }`.
    fn bundle_values(&mut self, node: &KdlNode, name: &Spanned<String>, args: &[&KdlEntry]) -> Option<Vec<AxisValue>> {
        let bundles: Vec<&KdlNode> = children(node).collect();
        if bundles.is_empty() || !args.is_empty() {
            let mut candidates = schema::all_paths();
            candidates.push("variant".to_owned());
            let problem = Problem::at(
                Kind::UnknownAxisPath {
                    path: name.value.clone(),
                },
                name.span,
            );
            let help = did_you_mean(&name.value, candidates.iter().map(String::as_str)).unwrap_or_else(|| {
                "an axis names a field (e.g. `model.d-model`), a choice (`schedule`), `variant`, \
                 or is a bundle: `axis NAME { label { settings } }`"
                    .to_owned()
            });
            self.report(problem.help(help));
            return None;
        }
        let mut values = Vec::new();
        for bundle in bundles {
            self.no_arguments(bundle);
            self.no_properties(bundle);
            let mut overrides = Vec::new();
            let mut seen = Seen::new();
            for setting in children(bundle) {
                self.setting(setting, "", &mut overrides, &mut seen);
            }
            values.push(AxisValue {
                label: bundle.name().value().to_owned(),
                span: self.node_span(bundle),
                overrides,
            });
        }
        Some(values)
    }

    fn distinct_labels(&mut self, path: &str, values: &[AxisValue]) {
        let mut labels: HashMap<&str, Span> = HashMap::new();
        for value in values {
            if let Some(first) = labels.insert(&value.label, value.span) {
                self.report(
                    Problem::at(
                        Kind::LabelTwice {
                            axis: path.to_owned(),
                            label: value.label.clone(),
                        },
                        value.span,
                    )
                    .also(first, "first listed here"),
                );
            }
        }
    }

    pub(super) fn choose_with_kind_span(
        &mut self,
        node: &KdlNode,
        choice: &'static Choice,
        span: Span,
    ) -> Option<Override> {
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

    pub(super) fn rule(&mut self, node: &KdlNode) -> Rule {
        self.no_arguments(node);
        self.no_children(node);
        let pairs: Vec<_> = node
            .entries()
            .iter()
            .filter_map(|e| {
                let key = e.name()?;
                Some((
                    Spanned::new(key.value().to_owned(), self.span(key.span())),
                    Spanned::new(written(e), self.span(e.span())),
                ))
            })
            .collect();
        if pairs.is_empty() {
            self.report(Problem::at(
                Kind::EmptyRule {
                    node: node.name().value().to_owned(),
                },
                self.node_span(node),
            ));
        }
        Rule {
            pairs,
            span: self.node_span(node),
        }
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
