//! `kongup` as an operator runs it: help, path, plan, validate.

mod help;
mod path;
mod plan;
mod urls;
mod validate;
