//! Every CUDA kernel file compiles with NVRTC for the oldest and newest architectures Plumb
//! targets — on any machine that has libnvrtc, GPU or not (CI installs NVRTC for this test).

use plumb_cuda::ctx::{module_source, Module};

/// Load the NVRTC that `scripts/setup.sh` installs (or `PLUMB_NVRTC_LIB`) by its path, so the
/// CUDA loader's lookup by name finds it already loaded.
fn preload_nvrtc() {
    let path = std::env::var("PLUMB_NVRTC_LIB").unwrap_or_else(|_| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../target/nvrtc/nvidia/cu13/lib/libnvrtc.so.13"
        )
        .to_string()
    });
    if std::path::Path::new(&path).exists() {
        // SAFETY: loading NVRTC runs its initialisers only; the handle stays loaded for the test
        match unsafe { libloading::Library::new(&path) } {
            Ok(lib) => std::mem::forget(lib),
            Err(e) => println!("note: could not load {path}: {e}"),
        }
    }
}

#[test]
fn every_kernel_file_compiles_with_nvrtc() {
    preload_nvrtc();
    // SAFETY: only tries to dlopen the library
    if !unsafe { cudarc::nvrtc::sys::is_culib_present() } {
        println!(
            "skipped: NVRTC (libnvrtc.so) not found on this machine; put the CUDA toolkit's \
             lib64 on LD_LIBRARY_PATH, or run scripts/setup.sh, to run this test"
        );
        return;
    }
    for arch in ["compute_75", "compute_90"] {
        for m in Module::ALL {
            let opts = cudarc::nvrtc::CompileOptions {
                arch: Some(arch),
                options: vec!["-std=c++17".into()],
                ..Default::default()
            };
            let ptx = cudarc::nvrtc::compile_ptx_with_opts(module_source(m), opts);
            assert!(ptx.is_ok(), "{m:?} for {arch}: {:?}", ptx.err());
            println!("{m:?} compiles for {arch}");
        }
    }
}
