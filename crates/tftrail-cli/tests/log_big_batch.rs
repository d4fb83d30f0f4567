//! `append --batch` of input large enough to be parsed on two threads (over 1 MiB): every
//! line becomes one record, in input order, whether it was canonical JSON (taken as it is) or
//! not (parsed and encoded); a bad line in either half is reported by its line number and
//! appends nothing.

mod common;

use common::{assert_fails, Env};

/// Line `n` of the input: canonical, with spaces and unsorted members, or with CRLF; every
/// 97th line blank.
fn line(n: u64) -> String {
    let pad = "p".repeat(200);
    match n % 97 {
        0 => "   ".to_string(),
        _ => match n % 3 {
            0 => format!("{{\"n\":{n},\"pad\":\"{pad}\"}}"),
            1 => format!("{{ \"pad\": \"{pad}\", \"n\": {n}.0 }}"),
            _ => format!("{{\"n\":{n},\"pad\":\"{pad}\"}}\r"),
        },
    }
}

#[test]
fn a_batch_parsed_on_two_threads_keeps_every_line_once_in_order() {
    let env = Env::new();
    env.init();
    let total = 6_000u64;
    let input: String = (0..total).map(|n| line(n) + "\n").collect();
    assert!(input.len() > 1 << 20, "{}", input.len());
    let (first, count, size) = env.append_batch(&input);
    let want: Vec<u64> = (0..total).filter(|n| n % 97 != 0).collect();
    assert_eq!(
        (first, count, size),
        (0, want.len() as u64, want.len() as u64)
    );
    // `log` lists the newest first.
    let mut got: Vec<u64> = env
        .ok(&["log", "--limit", "0", "--json"], None)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            assert_eq!(v["record"]["payload"]["pad"], "p".repeat(200));
            v["record"]["payload"]["n"].as_u64().unwrap()
        })
        .collect();
    got.reverse();
    assert_eq!(got, want);
    env.ok(&["verify"], None);

    // A bad line late in the input (parsed by the second thread) or early (the first) names
    // its line and appends nothing.
    for bad in [5_500u64, 10] {
        let input: String = (0..total)
            .map(|n| if n == bad { "{oops".into() } else { line(n) } + "\n")
            .collect();
        let out = env.tftrail(&["append", "--batch"], Some(input.as_bytes()));
        assert_fails(&out, 2, &[&format!("line {}:", bad + 1), "invalid JSON"]);
    }
    let head = env.ok(&["log", "--limit", "0", "--json"], None);
    assert_eq!(head.lines().count(), want.len());
}
