//! Training: the loss, the learning-rate schedule, the optimizer, mixed
//! precision, the metrics, and the loop that ties them into one run.
//!
//! | piece | module | in → out |
//! |---|---|---|
//! | loss | [`loss`] | logits `[B, T, V]`, targets `[B, T]`, velocity classes → summed loss terms |
//! | schedule | [`schedule`] | a schedule and where training stands → the learning rate |
//! | optimizer | [`optimizer`] | an optimizer config and a variable store → updates at a given rate, with state a checkpoint holds |
//! | fused kernels | [`fused`] | lists of tensors → multi-tensor zeroing, clipping and Adam (libtorch kernels `tch` lacks) |
//! | CUDA graphs | [`cuda_graph`] | a closure of device work → a captured graph to replay (libtorch's `CUDAGraph`) |
//! | precision | [`precision`] | → bfloat16 CUDA autocast |
//! | metrics | [`metrics`] | predicted and true velocities → distance, accuracy, flatness, baselines |
//! | evaluation | [`evaluate`] | a network, its decoder convention and a split → predictions, each original's loss, metrics |
//! | run | [`run`] | a run config and its dataset → a trained model, metrics, checkpoints, a summary |
//! | libtorch panics | [`torch_panic`] | a closure that may panic in libtorch → its result or the panic's message |

pub mod cuda_graph;
pub mod evaluate;
pub mod fused;
pub mod loss;
pub mod metrics;
pub mod optimizer;
pub mod precision;
pub mod probe;
pub mod run;
pub mod schedule;
pub mod step;
pub mod torch_panic;
