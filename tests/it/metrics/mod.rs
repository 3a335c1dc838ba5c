//! Metrics: the exposition parser, cluster figures and gates, the live monitor and `kongup
//! scrape`.

mod figures;
mod live;
mod parse;
