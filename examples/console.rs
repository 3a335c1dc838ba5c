//! The console on a real terminal, driven by a scripted stand-in for the engine on the
//! hybrid test plan: `cargo run --example console`. Confirm steps with Enter, watch the
//! traffic move, press R. (`kongup run` and `kongup demo` drive the real engine.)
//!
//! `KONGUP_EXIT_FILE=PATH` writes how the console ended to PATH (the tmux test reads it).

use std::time::Duration;

use chrono::Utc;
use kongup::testkit::{hybrid, stand_in};
use kongup::ui::{ConsoleExit, ConsoleOptions, run_console};
use tokio::sync::mpsc;

#[tokio::main]
async fn main() -> color_eyre::Result<()> {
    color_eyre::install()?;
    let plan = hybrid::plan();
    let expanded = hybrid::expanded();
    let (commands, command_receiver) = mpsc::channel(64);
    let (event_sender, events) = kongup::engine::event::channel();
    let engine = tokio::spawn(stand_in::stand_in_engine(
        plan.clone(),
        expanded.clone(),
        command_receiver,
        event_sender,
        Duration::from_millis(150),
    ));
    let exit = run_console(
        &plan,
        &expanded,
        commands,
        events,
        ConsoleOptions::new(Utc::now(), hybrid::previewer(&plan, &expanded)),
    )
    .await?;
    if let Some(path) = std::env::var_os("KONGUP_EXIT_FILE") {
        std::fs::write(path, format!("{exit:?}\n"))?;
    }
    // The stand-in finishes the step in progress, as the engine would.
    engine.await?;
    // After a hang-up the terminal is gone: printing to it would fail.
    if matches!(exit, ConsoleExit::Quit { .. } | ConsoleExit::EngineStopped) {
        println!("console: {exit:?}");
    }
    Ok(())
}
