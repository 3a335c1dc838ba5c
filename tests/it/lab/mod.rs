//! The simulated lab: its Admin API, `/metrics`, executor, plans and `kongup lab`.

mod api;
mod cli;
mod conformance;
mod executor;
mod first_requests;
mod fleet;
mod metrics;
mod migrations_corpus;
mod plans;
