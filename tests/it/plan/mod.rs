//! Plans kongup refuses.

mod encoding;
mod refusals;
mod sizes;
mod urls;
