//! The waves of a rolling fleet as the checklist shows them: one row each with its
//! progress (`wave 3/4 · 212/250 nodes up · 3 failed`), and, expanded, its nodes worst
//! first. Read from the steps' node outcomes (`Event::NodeOutcome`, the journal's
//! `node-outcome`).

use super::*;

/// The wave each entry belongs to (`wave-N-start-y`, `wave-N-traffic`, `wave-N-stop-x`,
/// and a step the plan puts between two of one wave's steps, such as wave 1's
/// `staging-tests`); `None` for the rest.
pub(super) fn wave_numbers(
    entries: &[StepEntry],
    rolling: Option<PhaseName>,
) -> Vec<Option<usize>> {
    let own: Vec<Option<usize>> = entries
        .iter()
        .map(|e| {
            if Some(e.step_ref.phase) != rolling {
                return None;
            }
            let rest = e.step_ref.id.strip_prefix("wave-")?;
            let (number, step) = rest.split_once('-')?;
            ["start-y", "traffic", "stop-x"]
                .contains(&step)
                .then(|| number.parse().ok())
                .flatten()
        })
        .collect();
    (0..own.len())
        .map(|i| {
            own[i].or_else(|| {
                if Some(entries[i].step_ref.phase) != rolling {
                    return None;
                }
                let before = own[..i].iter().rev().find_map(|w| *w)?;
                let after = own[i + 1..].iter().find_map(|w| *w)?;
                (before == after).then_some(before)
            })
        })
        .collect()
}

/// One wave's progress, for its row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaveProgress {
    pub number: usize,
    /// How many waves the plan has.
    pub of: usize,
    /// Y's nodes this wave starts.
    pub y_nodes: usize,
    /// Those of them whose start succeeded (their commands exited 0 and, once the step's
    /// readiness wait is over, they answered ready: a node that did not is failed there).
    pub up: usize,
    /// The wave's nodes (Y's started, X's stopped) whose latest outcome is a failure.
    pub failed: usize,
    /// The wave as a whole: failed or interrupted if a step of it is, else running, ready,
    /// done (every step settled) or pending.
    pub state: StepState,
}

/// Where one of a wave's nodes stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaveNodeState {
    /// Its start (Y) or stop (X) failed there, and why.
    Failed(String),
    /// Not yet started (Y) or stopped (X).
    Waiting,
    /// Started (Y) or stopped (X).
    Done,
}

/// One of a wave's nodes, for the expanded wave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaveNode {
    pub name: String,
    pub side: ClusterSide,
    pub state: WaveNodeState,
}

impl ConsoleState {
    /// Whether the plan rolls its fleet in waves (`rolling:`).
    pub fn has_waves(&self) -> bool {
        !self.waves.is_empty()
    }

    /// The wave the entry at `index` belongs to, if any.
    pub fn wave_of_step(&self, index: usize) -> Option<usize> {
        self.wave_numbers.get(index).copied().flatten()
    }

    /// The wave whose nodes the checklist lists: the one expanded, while the selection is
    /// on one of its steps.
    pub fn expanded_wave(&self) -> Option<usize> {
        self.expanded_wave
            .filter(|n| self.wave_of_step(self.selected) == Some(*n))
    }

    /// The node outcomes of wave `number`'s step `kind` (`start-y` or `stop-x`), and
    /// whether that step succeeded: a node step whose nodes ran no command of their own
    /// (only the readiness wait) journals no outcome for the nodes that passed, so once the
    /// step is done a node without an outcome counts as done.
    fn wave_outcomes(
        &self,
        number: usize,
        kind: &str,
    ) -> Option<(&BTreeMap<String, Option<String>>, bool)> {
        let id = format!("wave-{number}-{kind}");
        self.entries
            .iter()
            .zip(&self.wave_numbers)
            .find(|(e, w)| **w == Some(number) && e.step_ref.id == id)
            .map(|(e, _)| (&e.status.nodes, e.status.state == StepState::Succeeded))
    }

    /// A node's state in a wave's step from its outcomes (see `wave_outcomes`).
    fn node_state(
        outcomes: Option<(&BTreeMap<String, Option<String>>, bool)>,
        name: &str,
    ) -> WaveNodeState {
        match outcomes {
            Some((nodes, succeeded)) => match nodes.get(name) {
                Some(Some(why)) => WaveNodeState::Failed(why.clone()),
                Some(None) => WaveNodeState::Done,
                None if succeeded => WaveNodeState::Done,
                None => WaveNodeState::Waiting,
            },
            None => WaveNodeState::Waiting,
        }
    }

    pub fn wave_progress(&self, number: usize) -> Option<WaveProgress> {
        let wave = self.waves.iter().find(|w| w.number == number)?;
        let started = self.wave_outcomes(number, "start-y");
        let stopped = self.wave_outcomes(number, "stop-x");
        let up = wave
            .y_nodes
            .iter()
            .filter(|n| Self::node_state(started, n) == WaveNodeState::Done)
            .count();
        let failed = [(started, &wave.y_nodes), (stopped, &wave.x_nodes)]
            .into_iter()
            .map(|(outcomes, nodes)| {
                nodes
                    .iter()
                    .filter(|n| matches!(Self::node_state(outcomes, n), WaveNodeState::Failed(_)))
                    .count()
            })
            .sum();
        let states: Vec<StepState> = self
            .entries
            .iter()
            .zip(&self.wave_numbers)
            .filter(|(_, w)| **w == Some(number))
            .map(|(e, _)| e.status.state)
            .collect();
        let any = |s: StepState| states.contains(&s);
        let state = if any(StepState::Failed) {
            StepState::Failed
        } else if any(StepState::Interrupted) {
            StepState::Interrupted
        } else if any(StepState::Running) {
            StepState::Running
        } else if any(StepState::Ready) {
            StepState::Ready
        } else if states.iter().all(|s| *s == StepState::RolledBack) {
            StepState::RolledBack
        } else if states.iter().all(|s| {
            matches!(
                s,
                StepState::Succeeded | StepState::Skipped | StepState::RolledBack
            )
        }) {
            StepState::Succeeded
        } else if states.iter().any(|s| *s != StepState::Pending) {
            // Some steps done, the next not yet its turn (the run paused between them).
            StepState::Running
        } else {
            StepState::Pending
        };
        Some(WaveProgress {
            number,
            of: self.waves.len(),
            y_nodes: wave.y_nodes.len(),
            up,
            failed,
            state,
        })
    }

    /// Wave `number`'s nodes, worst first: the failed (why, Y's then X's), those not yet
    /// started or stopped, then the rest; each group in plan order.
    pub fn wave_nodes(&self, number: usize) -> Vec<WaveNode> {
        let Some(wave) = self.waves.iter().find(|w| w.number == number) else {
            return Vec::new();
        };
        let mut nodes: Vec<WaveNode> = [
            (ClusterSide::Y, "start-y", &wave.y_nodes),
            (ClusterSide::X, "stop-x", &wave.x_nodes),
        ]
        .into_iter()
        .flat_map(|(side, kind, names)| {
            let outcomes = self.wave_outcomes(number, kind);
            names.iter().map(move |name| WaveNode {
                name: name.clone(),
                side,
                state: Self::node_state(outcomes, name),
            })
        })
        .collect();
        nodes.sort_by_key(|n| match n.state {
            WaveNodeState::Failed(_) => 0,
            WaveNodeState::Waiting => 1,
            WaveNodeState::Done => 2,
        });
        nodes
    }
}
