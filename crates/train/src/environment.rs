//! What the worker runs on: the libtorch it was built against and loaded,
//! the CUDA devices it sees and the CPU threads it uses.
//!
//! In: nothing but the process itself. Out: an [`Environment`] value
//! (`runner-worker info --json`, shown by `runner --version` and `runner
//! info`), and checks that each device computes what the CPU computes.

use std::fmt;

pub use runner_job::Environment;

/// The libtorch version the binary was built against (read by `build.rs`).
pub const LIBTORCH_BUILD_VERSION: &str = env!("RUNNER_LIBTORCH_VERSION");

/// Probes libtorch and the hardware.
pub fn probe() -> Environment {
    let cuda_devices = usize::try_from(tch::Cuda::device_count()).unwrap_or(0);
    Environment {
        runner_version: env!("CARGO_PKG_VERSION").to_owned(),
        libtorch_version: LIBTORCH_BUILD_VERSION.to_owned(),
        libtorch_loaded_from: loaded_libtorch_folder(),
        cuda_available: tch::Cuda::is_available(),
        cuda_devices,
        cudnn_available: tch::Cuda::cudnn_is_available(),
        cpu_threads: usize::try_from(tch::get_num_threads()).unwrap_or(1),
    }
}

/// The outcome of running a small computation on one device.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceCheck {
    /// The device, as `cpu` or `cuda:K`.
    pub device: String,
    /// The largest absolute difference from the same computation on the CPU.
    pub max_abs_diff: f64,
    /// Milliseconds the computation took, including the copy back.
    pub millis: f64,
}

impl DeviceCheck {
    /// Results this far from the CPU's mean the device computes wrongly.
    pub const TOLERANCE: f64 = 1e-2;

    /// Whether the device agreed with the CPU.
    pub fn passed(&self) -> bool {
        self.max_abs_diff <= Self::TOLERANCE
    }
}

impl fmt::Display for DeviceCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = if self.passed() { "ok" } else { "WRONG RESULT" };
        write!(
            f,
            "{}: 256x256 matmul + softmax {verdict} (max |diff| vs CPU {:.2e}, {:.2} ms)",
            self.device, self.max_abs_diff, self.millis
        )
    }
}

/// Runs a 256x256 matrix product and a softmax on the CPU and on every CUDA
/// device, and compares each device's result with the CPU's.
pub fn check_devices() -> Vec<DeviceCheck> {
    tch::manual_seed(0);
    let a = tch::Tensor::randn([256, 256], (tch::Kind::Float, tch::Device::Cpu));
    let b = tch::Tensor::randn([256, 256], (tch::Kind::Float, tch::Device::Cpu));
    let compute = |device: tch::Device| {
        let start = std::time::Instant::now();
        let out = a
            .to_device(device)
            .matmul(&b.to_device(device))
            .softmax(-1, tch::Kind::Float)
            .to_device(tch::Device::Cpu);
        (out, start.elapsed().as_secs_f64() * 1e3)
    };
    let (reference, cpu_millis) = compute(tch::Device::Cpu);
    let mut checks = vec![DeviceCheck {
        device: "cpu".to_owned(),
        max_abs_diff: 0.0,
        millis: cpu_millis,
    }];
    for index in 0..tch::Cuda::device_count() {
        let (out, millis) = compute(tch::Device::Cuda(index as usize));
        let max_abs_diff = (&out - &reference).abs().max().double_value(&[]);
        checks.push(DeviceCheck {
            device: format!("cuda:{index}"),
            max_abs_diff,
            millis,
        });
    }
    checks
}

/// A device as the user names it: `cpu` or `cuda:K`.
pub fn device_name(device: tch::Device) -> String {
    match device {
        tch::Device::Cuda(index) => format!("cuda:{index}"),
        _ => "cpu".to_owned(),
    }
}

/// The device in words for reports: `cpu: <CPU model> (<N> threads)` or
/// `cuda:K: <GPU name>` (the name from `nvidia-smi` when it answers).
pub fn describe_device(device: tch::Device) -> String {
    match device {
        tch::Device::Cuda(index) => match gpu_name(index) {
            Some(name) => format!("cuda:{index}: {name}"),
            None => format!("cuda:{index}"),
        },
        _ => {
            let threads = tch::get_num_threads();
            match cpu_model() {
                Some(model) => format!("cpu: {model} ({threads} threads)"),
                None => format!("cpu ({threads} threads)"),
            }
        }
    }
}

/// The CPU's model name from `/proc/cpuinfo` (Linux only).
fn cpu_model() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    info.lines()
        .find(|line| line.starts_with("model name"))
        .and_then(|line| line.split_once(':'))
        .map(|(_, name)| name.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// The name `nvidia-smi` gives CUDA device `index`, when it is installed.
fn gpu_name(index: usize) -> Option<String> {
    let output = std::process::Command::new("nvidia-smi")
        .args(["--query-gpu=name", "--format=csv,noheader", "-i", &index.to_string()])
        .output()
        .ok()?;
    let name = String::from_utf8(output.stdout).ok()?.trim().to_owned();
    (output.status.success() && !name.is_empty()).then_some(name)
}

/// Finds the folder `libtorch_cpu.so` was mapped from, by reading the
/// process's memory map (Linux only; `None` elsewhere or when not found).
pub fn loaded_libtorch_folder() -> Option<String> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    maps.lines()
        .filter_map(|line| line.split_whitespace().nth(5))
        .find(|path| path.ends_with("/libtorch_cpu.so"))
        .and_then(|path| std::path::Path::new(path).parent())
        .map(|folder| folder.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_reports_the_libtorch_the_build_script_found() {
        let env = probe();
        assert!(env.libtorch_version.starts_with("2.11."), "{}", env.libtorch_version);
        assert!(env.cpu_threads >= 1);
        assert_eq!(env.cuda_available, env.cuda_devices > 0);
        let folder = env.libtorch_loaded_from.expect("libtorch_cpu.so is mapped");
        assert!(folder.ends_with("lib"), "{folder}");
    }

    #[test]
    fn device_check_covers_the_cpu_and_every_cuda_device() {
        let checks = check_devices();
        assert_eq!(checks.len(), 1 + tch::Cuda::device_count() as usize);
        assert_eq!(checks[0].device, "cpu");
        assert!(checks.iter().all(DeviceCheck::passed), "{checks:?}");
    }

    #[test]
    fn the_cpu_is_described_with_its_thread_count() {
        let text = describe_device(tch::Device::Cpu);
        assert!(text.starts_with("cpu"), "{text}");
        assert!(
            text.ends_with(&format!("({} threads)", tch::get_num_threads())),
            "{text}"
        );
    }

    #[test]
    fn a_large_difference_fails_the_check() {
        let check = DeviceCheck {
            device: "cuda:0".into(),
            max_abs_diff: 0.5,
            millis: 1.0,
        };
        assert!(!check.passed());
        assert!(check.to_string().contains("WRONG RESULT"));
    }
}
