//! Everything that needs libtorch: the models, training (the loss, the
//! learning-rate schedule, the optimizer, mixed precision, the loop that
//! ties them into one run), the benchmark, and the `runner-worker` binary
//! (`src/main.rs`) that `runner` starts for each of them. Nothing else in
//! the workspace links libtorch.
//!
//! | piece | module | in → out |
//! |---|---|---|
//! | models | [`model`] | a model config and vocabulary sizes → an encoder-decoder over token ids |
//! | loss | [`loss`] | logits `[B, T, V]`, targets `[B, T]`, velocity classes → summed loss terms |
//! | schedule | [`schedule`] | a schedule and where training stands → the learning rate |
//! | optimizer | [`optimizer`] | an optimizer config and a variable store → updates at a given rate, with state a checkpoint holds |
//! | fused kernels | [`fused`] | lists of tensors → multi-tensor zeroing, clipping and Adam (libtorch kernels `tch` lacks) |
//! | CUDA graphs | [`cuda_graph`] | a closure of device work → a captured graph to replay (libtorch's `CUDAGraph`) |
//! | precision | [`precision`] | → bfloat16 CUDA autocast |
//! | evaluation | [`evaluate`] | a network, its decoder convention and a split → predictions, each original's loss, metrics |
//! | run | [`run`] | a run config and its dataset → a trained model, metrics, checkpoints, a summary |
//! | libtorch panics | [`torch_panic`] | a closure that may panic in libtorch → its result or the panic's message |
//! | one job | [`job`] | a job from `runner exec` → the run trained under its lock, events on stdout |
//! | live files | [`live`] | where a run in training stands → its TensorBoard curves and `progress.json` |
//! | predict | [`predict`] | a trained run and pieces → one greedy velocity per note; `runner predict`'s files |
//! | probe | [`probe`] | a trained run and token ids → logits, greedy picks and the loss |
//! | export | [`export`] | a trained run → its weights as a HuggingFace T5 checkpoint, or documented (vanilla) |
//! | benchmark | [`bench`] | options → throughput of the training step, the data side and greedy decoding |
//! | environment | [`environment`] | the process → libtorch's version and folder, devices, threads |
//! | command line | [`cli`] | the worker's arguments → a [`cli::WorkerCommand`] |

#![deny(missing_docs)]

pub mod bench;
pub mod cli;
pub mod cuda_graph;
pub mod environment;
pub mod evaluate;
pub mod export;
pub mod fused;
pub mod job;
pub mod live;
pub mod loss;
pub mod model;
pub mod optimizer;
pub mod precision;
pub mod predict;
pub mod probe;
pub mod run;
pub mod schedule;
pub mod step;
pub mod torch_panic;
