//! Hostile bytes: decoding must return an error (or a result), never panic.

mod stack_support;

use emstudio_core::stack::{
    decode_file, export, probe, read_stack, BitDepth, ExportFormat, Limits, StackBuilder,
};
use emstudio_core::AnyVolume;
use proptest::prelude::*;
use stack_support::*;

/// Small limits so that a mutated header cannot make the test allocate much.
const LIMITS: Limits = Limits {
    max_side: 4096,
    max_total_bytes: 1 << 20,
};

fn feed(bytes: &[u8]) {
    let _ = probe("f.png", bytes, &LIMITS);
    if let Ok(slices) = decode_file("f.png", bytes, &LIMITS) {
        for s in slices {
            assert_eq!(s.pixels.len(), s.width * s.height * s.channels);
        }
    }
    let mut b = StackBuilder::new(2, LIMITS);
    let _ = b.push("f.tif", bytes);
    let _ = b.push("g.tif", bytes);
    let _ = b.finish();
}

/// Valid files of several kinds to mutate.
fn seeds() -> Vec<Vec<u8>> {
    let n = noise(11, 3 * 9 * 10 * 3);
    let vols = [
        AnyVolume::U8(volume(1, 9, 10, 1, |_, i| n[i] as u8)),
        AnyVolume::U16(volume(2, 9, 10, 3, |z, i| n[z * 270 + i] as u16)),
        AnyVolume::U32(volume(3, 9, 10, 1, |z, i| n[z * 90 + i] as u32)),
        AnyVolume::F32(volume(2, 9, 10, 1, |z, i| n[z * 90 + i] as f32)),
    ];
    let mut out = Vec::new();
    for v in &vols {
        for format in [ExportFormat::PngSeries, ExportFormat::MultiPageTiff] {
            if let Ok(files) = export(v, &options(format, BitDepth::Native, false)) {
                out.push(files.into_iter().next().map(|f| f.1).unwrap_or_default());
            }
        }
    }
    // A BigTIFF too.
    let mut cursor = std::io::Cursor::new(Vec::new());
    {
        let mut enc = tiff::encoder::TiffEncoder::new_big(&mut cursor).expect("big");
        enc.write_image::<tiff::encoder::colortype::Gray16>(5, 4, &[7; 20])
            .expect("page");
    }
    out.push(cursor.into_inner());
    out
}

/// Cases per property: 512, or `STACK_FUZZ_CASES` for a longer run.
fn cases() -> u32 {
    std::env::var("STACK_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(512)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        feed(&bytes);
    }

    #[test]
    fn arbitrary_bytes_behind_a_valid_magic_never_panic(
        magic in 0usize..5,
        rest in proptest::collection::vec(any::<u8>(), 0..600),
    ) {
        let prefix: &[u8] = [
            &b"II*\0"[..],
            &b"MM\0*"[..],
            &b"II+\0\x08\0\0\0"[..],
            &b"MM\0+\0\x08\0\0"[..],
            &[0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a][..],
        ][magic];
        let mut bytes = prefix.to_vec();
        bytes.extend_from_slice(&rest);
        feed(&bytes);
    }

    #[test]
    fn truncated_valid_files_never_panic(which in any::<prop::sample::Index>(), cut in any::<prop::sample::Index>()) {
        let seeds = seeds();
        let file = which.get(&seeds);
        let at = cut.index(file.len());
        let result = decode_file("cut.tif", &file[..at], &LIMITS);
        // Cutting off at least one byte of pixel data must be noticed.
        if at < file.len() / 2 {
            prop_assert!(result.is_err());
        }
        feed(&file[..at]);
    }

    #[test]
    fn mutated_valid_files_never_panic(
        which in any::<prop::sample::Index>(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let seeds = seeds();
        let mut file = which.get(&seeds).clone();
        for (at, value) in edits {
            let i = at.index(file.len());
            file[i] = value;
        }
        feed(&file);
    }

    #[test]
    fn mutated_headers_never_panic(
        which in any::<prop::sample::Index>(),
        edits in proptest::collection::vec((0usize..300, any::<u8>()), 1..6),
    ) {
        // Concentrate edits on the header / first IFD, where the structure lives.
        let seeds = seeds();
        let mut file = which.get(&seeds).clone();
        for (at, value) in edits {
            let i = at % file.len();
            file[i] = value;
        }
        feed(&file);
        let _ = read_stack(vec![("a.png".into(), file.clone()), ("b.png".into(), file)], &LIMITS);
    }

    #[test]
    fn mutated_tiff_directories_never_panic(
        which in any::<prop::sample::Index>(),
        edits in proptest::collection::vec((0usize..250, any::<u8>()), 1..6),
    ) {
        // The tiff encoder writes pixel data first and the IFD after it: aim at the first IFD.
        let seeds: Vec<Vec<u8>> = seeds().into_iter().filter(|f| f.starts_with(b"II")).collect();
        let mut file = which.get(&seeds).clone();
        let ifd = if file.get(2) == Some(&43) {
            u64::from_le_bytes(file[8..16].try_into().expect("8 bytes")) as usize
        } else {
            u32::from_le_bytes(file[4..8].try_into().expect("4 bytes")) as usize
        };
        for (at, value) in edits {
            let i = (ifd + at) % file.len();
            file[i] = value;
        }
        feed(&file);
    }
}
