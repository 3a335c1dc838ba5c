//! The integration tests: one binary (as ripgrep's are), so the crate and its dependencies
//! are linked once rather than once per test file. One module per area; what several
//! areas share is in `support`, and what the benchmarks and the example driver share too
//! is in `kongup::testkit`. Run one area with `cargo test --test it engine::`.

mod cli;
mod demo;
mod engine;
mod exec;
mod kong;
mod lab;
mod lb;
mod metrics;
mod notify;
mod plan;
mod support;
mod ui;
