//! Helpers shared by the integration tests, the console's benchmark and its example
//! driver: a throwaway PostgreSQL, small HTTP servers, and the console's hybrid plan,
//! scenarios and stand-in engine. Each user takes a part of them, hence the allowance.
#![allow(dead_code)]

pub mod http;
pub mod hybrid;
pub mod pg;
pub mod scenarios;
pub mod stand_in;
pub mod tls;
pub mod tmux;
