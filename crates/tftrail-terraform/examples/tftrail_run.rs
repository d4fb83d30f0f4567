//! Minimal driver: `tftrail_run terraform <args...>` runs the command through
//! [`run_recorded`] and prints each record (kind, payload, blob sizes) to stderr.

use tftrail_terraform::{run_recorded, Invocation, RecordOptions, RecordedPlan, Sink, SinkError};

struct PrintSink(u64);

impl Sink for PrintSink {
    fn append(
        &mut self,
        kind: &str,
        payload: serde_json::Value,
        blobs: Vec<(String, Vec<u8>)>,
    ) -> Result<u64, SinkError> {
        let sizes: Vec<(String, usize)> = blobs.iter().map(|(n, b)| (n.clone(), b.len())).collect();
        eprintln!("[record {}] {kind} {payload} blobs={sizes:?}", self.0);
        self.0 += 1;
        Ok(self.0 - 1)
    }

    fn find_plan(&mut self, _plan_sha256: &str) -> Result<Option<RecordedPlan>, SinkError> {
        Ok(None)
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let program = args.next().unwrap_or_default();
    let rest: Vec<String> = args.collect();
    let code = match Invocation::parse(&program, &rest).and_then(|inv| {
        let cwd = std::env::current_dir().expect("cwd");
        run_recorded(&inv, &RecordOptions::new(cwd), &mut PrintSink(0))
    }) {
        Ok(r) => r.exit_code,
        Err(e) => {
            eprintln!("error: {e}");
            if let Some(h) = e.hint() {
                eprintln!("hint: {h}");
            }
            e.tool_exit_code().unwrap_or(1)
        }
    };
    std::process::exit(code);
}
