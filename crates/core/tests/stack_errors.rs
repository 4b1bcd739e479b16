//! Bad input: every error has the right variant and names the file.

mod stack_support;

use emstudio_core::stack::{
    decode_file, encode_slice, export, probe, read_stack, BitDepth, ExportFormat, FileFormat,
    LimitExceeded, Limits, PixelData, StackBuilder, StackError,
};
use emstudio_core::{AnyVolume, DType};
use stack_support::*;

/// A 64×64 8-bit noise PNG (noise so that the image data dominates the file).
fn noise_png() -> Vec<u8> {
    let n = noise(7, 64 * 64);
    let v = AnyVolume::U8(volume(1, 64, 64, 1, |_, i| n[i] as u8));
    encode_slice(
        &v,
        0,
        FileFormat::Png,
        &options(ExportFormat::PngSeries, BitDepth::Native, false),
    )
    .expect("png")
}

fn png_of(v: &AnyVolume) -> Vec<u8> {
    encode_slice(
        v,
        0,
        FileFormat::Png,
        &options(ExportFormat::PngSeries, BitDepth::Native, false),
    )
    .expect("png")
}

fn assert_names(err: &StackError, file: &str) {
    let msg = err.to_string();
    assert!(msg.starts_with(&format!("{file}: ")), "{msg}");
}

#[test]
fn truncated_png_is_corrupt() {
    let png = noise_png();
    let half = &png[..png.len() / 2];
    let err = decode_file("0007.png", half, &Limits::default()).expect_err("truncated");
    assert!(
        matches!(&err, StackError::Corrupt { file, format: FileFormat::Png, .. } if file == "0007.png"),
        "{err:?}"
    );
    assert!(err
        .to_string()
        .starts_with("0007.png: truncated or corrupt PNG data ("));

    // Same through the stack reader, with a good file first.
    let err = read_stack(
        vec![
            ("0006.png".into(), png.clone()),
            ("0007.png".into(), half.to_vec()),
        ],
        &Limits::default(),
    )
    .expect_err("truncated");
    assert!(matches!(err, StackError::Corrupt { .. }));
    assert_names(&err, "0007.png");
}

#[test]
fn flipped_idat_byte_is_a_crc_error() {
    let mut png = noise_png();
    let idat = png
        .windows(4)
        .position(|w| w == b"IDAT")
        .expect("IDAT chunk");
    png[idat + 4 + 100] ^= 0x55;
    let err = decode_file("0003.png", &png, &Limits::default()).expect_err("CRC");
    assert!(
        matches!(&err, StackError::Corrupt { file, .. } if file == "0003.png"),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.starts_with("0003.png: truncated or corrupt PNG data"),
        "{msg}"
    );
    assert!(msg.contains("CRC"), "{msg}");
}

#[test]
fn text_file_named_png_has_wrong_magic() {
    let err = decode_file("x.png", b"just some text\n", &Limits::default()).expect_err("magic");
    assert_eq!(
        err,
        StackError::WrongMagic {
            file: "x.png".into()
        }
    );
    assert_eq!(
        err.to_string(),
        "x.png: not a PNG or TIFF file (wrong magic number)"
    );
    assert!(matches!(
        probe("y.tif", b"", &Limits::default()),
        Err(StackError::WrongMagic { file }) if file == "y.tif"
    ));
    let err = read_stack(
        vec![("a.png".into(), b"GIF89a".to_vec())],
        &Limits::default(),
    )
    .expect_err("magic");
    assert_eq!(
        err.to_string(),
        "a.png: not a PNG or TIFF file (wrong magic number)"
    );
}

#[test]
fn empty_input_is_empty() {
    let err = read_stack(Vec::new(), &Limits::default()).expect_err("empty");
    assert_eq!(err, StackError::Empty);
    assert_eq!(err.to_string(), "no PNG or TIFF files found");
    assert_eq!(
        StackBuilder::new(0, Limits::default()).finish(),
        Err(StackError::Empty)
    );
}

#[test]
fn only_non_image_names_is_empty() {
    let files = vec![
        ("README".to_string(), b"read me".to_vec()),
        ("notes.txt".to_string(), b"x".to_vec()),
        (".DS_Store".to_string(), vec![0; 16]),
        ("._0001.png".to_string(), noise_png()),
    ];
    assert_eq!(
        read_stack(files, &Limits::default()),
        Err(StackError::Empty)
    );
}

#[test]
fn slices_of_different_sizes() {
    let a = png_of(&AnyVolume::U8(volume(1, 8, 8, 1, |_, _| 1u8)));
    let b = png_of(&AnyVolume::U8(volume(1, 6, 8, 1, |_, _| 1u8)));
    let err = read_stack(
        vec![
            ("0000.png".into(), a.clone()),
            ("0001.png".into(), a),
            ("0003.png".into(), b),
        ],
        &Limits::default(),
    )
    .expect_err("size");
    assert_eq!(
        err,
        StackError::SizeMismatch {
            file: "0003.png".into(),
            width: 8,
            height: 6,
            expected_width: 8,
            expected_height: 8,
            first: "0000.png".into(),
        }
    );
    let msg = err.to_string();
    assert!(
        msg.starts_with("0003.png: slice is 8×6 pixels but the first slice is 8×8"),
        "{msg}"
    );
}

#[test]
fn pages_of_different_sizes_inside_one_tiff() {
    let mut cursor = std::io::Cursor::new(Vec::new());
    {
        let mut enc = tiff::encoder::TiffEncoder::new(&mut cursor).expect("enc");
        enc.write_image::<tiff::encoder::colortype::Gray8>(4, 4, &[0; 16])
            .expect("p1");
        enc.write_image::<tiff::encoder::colortype::Gray8>(4, 3, &[0; 12])
            .expect("p2");
    }
    let err = read_stack(
        vec![("stack.tif".into(), cursor.into_inner())],
        &Limits::default(),
    )
    .expect_err("size");
    assert!(
        matches!(err, StackError::SizeMismatch { height: 3, .. }),
        "{err:?}"
    );
    assert_names(&err, "stack.tif");
}

#[test]
fn mixed_8_and_16_bit() {
    let a = png_of(&AnyVolume::U8(volume(1, 4, 4, 1, |_, _| 1u8)));
    let b = png_of(&AnyVolume::U16(volume(1, 4, 4, 1, |_, _| 1u16)));
    let err = read_stack(
        vec![("0000.png".into(), a), ("x.png".into(), b)],
        &Limits::default(),
    )
    .expect_err("dtype");
    assert_eq!(
        err,
        StackError::DTypeMismatch {
            file: "x.png".into(),
            found: DType::U16,
            expected: DType::U8,
            first: "0000.png".into(),
        }
    );
    assert_eq!(
        err.to_string(),
        "x.png: 16-bit slice in an 8-bit stack (first slice 0000.png)"
    );
}

#[test]
fn mixed_gray_and_rgb() {
    let gray = png_of(&AnyVolume::U8(volume(1, 4, 4, 1, |_, _| 1u8)));
    let rgb = png_of(&AnyVolume::U8(volume(1, 4, 4, 3, |_, _| 1u8)));
    let err = read_stack(
        vec![("0000.png".into(), rgb), ("0001.png".into(), gray)],
        &Limits::default(),
    )
    .expect_err("channels");
    assert_eq!(
        err,
        StackError::ChannelMismatch {
            file: "0001.png".into(),
            found: 1,
            expected: 3,
            first: "0000.png".into(),
        }
    );
    assert_eq!(
        err.to_string(),
        "0001.png: grayscale slice in an RGB stack (first slice 0000.png)"
    );
}

#[test]
fn png_header_claiming_100000_squared_is_too_large() {
    let png = png_header_only(100_000, 100_000);
    let expected = StackError::TooLarge {
        file: "big.png".into(),
        limit: LimitExceeded::Side {
            width: 100_000,
            height: 100_000,
            max_side: 32768,
        },
    };
    assert_eq!(
        probe("big.png", &png, &Limits::default()),
        Err(expected.clone())
    );
    assert_eq!(
        decode_file("big.png", &png, &Limits::default()),
        Err(expected.clone())
    );
    let mut b = StackBuilder::new(1, Limits::default());
    assert_eq!(b.push("big.png", &png), Err(expected.clone()));
    assert_eq!(
        expected.to_string(),
        "big.png: header claims 100000×100000 pixels; the limit is 32768 per side"
    );
    // The same header with a sane size is accepted by probe (it never touches pixel data).
    let ok = probe("ok.png", &png_header_only(640, 480), &Limits::default()).expect("probe");
    assert_eq!((ok.width, ok.height, ok.dtype), (640, 480, DType::U8));
}

#[test]
fn tiff_header_claiming_100000_squared_is_too_large() {
    let tif = tiff_header_only(100_000, 100_000);
    for result in [
        probe("big.tif", &tif, &Limits::default()).map(|_| ()),
        decode_file("big.tif", &tif, &Limits::default()).map(|_| ()),
        read_stack(vec![("big.tif".into(), tif.clone())], &Limits::default()).map(|_| ()),
    ] {
        let err = result.expect_err("too large");
        assert_eq!(
            err,
            StackError::TooLarge {
                file: "big.tif".into(),
                limit: LimitExceeded::Side {
                    width: 100_000,
                    height: 100_000,
                    max_side: 32768
                },
            }
        );
        assert_names(&err, "big.tif");
    }
    // A sane header of the same shape is probed without reading pixel data.
    let ok = probe("ok.tif", &tiff_header_only(300, 200), &Limits::default()).expect("probe");
    assert_eq!((ok.width, ok.height, ok.pages), (300, 200, 1));
}

#[test]
fn total_bytes_limit_is_checked_on_the_first_file() {
    let limits = Limits {
        max_side: 32768,
        max_total_bytes: 1000,
    };
    let slice = png_of(&AnyVolume::U8(volume(1, 16, 16, 1, |_, _| 5u8))); // 256 bytes
    let files = |n: usize| -> Vec<(String, Vec<u8>)> {
        (0..n)
            .map(|k| (format!("{k:04}.png"), slice.clone()))
            .collect()
    };
    // 3 × 256 fits, 4 × 256 does not: refused when the first file is pushed.
    assert_eq!(read_stack(files(3), &limits).expect("fits").shape().z, 3);
    let err = read_stack(files(4), &limits).expect_err("too large");
    assert!(
        matches!(
            &err,
            StackError::TooLarge {
                file,
                limit: LimitExceeded::TotalBytes { slices: 4, bytes: 1024, max_total_bytes: 1000, .. },
            } if file == "0000.png"
        ),
        "{err:?}"
    );
    assert_names(&err, "0000.png");
    assert!(err.to_string().contains("limit"), "{err}");

    let mut b = StackBuilder::new(4, limits);
    assert!(matches!(
        b.push("0000.png", &slice),
        Err(StackError::TooLarge { .. })
    ));
    assert_eq!(b.slices(), 0);

    // A builder told about fewer files still stops when the data outgrows the limit.
    let mut b = StackBuilder::new(1, limits);
    for k in 0..3 {
        b.push(&format!("{k}.png"), &slice).expect("fits");
    }
    let err = b.push("3.png", &slice).expect_err("grows past the limit");
    assert!(matches!(err, StackError::TooLarge { .. }));
    assert_names(&err, "3.png");

    // A single multi-page TIFF over the limit fails in decode_file and probe.
    let vol = AnyVolume::U8(volume(5, 16, 16, 1, |_, _| 1u8));
    let tif = export(
        &vol,
        &options(ExportFormat::MultiPageTiff, BitDepth::Native, false),
    )
    .expect("export")
    .remove(0)
    .1;
    for err in [
        decode_file("s.tif", &tif, &limits).map(|_| ()),
        probe("s.tif", &tif, &limits).map(|_| ()),
    ] {
        assert!(
            matches!(&err, Err(StackError::TooLarge { file, limit: LimitExceeded::TotalBytes { slices: 5, .. } }) if file == "s.tif"),
            "{err:?}"
        );
    }
}

#[test]
fn small_side_limit() {
    let limits = Limits {
        max_side: 10,
        max_total_bytes: 1 << 20,
    };
    let slice = png_of(&AnyVolume::U8(volume(1, 4, 11, 1, |_, _| 5u8)));
    assert!(matches!(
        decode_file("w.png", &slice, &limits),
        Err(StackError::TooLarge {
            limit: LimitExceeded::Side {
                width: 11,
                height: 4,
                max_side: 10
            },
            ..
        })
    ));
}

fn tiff_with<C: tiff::encoder::colortype::ColorType>(w: u32, h: u32, data: &[C::Inner]) -> Vec<u8>
where
    [C::Inner]: tiff::encoder::TiffValue,
{
    let mut cursor = std::io::Cursor::new(Vec::new());
    {
        let mut enc = tiff::encoder::TiffEncoder::new(&mut cursor).expect("enc");
        enc.write_image::<C>(w, h, data).expect("write");
    }
    cursor.into_inner()
}

#[test]
fn unsupported_tiff_types_are_named() {
    use tiff::encoder::colortype::{Gray64Float, GrayI16, CMYK8};
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (tiff_with::<GrayI16>(2, 2, &[1, -1, 2, -2]), "signed 16-bit"),
        (tiff_with::<CMYK8>(1, 1, &[1, 2, 3, 4]), "CMYK"),
        (tiff_with::<Gray64Float>(1, 1, &[0.5]), "64-bit float"),
    ];
    for (bytes, what) in cases {
        let err = decode_file("odd.tif", &bytes, &Limits::default()).expect_err(what);
        assert!(
            matches!(&err, StackError::Unsupported { file, format: FileFormat::Tiff, .. } if file == "odd.tif"),
            "{err:?}"
        );
        assert!(
            err.to_string().contains(what),
            "{err} should mention {what}"
        );
        assert_names(&err, "odd.tif");
    }
}

#[test]
fn rgba_tiff_drops_alpha() {
    use tiff::encoder::colortype::RGBA8;
    let bytes = tiff_with::<RGBA8>(2, 1, &[1, 2, 3, 255, 4, 5, 6, 0]);
    let s = decode_file("rgba.tif", &bytes, &Limits::default()).expect("decode");
    assert_eq!(s[0].channels, 3);
    assert_eq!(s[0].pixels, PixelData::U8(vec![1, 2, 3, 4, 5, 6]));
}

#[test]
fn png_color_types_are_expanded() {
    use png::{BitDepth as D, ColorType as C};
    let limits = Limits::default();

    // Gray palette → 1 channel.
    let gray_pal = [0, 0, 0, 128, 128, 128, 255, 255, 255];
    let p = raw_png(
        3,
        1,
        C::Indexed,
        D::Eight,
        &[2, 0, 1],
        Some(&gray_pal),
        None,
    );
    let s = decode_file("p.png", &p, &limits).expect("gray palette");
    assert_eq!(
        (s[0].channels, &s[0].pixels),
        (1, &PixelData::U8(vec![255, 0, 128]))
    );
    assert_eq!(probe("p.png", &p, &limits).expect("probe").channels, 1);

    // Colour palette (with tRNS) → RGB.
    let pal = [255, 0, 0, 0, 255, 0];
    let p = raw_png(
        2,
        1,
        C::Indexed,
        D::Eight,
        &[1, 0],
        Some(&pal),
        Some(&[0, 128]),
    );
    let s = decode_file("c.png", &p, &limits).expect("palette");
    assert_eq!(
        (s[0].channels, &s[0].pixels),
        (3, &PixelData::U8(vec![0, 255, 0, 255, 0, 0]))
    );

    // 1-bit gray → 8-bit 0/255.
    let p = raw_png(4, 1, C::Grayscale, D::One, &[0b1010_0000], None, None);
    let s = decode_file("b.png", &p, &limits).expect("1-bit");
    assert_eq!(s[0].pixels, PixelData::U8(vec![255, 0, 255, 0]));

    // Gray + alpha → gray.
    let p = raw_png(
        2,
        1,
        C::GrayscaleAlpha,
        D::Eight,
        &[7, 255, 9, 0],
        None,
        None,
    );
    let s = decode_file("ga.png", &p, &limits).expect("gray alpha");
    assert_eq!(
        (s[0].channels, &s[0].pixels),
        (1, &PixelData::U8(vec![7, 9]))
    );

    // RGBA 16 → RGB 16.
    let p = raw_png(
        1,
        1,
        C::Rgba,
        D::Sixteen,
        &[0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0xff, 0xff],
        None,
        None,
    );
    let s = decode_file("rgba.png", &p, &limits).expect("rgba16");
    assert_eq!(
        (s[0].channels, &s[0].pixels),
        (3, &PixelData::U16(vec![0x0102, 0x0304, 0x0506]))
    );

    // 16-bit gray with tRNS stays 16-bit gray.
    let p = raw_png(
        2,
        1,
        C::Grayscale,
        D::Sixteen,
        &[0x12, 0x34, 0, 5],
        None,
        Some(&[0, 5]),
    );
    let s = decode_file("t.png", &p, &limits).expect("gray16 trns");
    assert_eq!(
        (s[0].channels, &s[0].pixels),
        (1, &PixelData::U16(vec![0x1234, 5]))
    );
}
