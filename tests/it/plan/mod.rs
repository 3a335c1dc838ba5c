//! Plans kongup refuses.

mod refusals;
mod sizes;
mod urls;
