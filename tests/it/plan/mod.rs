//! Plans kongup refuses.

mod refusals;
