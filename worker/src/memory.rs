//! How much a stack may take in the browser: the data worker is a wasm32 module, so it can
//! address 4 GiB at most, and what it already holds (open layers, undo history) is not
//! available. The native [`Limits`] (3 GiB of voxels) would let a stack pass its header check
//! and then kill the worker mid-decode when the allocation fails, losing every open layer and
//! unsaved edit; these limits refuse it from the headers instead, with its size in the message.
//! Platform-free: `web` measures the memory and passes it in.

use emstudio_core::stack::Limits;

/// What a wasm32 module can address.
pub const WASM32_ADDRESS_SPACE: u64 = 4 << 30;

/// Kept free besides the stack's voxels: the file being decoded (and its copy out of
/// JavaScript), decoder buffers, rendering and the messages of the open.
pub const DECODE_HEADROOM: u64 = 512 << 20;

/// The limits for opening a stack in a worker whose wasm memory is `used_bytes` large, on a
/// device that reports `device_memory_gib` of RAM (`navigator.deviceMemory`, when the browser
/// tells): the address space left after the headroom, and at most half the device's memory.
/// Never more than the native limits.
pub fn stack_limits(used_bytes: u64, device_memory_gib: Option<f64>) -> Limits {
    let native = Limits::default();
    let mut bytes = WASM32_ADDRESS_SPACE
        .saturating_sub(used_bytes)
        .saturating_sub(DECODE_HEADROOM);
    if let Some(gib) = device_memory_gib.filter(|g| g.is_finite() && *g > 0.0) {
        bytes = bytes.min((gib * f64::from(1u32 << 30) / 2.0) as u64);
    }
    Limits {
        max_total_bytes: usize::try_from(bytes)
            .unwrap_or(usize::MAX)
            .min(native.max_total_bytes),
        ..native
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use emstudio_core::stack::{read_stack, StackError};

    #[test]
    fn the_limit_is_what_the_address_space_has_left() {
        // A fresh worker (a few MB used) gets the native 3 GiB.
        assert_eq!(stack_limits(8 << 20, None).max_total_bytes, 3 << 30);
        // One that already holds 3 GiB of layers has 512 MiB left, minus the headroom: none.
        assert_eq!(stack_limits(3 << 30, None).max_total_bytes, 512 << 20);
        assert_eq!(stack_limits(7 << 29, None).max_total_bytes, 0);
        assert_eq!(stack_limits(5 << 30, None).max_total_bytes, 0);
        // A laptop that reports 2 GiB of RAM allows 1 GiB.
        assert_eq!(stack_limits(8 << 20, Some(2.0)).max_total_bytes, 1 << 30);
        // Nonsense from the browser is ignored.
        assert_eq!(
            stack_limits(8 << 20, Some(f64::NAN)).max_total_bytes,
            3 << 30
        );
        assert_eq!(stack_limits(8 << 20, Some(0.0)).max_total_bytes, 3 << 30);
    }

    #[test]
    fn a_stack_over_the_limit_is_refused_from_its_header_with_its_size() {
        // 4 slices of 64×64 8-bit = 16 KiB, in a worker that has 8 KiB left.
        let limits = Limits {
            max_total_bytes: 8 << 10,
            ..stack_limits(0, None)
        };
        let png = {
            let mut out = Vec::new();
            let mut enc = png::Encoder::new(&mut out, 64, 64);
            enc.set_color(png::ColorType::Grayscale);
            enc.set_depth(png::BitDepth::Eight);
            enc.write_header()
                .and_then(|mut w| w.write_image_data(&[7u8; 64 * 64]))
                .expect("png");
            out
        };
        let files = (0..4)
            .map(|i| (format!("{i:04}.png"), png.clone()))
            .collect();
        let err = read_stack(files, &limits).expect_err("too large");
        assert!(matches!(err, StackError::TooLarge { .. }), "{err:?}");
        let text = err.to_string();
        assert!(text.contains("0000.png"), "{text}");
        assert!(text.contains("16.0 KiB"), "{text}");
        assert!(text.contains("4 slice"), "{text}");
    }
}
