//! `kongup demo` and the demo's parts: the lab's walk of each scenario, resume, rollback,
//! rehearsal.

mod cli;
mod console_keys;
mod end_states;
mod lab_entities;
mod plan_file;
mod rehearse;
mod resume;
mod resume_more;
mod rollback;
mod walk;
pub mod waves;
