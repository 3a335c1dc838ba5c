//! Who drives the run: a console that watches one another kongup drives (`kongup watch`) is
//! read-only and names the driver; the driver's console is asked to hand the run over.

use crate::engine::event::SessionEvent;
use crate::engine::lock::LockHolder;

use super::*;

/// A console that watches a run another kongup drives: keys that would change the run only
/// say who drives it.
#[derive(Debug, Clone, PartialEq)]
pub struct Watching {
    /// Who drives the run now; `None`: nobody does.
    pub driver: Option<LockHolder>,
    /// The command that takes the run over once nobody drives it (`kongup run PLAN
    /// --journal DIR`).
    pub take_over: String,
}

impl ConsoleState {
    /// Makes this console a watcher's: read-only, the driver named in the header.
    pub fn set_watching(&mut self, watching: Watching) {
        self.watching = Some(watching);
    }

    /// Set when this console watches a run another kongup drives.
    pub fn watching(&self) -> Option<&Watching> {
        self.watching.as_ref()
    }

    /// Why a key that would change the run does nothing here: `None` where it may.
    pub fn read_only_because(&self) -> Option<String> {
        let watching = self.watching.as_ref()?;
        Some(match &watching.driver {
            Some(driver) => format!("read-only: {} drives this run", driver.operator),
            None => format!(
                "read-only: nobody drives this run now; {} takes it over",
                watching.take_over
            ),
        })
    }

    pub(super) fn session_event(&mut self, event: &SessionEvent) {
        match event {
            SessionEvent::Driver(driver) => {
                let Some(watching) = &mut self.watching else {
                    return;
                };
                let before = std::mem::replace(&mut watching.driver, driver.clone());
                let take_over = watching.take_over.clone();
                match (before, driver) {
                    (Some(before), None) => {
                        let text = format!(
                            "{} stopped driving this run: {take_over} takes it over",
                            before.operator
                        );
                        self.push_log(None, LogKind::Warning, text.clone());
                        self.flash(text, Tone::Warn);
                    }
                    (before, Some(now)) if before.as_ref() != Some(now) => self.push_log(
                        None,
                        LogKind::Event(Tone::Plain),
                        format!("{} drives the run now (pid {})", now.operator, now.pid),
                    ),
                    _ => {}
                }
            }
            SessionEvent::HandoverAsked { by, until } => {
                self.push_log(
                    None,
                    LogKind::Warning,
                    format!("{by} asks to take over · y to hand over"),
                );
                self.set_modal(Some(Modal::Handover {
                    by: by.clone(),
                    until: *until,
                }));
            }
            SessionEvent::HandoverClosed(text) => {
                if matches!(self.modal, Some(Modal::Handover { .. })) {
                    self.set_modal(None);
                }
                self.push_log(None, LogKind::Event(Tone::Warn), text.clone());
            }
        }
    }
}
