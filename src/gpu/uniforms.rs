//! The host's mirrors of the shaders' uniform and storage structs (`#[repr(C)]`,
//! written to the device as bytes). The test at the end compares each with its WGSL
//! twin (size and field offsets, from naga's layout of the parsed shader).

use bytemuck::{Pod, Zeroable};

/// The label of a background pixel (shaders/common.wgsl's `NONE`).
pub(crate) const NONE: u32 = u32::MAX;

/// Defines a `#[repr(C)]` mirror of a WGSL struct and, for the tests, its layout:
/// size and each field's name, offset and type, so that the test below compares every
/// field with the shader's without a second list of them.
macro_rules! mirror {
    ($(#[$m:meta])* pub(crate) struct $name:ident {
        $($(#[$fm:meta])* pub(crate) $f:ident: $t:ty,)+
    }) => {
        $(#[$m])*
        #[repr(C)]
        #[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
        pub(crate) struct $name {
            $($(#[$fm])* pub(crate) $f: $t,)+
        }
        #[cfg(test)]
        impl $name {
            fn layout() -> Layout {
                Layout {
                    size: std::mem::size_of::<Self>(),
                    fields: vec![$((stringify!($f).to_string(), std::mem::offset_of!($name, $f), stringify!($t))),+],
                }
            }
        }
    };
}

/// A struct's size and its fields' (name, offset, scalar type), in the host's or the
/// shader's layout.
#[cfg(test)]
#[derive(Debug, PartialEq)]
struct Layout {
    size: usize,
    fields: Vec<(String, usize, &'static str)>,
}

mirror! {
    /// Uniform parameters shared by the three shaders (mirrors `struct Params` there).
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
        /// First group of a compaction window (gather runs in windows of output that
        /// each fit one binding).
        pub(crate) g_start: u32,
        pub(crate) pad1: u32,
    }
}

mirror! {
    /// Uniform parameters of shaders/meshstats.wgsl (mirrors `MeshParams` there).
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
}

mirror! {
    /// A mesh's histogram binning for shaders/meshstats.wgsl (`Quant` there); nlevels 0
    /// marks a bad mesh.
    pub(crate) struct QuantGpu {
        pub(crate) qscale: f32,
        pub(crate) cste: f32,
        pub(crate) qzero: f32,
        pub(crate) nlevels: u32,
    }
}

#[cfg(test)]
mod tests {
    use super::{Layout, MeshParams, Params, QuantGpu};
    use crate::gpu::{shader_source, SHADERS};

    /// The layout naga gives struct `name` of stage `stage` (with common.wgsl).
    fn wgsl_layout(stage: &str, name: &str) -> Layout {
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
                    naga::TypeInner::Scalar(naga::Scalar { kind, width: 4 }) => match kind {
                        naga::ScalarKind::Uint => "u32",
                        naga::ScalarKind::Float => "f32",
                        naga::ScalarKind::Sint => "i32",
                        other => panic!("{stage}: {name}: a member of kind {other:?}"),
                    },
                    ref other => panic!("{stage}: {name}: a member of type {other:?}"),
                };
                (m.name.clone().unwrap_or_default(), m.offset as usize, kind)
            })
            .collect();
        Layout {
            size: *span as usize,
            fields,
        }
    }

    #[test]
    fn every_repr_c_struct_matches_its_wgsl_twin() {
        // Params is shared by every detection stage (common.wgsl).
        let cases = [
            ("subtract.wgsl", "Params", Params::layout()),
            ("filter_threshold.wgsl", "Params", Params::layout()),
            ("label.wgsl", "Params", Params::layout()),
            ("compact.wgsl", "Params", Params::layout()),
            ("meshstats.wgsl", "MeshParams", MeshParams::layout()),
            ("meshstats.wgsl", "Quant", QuantGpu::layout()),
        ];
        for (stage, name, rust) in cases {
            let wgsl = wgsl_layout(stage, name);
            assert_eq!(
                rust, wgsl,
                "{name} in {stage}: size and fields (name, offset, type)"
            );
        }
    }
}
