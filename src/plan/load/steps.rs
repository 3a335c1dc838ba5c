//! `steps`: the operator's changes to the strategy's steps (commands and `builtin` for a
//! step, inserted steps, skipped steps) and the step references they are written with.

use std::collections::HashMap;
use std::time::Duration;

use super::diagnostics::{Diagnostics, did_you_mean, one_of};
use super::read::{argv, boolean, duration, index, list, mapping, shown, string, text};
use super::yaml::{Node, Pos};
use super::{Loader, optional};
use crate::plan::model::{
    CommandLine, CommandSpec, InsertPosition, InsertedStep, Mode, SkippedStep, StepCustomisation,
    StepOverride, StepSelector,
};
use crate::plan::steps::PhaseName;

impl Loader {
    pub(super) fn steps(&mut self, node: &Node, mode: Option<Mode>) -> Option<StepCustomisation> {
        let f = mapping(&mut self.d, node, "steps", None)?;
        let mut custom = StepCustomisation::default();
        let mut ok = true;
        for (key, key_node, value) in f.entries() {
            let path = f.path_of(key);
            match key {
                "insert" => match self.inserts(value, mode) {
                    Some(inserts) => custom.inserts = inserts,
                    None => ok = false,
                },
                "skip" => match self.skips(value, mode) {
                    Some(skips) => custom.skips = skips,
                    None => ok = false,
                },
                _ => {
                    let step = selector(&mut self.d, key, key_node.pos, &path, mode);
                    match (step, self.step_override(value, &path)) {
                        (Some(step), Some((commands, timeout, builtin))) => {
                            self.at.overrides.push(key_node.pos);
                            custom.overrides.push(StepOverride {
                                step,
                                commands,
                                timeout,
                                builtin,
                            });
                        }
                        _ => ok = false,
                    }
                }
            }
        }
        ok.then_some(custom)
    }

    fn step_override(
        &mut self,
        node: &Node,
        path: &str,
    ) -> Option<(Vec<CommandSpec>, Option<Duration>, bool)> {
        let f = mapping(
            &mut self.d,
            node,
            path,
            Some(&["commands", "timeout", "builtin"]),
        )?;
        let builtin = match f.get("builtin") {
            Some(n) => boolean(&mut self.d, n, &f.path_of("builtin")),
            None => Some(true),
        };
        let commands = match (f.get("commands"), builtin) {
            (Some(n), _) => self.commands(n, &f.path_of("commands")),
            // `builtin: false` alone makes the step a checklist item.
            (None, Some(false)) => Some(Vec::new()),
            // `builtin` itself is wrong: that error is enough.
            (None, None) => None,
            (None, Some(true)) => {
                self.d.error_with_hint(
                    f.pos,
                    format!("`{path}` needs `commands`"),
                    "list the commands the step runs; `timeout` is the default for each of them \
                     (or write `builtin: false` alone to make the step a checklist item)",
                );
                None
            }
        };
        let timeout = match f.get("timeout") {
            Some(n) => duration(&mut self.d, n, &f.path_of("timeout")).map(Some),
            None => Some(None),
        };
        Some((commands?, timeout?, builtin?))
    }

    fn commands(&mut self, node: &Node, path: &str) -> Option<Vec<CommandSpec>> {
        let items = list(&mut self.d, node, path)?;
        let mut commands = Vec::with_capacity(items.len());
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            match self.command(item, &index(path, i)) {
                Some(command) => commands.push(command),
                None => ok = false,
            }
        }
        ok.then_some(commands)
    }

    fn command(&mut self, node: &Node, path: &str) -> Option<CommandSpec> {
        let f = mapping(
            &mut self.d,
            node,
            path,
            Some(&["run", "shell", "executor", "timeout"]),
        )?;
        let executor = self.executor_ref(&f, "executor");
        let d = &mut self.d;
        let program = match (f.get("run"), f.get("shell")) {
            (Some(n), None) => argv(d, n, &f.path_of("run")).map(CommandLine::Argv),
            (None, Some(n)) => text(d, n, &f.path_of("shell")).map(CommandLine::Shell),
            (Some(_), Some(_)) => {
                d.error(
                    f.pos,
                    format!("`{path}` gives both `run` and `shell`; keep one"),
                );
                None
            }
            (None, None) => {
                d.error_with_hint(
                    f.pos,
                    format!("`{path}` needs `run` or `shell`"),
                    "run: [program, arg, …] runs without a shell; shell: \"…\" runs under sh -c",
                );
                None
            }
        };
        // `kong migrations reset` and `bootstrap -f` destroy the database: never run.
        let program = program.and_then(|p| match crate::kong::migrations::check_command(&p) {
            Ok(()) => Some(p),
            Err(forbidden) => {
                let at = f.get("run").or(f.get("shell")).map_or(f.pos, |n| n.pos);
                d.error(at, forbidden.to_string());
                None
            }
        });
        let timeout = match f.get("timeout") {
            Some(n) => duration(d, n, &f.path_of("timeout")).map(Some),
            None => Some(None),
        };
        Some(CommandSpec {
            program: program?,
            executor: executor?,
            timeout: timeout?,
            node: None,
        })
    }

    fn inserts(&mut self, node: &Node, mode: Option<Mode>) -> Option<Vec<InsertedStep>> {
        let items = list(&mut self.d, node, "steps.insert")?;
        let mut inserts = Vec::with_capacity(items.len());
        let mut ids: HashMap<String, Pos> = HashMap::new();
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            let path = index("steps.insert", i);
            match self.insert(item, &path, mode) {
                Some((step, id_pos)) => {
                    if let Some(first) = ids.get(&step.id) {
                        self.d.error(
                            id_pos,
                            format!(
                                "inserted step id `{}` is used twice (first at line {}, column {})",
                                shown(&step.id),
                                first.line,
                                first.column
                            ),
                        );
                        ok = false;
                    } else {
                        ids.insert(step.id.clone(), id_pos);
                    }
                    self.at.inserts.push(item.pos);
                    inserts.push(step);
                }
                None => ok = false,
            }
        }
        ok.then_some(inserts)
    }

    fn insert(
        &mut self,
        node: &Node,
        path: &str,
        mode: Option<Mode>,
    ) -> Option<(InsertedStep, Pos)> {
        let f = mapping(
            &mut self.d,
            node,
            path,
            Some(&[
                "before",
                "after",
                "id",
                "title",
                "instruction",
                "commands",
                "changes",
                "irreversible",
            ]),
        )?;
        let commands = match f.get("commands") {
            Some(n) => self.commands(n, &f.path_of("commands")),
            None => Some(Vec::new()),
        };
        let d = &mut self.d;
        let position = match (f.get("before"), f.get("after")) {
            (Some(n), None) => {
                selector_value(d, n, &f.path_of("before"), mode).map(InsertPosition::Before)
            }
            (None, Some(n)) => {
                selector_value(d, n, &f.path_of("after"), mode).map(InsertPosition::After)
            }
            (Some(_), Some(_)) => {
                d.error(
                    f.pos,
                    format!("`{path}` gives both `before` and `after`; keep one"),
                );
                None
            }
            (None, None) => {
                d.error_with_hint(
                    f.pos,
                    format!("`{path}` needs `before` or `after`"),
                    "name the template step it goes next to, e.g. `after: backup` (see `kongup plan` for the ids)",
                );
                None
            }
        };
        let id = f.required(d, "id").and_then(|n| {
            let id = text(d, n, &f.path_of("id"))?;
            if !is_step_id(&id) {
                d.error_with_hint(
                    n.pos,
                    format!("`{}`: `{}` is not a step id", f.path_of("id"), shown(&id)),
                    "use lowercase letters, digits and dashes, e.g. snapshot-vms",
                );
                return None;
            }
            Some(id)
        });
        let title = f
            .required(d, "title")
            .and_then(|n| text(d, n, &f.path_of("title")));
        let instruction = optional(f.get("instruction"), String::new(), |n| {
            string(d, n, &f.path_of("instruction"))
        });
        let changes = optional(f.get("changes"), true, |n| {
            boolean(d, n, &f.path_of("changes"))
        });
        let irreversible = optional(f.get("irreversible"), false, |n| {
            boolean(d, n, &f.path_of("irreversible"))
        });
        if irreversible == Some(true) && changes == Some(false) {
            d.error(
                f.key_pos("irreversible").unwrap_or(f.pos),
                format!("`{path}` is irreversible but says it changes nothing"),
            );
            return None;
        }
        Some((
            InsertedStep {
                position: position?,
                id: id?,
                title: title?,
                instruction: instruction?,
                commands: commands?,
                changes: changes?,
                irreversible: irreversible?,
            },
            f.get("id").map_or(f.pos, |n| n.pos),
        ))
    }

    fn skips(&mut self, node: &Node, mode: Option<Mode>) -> Option<Vec<SkippedStep>> {
        let d = &mut self.d;
        let items = list(d, node, "steps.skip")?;
        let mut skips = Vec::with_capacity(items.len());
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            let path = index("steps.skip", i);
            let Some(f) = mapping(d, item, &path, Some(&["step", "reason"])) else {
                ok = false;
                continue;
            };
            let step = f.required(d, "step").and_then(|n| {
                self.at.skips.push(n.pos);
                selector_value(d, n, &f.path_of("step"), mode)
            });
            let reason = f
                .required(d, "reason")
                .and_then(|n| text(d, n, &f.path_of("reason")));
            match (step, reason) {
                (Some(step), Some(reason)) => skips.push(SkippedStep { step, reason }),
                _ => ok = false,
            }
        }
        ok.then_some(skips)
    }
}

fn is_step_id(id: &str) -> bool {
    !id.is_empty()
        && !id.starts_with('-')
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// A step reference written as a value (`after: backup`).
fn selector_value(
    d: &mut Diagnostics,
    node: &Node,
    path: &str,
    mode: Option<Mode>,
) -> Option<StepSelector> {
    let written = text(d, node, path)?;
    selector(d, &written, node.pos, path, mode)
}

/// `id` or `phase/id`; the phase must exist in the plan's mode.
fn selector(
    d: &mut Diagnostics,
    written: &str,
    pos: Pos,
    path: &str,
    mode: Option<Mode>,
) -> Option<StepSelector> {
    let (phase, id) = match written.split_once('/') {
        Some((phase, id)) => (Some(phase), id),
        None => (None, written),
    };
    let phase = match phase {
        Some(word) => {
            let phases = ["cluster", "control-plane", "data-plane"];
            let Some(phase) = PhaseName::parse(word) else {
                let hint = match did_you_mean(word, &phases) {
                    Some(close) => format!("did you mean `{close}`?"),
                    None => format!("phases are {}", one_of(&phases)),
                };
                d.error_with_hint(
                    pos,
                    format!("`{path}`: `{}` is not a phase", shown(word)),
                    hint,
                );
                return None;
            };
            if phase == PhaseName::Rollback {
                d.error_with_hint(
                    pos,
                    format!(
                        "`{path}`: `{}` names a rollback step, and rollback steps cannot be customised",
                        shown(written)
                    ),
                    "kongup derives the rollback plan from the steps that ran (each one's counterpart, newest first), so `rollback/…` takes no commands, inserts or skips; customise the forward step instead, or insert a step of your own next to it",
                );
                return None;
            }
            let fits = match mode {
                Some(Mode::Hybrid) => phase != PhaseName::Cluster,
                Some(_) => phase == PhaseName::Cluster,
                None => true,
            };
            if !fits {
                let mode = mode.map_or("", Mode::as_str);
                let hint = if mode == "hybrid" {
                    "hybrid plans have the phases `control-plane` and `data-plane`"
                } else {
                    "traditional and dbless plans have one phase, `cluster`"
                };
                d.error_with_hint(
                    pos,
                    format!("`{path}`: a {mode} plan has no phase `{}`", shown(word)),
                    hint,
                );
                return None;
            }
            Some(phase)
        }
        None => None,
    };
    if !is_step_id(id) {
        d.error_with_hint(
            pos,
            format!("`{path}`: `{}` is not a step reference", shown(written)),
            "write a step id (e.g. `deploy-y`) or phase/id (e.g. `data-plane/deploy-y`); `kongup plan` lists them",
        );
        return None;
    }
    Some(StepSelector {
        phase,
        id: id.to_string(),
    })
}
