//! kongup: a terminal console that walks an operator through a Kong Gateway upgrade,
//! one confirmed step at a time. See `docs/ARCHITECTURE.md` for the shape of the program.

pub mod actions;
pub mod cli;
#[cfg(feature = "lab")]
pub mod demo;
pub mod engine;
pub mod exec;
pub mod fd_limit;
pub mod kong;
pub mod lb;
pub mod metrics;
pub mod notify;
pub mod plain;
pub mod plan;
pub mod secrets;
pub mod session;
#[cfg(feature = "lab")]
pub mod sim;
#[cfg(feature = "testkit")]
pub mod testkit;
#[cfg(feature = "console")]
pub mod ui;
