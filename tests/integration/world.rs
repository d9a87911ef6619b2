//! World coordinates: pixel → sky against astropy.wcs (wcslib) on a header per
//! projection and convention (tests/data/wcs, made by make_wcs_refs.py), and the
//! catalog's world columns against SExtractor's.

use crate::common::{data, Table};
use skysift::world::{Header, Wcs};

/// The angular distance in arcsec between two (lon, lat) positions in degrees.
fn arcsec(a: [f64; 2], b: [f64; 2]) -> f64 {
    let (a0, d0, a1, d1) = (
        a[0].to_radians(),
        a[1].to_radians(),
        b[0].to_radians(),
        b[1].to_radians(),
    );
    let h = ((d1 - d0) / 2.0).sin().powi(2) + d0.cos() * d1.cos() * ((a1 - a0) / 2.0).sin().powi(2);
    2.0 * h.sqrt().min(1.0).asin().to_degrees() * 3600.0
}

fn wcs_of(name: &str) -> Wcs {
    let text = std::fs::read_to_string(data(&format!("wcs/{name}.hdr"))).unwrap();
    let cards: Vec<&str> = text.lines().collect();
    Wcs::from_header(&Header::from_cards(&cards), [1024, 960], name == "sip")
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Every projection and convention within 1e-4 arcsec of astropy, in the header's
/// own frame and in equatorial J2000 (galactic axes converted, EQUINOX 1950
/// precessed with the IAU 1976 angles).
#[test]
fn pixel_to_sky_matches_astropy_for_every_projection() {
    let names = [
        "tan",
        "sin",
        "arc",
        "zea",
        "stg",
        "azp",
        "air",
        "zpn",
        "car",
        "cea",
        "cyp",
        "ait",
        "mol",
        "mer",
        "sfl",
        "par",
        "sin_slant",
        "ncp",
        "tan_north",
        "crota",
        "pc",
        "lonpole",
        "decra",
        "galactic_car",
        "galactic_tan",
        "ecliptic_tan",
        "fk5_1950",
        "tpv",
        "sip",
    ];
    let mut report = Vec::new();
    for name in names {
        let w = wcs_of(name);
        assert!(w.celestial(), "{name}: no celestial pair");
        let t = Table::read_csv(&data(&format!("wcs/{name}.csv")));
        assert!(t.len() >= 40, "{name}: {} points", t.len());
        let (lng, lat) = w.lng_lat();
        let (mut worst_native, mut worst_j2000) = (0.0f64, 0.0f64);
        for r in 0..t.len() {
            let p = [t.get(r, "x"), t.get(r, "y")];
            let native = w
                .pix2native(p)
                .unwrap_or_else(|| panic!("{name}: {p:?} unreachable"));
            let want = [t.get(r, "w1"), t.get(r, "w2")];
            let d = arcsec([native[lng], native[lat]], [want[lng], want[lat]]);
            worst_native = worst_native.max(d);
            let (ra, dec) = (t.get(r, "ra"), t.get(r, "dec"));
            if ra.is_finite() {
                let sky = w.sky_of(w.pix2world(p).unwrap());
                worst_j2000 = worst_j2000.max(arcsec(w.j2000_of(sky), [ra, dec]));
            }
        }
        let ok = worst_native <= 1e-4 && worst_j2000 <= 1e-4;
        report.push(format!(
            "{name}: {worst_native:.2e}\" native, {worst_j2000:.2e}\" J2000{}",
            if ok { "" } else { "  <-- over 1e-4\"" }
        ));
    }
    let report = report.join("\n");
    eprintln!("{report}");
    assert!(!report.contains("<--"), "{report}");
}

/// SExtractor ignores SIP: without --sip the SIP header is plain TAN, which is
/// astropy's answer with the distortion left out, and far from the one with it.
#[test]
fn sip_is_left_out_unless_asked() {
    let text = std::fs::read_to_string(data("wcs/sip.hdr")).unwrap();
    let cards: Vec<&str> = text.lines().collect();
    let h = Header::from_cards(&cards);
    let plain = Wcs::from_header(&h, [1024, 960], false).unwrap();
    assert!(
        plain.warnings.iter().any(|w| w.contains("SIP")),
        "{:?}",
        plain.warnings
    );
    let tan = wcs_of("tan");
    let corner = [1.0, 1.0];
    let d = arcsec(
        plain.pix2world(corner).unwrap(),
        tan.pix2world(corner).unwrap(),
    );
    assert!(d < 1e-9, "{d}");
    let with = wcs_of("sip");
    let d = arcsec(
        plain.pix2world(corner).unwrap(),
        with.pix2world(corner).unwrap(),
    );
    assert!(d > 1.0, "SIP moves the corner by {d}\"");
}
