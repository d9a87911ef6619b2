//! Cleaning: spurious detections in the wings of bright objects are merged into them
//! (../shared/spec/deblend-clean.md §4.6).
//!
//! Each object B is modelled as a Moffat-like profile I(r²) = amp·(1 + α·r²)^(−β)
//! (β = CLEAN_PARAM) that reaches its threshold at its isophotal area:
//! U = π·a·b, amp = fdflux/(2·U·abcor), α = ((amp/thresh)^(1/β) − 1)·U/npix. A fainter
//! object F (smaller filtered flux; on a tie the later one) is cleaned by B if B's
//! profile at F's position, amp·v^(−β) with v = 1 + α·(cxx·dx² + cyy·dy² + cxy·dx·dy),
//! exceeds F's `mthresh` (its minarea-th brightest pixel above threshold). Only pairs
//! closer than 10·(a_B + a_F) are tested.
//!
//! SExtractor semantics: a cleaned object is merged into the object that cleans it
//! (the brightest one, if several do; chains are followed to an object that is not
//! cleaned itself), its pixels join that object's segment and its fluxes and areas
//! are added. SEP instead drops cleaned objects. SEP compares every pair (O(N²));
//! here candidate pairs come from a uniform grid over the objects' zones of radius
//! 10·a, so the cost grows as N log N for ordinary fields.

use crate::measure::Object;
use std::collections::HashMap;

const CLEAN_ZONE: f64 = 10.0;

/// The Moffat model of an object for cleaning: (amp, α).
fn moffat(o: &Object, beta: f64) -> (f64, f64) {
    let u = std::f64::consts::PI * o.a * o.b;
    let amp = o.fdflux / (2.0 * u * o.abcor);
    let alpha = if o.thresh > 0.0 && amp > 0.0 {
        ((amp / o.thresh).powf(1.0 / beta) - 1.0) * u / o.npix as f64
    } else {
        0.0
    };
    (amp, alpha)
}

/// Whether `b` cleans `f` (b is the brighter of the two).
fn cleans(b: &Object, model: (f64, f64), f: &Object, beta: f64) -> bool {
    let (dx, dy) = (f.x - b.x, f.y - b.y);
    let v = 1.0 + model.1 * (b.cxx * dx * dx + b.cyy * dy * dy + b.cxy * dx * dy);
    if v <= 1.0 {
        return false;
    }
    let contribution = if v < 1e10 {
        model.0 * v.powf(-beta)
    } else {
        0.0
    };
    contribution > f.mthresh
}

/// Whether i plays B against j: larger filtered flux, the later object on a tie.
fn brighter(objs: &[Object], i: usize, j: usize) -> bool {
    objs[i].fdflux > objs[j].fdflux || (objs[i].fdflux == objs[j].fdflux && i > j)
}

fn close(a: &Object, b: &Object) -> bool {
    let (dx, dy) = (a.x - b.x, a.y - b.y);
    let r = (a.a + b.a) * CLEAN_ZONE;
    dx * dx + dy * dy <= r * r
}

/// For each object, the object it is merged into (itself if it survives).
///
/// Candidate pairs: objects with a ≤ 4 × the median a ("small") go into a uniform
/// grid of cell 2·CLEAN_ZONE·(4 × median a), so two small objects close enough to be
/// tested are in the same or adjacent cells; the few larger objects are tested
/// against every object. Each pair is considered once.
pub fn clean_targets(objs: &[Object], beta: f64) -> Vec<usize> {
    let n = objs.len();
    let models: Vec<(f64, f64)> = objs.iter().map(|o| moffat(o, beta)).collect();
    let mut aa: Vec<f64> = objs.iter().map(|o| o.a).filter(|a| a.is_finite()).collect();
    aa.sort_by(|a, b| a.total_cmp(b));
    let med = if aa.is_empty() {
        1.0
    } else {
        aa[aa.len() / 2].max(0.1)
    };
    let a_cut = 4.0 * med;
    let cell = 2.0 * CLEAN_ZONE * a_cut;
    let key = |o: &Object| ((o.x / cell).floor() as i64, (o.y / cell).floor() as i64);
    let mut grid: HashMap<(i64, i64), Vec<usize>> = HashMap::new();
    let mut big = Vec::new();
    for (i, o) in objs.iter().enumerate() {
        if o.a <= a_cut {
            grid.entry(key(o)).or_default().push(i);
        } else {
            big.push(i);
        }
    }
    let mut best: Vec<Option<usize>> = vec![None; n];
    let test = |i: usize, j: usize, best: &mut Vec<Option<usize>>| {
        if !close(&objs[i], &objs[j]) {
            return;
        }
        let (b, f) = if brighter(objs, i, j) { (i, j) } else { (j, i) };
        if cleans(&objs[b], models[b], &objs[f], beta) {
            match best[f] {
                Some(cur) if !brighter(objs, b, cur) => {}
                _ => best[f] = Some(b),
            }
        }
    };
    for (&(cx, cy), members) in &grid {
        for dy in -1..=1 {
            for dx in -1..=1 {
                let Some(other) = grid.get(&(cx + dx, cy + dy)) else {
                    continue;
                };
                for &i in members {
                    for &j in other {
                        if i < j {
                            test(i, j, &mut best);
                        }
                    }
                }
            }
        }
    }
    for (k, &i) in big.iter().enumerate() {
        #[allow(clippy::needless_range_loop)]
        for j in 0..n {
            // Big-small pairs once; big-big pairs once (j after i in `big`).
            if j == i || (objs[j].a > a_cut && !big[k + 1..].contains(&j)) {
                continue;
            }
            test(i, j, &mut best);
        }
    }
    resolve(best)
}

/// The same decisions from every pair (the O(N²) statement, for tests).
pub fn clean_targets_brute_force(objs: &[Object], beta: f64) -> Vec<usize> {
    let n = objs.len();
    let models: Vec<(f64, f64)> = objs.iter().map(|o| moffat(o, beta)).collect();
    let mut best: Vec<Option<usize>> = vec![None; n];
    for f in 0..n {
        for b in 0..n {
            if b == f || !brighter(objs, b, f) || !close(&objs[b], &objs[f]) {
                continue;
            }
            if cleans(&objs[b], models[b], &objs[f], beta) {
                match best[f] {
                    Some(cur) if !brighter(objs, b, cur) => {}
                    _ => best[f] = Some(b),
                }
            }
        }
    }
    resolve(best)
}

/// Follows "cleaned by" links to an object that is not cleaned (links always go to a
/// brighter object, so there are no cycles).
fn resolve(best: Vec<Option<usize>>) -> Vec<usize> {
    (0..best.len())
        .map(|mut i| {
            while let Some(b) = best[i] {
                i = b;
            }
            i
        })
        .collect()
}

/// Merges a cleaned object into the one that cleans it, as SExtractor does: areas,
/// fluxes and flux variances add up, peaks and bounding boxes combine, flags are
/// or-ed; position and shape stay the eater's.
pub fn merge_into(eater: &mut Object, victim: &Object, zeropoint: f64) {
    eater.npix += victim.npix;
    eater.isoarea += victim.isoarea;
    eater.flux += victim.flux;
    eater.fdflux += victim.fdflux;
    eater.fluxerr = (eater.fluxerr * eater.fluxerr + victim.fluxerr * victim.fluxerr).sqrt();
    eater.flux_max = eater.flux_max.max(victim.flux_max);
    eater.fdpeak = eater.fdpeak.max(victim.fdpeak);
    eater.xmin = eater.xmin.min(victim.xmin);
    eater.ymin = eater.ymin.min(victim.ymin);
    eater.xmax = eater.xmax.max(victim.xmax);
    eater.ymax = eater.ymax.max(victim.ymax);
    eater.flags |= victim.flags;
    eater.mag = crate::measure::magnitude(eater.flux, zeropoint);
    eater.magerr = if eater.flux > 0.0 {
        1.086 * eater.fluxerr / eater.flux
    } else {
        99.0
    };
    eater.mag_isocor =
        crate::measure::mag_isocor(eater.flux, eater.npix as f64, eater.thresh, zeropoint);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(x: f64, y: f64, a: f64, fdflux: f64, mthresh: f64) -> Object {
        Object {
            x,
            y,
            a,
            b: a,
            cxx: 1.0 / (a * a),
            cyy: 1.0 / (a * a),
            cxy: 0.0,
            fdflux,
            npix: (std::f64::consts::PI * 9.0 * a * a) as u32 + 1,
            thresh: 10.0,
            abcor: 1.0,
            mthresh,
            ..Default::default()
        }
    }

    #[test]
    fn grid_and_brute_force_agree_on_random_fields() {
        let mut s = 7u64;
        let mut rnd = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 11) as f64 / (1u64 << 53) as f64
        };
        for field in 0..20 {
            let n = 50 + field * 20;
            let objs: Vec<Object> = (0..n)
                .map(|_| {
                    let bright = rnd() < 0.1;
                    obj(
                        rnd() * 500.0,
                        rnd() * 500.0,
                        if bright {
                            3.0 + 5.0 * rnd()
                        } else {
                            0.8 + rnd()
                        },
                        if bright {
                            1e5 * (1.0 + rnd())
                        } else {
                            50.0 + 500.0 * rnd()
                        },
                        5.0 + 20.0 * rnd(),
                    )
                })
                .collect();
            let a = clean_targets(&objs, 1.0);
            let b = clean_targets_brute_force(&objs, 1.0);
            assert_eq!(a, b, "field {field}");
            assert!(
                a.iter().enumerate().any(|(i, &t)| t != i),
                "field {field} cleans nothing"
            );
        }
    }

    #[test]
    fn a_bright_star_cleans_its_faint_wing_detections_but_not_distant_ones() {
        let star = obj(100.0, 100.0, 4.0, 2e5, 50.0);
        let wing = obj(112.0, 100.0, 1.0, 80.0, 5.0);
        let far = obj(300.0, 300.0, 1.0, 80.0, 5.0);
        let real = obj(108.0, 100.0, 1.5, 5e4, 5000.0); // bright enough to survive
        let objs = vec![star, wing, far, real];
        let t = clean_targets(&objs, 1.0);
        assert_eq!(t, vec![0, 0, 2, 3]);
    }
}
