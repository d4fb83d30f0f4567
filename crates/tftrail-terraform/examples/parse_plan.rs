//! Times the summary of a plan: `cargo run --release -p tftrail-terraform --example parse_plan
//! -- PLAN.json [N]` parses, redacts, scrubs and serialises the summary of a `terraform show
//! -json` document N times (default 200) and prints the mean time per plan. Used for the
//! figure in BENCHMARKS.md (the part of `tftrail run -- terraform plan` spent after `show`).

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next() else {
        eprintln!("usage: parse_plan PLAN.json [N]");
        std::process::exit(2);
    };
    let n: u32 = args.next().and_then(|s| s.parse().ok()).unwrap_or(200);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| {
        eprintln!("error: cannot read {path}: {e}");
        std::process::exit(2);
    });
    let t = std::time::Instant::now();
    let mut len = 0;
    for _ in 0..n {
        let mut p = match tftrail_terraform::PlanSummary::from_show_json(&bytes) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("error: {path}: {e}");
                std::process::exit(1);
            }
        };
        let scrubber = tftrail_terraform::Scrubber::new(p.secrets());
        p.scrub_with(&scrubber);
        len += serde_json::to_vec(&p).map_or(0, |v| v.len()) + p.redacted_json().len();
    }
    println!(
        "{:.2} ms per plan ({} bytes of JSON, {len} bytes of summaries and redacted plans)",
        t.elapsed().as_secs_f64() * 1e3 / f64::from(n),
        bytes.len()
    );
}
