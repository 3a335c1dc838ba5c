//! The engine: the only owner of run state. It takes `Command`s, emits `Event`s and
//! journals each event before acting on it. It knows no terminal.

pub mod command;
pub mod event;
