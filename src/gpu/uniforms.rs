//! The host's mirrors of the shaders' uniform and storage structs (`#[repr(C)]`,
//! written to the device as bytes). The test at the end compares each with its WGSL
//! twin (size and field offsets, from naga's layout of the parsed shader).

use bytemuck::{Pod, Zeroable};

/// The label of a background pixel (shaders/common.wgsl's `NONE`).
pub(crate) const NONE: u32 = u32::MAX;

/// Uniform parameters shared by the three shaders (mirrors `struct Params` there).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub(crate) struct Params {
    pub(crate) width: u32,
    pub(crate) rows: u32,
    pub(crate) y0: u32,
    pub(crate) height: u32,
    pub(crate) src_y0: u32,
    pub(crate) src_rows: u32,
    pub(crate) kw: u32,
    pub(crate) kh: u32,
    pub(crate) thresh_mode: u32,
    pub(crate) thresh: f32,
    pub(crate) has_mask: u32,
    pub(crate) connectivity: u32,
    pub(crate) never: u32,
    pub(crate) groups_x: u32,
    pub(crate) n_groups: u32,
    pub(crate) nodes_len: u32,
    pub(crate) satur: f32,
    pub(crate) has_satur: u32,
    /// First group of a compaction window (scatter runs in windows of output that
    /// each fit one binding).
    pub(crate) g_start: u32,
    pub(crate) pad1: u32,
}

/// Uniform parameters of shaders/meshstats.wgsl (mirrors `MeshParams` there).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub(crate) struct MeshParams {
    pub(crate) width: u32,
    pub(crate) rows: u32,
    pub(crate) bw: u32,
    pub(crate) bh: u32,
    pub(crate) nx: u32,
    pub(crate) mesh_rows: u32,
    pub(crate) r0: u32,
    pub(crate) r1: u32,
    pub(crate) clip: u32,
    pub(crate) has_mask: u32,
    pub(crate) never: u32,
    pub(crate) pad: u32,
}

/// A mesh's histogram binning for shaders/meshstats.wgsl (`Quant` there); nlevels 0
/// marks a bad mesh.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub(crate) struct QuantGpu {
    pub(crate) qscale: f32,
    pub(crate) cste: f32,
    pub(crate) qzero: f32,
    pub(crate) nlevels: u32,
}

#[cfg(test)]
mod tests {
    use super::{MeshParams, Params, QuantGpu};
    use crate::gpu::{shader_source, SHADERS};

    /// A Rust struct's layout: its size and each field's (name, offset, scalar type).
    macro_rules! layout {
        ($t:ty, $($f:ident),+ $(,)?) => {{
            fn scalar<T>(_: &T) -> &'static str {
                std::any::type_name::<T>()
            }
            let v = <$t>::default();
            (
                std::mem::size_of::<$t>(),
                vec![$((stringify!($f), std::mem::offset_of!($t, $f), scalar(&v.$f))),+],
            )
        }};
    }

    /// The layout naga gives struct `name` of stage `stage` (with common.wgsl).
    fn wgsl_layout(stage: &str, name: &str) -> (usize, Vec<(String, usize, &'static str)>) {
        let src = SHADERS.iter().find(|s| s.0 == stage).expect("a stage").1;
        let module = naga::front::wgsl::parse_str(&shader_source(src)).expect("WGSL parses");
        let (_, ty) = module
            .types
            .iter()
            .find(|(_, t)| t.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("{stage}: no struct {name}"));
        let naga::TypeInner::Struct { members, span } = &ty.inner else {
            panic!("{stage}: {name} is not a struct");
        };
        let fields = members
            .iter()
            .map(|m| {
                let kind = match module.types[m.ty].inner {
                    naga::TypeInner::Scalar(naga::Scalar {
                        kind: naga::ScalarKind::Uint,
                        width: 4,
                    }) => "u32",
                    naga::TypeInner::Scalar(naga::Scalar {
                        kind: naga::ScalarKind::Float,
                        width: 4,
                    }) => "f32",
                    naga::TypeInner::Scalar(naga::Scalar {
                        kind: naga::ScalarKind::Sint,
                        width: 4,
                    }) => "i32",
                    ref other => panic!("{stage}: {name}: a member of type {other:?}"),
                };
                (m.name.clone().unwrap_or_default(), m.offset as usize, kind)
            })
            .collect();
        (*span as usize, fields)
    }

    fn same(
        what: &str,
        rust: (usize, Vec<(&str, usize, &str)>),
        wgsl: (usize, Vec<(String, usize, &str)>),
    ) {
        assert_eq!(rust.0, wgsl.0, "{what}: size");
        let r: Vec<(String, usize, &str)> =
            rust.1.iter().map(|f| (f.0.to_string(), f.1, f.2)).collect();
        assert_eq!(r, wgsl.1, "{what}: fields (name, offset, type)");
    }

    #[test]
    fn every_repr_c_struct_matches_its_wgsl_twin() {
        let params = || {
            layout!(
                Params,
                width,
                rows,
                y0,
                height,
                src_y0,
                src_rows,
                kw,
                kh,
                thresh_mode,
                thresh,
                has_mask,
                connectivity,
                never,
                groups_x,
                n_groups,
                nodes_len,
                satur,
                has_satur,
                g_start,
                pad1,
            )
        };
        // Params is shared by every detection stage (common.wgsl).
        for stage in [
            "subtract.wgsl",
            "filter_threshold.wgsl",
            "label.wgsl",
            "compact.wgsl",
        ] {
            same(
                &format!("Params in {stage}"),
                params(),
                wgsl_layout(stage, "Params"),
            );
        }
        same(
            "MeshParams",
            layout!(
                MeshParams, width, rows, bw, bh, nx, mesh_rows, r0, r1, clip, has_mask, never, pad,
            ),
            wgsl_layout("meshstats.wgsl", "MeshParams"),
        );
        same(
            "Quant",
            layout!(QuantGpu, qscale, cste, qzero, nlevels),
            wgsl_layout("meshstats.wgsl", "Quant"),
        );
    }
}
