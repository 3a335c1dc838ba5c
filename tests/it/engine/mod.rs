//! The engine: the step lifecycle, traffic and gates, rollback, `--plain`, the real
//! binary's `run`, and the report.

mod ansible_nodes;
mod cli;
mod drain;
mod drain_balancer;
mod end_states;
mod gate_window;
mod hand_split;
mod handover;
mod journal_fuzz;
mod journal_integrity;
mod left_running;
mod lifecycle;
mod max_unavailable;
mod node_commands;
mod plain;
mod plain_cause;
mod plan_change;
mod report_rollback;
mod rollback;
mod sick_y;
mod step_log;
mod step_output;
mod take_out;
mod take_out_balancer;
mod traffic;
mod wave_as_one;
mod wave_nodes;
