//! Values of experiment fields, independent of KDL.
//!
//! In: a `kdl::KdlValue`. Out: a [`Value`], whose [`Display`](std::fmt::Display)
//! form is canonical (numbers spelt the shortest way that reads back exactly),
//! so `1e-3` and `0.001` are the same value.

use std::fmt;

/// A field's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `#true` / `#false`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A floating-point number.
    Float(f64),
    /// A string or a bare identifier.
    Str(String),
    /// Several values (a node's arguments).
    List(Vec<Value>),
}

impl Value {
    /// Converts a KDL value; `None` for `#null` and integers that do not fit
    /// in an `i64`.
    pub fn from_kdl(value: &kdl::KdlValue) -> Option<Value> {
        match value {
            kdl::KdlValue::Bool(b) => Some(Value::Bool(*b)),
            kdl::KdlValue::Integer(i) => i64::try_from(*i).ok().map(Value::Int),
            kdl::KdlValue::Float(f) => Some(Value::Float(*f)),
            kdl::KdlValue::String(s) => Some(Value::Str(s.clone())),
            kdl::KdlValue::Null => None,
        }
    }

    /// The value as a number, if it is one.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            _ => None,
        }
    }

    /// The value as a string, if it is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// A word for the value's type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::List(_) => "a list",
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{x:?}"),
            Value::Str(s) => write!(f, "{s}"),
            Value::List(items) => {
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        write!(f, " ")?;
                    }
                    write!(f, "{item}")?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_spellings_that_mean_the_same_value_display_the_same() {
        let a = Value::from_kdl(&kdl::KdlValue::Float(1e-3)).unwrap();
        let b = Value::from_kdl(&kdl::KdlValue::Float(0.001)).unwrap();
        assert_eq!(a.to_string(), b.to_string());
        assert_eq!(Value::Float(3e-6).to_string(), "3e-6");
        assert_eq!(Value::Int(4000).to_string(), "4000");
    }

    #[test]
    fn null_and_huge_integers_are_not_values() {
        assert_eq!(Value::from_kdl(&kdl::KdlValue::Null), None);
        assert_eq!(Value::from_kdl(&kdl::KdlValue::Integer(i128::MAX)), None);
    }
}
