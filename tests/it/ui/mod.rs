//! The console: its state, keys, loop and snapshots, and end to end in tmux.

mod breach_tmux;
mod console_flood;
mod console_loop;
mod e2e_tmux;
mod keys;
mod say_why;
mod snapshots;
mod state;
mod still_running;
mod watch_tmux;
mod watching;
