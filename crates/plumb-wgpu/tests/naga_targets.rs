//! Every kernel variant, translated by naga to MSL (Metal) and HLSL (DX12) and validated with
//! the capabilities each target really has: a kernel that would not compile for Metal or DX12
//! fails here, on Linux.
use naga::valid::{Capabilities, ValidationFlags, Validator};
use plumb_wgpu::catalogue::{catalogue, Features};

fn validate(
    src: &str,
    name: &str,
    caps: Capabilities,
) -> Result<(naga::Module, naga::valid::ModuleInfo), String> {
    let module = naga::front::wgsl::parse_str(src)
        .map_err(|e| format!("{name}: parse: {}", e.emit_to_string(src)))?;
    let info = Validator::new(ValidationFlags::all(), caps)
        .validate(&module)
        .map_err(|e| format!("{name}: validate: {}", e.emit_to_string(src)))?;
    Ok((module, info))
}

#[test]
fn every_kernel_translates_to_msl_and_hlsl() {
    // Metal: f16 and i64 (MSL 2.3+), subgroups; never f64
    let metal = Capabilities::all() - Capabilities::FLOAT64;
    let all = catalogue(Features {
        f16: true,
        i64: true,
        f64: true,
    });
    assert!(all.len() > 300, "catalogue has {} variants", all.len());
    let mut failures = Vec::new();
    let (mut msl, mut hlsl, mut skipped) = (0, 0, 0);
    for spec in &all {
        let src = spec.source();
        // MSL
        if spec.uses_f64() {
            skipped += 1; // f64 kernels are only built where SHADER_F64 exists, never on Metal
            assert!(
                validate(&src, &spec.name, metal).is_err(),
                "{}: f64 kernel validated without FLOAT64",
                spec.name
            );
        } else {
            match validate(&src, &spec.name, metal) {
                Ok((m, info)) => {
                    let opts = naga::back::msl::Options {
                        lang_version: (2, 4),
                        ..Default::default()
                    };
                    let popts = naga::back::msl::PipelineOptions::default();
                    match naga::back::msl::write_string(&m, &info, &opts, &popts) {
                        Ok(_) => msl += 1,
                        Err(e) => failures.push(format!("{}: msl: {e}", spec.name)),
                    }
                }
                Err(e) => failures.push(e),
            }
        }
        // HLSL shader model 6.2 (f16, i64 and f64 available on DX12)
        match validate(&src, &spec.name, Capabilities::all()) {
            Ok((m, info)) => {
                let opts = naga::back::hlsl::Options {
                    shader_model: naga::back::hlsl::ShaderModel::V6_2,
                    ..Default::default()
                };
                let popts = naga::back::hlsl::PipelineOptions::default();
                let mut out = String::new();
                match naga::back::hlsl::Writer::new(&mut out, &opts, &popts).write(&m, &info, None)
                {
                    Ok(_) => hlsl += 1,
                    Err(e) => failures.push(format!("{}: hlsl: {e}", spec.name)),
                }
            }
            Err(e) => failures.push(e),
        }
    }
    println!("{} variants: {msl} to MSL 2.4, {hlsl} to HLSL 6.2, {skipped} f64 variants not built for Metal", all.len());
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn kernels_without_f16_need_no_f16_capability() {
    // what the GL adapter and other devices without SHADER_F16 compile
    let caps = Capabilities::all()
        - Capabilities::SHADER_FLOAT16
        - Capabilities::SHADER_INT64
        - Capabilities::FLOAT64;
    let all = catalogue(plumb_wgpu::catalogue::Features {
        f16: false,
        i64: false,
        f64: false,
    });
    let mut failures = Vec::new();
    for spec in &all {
        if let Err(e) = validate(&spec.source(), &spec.name, caps) {
            failures.push(e);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_cooperative_matrix_matmul_translates_to_spirv() {
    use plumb_wgpu::kernels::{Family, KernelSpec};
    // only built for Vulkan adapters that offer cooperative matrices, so checked for SPIR-V
    for op in [
        "matmul_coop32",
        "matmul_coop32_nt",
        "matmul_coop64",
        "matmul_coop64_nt",
    ] {
        let spec = KernelSpec::new(Family::MatmulCoop, op, "f16", "f16", "f32", true);
        let src = spec.source();
        let (m, info) = validate(&src, &spec.name, Capabilities::all()).unwrap();
        // the bounds-check policies wgpu's Vulkan backend may pick
        use naga::proc::BoundsCheckPolicy as P;
        for policy in [P::Unchecked, P::Restrict, P::ReadZeroSkipWrite] {
            let opts = naga::back::spv::Options {
                lang_version: (1, 6),
                bounds_check_policies: naga::proc::BoundsCheckPolicies {
                    index: P::Restrict,
                    buffer: policy,
                    image_load: P::Restrict,
                    binding_array: P::Unchecked,
                },
                ..Default::default()
            };
            let words = naga::back::spv::write_vec(&m, &info, &opts, None)
                .unwrap_or_else(|e| panic!("{}: spv ({policy:?}): {e}", spec.name));
            assert!(words.len() > 100, "{}", spec.name);
        }
    }
}
