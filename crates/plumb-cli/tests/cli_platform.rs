//! The platform commands through the real binary: `doctor --json` against the documented schema,
//! errors printed cleanly with a non-zero exit, and `bench` RESULT lines in the peers' format.

#[path = "../../plumb/tests/common/schema.rs"]
mod schema;

use std::process::Command;

fn plumb(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_plumb"))
        .args(args)
        .env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .env("PLUMB_BENCH_SAMPLES", "1")
        .env("PLUMB_BENCH_MIN_SAMPLE_S", "0.01")
        .output()
        .unwrap()
}

#[test]
fn doctor_json_follows_the_schema() {
    let out = plumb(&["doctor", "--quick", "--json", "--device", "cpu"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let schema: serde_json::Value =
        serde_json::from_str(include_str!("../../../docs/doctor.schema.json")).unwrap();
    let errs = schema::validate(&schema, &doc);
    assert!(errs.is_empty(), "{}", errs.join("\n"));
    assert_eq!(doc["devices"][0]["id"], "cpu");
    assert!(doc["recommendation"]["dtype"].is_string(), "{doc}");
}

#[test]
fn doctor_text_ends_with_a_recommendation_and_no_colour_off_a_terminal() {
    let out = plumb(&["doctor", "--quick", "--device", "cpu"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("recommended: cpu, "), "{text}");
    assert!(!text.contains('\x1b'), "colour codes in a pipe");
    assert!(out.stderr.is_empty() || !String::from_utf8_lossy(&out.stderr).contains('\x1b'));
}

#[test]
fn errors_print_cleanly_with_a_non_zero_exit() {
    let out = plumb(&["doctor", "--device", "gpu:42"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("error: unknown device 'gpu:42'") && err.contains("cpu"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    let out = plumb(&["--policy", "fast", "doctor"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown policy preset 'fast'"));
    let out = plumb(&["bench", "--device", "cpu", "--op", "fft"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown op 'fft'"));
    // sampling and batching settings out of range are refused before any model is opened
    for (args, want) in [
        (
            &["generate", "m", "--prompt", "hi", "--top-p", "2"][..],
            "not a probability",
        ),
        (
            &["generate", "m", "--prompt", "hi", "--temperature=-1"][..],
            "not a temperature",
        ),
        (&["embed", "m", "hi", "--batch-size", "0"][..], "at least 1"),
    ] {
        let out = plumb(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{args:?}: {err}");
    }
    // meta computes nothing: no rates are made up for it
    let out = plumb(&["bench", "--device", "meta", "--op", "add"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("meta holds shapes and dtypes only"), "{err}");
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn bench_prints_result_lines_like_the_peers() {
    let out = plumb(&["bench", "--device", "cpu", "--op", "add,softmax", "--quick"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("RESULT ")).collect();
    assert_eq!(lines.len(), 2, "{text}");
    for l in lines {
        assert!(l.starts_with("RESULT framework=plumb op="), "{l}");
        for key in [
            "dtype=f32",
            "shape=1024x4096",
            "median_ms=",
            "value=",
            "unit=GB/s",
            "device=cpu",
        ] {
            assert!(l.contains(key), "{l} lacks {key}");
        }
    }
}
