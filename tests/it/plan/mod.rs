//! Plans kongup refuses.

mod refusals;
mod urls;
