//! The stack readers and writers compiled to wasm32 and run by wasm-bindgen-test (in Node):
//! the code paths the browser worker uses, on the target it uses.
#![cfg(target_arch = "wasm32")]

use emstudio_core::stack::{
    decode_file, export, read_stack, BitDepth, ExportFormat, ExportOptions, Limits, StackError,
};
use emstudio_core::{AnyVolume, Shape, Volume};
use wasm_bindgen_test::wasm_bindgen_test;

fn volume() -> AnyVolume {
    let mut v = Volume::<u16>::new(Shape::new(3, 17, 33), 1).expect("volume");
    for z in 0..3 {
        for y in 0..17 {
            for x in 0..33 {
                v.set(z, y, x, 0, (z * 10007 + y * 131 + x) as u16);
            }
        }
    }
    AnyVolume::U16(v)
}

#[wasm_bindgen_test]
fn every_format_round_trips_bit_exactly() {
    for format in [
        ExportFormat::PngSeries,
        ExportFormat::TiffSeries,
        ExportFormat::MultiPageTiff,
    ] {
        let options = ExportOptions {
            format,
            depth: BitDepth::Native,
            rescale: false,
            base_name: "s".into(),
        };
        let files = export(&volume(), &options).expect("export");
        let back = read_stack(files, &Limits::default()).expect("read");
        assert_eq!(back, volume(), "{format:?}");
    }
}

#[wasm_bindgen_test]
fn truncated_png_names_the_file() {
    let options = ExportOptions {
        format: ExportFormat::PngSeries,
        depth: BitDepth::Native,
        rescale: false,
        base_name: "s".into(),
    };
    let files = export(&volume(), &options).expect("export");
    let bytes = &files[0].1;
    let err = decode_file("cut.png", &bytes[..bytes.len() / 2], &Limits::default())
        .expect_err("truncated");
    assert!(err.to_string().contains("cut.png"), "{err}");
    assert!(matches!(
        read_stack(Vec::new(), &Limits::default()),
        Err(StackError::Empty)
    ));
}
