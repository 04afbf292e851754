//! The driver: N subscribed clients, M sequential `increment` calls from the first, and for
//! each call the time from sending it until every client got the change; then verification.

use std::time::Duration;

use futures::{stream, SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::client::{self, Event, EventKind, Sink};
use crate::stats::Samples;
use crate::verify::verify;
use crate::LoadError;

/// How one run is shaped.
#[derive(Debug, Clone)]
pub struct DriverOptions {
    pub subscribers: usize,
    pub calls: u64,
    /// Clients connecting (and subscribing) at once.
    pub connect_concurrency: usize,
    /// Longest wait for one client's connect + `subscribed` reply.
    pub connect_timeout: Duration,
    /// Longest wait for one call to reach every client.
    pub call_timeout: Duration,
    /// Listening after the last call, so late duplicates are seen.
    pub settle: Duration,
}

impl Default for DriverOptions {
    fn default() -> Self {
        Self {
            subscribers: 100,
            calls: 200,
            connect_concurrency: 1,
            connect_timeout: Duration::from_secs(10),
            call_timeout: Duration::from_secs(10),
            settle: Duration::from_millis(200),
        }
    }
}

/// What one run measured.
#[derive(Debug)]
pub struct Measurement {
    pub connect: Samples,
    /// Per call: send → the last client got the change.
    pub delivered: Samples,
    /// Per call: send → the caller got the `result` (the write path).
    pub to_result: Samples,
    /// Per call: send → the first client got the change.
    pub to_first: Samples,
    /// Wall time of the call phase.
    pub elapsed: Duration,
    pub errors: ErrorLog,
}

impl Measurement {
    /// Changes delivered per second over the call phase (N × completed calls / time).
    pub fn deliveries_per_sec(&self, subscribers: usize) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs == 0.0 {
            return 0.0;
        }
        (subscribers * self.delivered.len()) as f64 / secs
    }
}

/// Counts every error and keeps the first few messages.
#[derive(Debug, Default)]
pub struct ErrorLog {
    pub count: usize,
    pub first: Vec<String>,
}

impl ErrorLog {
    const KEEP: usize = 20;

    pub fn push(&mut self, message: impl Into<String>) {
        self.count += 1;
        if self.first.len() < Self::KEEP {
            self.first.push(message.into());
        }
    }
}

/// Runs against the server at `url`, on a fresh `counter/<random>` actor.
pub async fn drive(url: &str, options: &DriverOptions) -> Result<Measurement, LoadError> {
    if options.subscribers == 0 {
        return Err(LoadError::NoSubscribers);
    }
    let actor = fresh_actor();
    let clients: Vec<_> = stream::iter(0..options.subscribers)
        .map(|i| client::connect(i, url, &actor, options.connect_timeout))
        .buffered(options.connect_concurrency.max(1))
        .collect()
        .await;
    let clients = clients.into_iter().collect::<Result<Vec<_>, _>>()?;
    let base = clients[0].version;
    if let Some(other) = clients.iter().find(|c| c.version != base) {
        return Err(LoadError::VersionsDisagree {
            first: base,
            other: other.version,
        });
    }
    let connect = Samples::new(clients.iter().map(|c| c.connect_time).collect());
    let (tx, rx) = mpsc::unbounded_channel();
    let mut sinks = Vec::with_capacity(clients.len());
    let mut readers = Vec::with_capacity(clients.len());
    for (i, c) in clients.into_iter().enumerate() {
        sinks.push(c.sink);
        readers.push(client::spawn_reader(i, c.stream, actor.clone(), tx.clone()));
    }
    drop(tx);
    let mut tally = Tally::new(options.subscribers, rx);
    let (timings, elapsed) = tally.calls(&mut sinks[0], &actor, base, options).await;
    tally.settle(options.settle).await;
    close(&mut sinks).await;
    tally.drain(Duration::from_secs(10)).await;
    for reader in readers {
        reader.abort();
    }
    let mut errors = tally.check(base);
    if timings.len() as u64 != options.calls && errors.count == 0 {
        errors.push(format!("only {} of {} calls completed", timings.len(), options.calls));
    }
    let samples = |pick: fn(&CallTiming) -> Option<Duration>| Samples::new(timings.iter().filter_map(pick).collect());
    Ok(Measurement {
        connect,
        delivered: samples(|t| Some(t.last)),
        to_result: samples(|t| t.result),
        to_first: samples(|t| Some(t.first)),
        elapsed,
        errors,
    })
}

/// `counter/load-<random hex>`: no earlier run shares it.
fn fresh_actor() -> String {
    format!("counter/load-{:016x}", statecast::backoff::random_u64())
}

async fn close(sinks: &mut [Sink]) {
    let closes = sinks.iter_mut().map(|sink| sink.close());
    let _ = tokio::time::timeout(Duration::from_secs(10), futures::future::join_all(closes)).await;
}

/// One completed call, each time from sending it.
struct CallTiming {
    /// The caller got the `result` (if before the last delivery).
    result: Option<Duration>,
    /// The first client got the change.
    first: Duration,
    /// The last client got the change.
    last: Duration,
}

/// Everything the readers reported, and the call being waited for.
struct Tally {
    events: mpsc::UnboundedReceiver<Event>,
    /// Change versions per client, in arrival order.
    logs: Vec<Vec<u64>>,
    /// `(id, version)` of every `result`.
    results: Vec<(u64, u64)>,
    errors: ErrorLog,
    closing: bool,
    failed: bool,
    issued: u64,
    waiting_for: u64,
    got: Vec<bool>,
    remaining: usize,
    result_at: Option<Instant>,
    first_at: Option<Instant>,
    last_at: Option<Instant>,
}

impl Tally {
    fn new(subscribers: usize, events: mpsc::UnboundedReceiver<Event>) -> Self {
        Self {
            events,
            logs: vec![Vec::new(); subscribers],
            results: Vec::new(),
            errors: ErrorLog::default(),
            closing: false,
            failed: false,
            issued: 0,
            waiting_for: 0,
            got: vec![false; subscribers],
            remaining: 0,
            result_at: None,
            first_at: None,
            last_at: None,
        }
    }

    fn record(&mut self, event: Event) {
        let client = event.client;
        match event.kind {
            EventKind::Change(version) => {
                self.logs[client].push(version);
                if version == self.waiting_for && !std::mem::replace(&mut self.got[client], true) {
                    self.remaining -= 1;
                    self.first_at = Some(self.first_at.map_or(event.at, |first| first.min(event.at)));
                    self.last_at = self.last_at.max(Some(event.at));
                }
            }
            EventKind::Result { id, version } => {
                if id == self.issued {
                    self.result_at = Some(event.at);
                }
                self.results.push((id, version));
            }
            EventKind::Unexpected(text) => {
                self.errors
                    .push(format!("client {client} got an unexpected frame: {text}"));
                self.failed = true;
            }
            EventKind::Closed(_) if self.closing => {}
            EventKind::Closed(reason) => {
                self.errors.push(format!("client {client}: {reason} during the run"));
                self.failed = true;
            }
        }
    }

    /// Makes the calls one after another; returns the completed calls' timings and the phase's time.
    async fn calls(
        &mut self,
        caller: &mut Sink,
        actor: &str,
        base: u64,
        options: &DriverOptions,
    ) -> (Vec<CallTiming>, Duration) {
        let started = Instant::now();
        let mut timings = Vec::with_capacity(options.calls as usize);
        for id in 1..=options.calls {
            match self.call(caller, actor, id, base + id, options.call_timeout).await {
                Some(timing) => timings.push(timing),
                None => break,
            }
        }
        (timings, started.elapsed())
    }

    /// One call until every client holds `version`; `None` if the run failed meanwhile.
    async fn call(
        &mut self,
        caller: &mut Sink,
        actor: &str,
        id: u64,
        version: u64,
        timeout: Duration,
    ) -> Option<CallTiming> {
        self.waiting_for = version;
        self.got.fill(false);
        self.remaining = self.got.len();
        self.result_at = None;
        self.first_at = None;
        self.last_at = None;
        let sent = Instant::now();
        if let Err(e) = caller.send(client::increment(actor, id)).await {
            self.errors.push(format!("call {id} could not be sent: {e}"));
            return None;
        }
        self.issued = id;
        let deadline = sent + timeout;
        while self.remaining > 0 && !self.failed {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(event)) => self.record(event),
                Ok(None) => {
                    self.errors.push("every client stopped reading");
                    return None;
                }
                Err(_) => {
                    let got = self.got.len() - self.remaining;
                    let total = self.got.len();
                    self.errors.push(format!(
                        "call {id}: only {got} of {total} clients got version {version} within {timeout:?}"
                    ));
                    return None;
                }
            }
        }
        if self.failed {
            return None;
        }
        Some(CallTiming {
            result: self.result_at.map(|at| at - sent),
            first: self.first_at? - sent,
            last: self.last_at? - sent,
        })
    }

    /// Keeps listening for `wait`, so late duplicates show up.
    async fn settle(&mut self, wait: Duration) {
        let until = Instant::now() + wait;
        while let Ok(Some(event)) = tokio::time::timeout_at(until, self.events.recv()).await {
            self.record(event);
        }
    }

    /// Records what is still in flight until every reader ended (or `wait` passed).
    async fn drain(&mut self, wait: Duration) {
        self.closing = true;
        let until = Instant::now() + wait;
        while let Ok(Some(event)) = tokio::time::timeout_at(until, self.events.recv()).await {
            self.record(event);
        }
    }

    /// Verifies deliveries and results against the calls made.
    fn check(mut self, base: u64) -> ErrorLog {
        for violation in verify(&self.logs, base + 1, self.issued) {
            self.errors.push(violation.to_string());
        }
        self.results.sort_unstable();
        let mut results = self.results.iter().peekable();
        for id in 1..=self.issued {
            match results.next_if(|(got, _)| *got == id) {
                Some(&(_, version)) if version == base + id => {}
                Some(&(_, version)) => self
                    .errors
                    .push(format!("call {id} returned version {version}, expected {}", base + id)),
                None => self.errors.push(format!("call {id} got no result")),
            }
        }
        if let Some((id, _)) = results.next() {
            self.errors
                .push(format!("an unexpected or repeated result for call {id}"));
        }
        self.errors
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tally of two clients after `issued` calls, fed `events` as the readers would.
    fn tally_after(issued: u64, events: Vec<(usize, EventKind)>) -> ErrorLog {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut tally = Tally::new(2, rx);
        tally.issued = issued;
        let at = Instant::now();
        for (client, kind) in events {
            let _ = tx.send(Event { client, at, kind });
        }
        while let Ok(event) = tally.events.try_recv() {
            tally.record(event);
        }
        tally.check(0)
    }

    fn results(calls: u64) -> Vec<(usize, EventKind)> {
        (1..=calls)
            .map(|id| (0, EventKind::Result { id, version: id }))
            .collect()
    }

    /// Both clients got both versions once, in order, and both calls answered: no errors.
    #[test]
    fn a_clean_run_has_no_errors() {
        let mut events = results(2);
        events.extend(
            [0, 1, 0, 1]
                .into_iter()
                .zip([1, 1, 2, 2])
                .map(|(c, v)| (c, EventKind::Change(v))),
        );
        let errors = tally_after(2, events);
        assert_eq!(errors.count, 0, "{:?}", errors.first);
    }

    /// A duplicate, a gap and a reordering each fail the run, named by client and version.
    #[test]
    fn duplicate_missing_and_reordered_deliveries_are_errors() {
        let mut events = results(2);
        events.extend([(0, 1), (0, 1), (0, 2), (1, 2), (1, 1)].map(|(c, v)| (c, EventKind::Change(v))));
        let errors = tally_after(2, events);
        assert_eq!(
            errors.first,
            [
                "client 0 got version 1 twice",
                "client 1 got version 1 after version 2 (out of order)"
            ]
        );
        let errors = tally_after(2, [results(2), vec![(0, EventKind::Change(1))]].concat());
        assert_eq!(errors.count, 3, "{:?}", errors.first);
        assert_eq!(errors.first[0], "client 0 missed version 2");
    }

    /// A call without its `result`, or an error frame, fails the run.
    #[test]
    fn a_missing_result_or_an_error_frame_is_an_error() {
        let changes = [(0, 1), (1, 1)].map(|(c, v)| (c, EventKind::Change(v)));
        let errors = tally_after(1, changes.to_vec());
        assert_eq!(errors.first, ["call 1 got no result"]);
        let frame = r#"{"type":"error","id":1,"code":"internal","message":"x"}"#;
        let mut events = results(1);
        events.extend(changes);
        events.push((1, EventKind::Unexpected(frame.into())));
        let errors = tally_after(1, events);
        assert_eq!(errors.first, [format!("client 1 got an unexpected frame: {frame}")]);
    }

    /// Only the first messages are kept, but every error is counted.
    #[test]
    fn the_error_log_counts_everything_and_keeps_the_first() {
        let mut log = ErrorLog::default();
        for i in 0..25 {
            log.push(format!("error {i}"));
        }
        assert_eq!((log.count, log.first.len()), (25, ErrorLog::KEEP));
    }
}
