//! Export → read round trips, bit depth conversion and natural ordering.

mod stack_support;

use emstudio_core::stack::{
    decode_file, encode_slice, export, probe, read_stack, BitDepth, ExportFormat, FileFormat,
    ImageHeader, Limits, PixelData, StackBuilder, StackError,
};
use emstudio_core::{AnyVolume, DType, Shape, Volume};
use proptest::prelude::*;
use stack_support::*;

fn u8_volume(c: usize) -> AnyVolume {
    let n = noise(1, 4 * 9 * 7 * c);
    AnyVolume::U8(volume(4, 9, 7, c, |z, i| n[z * 9 * 7 * c + i] as u8))
}
fn u16_volume(c: usize) -> AnyVolume {
    let n = noise(2, 3 * 5 * 11 * c);
    // Full 16-bit range, including 0, 255, 256 and 65535.
    AnyVolume::U16(volume(3, 5, 11, c, |z, i| match i {
        0 => 0,
        1 => 255,
        2 => 256,
        3 => u16::MAX,
        _ => n[z * 5 * 11 * c + i] as u16,
    }))
}
fn u32_volume(c: usize) -> AnyVolume {
    let n = noise(3, 2 * 6 * 6 * c);
    AnyVolume::U32(volume(2, 6, 6, c, |z, i| match i {
        0 => u32::MAX,
        1 => 70_000,
        _ => n[z * 6 * 6 * c + i] as u32,
    }))
}
fn f32_volume(c: usize) -> AnyVolume {
    let n = noise(4, 3 * 4 * 5 * c);
    AnyVolume::F32(volume(3, 4, 5, c, |z, i| match i {
        0 => -0.0,
        1 => f32::NAN,
        2 => f32::INFINITY,
        3 => -1.5e-30,
        _ => f32::from_bits(n[z * 4 * 5 * c + i] as u32 & 0x7f7f_ffff) - 1e3,
    }))
}

fn all_volumes() -> Vec<AnyVolume> {
    let mut v = Vec::new();
    for c in [1, 3] {
        v.push(u8_volume(c));
        v.push(u16_volume(c));
        v.push(u32_volume(c));
        v.push(f32_volume(c));
    }
    v
}

#[test]
fn every_allowed_format_and_dtype_round_trips_bit_exactly() {
    let mut combos = 0;
    for vol in all_volumes() {
        for format in [
            ExportFormat::PngSeries,
            ExportFormat::TiffSeries,
            ExportFormat::MultiPageTiff,
        ] {
            let png_ok = matches!(vol.dtype(), DType::U8 | DType::U16);
            let result = export(&vol, &options(format, BitDepth::Native, false));
            if format == ExportFormat::PngSeries && !png_ok {
                let err = result.expect_err("PNG cannot hold 32-bit data");
                assert!(
                    matches!(err, StackError::FormatCannotStore { ref file, dtype, .. }
                        if file == "t_0000.png" && dtype == vol.dtype()),
                    "{err:?}"
                );
                assert!(err.to_string().starts_with("t_0000.png: PNG cannot store"));
                continue;
            }
            let files = result.expect("export");
            let expected_files = if format == ExportFormat::MultiPageTiff {
                1
            } else {
                vol.shape().z
            };
            assert_eq!(files.len(), expected_files);
            let back = read_stack(files, &Limits::default()).expect("read back");
            assert_same(&vol, &back);
            combos += 1;
        }
    }
    // 8 volumes × 3 formats, minus PNG for the 4 volumes with 32-bit data.
    assert_eq!(combos, 20);
}

#[test]
fn export_names_follow_the_pattern() {
    let vol = u8_volume(1);
    let names = |f| -> Vec<String> {
        export(&vol, &options(f, BitDepth::Native, false))
            .expect("export")
            .into_iter()
            .map(|(n, _)| n)
            .collect()
    };
    assert_eq!(
        names(ExportFormat::PngSeries),
        ["t_0000.png", "t_0001.png", "t_0002.png", "t_0003.png"]
    );
    assert_eq!(names(ExportFormat::TiffSeries)[3], "t_0003.tif");
    assert_eq!(names(ExportFormat::MultiPageTiff), ["t.tif"]);
}

#[test]
fn decode_file_and_probe_report_what_was_written() {
    let vol = u16_volume(3);
    let files = export(
        &vol,
        &options(ExportFormat::MultiPageTiff, BitDepth::Native, false),
    )
    .expect("export");
    let (name, bytes) = &files[0];
    let header = probe(name, bytes, &Limits::default()).expect("probe");
    assert_eq!(
        header,
        ImageHeader {
            width: 11,
            height: 5,
            channels: 3,
            dtype: DType::U16,
            pages: 3,
            format: FileFormat::Tiff,
        }
    );
    let slices = decode_file(name, bytes, &Limits::default()).expect("decode");
    assert_eq!(slices.len(), 3);
    let AnyVolume::U16(v) = &vol else {
        unreachable!()
    };
    for (z, s) in slices.iter().enumerate() {
        assert_eq!((s.width, s.height, s.channels), (11, 5, 3));
        assert_eq!(s.pixels, PixelData::U16(v.slice(z)));
    }

    let png = encode_slice(
        &vol,
        1,
        FileFormat::Png,
        &options(ExportFormat::PngSeries, BitDepth::Native, false),
    )
    .expect("png");
    let header = probe("s.png", &png, &Limits::default()).expect("probe png");
    assert_eq!((header.pages, header.format), (1, FileFormat::Png));
    let s = decode_file("s.png", &png, &Limits::default()).expect("decode png");
    assert_eq!(s[0].pixels, PixelData::U16(v.slice(1)));
}

#[test]
fn png_16_bit_is_big_endian_on_disk() {
    let vol = AnyVolume::U16(volume(1, 1, 2, 1, |_, i| [0x1234u16, 0xABCD][i]));
    let png = encode_slice(
        &vol,
        0,
        FileFormat::Png,
        &options(ExportFormat::PngSeries, BitDepth::Native, false),
    )
    .expect("png");
    // Decode with the png crate itself (no transformations) and look at the raw bytes.
    let mut reader = png::Decoder::new(std::io::Cursor::new(&png))
        .read_info()
        .expect("info");
    let mut buf = vec![0; reader.output_buffer_size()];
    reader.next_frame(&mut buf).expect("frame");
    assert_eq!(buf, [0x12, 0x34, 0xAB, 0xCD]);
}

#[test]
fn big_tiff_is_read() {
    let vol = u16_volume(1);
    let AnyVolume::U16(v) = &vol else {
        unreachable!()
    };
    let mut cursor = std::io::Cursor::new(Vec::new());
    {
        let mut enc = tiff::encoder::TiffEncoder::new_big(&mut cursor).expect("big");
        for z in 0..3 {
            enc.write_image::<tiff::encoder::colortype::Gray16>(11, 5, &v.slice(z))
                .expect("page");
        }
    }
    let bytes = cursor.into_inner();
    assert_eq!(&bytes[..4], b"II+\0");
    let back = read_stack(vec![("big.tif".into(), bytes)], &Limits::default()).expect("read");
    assert_same(&vol, &back);
}

#[test]
fn multi_page_tiffs_concatenate_along_z() {
    let vol = u8_volume(1); // 4 slices
    let files = export(
        &vol,
        &options(ExportFormat::MultiPageTiff, BitDepth::Native, false),
    )
    .expect("export");
    let bytes = files[0].1.clone();
    // Two files of 4 pages each; natural order puts "part2" before "part10".
    let back = read_stack(
        vec![
            ("part10.tif".into(), bytes.clone()),
            ("part2.tif".into(), bytes),
        ],
        &Limits::default(),
    )
    .expect("read");
    assert_eq!(back.shape(), Shape::new(8, 9, 7));
    for z in 0..8 {
        assert_eq!(back.slice_f64(z), vol.slice_f64(z % 4));
    }
}

#[test]
fn files_are_read_in_natural_order_and_junk_is_skipped() {
    let slice = |value: u8| {
        let v = AnyVolume::U8(volume(1, 2, 3, 1, |_, _| value));
        encode_slice(
            &v,
            0,
            FileFormat::Png,
            &options(ExportFormat::PngSeries, BitDepth::Native, false),
        )
        .expect("png")
    };
    let files = vec![
        ("img_10.png".to_string(), slice(10)),
        ("README.md".to_string(), b"# notes".to_vec()),
        ("img_9.png".to_string(), slice(9)),
        (".DS_Store".to_string(), vec![0, 0, 0, 1]),
        ("img_100.png".to_string(), slice(100)),
        ("._img_1.png".to_string(), b"resource fork".to_vec()),
        ("img_2.png".to_string(), slice(2)),
    ];
    let back = read_stack(files, &Limits::default()).expect("read");
    let firsts: Vec<f64> = (0..back.shape().z).map(|z| back.slice_f64(z)[0]).collect();
    assert_eq!(firsts, [2.0, 9.0, 10.0, 100.0]);
}

#[test]
fn rescale_maps_min_max_onto_the_target_range() {
    // Slice 0 spans 100..=600, slice 1 spans 600..=1100: one mapping for the whole volume.
    let vol = AnyVolume::U16(volume(2, 1, 3, 1, |z, i| {
        [[100u16, 350, 600], [600, 850, 1100]][z][i]
    }));
    let files =
        export(&vol, &options(ExportFormat::PngSeries, BitDepth::U8, true)).expect("export");
    let back = read_stack(files, &Limits::default()).expect("read");
    assert_eq!(back.dtype(), DType::U8);
    // (v - 100) * 255 / 1000, rounded half away from zero.
    assert_eq!(back.slice_f64(0), [0.0, 64.0, 128.0]);
    assert_eq!(back.slice_f64(1), [128.0, 191.0, 255.0]);

    // encode_slice uses the same whole-volume range.
    let one = encode_slice(
        &vol,
        0,
        FileFormat::Tiff,
        &options(ExportFormat::TiffSeries, BitDepth::U8, true),
    )
    .expect("slice");
    let s = decode_file("one.tif", &one, &Limits::default()).expect("decode");
    assert_eq!(s[0].pixels, PixelData::U8(vec![0, 64, 128]));

    // Up-scaling 8 → 16 bit stretches to the full 16-bit range.
    let small = AnyVolume::U8(volume(1, 1, 3, 1, |_, i| [10u8, 20, 30][i]));
    let out = encode_slice(
        &small,
        0,
        FileFormat::Png,
        &options(ExportFormat::PngSeries, BitDepth::U16, true),
    )
    .expect("slice");
    let s = decode_file("u16.png", &out, &Limits::default()).expect("decode");
    assert_eq!(s[0].pixels, PixelData::U16(vec![0, 32768, 65535]));

    // Float probabilities in [-1, 1] → 8-bit.
    let f = AnyVolume::F32(volume(1, 1, 3, 1, |_, i| [-1.0f32, 0.0, 1.0][i]));
    let out = encode_slice(
        &f,
        0,
        FileFormat::Png,
        &options(ExportFormat::PngSeries, BitDepth::U8, true),
    )
    .expect("slice");
    let s = decode_file("f.png", &out, &Limits::default()).expect("decode");
    assert_eq!(s[0].pixels, PixelData::U8(vec![0, 128, 255]));

    // A constant volume maps to 0.
    let c = AnyVolume::U16(volume(1, 1, 2, 1, |_, _| 777u16));
    let out = encode_slice(
        &c,
        0,
        FileFormat::Png,
        &options(ExportFormat::PngSeries, BitDepth::U8, true),
    )
    .expect("slice");
    let s = decode_file("c.png", &out, &Limits::default()).expect("decode");
    assert_eq!(s[0].pixels, PixelData::U8(vec![0, 0]));
}

#[test]
fn converting_without_rescale_keeps_values_that_fit() {
    let vol = AnyVolume::U16(volume(1, 1, 3, 1, |_, i| [0u16, 17, 255][i]));
    let out = encode_slice(
        &vol,
        0,
        FileFormat::Png,
        &options(ExportFormat::PngSeries, BitDepth::U8, false),
    )
    .expect("fits");
    let s = decode_file("a.png", &out, &Limits::default()).expect("decode");
    assert_eq!(s[0].pixels, PixelData::U8(vec![0, 17, 255]));

    let f = AnyVolume::F32(volume(1, 1, 3, 1, |_, i| [0.4f32, 2.6, 65535.0][i]));
    let out = encode_slice(
        &f,
        0,
        FileFormat::Tiff,
        &options(ExportFormat::TiffSeries, BitDepth::U16, false),
    )
    .expect("fits");
    let s = decode_file("b.tif", &out, &Limits::default()).expect("decode");
    assert_eq!(s[0].pixels, PixelData::U16(vec![0, 3, 65535]));

    let small = AnyVolume::U8(volume(1, 1, 2, 1, |_, i| [3u8, 250][i]));
    let out = encode_slice(
        &small,
        0,
        FileFormat::Png,
        &options(ExportFormat::PngSeries, BitDepth::U16, false),
    )
    .expect("fits");
    let s = decode_file("c.png", &out, &Limits::default()).expect("decode");
    assert_eq!(s[0].pixels, PixelData::U16(vec![3, 250]));
}

#[test]
fn values_that_do_not_fit_are_an_error() {
    let vol = AnyVolume::U16(volume(2, 1, 3, 1, |z, i| {
        [[0u16, 17, 255], [1, 1100, 2]][z][i]
    }));
    for format in [
        ExportFormat::PngSeries,
        ExportFormat::TiffSeries,
        ExportFormat::MultiPageTiff,
    ] {
        let err = export(&vol, &options(format, BitDepth::U8, false)).expect_err("1100 > 255");
        assert_eq!(
            err,
            StackError::DoesNotFit {
                max: 1100.0,
                depth: DType::U8
            }
        );
        let msg = err.to_string();
        assert!(msg.contains("1100") && msg.contains("8-bit"), "{msg}");
    }
    // encode_slice of a slice whose own values fit still refuses: the check is per volume.
    assert!(matches!(
        encode_slice(
            &vol,
            0,
            FileFormat::Png,
            &options(ExportFormat::PngSeries, BitDepth::U8, false)
        ),
        Err(StackError::DoesNotFit { .. })
    ));

    let neg = AnyVolume::F32(volume(1, 1, 2, 1, |_, i| [-1.5f32, 3.0][i]));
    assert_eq!(
        encode_slice(
            &neg,
            0,
            FileFormat::Png,
            &options(ExportFormat::PngSeries, BitDepth::U16, false)
        ),
        Err(StackError::DoesNotFit {
            max: -1.5,
            depth: DType::U16
        })
    );
    let big = AnyVolume::U32(volume(1, 1, 2, 1, |_, i| [0u32, 70_000][i]));
    assert!(matches!(
        export(&big, &options(ExportFormat::TiffSeries, BitDepth::U16, false)),
        Err(StackError::DoesNotFit { max, depth: DType::U16 }) if max == 70_000.0
    ));
    // ... and rescaling makes them fit.
    let files = export(
        &big,
        &options(ExportFormat::TiffSeries, BitDepth::U16, true),
    )
    .expect("rescaled");
    let back = read_stack(files, &Limits::default()).expect("read");
    assert_eq!(back.slice_f64(0), [0.0, 65535.0]);
}

#[test]
fn builder_reports_progress_per_file() {
    let vol = u8_volume(1);
    let files = export(
        &vol,
        &options(ExportFormat::PngSeries, BitDepth::Native, false),
    )
    .expect("export");
    let mut b = StackBuilder::new(files.len(), Limits::default());
    for (k, (name, bytes)) in files.iter().enumerate() {
        assert_eq!(b.slices(), k);
        b.push(name, bytes).expect("push");
    }
    assert_eq!(b.slices(), 4);
    assert_same(&vol, &b.finish().expect("finish"));
}

fn any_volume() -> impl Strategy<Value = AnyVolume> {
    (
        1usize..4,
        1usize..13,
        1usize..13,
        prop_oneof![Just(1usize), Just(3usize)],
        0u8..4,
        any::<u64>(),
    )
        .prop_map(|(z, y, x, c, t, seed)| {
            let n = noise(seed, z * y * x * c);
            let at = move |k: usize, i: usize| n[(k * y * x * c) + i];
            match t {
                0 => AnyVolume::U8(volume(z, y, x, c, |k, i| at(k, i) as u8)),
                1 => AnyVolume::U16(volume(z, y, x, c, |k, i| at(k, i) as u16)),
                2 => AnyVolume::U32(volume(z, y, x, c, |k, i| at(k, i) as u32)),
                _ => AnyVolume::F32(volume(z, y, x, c, |k, i| f32::from_bits(at(k, i) as u32))),
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn random_volumes_round_trip(vol in any_volume(), f in 0usize..3) {
        let format = [ExportFormat::PngSeries, ExportFormat::TiffSeries, ExportFormat::MultiPageTiff][f];
        let png_ok = matches!(vol.dtype(), DType::U8 | DType::U16);
        let format = if format == ExportFormat::PngSeries && !png_ok { ExportFormat::TiffSeries } else { format };
        let files = export(&vol, &options(format, BitDepth::Native, false)).expect("export");
        let back = read_stack(files, &Limits::default()).expect("read back");
        assert_same(&vol, &back);
    }

    #[test]
    fn rescaled_exports_span_the_target_range(vol in any_volume(), sixteen in any::<bool>()) {
        let depth = if sixteen { BitDepth::U16 } else { BitDepth::U8 };
        let files = export(&vol, &options(ExportFormat::MultiPageTiff, depth, true)).expect("export");
        let back = read_stack(files, &Limits::default()).expect("read back");
        prop_assert_eq!(back.dtype(), if sixteen { DType::U16 } else { DType::U8 });
        prop_assert_eq!(back.shape(), vol.shape());
        let (lo, hi) = back.min_max_f64();
        let finite: Vec<f64> = (0..vol.shape().z).flat_map(|z| vol.slice_f64(z)).filter(|v| v.is_finite()).collect();
        let distinct = finite.iter().any(|v| Some(v) != finite.first());
        if distinct {
            prop_assert_eq!(lo, 0.0);
            prop_assert_eq!(hi, if sixteen { 65535.0 } else { 255.0 });
        }
    }
}

#[test]
fn a_volume_with_one_voxel_round_trips() {
    let vol = AnyVolume::U8(Volume::<u8>::new(Shape::new(1, 1, 1), 1).expect("volume"));
    for format in [
        ExportFormat::PngSeries,
        ExportFormat::TiffSeries,
        ExportFormat::MultiPageTiff,
    ] {
        let files = export(&vol, &options(format, BitDepth::Native, false)).expect("export");
        assert_same(&vol, &read_stack(files, &Limits::default()).expect("read"));
    }
}
