//! What the integration tests, the benchmarks and the example driver share (the `testkit`
//! feature, which the crate's own dev-dependency on itself turns on): the console's hybrid
//! plan, its scenarios and a stand-in engine; the lab's proxies behind a real HAProxy or
//! nginx; a tmux server of a test's own. Not part of the program.

pub mod corpus;
pub mod fleet;
pub mod flood;
pub mod hybrid;
pub mod lb;
pub mod scenarios;
pub mod scrape_fleet;
pub mod stand_in;
pub mod tmux;
