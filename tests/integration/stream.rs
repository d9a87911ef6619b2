//! Streaming: the catalog of a streamed run equals the whole-image run's, for every
//! strip height, with deblending and cleaning on or off.

use crate::common::data_str;
use skysift::stream::{extract_streaming, ImageRows};
use skysift::{io, Extractor, Inputs};

fn same_catalog(image: &str, e: &Extractor, strips: &[usize]) {
    let img = io::read_image(&data_str(image)).unwrap();
    let whole = e.extract(&img, Inputs::default()).unwrap();
    assert!(!whole.catalog.is_empty());
    for &rows in strips {
        let s = extract_streaming(&mut ImageRows(&img), e, rows).unwrap();
        assert_eq!(
            s.catalog.len(),
            whole.catalog.len(),
            "{image}, strips of {rows}"
        );
        assert_eq!(s.catalog, whole.catalog, "{image}, strips of {rows}");
        assert_eq!(s.background.global_rms(), whole.background.global_rms());
    }
}

#[test]
fn streamed_catalogs_equal_whole_image_catalogs() {
    let e = Extractor::default();
    same_catalog("sep_image.fits", &e, &[1, 2, 7, 64, 10_000]);
    same_catalog("emmi_galaxies.fits.gz", &e, &[1, 5, 100]);
    same_catalog("sim_masked_crop.fits", &e, &[3, 33]);
    let mut nodeblend = Extractor::default();
    nodeblend.extract.deblend.mincont = 1.0;
    nodeblend.extract.clean = false;
    same_catalog("sim_crop.fits", &nodeblend, &[1, 16]);
    let mut four = Extractor::default();
    four.extract.connectivity = skysift::Connectivity::Four;
    four.extract.kernel = Some(skysift::Kernel::gaussian(3.0).unwrap());
    same_catalog("sim_crop.fits", &four, &[4, 50]);
}

#[test]
fn streaming_refuses_what_it_does_not_support() {
    let img = io::read_image(&data_str("sep_image.fits")).unwrap();
    let mut e = Extractor::default();
    e.extract.rms_source = skysift::RmsSource::Map;
    let err = extract_streaming(&mut ImageRows(&img), &e, 16).unwrap_err();
    assert!(err.to_string().contains("streaming"), "{err}");
    let err = extract_streaming(&mut ImageRows(&img), &Extractor::default(), 0).unwrap_err();
    assert!(err.to_string().contains("--stream-rows"), "{err}");
}
