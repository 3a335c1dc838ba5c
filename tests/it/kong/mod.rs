//! Kong: the Admin API client, the database, migrations, backups, TLS, the topology watch,
//! and the Kong actions through the engine.

mod actions_backups;
mod actions_guards;
mod actions_in_place;
mod actions_previews;
mod backup;
mod bounded_reads;
mod client;
mod compat_corpus;
mod corpus_readers;
mod data_plane_waits;
mod db;
mod deck_backup;
mod export_freeze;
mod init;
mod init_corpus;
mod init_many;
mod migrations;
mod migrations_corpus;
mod migrations_lock;
mod pg_tls;
mod preflight_database;
mod preflight_metrics;
mod probe_order;
mod tls_roots;
mod tool_env;
mod watch;
mod watch_corpus;
