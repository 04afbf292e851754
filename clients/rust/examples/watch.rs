//! Subscribes to a counter, prints every update, and increments it a few times.
//!
//! ```sh
//! cargo run -p statecast-local                     # in another terminal
//! cargo run -p statecast-client --example watch -- ws://127.0.0.1:8787/local counter/demo
//! ```

use std::time::Duration;

use futures::StreamExt;
use serde_json::json;
use statecast_client::{Client, ClientError, Options, SubscribeOptions};

#[tokio::main]
async fn main() -> Result<(), ClientError> {
    let mut args = std::env::args().skip(1);
    let url = args.next().unwrap_or_else(|| "ws://127.0.0.1:8787/local".into());
    let actor = args.next().unwrap_or_else(|| "counter/demo".into());
    let token = std::env::var("STATECAST_TOKEN").ok();
    let client = Client::connect(
        &url,
        Options {
            token,
            ..Options::default()
        },
    )?;

    let mut state = client.state();
    tokio::spawn(async move {
        while state.changed().await.is_ok() {
            println!("connection: {:?}", *state.borrow_and_update());
        }
    });

    let mut updates = client.subscribe(actor.clone(), SubscribeOptions::default());
    let printer = tokio::spawn(async move {
        while let Some(update) = updates.next().await {
            println!(
                "{:?} v{} (epoch {}): {}",
                update.kind, update.version, update.epoch, update.state
            );
        }
        println!("subscription ended: {:?}", updates.error());
    });

    for _ in 0..3 {
        let value = client.call(&actor, "increment", json!({"by": 1})).await?;
        println!("increment → {value}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    println!("watching {actor}; Ctrl-C to stop");
    let _ = tokio::signal::ctrl_c().await;
    client.close();
    let _ = printer.await;
    Ok(())
}
