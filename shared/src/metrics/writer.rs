//! Where EMF lines go: stdout on Lambda, a buffer in tests.

use std::io::Write;
use std::sync::Mutex;

/// Takes one EMF document (a JSON line without its newline).
pub trait MetricsWriter: Send + Sync {
    fn write_line(&self, line: &str);
}

/// Standard output, one line per document (Lambda sends it to CloudWatch Logs).
#[derive(Debug, Default, Clone, Copy)]
pub struct StdoutWriter;

impl MetricsWriter for StdoutWriter {
    fn write_line(&self, line: &str) {
        let mut out = std::io::stdout().lock();
        // A metric that cannot be written is dropped: metrics never fail a request.
        let _ = writeln!(out, "{line}");
    }
}

/// Keeps every line, for tests (and local tools) to read back.
#[derive(Debug, Default)]
pub struct CaptureWriter {
    lines: Mutex<Vec<String>>,
}

impl CaptureWriter {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Every line parsed as JSON (a line that is not JSON is skipped; tests compare counts).
    pub fn documents(&self) -> Vec<serde_json::Value> {
        self.lines()
            .iter()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    pub fn clear(&self) {
        if let Ok(mut lines) = self.lines.lock() {
            lines.clear();
        }
    }
}

impl MetricsWriter for CaptureWriter {
    fn write_line(&self, line: &str) {
        if let Ok(mut lines) = self.lines.lock() {
            lines.push(line.to_owned());
        }
    }
}
