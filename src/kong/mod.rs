//! Kong: the Admin API's shapes and what kongup knows of the clusters.

pub mod backup;
pub mod client;
pub mod database;
pub mod discover;
pub mod freeze;
pub mod helm;
pub mod http;
pub mod migrations;
pub mod pg;
pub mod pg_tls;
pub mod pg_version;
pub mod process;
pub mod restore;
pub mod schema;
pub mod topology;
pub mod types;
pub mod watch;
