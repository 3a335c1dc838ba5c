//! Metrics: the exposition parser, cluster figures and gates, the live monitor and `kongup
//! scrape`.

mod bucket_bounds;
mod connections;
mod corpus;
mod empty_config;
mod figures;
mod fleet;
mod fuzz;
mod live;
mod parse;
mod stream;
mod waves;
