//! Settings: plain fields, sections, choices (`schedule noam warmup=4000`)
//! and `repeats`, each becoming an [`Override`].

use kdl::{KdlEntry, KdlNode};

use super::nodes::{Parser, Seen, children, join, kdl_type};
use crate::error::{Kind, Problem, did_you_mean};
use crate::file::Override;
use crate::schema::{self, Choice, Field, Type};
use crate::source::{Span, Spanned};
use crate::value::Value;

/// The nodes of the experiment itself, not settings.
pub(super) const TOP_LEVEL: [&str; 7] = [
    "description",
    "extends",
    "repeats",
    "variant",
    "matrix",
    "expect",
    "search",
];

impl Parser {
    /// A node inside `experiment`, a variant or a section, at `prefix`.
    pub(super) fn setting(&mut self, node: &KdlNode, prefix: &str, out: &mut Vec<Override>, seen: &mut Seen) {
        let name = node.name().value();
        let path = join(prefix, name);
        if prefix.is_empty() && TOP_LEVEL.contains(&name) {
            self.report(Problem::at(
                Kind::Misplaced { name: name.to_owned() },
                self.node_span(node),
            ));
        } else if let Some(targets) = schema::alias_at(&path) {
            self.alias(node, targets, out, seen);
        } else if let Some(choice) = schema::choice_at(&path) {
            if let Some(choose) = self.choose(node, choice) {
                self.push(out, seen, choose);
            }
        } else if let Some(field) = schema::field_at(&path) {
            self.field(node, field, &path, out, seen);
        } else if schema::is_section(&path) {
            self.section(node, &path, out, seen);
        } else {
            self.unknown_field(node, prefix);
        }
    }

    /// `layers 6`: one value set on every field the alias stands for.
    fn alias(&mut self, node: &KdlNode, targets: &[&str], out: &mut Vec<Override>, seen: &mut Seen) {
        let field = schema::field_at(targets[0]).expect("alias targets are fields");
        if let Some(value) = self.node_value(node, field) {
            for target in targets {
                let target = schema::field_at(target).expect("alias targets are fields").path;
                let span = self.node_span(node);
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
    }

    /// `d-model 256`, `sustain #true threshold=62`: a field, with the fields
    /// under it as properties or children.
    fn field(&mut self, node: &KdlNode, field: &Field, path: &str, out: &mut Vec<Override>, seen: &mut Seen) {
        if !node.entries().iter().any(|e| e.name().is_none()) && field.ty == Type::Bool {
            // `sustain threshold=62`: a bool field written for its sub-fields only.
        } else if let Some(value) = self.node_value(node, field) {
            let span = self.node_span(node);
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
        self.properties(node, path, out, seen);
        for child in children(node) {
            self.setting(child, path, out, seen);
        }
    }

    /// `model { ... }`, `window length=128`: fields under a prefix.
    fn section(&mut self, node: &KdlNode, path: &str, out: &mut Vec<Override>, seen: &mut Seen) {
        let name = node.name().value();
        for entry in node.entries().iter().filter(|e| e.name().is_none()) {
            let props = schema::names_under(path).join(", ");
            self.report(
                Problem::at(Kind::SectionArgument { name: name.to_owned() }, self.span(entry.span()))
                    .help(format!("`{name}` holds: {props}")),
            );
        }
        self.properties(node, path, out, seen);
        for child in children(node) {
            self.setting(child, path, out, seen);
        }
    }

    fn unknown_field(&mut self, node: &KdlNode, prefix: &str) {
        let name = node.name().value();
        let place = if prefix.is_empty() {
            "the experiment".to_owned()
        } else {
            format!("`{prefix}`")
        };
        let problem = Problem::at(
            Kind::UnknownField {
                name: name.to_owned(),
                place: place.clone(),
            },
            self.node_span(node),
        );
        let mut candidates = schema::names_under(prefix);
        if prefix.is_empty() {
            candidates.extend(TOP_LEVEL);
        }
        let help = did_you_mean(name, candidates.iter().copied())
            .unwrap_or_else(|| format!("{place} holds: {}", candidates.join(", ")));
        self.report(problem.help(help));
    }

    pub(super) fn push(&mut self, out: &mut Vec<Override>, seen: &mut Seen, item: Override) {
        if let Some(first) = seen.insert(item.path(), item.span()) {
            self.report(
                Problem::at(Kind::SetTwice { path: item.path() }, item.span())
                    .also(first, "first set here")
                    .help("remove one of them"),
            );
        }
        out.push(item);
    }

    /// The properties of a field or section node: each must be a plain field.
    pub(super) fn properties(&mut self, node: &KdlNode, path: &str, out: &mut Vec<Override>, seen: &mut Seen) {
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
                        Kind::UnknownProperty {
                            name: key.value().to_owned(),
                            node: node.name().value().to_owned(),
                        },
                        self.span(key.span()),
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
    pub(super) fn choose(&mut self, node: &KdlNode, choice: &'static Choice) -> Option<Override> {
        let (kind, kind_span) = self.kind_of(node, choice)?;
        let fields = self.kind_fields(node, choice, kind);
        Some(Override::Choose {
            path: choice.path,
            kind: kind.name,
            fields,
            span: kind_span,
        })
    }

    /// The kind a choice node names with its first argument (and no other).
    fn kind_of(&mut self, node: &KdlNode, choice: &'static Choice) -> Option<(&'static schema::Kind, Span)> {
        let name = node.name().value();
        let kinds: Vec<&str> = choice.kinds.iter().map(|k| k.name).collect();
        let args: Vec<&KdlEntry> = node.entries().iter().filter(|e| e.name().is_none()).collect();
        let Some(first) = args.first() else {
            self.report(Problem::at(
                Kind::NeedsKind {
                    node: name.to_owned(),
                    kinds: kinds.join(", "),
                },
                self.node_span(node),
            ));
            return None;
        };
        let kind_span = self.span(first.span());
        let Some(word) = first.value().as_string() else {
            self.report(Problem::at(
                Kind::KindNotWord {
                    node: name.to_owned(),
                    kinds: kinds.join(", "),
                    found: kdl_type(first),
                },
                kind_span,
            ));
            return None;
        };
        let Some(kind) = choice.kind(word) else {
            let problem = Problem::at(
                Kind::UnknownKind {
                    node: name.to_owned(),
                    word: word.to_owned(),
                },
                kind_span,
            );
            let help = did_you_mean(word, kinds.iter().copied())
                .unwrap_or_else(|| format!("choose one of: {}", kinds.join(", ")));
            self.report(problem.help(help));
            return None;
        };
        for extra in &args[1..] {
            self.report(Problem::at(
                Kind::KindArgument {
                    node: name.to_owned(),
                    kind: kind.name.to_owned(),
                },
                self.span(extra.span()),
            ));
        }
        Some((kind, kind_span))
    }

    /// The kind's fields, written as properties or as children.
    fn kind_fields(
        &mut self,
        node: &KdlNode,
        choice: &'static Choice,
        kind: &'static schema::Kind,
    ) -> Vec<(&'static str, Value, Span)> {
        let mut fields: Vec<(&'static str, Value, Span)> = Vec::new();
        for entry in node.entries() {
            let Some(key) = entry.name() else { continue };
            if let Some(field) = self.kind_field(node, choice, kind, key.value(), self.span(key.span()))
                && let Some(value) = self.entry_value(entry, field)
            {
                self.add_kind_field(&mut fields, field, value, self.span(entry.span()));
            }
        }
        for child in children(node) {
            let child_span = self.node_span(child);
            if let Some(field) = self.kind_field(node, choice, kind, child.name().value(), child_span) {
                if let Some(value) = self.node_value(child, field) {
                    self.add_kind_field(&mut fields, field, value, child_span);
                }
                self.no_properties(child);
                self.no_children(child);
            }
        }
        fields
    }

    fn add_kind_field(
        &mut self,
        fields: &mut Vec<(&'static str, Value, Span)>,
        field: &'static Field,
        value: Value,
        span: Span,
    ) {
        if let Some((_, _, first)) = fields.iter().find(|(p, _, _)| *p == field.path) {
            self.report(
                Problem::at(
                    Kind::SetTwice {
                        path: field.path.to_owned(),
                    },
                    span,
                )
                .also(*first, "first set here"),
            );
        }
        fields.push((field.path, value, span));
    }

    pub(super) fn kind_field(
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
            Kind::KindProperty {
                node: node.name().value().to_owned(),
                kind: kind.name.to_owned(),
                name: name.to_owned(),
            },
            span,
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

    /// `repeats N`: seeds per run, 1..=1000.
    pub(super) fn repeats(&mut self, node: &KdlNode) -> Option<Spanned<u32>> {
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
}
