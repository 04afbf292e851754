//! The driver: N subscribed clients, M sequential messages from the first — `increment` calls
//! or `broadcast`s — and for each the time from sending it until every client got it (the
//! change, or the broadcast itself); then verification.

use std::time::Duration;

use futures::{stream, SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::client::{self, Event, EventKind, Sink};
use crate::stats::Samples;
use crate::verify::verify;
use crate::LoadError;

/// What the first client sends, one after another (`--message`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum MessageKind {
    /// `call increment`: delivered as the counter's change, through the stream and fan-out.
    #[default]
    Call,
    /// `broadcast` "tick" to every subscriber (the sender too): posted directly, nothing stored.
    Broadcast,
}

impl MessageKind {
    pub fn name(self) -> &'static str {
        match self {
            MessageKind::Call => "call",
            MessageKind::Broadcast => "broadcast",
        }
    }

    /// The reply the sender waits for.
    pub fn reply(self) -> &'static str {
        match self {
            MessageKind::Call => "result",
            MessageKind::Broadcast => "sent",
        }
    }

    /// What the clients get, in error messages.
    fn delivered(self) -> &'static str {
        match self {
            MessageKind::Call => "version",
            MessageKind::Broadcast => "broadcast",
        }
    }
}

/// How one run is shaped.
#[derive(Debug, Clone)]
pub struct DriverOptions {
    pub subscribers: usize,
    /// Messages sent (calls or broadcasts).
    pub calls: u64,
    pub message: MessageKind,
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
            message: MessageKind::Call,
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
    /// Per message: send → the last client got it.
    pub delivered: Samples,
    /// Per message: send → the sender got its reply (`result` of a call: the write path;
    /// `sent` of a broadcast).
    pub to_reply: Samples,
    /// Per message: send → the first client got it.
    pub to_first: Samples,
    /// Wall time of the message phase.
    pub elapsed: Duration,
    pub errors: ErrorLog,
}

impl Measurement {
    /// Deliveries per second over the message phase (N × completed messages / time).
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
    let plan = Plan {
        message: options.message,
        base,
        subscribers: options.subscribers as u64,
    };
    let mut tally = Tally::new(options.subscribers, rx);
    let (timings, elapsed) = tally.calls(&mut sinks[0], &actor, plan, options).await;
    tally.settle(options.settle).await;
    close(&mut sinks).await;
    tally.drain(Duration::from_secs(10)).await;
    for reader in readers {
        reader.abort();
    }
    let mut errors = tally.check(plan);
    if timings.len() as u64 != options.calls && errors.count == 0 {
        let kind = plan.message.name();
        errors.push(format!("only {} of {} {kind}s completed", timings.len(), options.calls));
    }
    let samples = |pick: fn(&CallTiming) -> Duration| Samples::new(timings.iter().map(pick).collect());
    Ok(Measurement {
        connect,
        delivered: samples(|t| t.last),
        to_reply: samples(|t| t.reply),
        to_first: samples(|t| t.first),
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

/// What the run's messages are and what each must produce.
#[derive(Debug, Clone, Copy)]
struct Plan {
    message: MessageKind,
    /// The actor's version when every client subscribed.
    base: u64,
    subscribers: u64,
}

impl Plan {
    /// The frame of the `n`-th message (its request id is `n`).
    fn frame(&self, actor: &str, n: u64) -> tokio_tungstenite::tungstenite::Message {
        match self.message {
            MessageKind::Call => client::increment(actor, n),
            MessageKind::Broadcast => client::tick(actor, n),
        }
    }

    /// What every client must receive for the `n`-th message: the version it makes, or its `seq`.
    fn delivery(&self, n: u64) -> u64 {
        match self.message {
            MessageKind::Call => self.base + n,
            MessageKind::Broadcast => n,
        }
    }

    /// The `value` of the `n`-th message's reply: the version it made, or its recipients.
    fn reply(&self, n: u64) -> u64 {
        match self.message {
            MessageKind::Call => self.base + n,
            MessageKind::Broadcast => self.subscribers,
        }
    }

    fn reply_mismatch(&self, n: u64, value: u64) -> String {
        let expected = self.reply(n);
        match self.message {
            MessageKind::Call => format!("call {n} returned version {value}, expected {expected}"),
            MessageKind::Broadcast => format!("broadcast {n} reached {value} recipients, expected {expected}"),
        }
    }
}

/// One completed message, each time from sending it.
struct CallTiming {
    /// The sender got its reply.
    reply: Duration,
    /// The first client got it.
    first: Duration,
    /// The last client got it.
    last: Duration,
}

/// Everything the readers reported, and the message being waited for.
struct Tally {
    events: mpsc::UnboundedReceiver<Event>,
    /// What each client got (change versions or broadcast `seq`s), in arrival order.
    logs: Vec<Vec<u64>>,
    /// `(id, value)` of every reply.
    replies: Vec<(u64, u64)>,
    errors: ErrorLog,
    closing: bool,
    failed: bool,
    issued: u64,
    waiting_for: u64,
    got: Vec<bool>,
    remaining: usize,
    reply_at: Option<Instant>,
    first_at: Option<Instant>,
    last_at: Option<Instant>,
}

impl Tally {
    fn new(subscribers: usize, events: mpsc::UnboundedReceiver<Event>) -> Self {
        Self {
            events,
            logs: vec![Vec::new(); subscribers],
            replies: Vec::new(),
            errors: ErrorLog::default(),
            closing: false,
            failed: false,
            issued: 0,
            waiting_for: 0,
            got: vec![false; subscribers],
            remaining: 0,
            reply_at: None,
            first_at: None,
            last_at: None,
        }
    }

    fn record(&mut self, event: Event) {
        let client = event.client;
        match event.kind {
            EventKind::Delivered(n) => {
                self.logs[client].push(n);
                if n == self.waiting_for && !std::mem::replace(&mut self.got[client], true) {
                    self.remaining -= 1;
                    self.first_at = Some(self.first_at.map_or(event.at, |first| first.min(event.at)));
                    self.last_at = self.last_at.max(Some(event.at));
                }
            }
            EventKind::Reply { id, value } => {
                if id == self.issued {
                    self.reply_at = Some(event.at);
                }
                self.replies.push((id, value));
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

    /// Sends the messages one after another; returns the completed ones' timings and the phase's time.
    async fn calls(
        &mut self,
        caller: &mut Sink,
        actor: &str,
        plan: Plan,
        options: &DriverOptions,
    ) -> (Vec<CallTiming>, Duration) {
        let started = Instant::now();
        let mut timings = Vec::with_capacity(options.calls as usize);
        for id in 1..=options.calls {
            let frame = plan.frame(actor, id);
            match self
                .call(caller, frame, id, plan.delivery(id), options.call_timeout)
                .await
            {
                Some(timing) => timings.push(timing),
                None => break,
            }
        }
        (timings, started.elapsed())
    }

    /// Sends message `id` and waits until every client got `delivery` and the sender its reply
    /// (a broadcast's `sent` comes after the posts); `None` if the run failed meanwhile.
    async fn call(
        &mut self,
        caller: &mut Sink,
        frame: tokio_tungstenite::tungstenite::Message,
        id: u64,
        delivery: u64,
        timeout: Duration,
    ) -> Option<CallTiming> {
        self.waiting_for = delivery;
        self.got.fill(false);
        self.remaining = self.got.len();
        self.reply_at = None;
        self.first_at = None;
        self.last_at = None;
        let sent = Instant::now();
        if let Err(e) = caller.send(frame).await {
            self.errors.push(format!("message {id} could not be sent: {e}"));
            return None;
        }
        self.issued = id;
        let deadline = sent + timeout;
        while (self.remaining > 0 || self.reply_at.is_none()) && !self.failed {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(event)) => self.record(event),
                Ok(None) => {
                    self.errors.push("every client stopped reading");
                    return None;
                }
                Err(_) => {
                    let got = self.got.len() - self.remaining;
                    let total = self.got.len();
                    let replied = if self.reply_at.is_some() { "" } else { ", and no reply" };
                    self.errors.push(format!(
                        "message {id}: only {got} of {total} clients got {delivery} within {timeout:?}{replied}"
                    ));
                    return None;
                }
            }
        }
        if self.failed {
            return None;
        }
        Some(CallTiming {
            reply: self.reply_at? - sent,
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

    /// Verifies deliveries and replies against the messages sent.
    fn check(mut self, plan: Plan) -> ErrorLog {
        let (kind, reply) = (plan.message.name(), plan.message.reply());
        for violation in verify(&self.logs, plan.delivery(1), self.issued) {
            self.errors.push(violation.describe(plan.message.delivered()));
        }
        self.replies.sort_unstable();
        let mut replies = self.replies.iter().peekable();
        for id in 1..=self.issued {
            match replies.next_if(|(got, _)| *got == id) {
                Some(&(_, value)) if value == plan.reply(id) => {}
                Some(&(_, value)) => self.errors.push(plan.reply_mismatch(id, value)),
                None => self.errors.push(format!("{kind} {id} got no {reply}")),
            }
        }
        if let Some((id, _)) = replies.next() {
            self.errors
                .push(format!("an unexpected or repeated {reply} for {kind} {id}"));
        }
        self.errors
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CALLS: Plan = Plan {
        message: MessageKind::Call,
        base: 0,
        subscribers: 2,
    };
    const BROADCASTS: Plan = Plan {
        message: MessageKind::Broadcast,
        base: 40,
        subscribers: 2,
    };

    /// A tally of two clients after `issued` calls, fed `events` as the readers would.
    fn tally_after(issued: u64, events: Vec<(usize, EventKind)>) -> ErrorLog {
        tally_of(CALLS, issued, events)
    }

    fn tally_of(plan: Plan, issued: u64, events: Vec<(usize, EventKind)>) -> ErrorLog {
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
        tally.check(plan)
    }

    fn results(calls: u64) -> Vec<(usize, EventKind)> {
        (1..=calls).map(|id| (0, EventKind::Reply { id, value: id })).collect()
    }

    /// Both clients got both versions once, in order, and both calls answered: no errors.
    #[test]
    fn a_clean_run_has_no_errors() {
        let mut events = results(2);
        events.extend(
            [0, 1, 0, 1]
                .into_iter()
                .zip([1, 1, 2, 2])
                .map(|(c, v)| (c, EventKind::Delivered(v))),
        );
        let errors = tally_after(2, events);
        assert_eq!(errors.count, 0, "{:?}", errors.first);
    }

    /// A duplicate, a gap and a reordering each fail the run, named by client and version.
    #[test]
    fn duplicate_missing_and_reordered_deliveries_are_errors() {
        let mut events = results(2);
        events.extend([(0, 1), (0, 1), (0, 2), (1, 2), (1, 1)].map(|(c, v)| (c, EventKind::Delivered(v))));
        let errors = tally_after(2, events);
        assert_eq!(
            errors.first,
            [
                "client 0 got version 1 twice",
                "client 1 got version 1 after version 2 (out of order)"
            ]
        );
        let errors = tally_after(2, [results(2), vec![(0, EventKind::Delivered(1))]].concat());
        assert_eq!(errors.count, 3, "{:?}", errors.first);
        assert_eq!(errors.first[0], "client 0 missed version 2");
    }

    /// A call without its `result`, or an error frame, fails the run.
    #[test]
    fn a_missing_result_or_an_error_frame_is_an_error() {
        let changes = [(0, 1), (1, 1)].map(|(c, v)| (c, EventKind::Delivered(v)));
        let errors = tally_after(1, changes.to_vec());
        assert_eq!(errors.first, ["call 1 got no result"]);
        let frame = r#"{"type":"error","id":1,"code":"internal","message":"x"}"#;
        let mut events = results(1);
        events.extend(changes);
        events.push((1, EventKind::Unexpected(frame.into())));
        let errors = tally_after(1, events);
        assert_eq!(errors.first, [format!("client 1 got an unexpected frame: {frame}")]);
    }

    /// Broadcasts are numbered from 1 whatever the actor's version, and each `sent` must name
    /// every subscriber as a recipient.
    #[test]
    fn broadcasts_are_checked_by_sequence_number_and_recipients() {
        let ticks = [(0, 1), (1, 1), (0, 2), (1, 2)].map(|(c, n)| (c, EventKind::Delivered(n)));
        let sent = |id, value| (0, EventKind::Reply { id, value });
        let errors = tally_of(BROADCASTS, 2, [vec![sent(1, 2), sent(2, 2)], ticks.to_vec()].concat());
        assert_eq!(errors.count, 0, "{:?}", errors.first);
        let errors = tally_of(
            BROADCASTS,
            2,
            [vec![sent(1, 2), sent(2, 1)], ticks[..3].to_vec()].concat(),
        );
        assert_eq!(
            errors.first,
            [
                "client 1 missed broadcast 2",
                "broadcast 2 reached 1 recipients, expected 2"
            ]
        );
        let errors = tally_of(
            BROADCASTS,
            1,
            vec![ticks[0].clone(), ticks[1].clone(), ticks[1].clone()],
        );
        assert_eq!(
            errors.first,
            ["client 1 got broadcast 1 twice", "broadcast 1 got no sent"]
        );
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
