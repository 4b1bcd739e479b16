//! Picking the compute device for native programs (the `emstudio train/infer` commands and the
//! speed benchmark): burn's flex CPU backend always, wgpu (Vulkan/Metal/DX12) with the `wgpu`
//! feature, CUDA with the `cuda` feature. In the browser the worker picks WebGPU or the CPU
//! itself (`worker/src/web_gpu.rs`).

use burn::prelude::Device;

/// Which compute device to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceChoice {
    /// The best one built in: CUDA, then wgpu, then the CPU.
    Auto,
    /// burn's flex CPU backend.
    Cpu,
    /// wgpu (Vulkan/Metal/DX12), needs the `wgpu` feature.
    Wgpu,
    /// CUDA, needs the `cuda` feature.
    Cuda,
}

/// A device that cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DeviceError {
    /// Not one of the names.
    #[error("device '{0}': use auto, cpu, wgpu or cuda")]
    Unknown(String),
    /// The backend was not compiled in.
    #[error("this program was built without {backend} (build it with `--features {feature}`)")]
    NotBuilt {
        /// The backend's name.
        backend: &'static str,
        /// The cargo feature that adds it.
        feature: &'static str,
    },
}

impl std::str::FromStr for DeviceChoice {
    type Err = DeviceError;
    fn from_str(s: &str) -> Result<Self, DeviceError> {
        Ok(match s {
            "auto" => DeviceChoice::Auto,
            "cpu" => DeviceChoice::Cpu,
            "wgpu" | "vulkan" => DeviceChoice::Wgpu,
            "cuda" => DeviceChoice::Cuda,
            other => return Err(DeviceError::Unknown(other.to_string())),
        })
    }
}

/// True when `choice` runs on the CPU in this build ("auto" without a GPU feature).
pub fn runs_on_cpu(choice: DeviceChoice) -> bool {
    match choice {
        DeviceChoice::Cpu => true,
        DeviceChoice::Cuda | DeviceChoice::Wgpu => false,
        DeviceChoice::Auto => !cfg!(any(feature = "wgpu", feature = "cuda")),
    }
}

/// The device and a line describing it.
pub fn pick_device(choice: DeviceChoice) -> Result<(Device, String), DeviceError> {
    match choice {
        DeviceChoice::Cuda => {
            #[cfg(feature = "cuda")]
            return Ok((Device::cuda(0), "CUDA GPU 0".into()));
            #[cfg(not(feature = "cuda"))]
            Err(DeviceError::NotBuilt {
                backend: "CUDA",
                feature: "cuda",
            })
        }
        DeviceChoice::Wgpu => {
            #[cfg(feature = "wgpu")]
            return Ok((
                Device::wgpu(burn::tensor::DeviceKind::DefaultDevice),
                "wgpu default adapter".into(),
            ));
            #[cfg(not(feature = "wgpu"))]
            Err(DeviceError::NotBuilt {
                backend: "wgpu",
                feature: "wgpu",
            })
        }
        DeviceChoice::Cpu => Ok((
            Device::flex(),
            format!(
                "CPU (burn flex, {} threads)",
                std::thread::available_parallelism().map_or(1, |n| n.get())
            ),
        )),
        DeviceChoice::Auto => {
            #[cfg(feature = "cuda")]
            return pick_device(DeviceChoice::Cuda);
            #[cfg(all(feature = "wgpu", not(feature = "cuda")))]
            return pick_device(DeviceChoice::Wgpu);
            #[cfg(not(any(feature = "wgpu", feature = "cuda")))]
            pick_device(DeviceChoice::Cpu)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_unknown_ones_are_refused() {
        assert_eq!("vulkan".parse(), Ok(DeviceChoice::Wgpu));
        assert_eq!("cpu".parse(), Ok(DeviceChoice::Cpu));
        let err = "tpu".parse::<DeviceChoice>().unwrap_err();
        assert_eq!(err.to_string(), "device 'tpu': use auto, cpu, wgpu or cuda");
        assert!(pick_device(DeviceChoice::Cpu).unwrap().1.starts_with("CPU"));
        assert!(runs_on_cpu(DeviceChoice::Cpu));
        assert!(!runs_on_cpu(DeviceChoice::Wgpu));
        assert_eq!(
            runs_on_cpu(DeviceChoice::Auto),
            pick_device(DeviceChoice::Auto)
                .unwrap()
                .1
                .starts_with("CPU")
        );
    }
}
