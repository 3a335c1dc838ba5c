//! `kongup` as an operator runs it: help, path, plan, validate.

mod fd_limit;
mod helm_hooks;
mod help;
mod migrations_commands;
mod path;
mod plan;
mod urls;
mod validate;
