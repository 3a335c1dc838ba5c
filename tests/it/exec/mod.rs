//! The executors: local, ssh, kubectl; a step's processes tracked across kongup's death.

mod kubectl;
mod local;
mod ssh;
pub mod tracked;
