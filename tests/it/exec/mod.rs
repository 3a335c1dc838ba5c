//! The executors: local, ssh, kubectl, ansible (the real Ansible on local hosts); a step's processes tracked across kongup's death.

pub mod ansible;
mod kubectl;
mod local;
mod ssh;
pub mod tracked;
