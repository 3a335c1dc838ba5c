//! Metrics: the exposition parser, cluster figures and gates, the live monitor and `kongup
//! scrape`.

mod corpus;
mod empty_config;
mod figures;
mod live;
mod parse;
