//! Helpers shared by the integration tests: a throwaway PostgreSQL, small HTTP and TLS
//! servers, the engine's test harness, the demo's driver, Kong nodes played by axum, a
//! test run in a process of its own, and one hybrid plan rolled in waves (`waves`). (What
//! the benchmarks and the example driver share too is in `kongup::testkit`.)

pub mod demo;
pub mod engine;
pub mod http;
pub mod kong_actions;
pub mod mutate;
pub mod own_process;
pub mod pg;
pub mod tls;
pub mod waves;
