//! The console: its state, keys, loop and snapshots, and end to end in tmux.

mod breach_tmux;
mod console_3am_tmux;
mod console_flood;
mod console_loop;
mod dialogs_read;
mod e2e_tmux;
mod fleet_memory;
mod footer_moment;
mod header_fit;
mod keys;
mod logs_read;
mod outage;
mod outage_tmux;
mod quit_race;
mod retry_confirm;
mod say_why;
mod sick_y;
mod sick_y_tmux;
mod snapshots;
mod state;
mod still_running;
mod take_out;
mod topology_fleet;
mod topology_fleet_tmux;
mod watch_tmux;
mod watching;
