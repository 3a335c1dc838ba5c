//! The executors: local, ssh, kubectl.

mod kubectl;
mod local;
mod ssh;
