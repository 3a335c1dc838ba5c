//! What the console's state tells whoever draws it: read-only accessors, one question each.

use super::*;
use crate::plan::steps::StepKind;
use crate::ui::theme::{IDLE_AFTER_THE_RUN, IDLE_BECAUSE};

impl ConsoleState {
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    pub fn expanded(&self) -> &ExpandedPlan {
        &self.expanded
    }

    pub fn theme(&self) -> Theme {
        self.theme
    }

    pub fn run_state(&self) -> RunState {
        self.run
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.now
    }

    pub fn focus(&self) -> Pane {
        self.focus
    }

    pub fn zoomed(&self) -> bool {
        self.zoomed
    }

    pub fn modal(&self) -> Option<&Modal> {
        self.modal.as_ref()
    }

    /// Rows the open dialog's text is scrolled down.
    pub fn dialog_scroll(&self) -> usize {
        self.dialog_scroll
    }

    pub fn flash_message(&self) -> Option<&Flash> {
        self.flash.as_ref()
    }

    pub fn traffic(&self) -> Option<TrafficView> {
        self.traffic
    }

    /// How long no cluster has served traffic, in seconds, while that lasts.
    pub fn outage_secs(&self) -> Option<u64> {
        self.outage_since
            .map(|since| (self.now - since).num_seconds().max(0) as u64)
    }

    pub fn topology(&self) -> Option<&TopologySnapshot> {
        self.topology.as_ref()
    }

    pub fn metrics_history(&self) -> &VecDeque<MetricsSnapshot> {
        &self.metrics
    }

    /// Whether `side`'s nodes of `role` should answer now: the engine's rule
    /// ([`expected::node_expected_up`]) over the steps as the console knows them.
    pub fn node_expected_up(&self, side: ClusterSide, role: Role) -> bool {
        let steps = self.steps_at();
        expected::node_expected_up(self.plan.mode, &self.expanded, steps, side, role, None)
    }

    /// Whether the node `name` should answer now: as [`Self::node_expected_up`], and in a
    /// plan that rolls in waves, by its own wave's steps.
    pub fn named_node_expected_up(&self, side: ClusterSide, role: Role, name: &str) -> bool {
        let wave = crate::plan::waves::wave_of(&self.waves, side, name);
        let steps = self.steps_at();
        expected::node_expected_up(self.plan.mode, &self.expanded, steps, side, role, wave)
    }

    /// Whether any of `side`'s nodes should answer now (see [`Self::node_expected_up`]).
    pub fn cluster_expected_up(&self, side: ClusterSide) -> bool {
        expected::cluster_expected_up(
            &self.plan,
            &self.waves,
            &self.expanded,
            self.steps_at(),
            side,
        )
    }

    /// Every step in run order with its state, for the engine's rules.
    fn steps_at(&self) -> impl DoubleEndedIterator<Item = StepAt<'_>> + Clone {
        self.entries.iter().map(|e| StepAt {
            step_ref: &e.step_ref,
            step: &e.step,
            state: e.status.state,
        })
    }

    /// The console loop says which screen it drew on last.
    pub fn set_screen(&mut self, screen: Rect) {
        self.screen = screen;
    }

    pub fn gate(&self) -> Option<&GateVerdict> {
        self.gate.as_ref()
    }

    /// The likely cause of a failure (`engine::cause`), from the watcher's latest topology;
    /// `detail` is the failed step's, or the breach's checks.
    pub fn likely_cause(&self, detail: Option<&str>) -> Option<String> {
        crate::engine::cause::likely_cause(&crate::engine::cause::Facts {
            topology: self.topology.as_ref(),
            detail,
            x_up: self.cluster_expected_up(ClusterSide::X),
            y_up: self.cluster_expected_up(ClusterSide::Y),
        })
    }

    /// While the latest verdict failed: the seconds until its failing samples have left
    /// the gate window (`gates.window` after it), if no new failure comes.
    pub fn gate_window_clears_in(&self) -> Option<u64> {
        crate::metrics::gates::window_clears_in(
            self.gate.as_ref()?,
            self.plan.gates.window,
            self.now,
        )
    }

    /// What the sparklines cover: the running bake (its whole length, up to the
    /// `METRICS_WINDOW_SECS` the console keeps), else the last 2 minutes. With the bake's
    /// length when one runs.
    pub fn sparkline_window(&self) -> (i64, Option<std::time::Duration>) {
        let bake = self.entries.iter().find_map(|e| {
            let baking = e.status.state == StepState::Running && e.status.bake_remaining.is_some();
            match e.step.kind {
                StepKind::ShiftTraffic { bake, .. } if baking => Some(bake),
                StepKind::Monitor { duration } if baking => Some(duration),
                _ => None,
            }
        });
        match bake {
            Some(bake) => (
                (bake.as_secs() as i64).clamp(1, METRICS_WINDOW_SECS),
                Some(bake),
            ),
            None => (SPARKLINE_SECS, None),
        }
    }

    /// Whether the engine acts on the gates now: only while Y takes traffic (the split the
    /// load balancer reported, else the one asked of it, as the engine reckons it) and the
    /// run is not over (once X is decommissioned, a relative gate has nothing to compare).
    pub fn gate_watched(&self) -> bool {
        self.traffic.is_some_and(|t| t.shown().y > 0) && !self.run.is_over()
    }

    /// Why the gate is idle, in words (see [`Self::gate_watched`]).
    pub fn gate_idle_because(&self) -> &'static str {
        if self.run.is_over() {
            IDLE_AFTER_THE_RUN
        } else {
            IDLE_BECAUSE
        }
    }

    pub fn rollback(&self) -> &RollbackView {
        &self.rollback
    }

    /// Where the rollback's first act stands. The engine sends all traffic to X before it
    /// plans the rest, so a plan without a time to safety means it did not act.
    pub fn rollback_traffic(&self) -> RollbackTraffic {
        let rollback = &self.rollback;
        if let Some(ms) = rollback.time_to_safety_ms {
            return RollbackTraffic::Safe { ms };
        }
        let Some(planned) = &rollback.planned else {
            return if rollback.started {
                RollbackTraffic::Moving
            } else {
                RollbackTraffic::Asked
            };
        };
        let y_share = self.traffic.map_or(0, |t| t.shown().y);
        if planned.iter().any(|step| step.id == TRAFFIC_TO_X) {
            RollbackTraffic::AStepOfThePlan
        } else if y_share == 0 {
            RollbackTraffic::NeverMoved
        } else {
            RollbackTraffic::Stays
        }
    }

    pub fn is_engine_stopped(&self) -> bool {
        self.engine_stopped
    }

    pub fn log_follow(&self) -> bool {
        self.log_follow
    }

    pub fn log_offset(&self) -> usize {
        self.log_offset
    }

    pub fn log_filter(&self) -> Option<&str> {
        self.log_filter.as_deref()
    }

    pub fn topology_offset(&self) -> usize {
        self.topology_offset
    }

    pub fn metrics_offset(&self) -> usize {
        self.metrics_offset
    }

    pub fn step_count(&self) -> usize {
        self.entries.len()
    }

    /// Steps in run order: reference, definition, status.
    pub fn steps(&self) -> impl Iterator<Item = (&StepRef, &Step, &StepStatus)> {
        self.entries
            .iter()
            .map(|e| (&e.step_ref, &e.step, &e.status))
    }

    pub fn selected_index(&self) -> usize {
        self.selected
    }

    pub fn selected(&self) -> Option<(&StepRef, &Step, &StepStatus)> {
        self.entries
            .get(self.selected)
            .map(|e| (&e.step_ref, &e.step, &e.status))
    }

    pub fn step(&self, step: &StepRef) -> Option<(&Step, &StepStatus)> {
        let e = &self.entries[*self.index.get(step)?];
        Some((&e.step, &e.status))
    }

    /// What confirming `step` runs and where, one line each.
    pub fn runs(&self, step: &StepRef) -> &[String] {
        self.index
            .get(step)
            .map_or(&[], |&i| self.entries[i].runs.as_slice())
    }

    /// What decides whether a wave goes on into `step`, or past it (a step the console
    /// does not know: taken as done by hand, so the wave is not said to go on into it).
    pub fn wave_runs(&self, step: &StepRef) -> crate::engine::wave::WaveStepRuns {
        self.index.get(step).map_or(
            crate::engine::wave::WaveStepRuns {
                by_hand: true,
                bakes_without_gates: false,
            },
            |&i| crate::engine::wave::WaveStepRuns {
                by_hand: self.entries[i].by_hand,
                bakes_without_gates: self.entries[i].bakes_without_gates,
            },
        )
    }

    /// What still runs of `step` though kongup no longer waits on it, if anything.
    pub fn still_running(&self, step: &StepRef) -> Option<&str> {
        let e = &self.entries[*self.index.get(step)?];
        e.status.still_running.as_deref()
    }

    pub fn step_state(&self, step: &StepRef) -> Option<StepState> {
        self.index.get(step).map(|&i| self.entries[i].status.state)
    }

    /// The step that waits for the operator's confirm.
    pub fn ready_step(&self) -> Option<&StepRef> {
        self.entries
            .iter()
            .find(|e| e.status.state == StepState::Ready)
            .map(|e| &e.step_ref)
    }

    pub fn running_step(&self) -> Option<&StepRef> {
        self.entries
            .iter()
            .find(|e| e.status.state == StepState::Running)
            .map(|e| &e.step_ref)
    }

    /// The running step, or the one whose confirm or retry was sent and not yet answered.
    pub fn running_or_starting(&self) -> Option<&StepRef> {
        self.running_step().or(self.starting.as_ref())
    }

    /// The phase the run is in: that of the step needing attention, else the first not done;
    /// the rollback's while rolling back.
    pub fn current_phase(&self) -> Option<PhaseName> {
        if self.run == RunState::RollingBack {
            return Some(PhaseName::Rollback);
        }
        let attention = |e: &&StepEntry| {
            matches!(
                e.status.state,
                StepState::Running | StepState::Ready | StepState::Failed | StepState::Interrupted
            )
        };
        self.entries
            .iter()
            .find(attention)
            .or_else(|| {
                self.entries
                    .iter()
                    .find(|e| e.status.state == StepState::Pending)
            })
            .or(self.entries.last())
            .map(|e| e.step_ref.phase)
    }

    /// Whether `step` undoes another (the engine's `rollback/…` steps).
    pub fn is_rollback_step(&self, step: &StepRef) -> bool {
        step.phase == PhaseName::Rollback
    }

    /// Whether a confirm for `step` makes sense now: the engine offers it.
    pub fn can_confirm(&self, step: &StepRef) -> bool {
        self.step_state(step) == Some(StepState::Ready)
    }

    /// Why Y should not take the traffic `step` would send it, by the engine's rule
    /// (`engine::health`) over the topology and gate verdict the engine sent: the confirm
    /// dialog says it and asks for the override word. Empty for any other step.
    pub fn y_unfit_for(&self, step: &StepRef) -> Vec<String> {
        let Some((details, _)) = self.step(step) else {
            return Vec::new();
        };
        match crate::engine::health::raises_y(step, &details.kind, self.y_now()) {
            Some(y) => self.y_unfit_at(y),
            None => Vec::new(),
        }
    }

    /// Why Y should not take `y_percent` of the traffic (a split set by hand): nothing
    /// when that is no more than Y has.
    pub fn y_unfit_at(&self, y_percent: u8) -> Vec<String> {
        if y_percent <= self.y_now() {
            return Vec::new();
        }
        crate::engine::health::y_unfit(
            self.topology_sent.as_ref(),
            self.gate.as_ref(),
            self.last_step_end,
        )
    }

    fn y_now(&self) -> u8 {
        self.traffic.map_or(0, |t| t.shown().y)
    }

    /// Whether a retry of `step` makes sense now: it failed or was interrupted.
    /// Whether a failed node may be taken out of `step`: a wave's start or stop step,
    /// failed or interrupted (the engine checks that the node failed there).
    pub fn can_take_out_of(&self, step: &StepRef) -> bool {
        self.can_retry(step)
            && self
                .step(step)
                .is_some_and(|(s, _)| s.kind.is_wave_node_step())
    }

    pub fn can_retry(&self, step: &StepRef) -> bool {
        matches!(
            self.step_state(step),
            Some(StepState::Failed | StepState::Interrupted)
        )
    }

    /// The first step of the rollback plan not yet done.
    pub fn next_rollback_step(&self) -> Option<&StepRef> {
        self.rollback.planned.as_ref()?.iter().find(|r| {
            !matches!(
                self.step_state(r),
                Some(StepState::Succeeded | StepState::Skipped | StepState::RolledBack)
            )
        })
    }

    /// Seconds since the run began, frozen once it ended.
    pub fn elapsed_secs(&self) -> u64 {
        let end = self.ended_at.unwrap_or(self.now);
        (end - self.started_at).num_seconds().max(0) as u64
    }

    /// Seconds the running step has run.
    pub fn running_secs(&self) -> Option<u64> {
        self.entries
            .iter()
            .find(|e| e.status.state == StepState::Running)
            .and_then(|e| e.status.running_since)
            .map(|since| (self.now - since).num_seconds().max(0) as u64)
    }

    pub fn logs(&self) -> &VecDeque<LogEntry> {
        &self.logs
    }

    pub fn log_matches(&self, entry: &LogEntry) -> bool {
        match &self.log_filter {
            None => true,
            Some(filter) => {
                contains_ignore_case(&entry.text, filter)
                    || entry
                        .step
                        .as_deref()
                        .is_some_and(|s| contains_ignore_case(s, filter))
            }
        }
    }

    pub fn filtered_log_count(&self) -> usize {
        if self.log_filter.is_none() {
            return self.logs.len();
        }
        self.logs.iter().filter(|e| self.log_matches(e)).count()
    }

    /// Rows of the topology list (clusters, nodes, databases, load balancer; in the zoom,
    /// those its filter keeps), for scrolling.
    pub fn topology_rows(&self) -> usize {
        if self.zoomed && self.focus == Pane::Topology {
            self.topology_view.shown().len()
        } else {
            self.topology_view.rows().len()
        }
    }

    /// The topology as the pane shows it (see [`TopologyView`]).
    pub fn topology_view(&self) -> &TopologyView {
        &self.topology_view
    }

    /// The zoom's filter line while it is typed in.
    pub fn topology_filter_input(&self) -> Option<&Input> {
        self.topology_filter_input.as_ref()
    }

    /// The zoom's row `n`/`N` last jumped to (a position in the view's shown rows).
    pub fn topology_mark(&self) -> Option<usize> {
        self.topology_mark
    }
}
