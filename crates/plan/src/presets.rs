//! Model presets, in one place: the write-up's model (the language's
//! defaults, as `runner plan` resolves them) and a tiny one for tests.
//!
//! In: an architecture. Out: a [`ModelConfig`].

use runner_spec::file::Override;
use runner_spec::source::Span;
use runner_spec::value::Value;

use crate::config::{Architecture, ModelConfig};
use crate::resolve;

/// The write-up's model in `architecture`'s form: 4 + 4 layers of width
/// 256, 4 heads, feed-forward 1024, dropout 0.1; an experiment file's
/// `model { architecture ... }` with nothing else resolves to exactly this.
pub fn write_up(architecture: Architecture) -> ModelConfig {
    let nowhere = Span {
        file: 0,
        range: (0, 0).into(),
    };
    let word = match architecture {
        Architecture::Vanilla => "vanilla",
        Architecture::T5 => "t5",
    };
    let chosen = Override::Set {
        path: "model.architecture",
        value: Value::Str(word.to_owned()),
        span: nowhere,
    };
    resolve::resolve([&chosen], nowhere)
        .expect("the language's defaults resolve")
        .config
        .model
}

/// A model small enough to train in milliseconds: width 16, 2 + 2 layers,
/// 2 heads, 8 relative-position buckets up to distance 16 (also when a test
/// switches the vanilla model to relative positions).
pub fn tiny(architecture: Architecture) -> ModelConfig {
    ModelConfig {
        d_model: 16,
        d_kv: 8,
        d_ff: 32,
        encoder_layers: 2,
        decoder_layers: 2,
        heads: 2,
        relative_buckets: Some(8),
        relative_max_distance: Some(16),
        ..write_up(architecture)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Norm, Positions};

    #[test]
    fn the_write_up_model_is_the_papers() {
        for architecture in [Architecture::Vanilla, Architecture::T5] {
            let model = write_up(architecture);
            assert_eq!(model.architecture, architecture);
            assert_eq!((model.d_model, model.d_kv, model.d_ff, model.heads), (256, 64, 1024, 4));
            assert_eq!((model.encoder_layers, model.decoder_layers), (4, 4));
            assert_eq!((model.dropout, model.norm), (0.1, Norm::Pre));
            let t5 = architecture == Architecture::T5;
            assert_eq!(model.tie_embeddings, t5);
            assert_eq!(
                model.positions,
                if t5 { Positions::Relative } else { Positions::Sinusoidal }
            );
        }
    }
}
