//! Plans kongup refuses.

mod drain;
mod encoding;
mod fuzz;
mod refusals;
mod sizes;
mod urls;
mod wave_confirm;
mod waves;
