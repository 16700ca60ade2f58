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
                self.report(Problem::at(
                    Kind::MissingValue,
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
                        Kind::MissingValue,
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
                    Kind::UnexpectedArgument,
                    self.span(extra.span()),
                    "unexpected",
                    format!("`{name}` takes one value"),
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
                    Kind::WrongType,
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
            Err((kind, message)) => {
                let label = match kind {
                    Kind::OutOfRange => "out of range",
                    Kind::UnknownValue => "unknown value",
                    _ => "wrong type",
                };
                let problem = Problem::at(kind, span, label, format!("`{}` {message}", field.path));
                let help = match (field.ty, value.as_str()) {
                    (Type::Enum(words), Some(word)) => did_you_mean(word, words.iter().copied()),
                    _ => None,
                };
                self.report(problem.help(help.unwrap_or_else(|| describe(field.ty))));
                None
            }
        }
    }
}

/// Checks a value against a type; the error is (kind, message).
fn check(value: &Value, ty: Type) -> Result<Value, (Kind, String)> {
    let wrong = |what: &str| Err((Kind::WrongType, format!("expects {what}, not {}", value.type_name())));
    match (ty, value) {
        (Type::Bool, Value::Bool(_)) => Ok(value.clone()),
        (Type::Bool, _) => wrong("#true or #false"),
        (Type::Int { min, max }, Value::Int(i)) => {
            if (min..=max).contains(i) {
                Ok(value.clone())
            } else {
                Err((Kind::OutOfRange, format!("must be in {min}..={max}, not {i}")))
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
                    Kind::OutOfRange,
                    format!("must be in {}, not {x}", range_text(min, max, open_min, open_max)),
                ))
            }
        }
        (Type::Enum(words), Value::Str(s)) => {
            if words.contains(&s.as_str()) {
                Ok(value.clone())
            } else {
                Err((
                    Kind::UnknownValue,
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
