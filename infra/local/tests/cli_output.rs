//! What `statecast-local` prints: by default the banner and nothing else (no info lines, no
//! debug-printed settings); with `-v --log-format json`, the JSON lines the Lambda runtime
//! prints, the banner still readable between them.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

const BANNER_END: &str = "press Ctrl-C to stop";

/// A running `statecast-local` whose stdout lines arrive on a channel; killed on drop.
struct Local {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Local {
    fn start(args: &[&str]) -> Local {
        let mut child = Command::new(env!("CARGO_BIN_EXE_statecast-local"))
            .args(["--port", "0"])
            .args(args)
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("statecast-local starts");
        let stdout = child.stdout.take().expect("stdout is piped");
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        Local {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Reads lines until one satisfies `done` (60 s at most); returns every line read so far.
    fn read_until(&mut self, what: &str, done: impl Fn(&str) -> bool) -> &[String] {
        loop {
            match self.lines.recv_timeout(Duration::from_secs(60)) {
                Ok(line) => {
                    let finished = done(&line);
                    self.seen.push(line);
                    if finished {
                        return &self.seen;
                    }
                }
                Err(e) => panic!("no {what} ({e}); printed so far: {:#?}", self.seen),
            }
        }
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn by_default_only_the_banner_is_printed() {
    let mut local = Local::start(&[]);
    let lines = local.read_until("banner", |l| l == BANNER_END).to_vec();
    assert!(
        lines[0].starts_with("statecast local stack ready in "),
        "the banner comes first: {lines:#?}"
    );
    for expected in [
        "  Page:",
        "  Inspector:    http://127.0.0.1:",
        "  WebSocket:    ws://127.0.0.1:",
        "  @connections:",
        "  DynamoDB:",
        "  Triggers:     http://127.0.0.1:",
        "  webhook secrets:",
        "  auth: off",
    ] {
        assert!(lines.iter().any(|l| l.starts_with(expected)), "{expected}: {lines:#?}");
    }
    assert_eq!(lines.len(), 10, "banner lines only: {lines:#?}");
    for line in &lines {
        assert!(!line.contains("INFO") && !line.contains("DEBUG"), "{line}");
        assert!(!line.contains("EsmConfig"), "no debug-printed settings: {line}");
    }
}

#[test]
fn verbose_json_prints_the_lambda_runtimes_json_lines() {
    let mut local = Local::start(&["-v", "--log-format", "json"]);
    let lines = local
        .read_until("mapping start line", |l| {
            l.starts_with('{') && l.contains("event source mapping started")
        })
        .to_vec();
    let json: Vec<Value> = lines
        .iter()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(!json.is_empty());
    for line in &json {
        assert!(line["level"].is_string(), "{line}");
        assert!(line["fields"]["message"].is_string(), "{line}");
        assert!(
            line.get("target").is_none(),
            "the runtime's format has no target: {line}"
        );
    }
    let started = json
        .iter()
        .find(|l| l["fields"]["message"] == "event source mapping started")
        .expect("the mapping start line");
    assert_eq!(started["level"], "INFO");
    assert_eq!(started["fields"]["batch_size"], 100);
    // Every other line is the banner.
    let text: Vec<&String> = lines.iter().filter(|l| !l.starts_with('{')).collect();
    assert!(text.len() <= 8, "{text:#?}");
}
