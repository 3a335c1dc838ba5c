//! Helpers shared by the integration tests: a throwaway PostgreSQL and small HTTP servers.
//! Each test binary uses a part of them, hence the allowance below.
#![allow(dead_code)]

pub mod http;
pub mod pg;
