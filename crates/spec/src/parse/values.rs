//! Field values: a node's arguments or a property, checked against the
//! field's type and range.

use kdl::{KdlEntry, KdlNode};

use super::nodes::{Parser, kdl_type};
use crate::error::{Kind, Problem, did_you_mean};
use crate::schema::{Field, Type};
use crate::value::Value;

impl Parser {
    /// The value of a field written as a node's arguments (`d-model 256`,
    /// `dstart-edges 0 0.1 0.5`).
    pub(super) fn node_value(&mut self, node: &KdlNode, field: &Field) -> Option<Value> {
        let args: Vec<&KdlEntry> = node.entries().iter().filter(|e| e.name().is_none()).collect();
        let span = self.node_span(node);
        let name = node.name().value();
        if matches!(field.ty, Type::FloatList | Type::StrList) {
            if args.is_empty() {
                self.report(Problem::at(Kind::NeedsValues { what: name.to_owned() }, span));
                return None;
            }
            let items: Vec<Option<Value>> = args.iter().map(|a| self.entry_value(a, field)).collect();
            return items.into_iter().collect::<Option<Vec<Value>>>().map(Value::List);
        }
        match args.as_slice() {
            [] => {
                self.report(
                    Problem::at(
                        Kind::NeedsValue {
                            what: name.to_owned(),
                            expected: "a value".to_owned(),
                        },
                        span,
                    )
                    .help(format!("{}: {}", field.doc, describe(field.ty))),
                );
                None
            }
            [arg] => self.entry_value(arg, field),
            [_, extra, ..] => {
                self.report(Problem::at(
                    Kind::TakesOneValue { what: name.to_owned() },
                    self.span(extra.span()),
                ));
                None
            }
        }
    }

    /// Checks one KDL entry against a field's type and range.
    pub(super) fn entry_value(&mut self, entry: &KdlEntry, field: &Field) -> Option<Value> {
        let span = self.span(entry.span());
        let Some(value) = Value::from_kdl(entry.value()) else {
            self.report(
                Problem::at(
                    Kind::CannotBe {
                        path: field.path.to_owned(),
                        found: kdl_type(entry),
                    },
                    span,
                )
                .help(describe(field.ty)),
            );
            return None;
        };
        match check(&value, field) {
            Ok(value) => Some(value),
            Err(kind) => {
                let help = match (field.ty, value.as_str()) {
                    (Type::Enum(words), Some(word)) => did_you_mean(word, words.iter().copied()),
                    _ => None,
                };
                self.report(Problem::at(kind, span).help(help.unwrap_or_else(|| describe(field.ty))));
                None
            }
        }
    }
}

/// Checks a value against its field's type and range.
fn check(value: &Value, field: &Field) -> Result<Value, Kind> {
    let path = field.path.to_owned();
    let wrong = |expected: &str| {
        Err(Kind::WrongType {
            path: field.path.to_owned(),
            expected: expected.to_owned(),
            found: value.type_name(),
        })
    };
    match (field.ty, value) {
        (Type::Bool, Value::Bool(_)) => Ok(value.clone()),
        (Type::Bool, _) => wrong("#true or #false"),
        (Type::Int { min, max }, Value::Int(i)) => {
            if (min..=max).contains(i) {
                Ok(value.clone())
            } else {
                Err(Kind::OutOfRange {
                    path,
                    range: format!("{min}..={max}"),
                    value: i.to_string(),
                })
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
                Err(Kind::OutOfRange {
                    path,
                    range: range_text(min, max, open_min, open_max),
                    value: x.to_string(),
                })
            }
        }
        (Type::Enum(words), Value::Str(s)) => {
            if words.contains(&s.as_str()) {
                Ok(value.clone())
            } else {
                Err(Kind::UnknownWord {
                    path,
                    word: s.clone(),
                    words: words.join(", "),
                })
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
pub(super) fn describe(ty: Type) -> String {
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
