//! A stand-in for `flyctl` in tests: records each call and replays canned answers.
//!
//! `FAKE_FLYCTL_DIR` names its directory. Each call appends one JSON line to `calls.jsonl`:
//! `{"argv": [...], "stdin": "...", "cwd": "...", "env": {"FLY_API_TOKEN": true}}`. The answer
//! comes from `responses/<key>.<n>.json` for the n-th call of that key (1-based), else
//! `responses/<key>.json`: `{"stdout": "...", "stderr": "...", "exit": 0}`, plus an optional
//! `"sleep_ms"` to wait before answering (a flyctl that hangs). The key is the
//! leading words of argv before the first flag, joined with `-` (`secrets-import`,
//! `releases`, `auth-whoami`, `deploy`). A missing answer exits 99, so a test notices a call
//! it did not expect.

use std::io::{Read, Write};
use std::path::PathBuf;

fn main() {
    let Some(dir) = std::env::var_os("FAKE_FLYCTL_DIR").map(PathBuf::from) else {
        eprintln!("fake-flyctl: FAKE_FLYCTL_DIR is not set");
        std::process::exit(98);
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut stdin = String::new();
    // Without a payload the caller gives /dev/null, which reads as empty.
    let _ = std::io::stdin().read_to_string(&mut stdin);
    let key = argv
        .iter()
        .take_while(|a| !a.starts_with('-'))
        .take(2)
        .cloned()
        .collect::<Vec<_>>()
        .join("-");

    let calls_path = dir.join("calls.jsonl");
    let previous = std::fs::read_to_string(&calls_path).unwrap_or_default();
    let n = 1 + previous
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|c| c["key"] == key.as_str())
        .count();
    let call = serde_json::json!({
        "key": key,
        "argv": argv,
        "stdin": stdin,
        "cwd": std::env::current_dir().map(|d| d.display().to_string()).unwrap_or_default(),
        "env": { "FLY_API_TOKEN": std::env::var_os("FLY_API_TOKEN").is_some() },
    });
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&calls_path)
        .expect("fake-flyctl: opening calls.jsonl");
    writeln!(file, "{call}").expect("fake-flyctl: writing calls.jsonl");

    let responses = dir.join("responses");
    let numbered = responses.join(format!("{key}.{n}.json"));
    let path = if numbered.exists() {
        numbered
    } else {
        responses.join(format!("{key}.json"))
    };
    let Ok(text) = std::fs::read_to_string(&path) else {
        eprintln!(
            "fake-flyctl: no canned response for `{key}` (call {n}) at {}",
            path.display()
        );
        std::process::exit(99);
    };
    let response: serde_json::Value =
        serde_json::from_str(&text).expect("fake-flyctl: response is JSON");
    if let Some(ms) = response["sleep_ms"].as_u64() {
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
    print!("{}", response["stdout"].as_str().unwrap_or(""));
    eprint!("{}", response["stderr"].as_str().unwrap_or(""));
    std::process::exit(response["exit"].as_i64().unwrap_or(0) as i32);
}
