//! One hybrid plan rolled in waves, for the tests that walk a wave (take-out, node
//! outcomes, max_unavailable, a wave confirmed as one, the demo's waves), instead of the
//! same YAML written again in each; and what those tests read back the same way: the plan
//! cut down to the steps a test walks, the Kong waits made short, the journal's
//! `node-outcome` records, the trail the node commands leave.

use std::path::{Path, PathBuf};
use std::time::Duration;

use kongup::actions::kong::{KongAccess, Waits};
use kongup::engine::Toolbox;
use kongup::engine::journal::JOURNAL_FILE;
use kongup::plan::load::LoadedPlan;
use kongup::plan::model::Plan;
use kongup::plan::steps::{ExpandedPlan, Phase, PhaseName};
use kongup::secrets::Redactor;

/// A hybrid plan, 3.4.3 (or [`WavePlan::from`]) → 3.10.0 in place, one control plane and `data_planes` data planes
/// a side (`dp-x-1`…, `dp-y-1`…), X's database `pg.internal`, the traffic driver manual,
/// the data planes rolled in waves; built with [`WavePlan::hybrid`] and the setters, read
/// with [`WavePlan::yaml`].
#[derive(Clone, Debug)]
pub struct WavePlan {
    name: String,
    from: String,
    data_planes: usize,
    control_plane: String,
    lab_addresses: bool,
    inventory: Option<PathBuf>,
    gates: Option<String>,
    rolling: Vec<(&'static str, String)>,
    steps: Vec<(String, String)>,
}

impl WavePlan {
    /// Named `waves`, waves `[1, 50%, 100%]`, the control planes' Admin API on a port
    /// nothing answers (`http://127.0.0.1:9`), the data planes with no address, their
    /// commands on `local`.
    pub fn hybrid(data_planes: usize) -> WavePlan {
        WavePlan {
            name: "waves".into(),
            from: "3.4.3".into(),
            data_planes,
            control_plane: r#"admin_url: "http://127.0.0.1:9""#.into(),
            lab_addresses: false,
            inventory: None,
            gates: None,
            rolling: vec![("waves", "[1, 50%, 100%]".into())],
            steps: Vec::new(),
        }
    }

    pub fn name(mut self, name: &str) -> WavePlan {
        self.name = name.into();
        self
    }

    /// The version X runs (3.4.3 unless set); Y's is 3.10.0.
    pub fn from(mut self, version: &str) -> WavePlan {
        self.from = version.into();
        self
    }

    /// `rolling.waves`, as YAML (`[1, 50%, 100%]`).
    pub fn waves(self, waves: &str) -> WavePlan {
        self.rolling("waves", waves)
    }

    pub fn max_unavailable(self, bound: &str) -> WavePlan {
        self.rolling("max_unavailable", bound)
    }

    pub fn drain(self, drain: &str) -> WavePlan {
        self.rolling("drain", drain)
    }

    pub fn between_waves(self, pause: &str) -> WavePlan {
        self.rolling("between_waves", pause)
    }

    /// `rolling.confirm` (`wave` or `each-step`).
    pub fn confirm(self, confirm: &str) -> WavePlan {
        self.rolling("confirm", confirm)
    }

    fn rolling(mut self, key: &'static str, value: &str) -> WavePlan {
        match self.rolling.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => *v = value.into(),
            None => self.rolling.push((key, value.into())),
        }
        self
    }

    /// The control planes' fields after their name and role (none: `""`).
    pub fn control_plane(mut self, fields: &str) -> WavePlan {
        self.control_plane = fields.into();
        self
    }

    /// The addresses a rehearsal lab serves: the control planes' Admin API and Status
    /// API at 10.0.0.1, each data plane's Status API and proxy at 10.0.1.N (X) and
    /// 10.0.2.N (Y).
    pub fn lab_addresses(self) -> WavePlan {
        let mut plan =
            self.control_plane("admin_url: http://10.0.0.1:8001, status_url: http://10.0.0.1:8100");
        plan.lab_addresses = true;
        plan
    }

    /// The data planes' commands on the `ansible` executor `fleet` (shell module, forks
    /// 4) of `inventory`; `None`: on `local`.
    pub fn ansible(mut self, inventory: Option<&Path>) -> WavePlan {
        self.inventory = inventory.map(Path::to_path_buf);
        self
    }

    /// The `gates:` block's lines, as YAML indented by two.
    pub fn gates(mut self, lines: &str) -> WavePlan {
        self.gates = Some(lines.into());
        self
    }

    /// A step override running `script` through the shell (its plan key: `wave-2-start-y`,
    /// `data-plane/decommission-x`). No `'` in `script`: it is written single-quoted.
    pub fn shell(self, step: &str, script: &str) -> WavePlan {
        self.command(step, &format!("shell: '{script}'"))
    }

    /// A step override running one command, written as a YAML item (`{run: [kong, health]}`).
    pub fn command(mut self, step: &str, item: &str) -> WavePlan {
        self.steps.push((step.into(), item.into()));
        self
    }

    /// What names the node in a node command: `$KONGUP_NODE` on `local`, Ansible's
    /// `inventory_hostname` on [`WavePlan::ansible`].
    pub fn node_var(&self) -> &'static str {
        match self.inventory {
            Some(_) => "{{ inventory_hostname }}",
            None => "$KONGUP_NODE",
        }
    }

    pub fn yaml(&self) -> String {
        let on = if self.inventory.is_some() {
            ", executor: fleet"
        } else {
            ""
        };
        let dps = |side: &str, net: u8| {
            (1..=self.data_planes)
                .map(|i| {
                    let at = if self.lab_addresses {
                        format!(
                            ", status_url: http://10.0.{net}.{i}:8100, proxy_url: http://10.0.{net}.{i}:8000"
                        )
                    } else {
                        String::new()
                    };
                    format!("      - {{name: dp-{side}-{i}, role: data_plane{on}{at}}}\n")
                })
                .collect::<String>()
        };
        let cp = |side: &str| {
            let fields = if self.control_plane.is_empty() {
                String::new()
            } else {
                format!(", {}", self.control_plane)
            };
            format!("      - {{name: cp-{side}, role: control_plane{fields}}}\n")
        };
        let mut text = format!(
            "name: {name}\nfrom: {from}\nto: 3.10.0\nmode: hybrid\nstrategy: in-place\n\
             clusters:\n  x:\n    nodes:\n{cp_x}{x}    database: {{host: pg.internal}}\n  \
             y:\n    nodes:\n{cp_y}{y}traffic:\n  driver: {{type: manual}}\n",
            name = self.name,
            from = self.from,
            cp_x = cp("x"),
            x = dps("x", 1),
            cp_y = cp("y"),
            y = dps("y", 2),
        );
        if let Some(gates) = &self.gates {
            text.push_str(&format!("gates:\n{gates}"));
        }
        if let Some(inventory) = &self.inventory {
            text.push_str(&format!(
                "executors:\n  fleet: {{type: ansible, inventory: {}, module: shell, forks: 4}}\n",
                inventory.display()
            ));
        }
        text.push_str("rolling:\n");
        for (key, value) in &self.rolling {
            text.push_str(&format!("  {key}: {value}\n"));
        }
        if !self.steps.is_empty() {
            text.push_str("steps:\n");
            let mut keys: Vec<&str> = Vec::new();
            for (key, _) in &self.steps {
                if !keys.contains(&key.as_str()) {
                    keys.push(key);
                }
            }
            for key in keys {
                text.push_str(&format!("  {key}:\n    commands:\n"));
                for (_, item) in self.steps.iter().filter(|(k, _)| k == key) {
                    text.push_str(&format!("      - {item}\n"));
                }
            }
        }
        text
    }

    /// [`WavePlan::yaml`] written to `DIR/fleet.yaml`; its path.
    pub fn write(&self, dir: &Path) -> PathBuf {
        let path = dir.join("fleet.yaml");
        std::fs::write(&path, self.yaml()).unwrap();
        path
    }
}

/// The plan's real expansion cut down to `phase`'s steps `ids`, in that order (the steps a
/// test walks: no traffic stage, staging test or monitor to stand in for).
pub fn cut_to(loaded: &LoadedPlan, phase: PhaseName, ids: &[&str]) -> ExpandedPlan {
    let found = loaded
        .expanded
        .phases
        .iter()
        .find(|p| p.name == phase)
        .unwrap_or_else(|| panic!("no {phase:?} phase"));
    ExpandedPlan {
        phases: vec![Phase {
            name: found.name,
            strategy: found.strategy,
            steps: ids
                .iter()
                .map(|id| {
                    found
                        .steps
                        .iter()
                        .find(|s| s.id == *id)
                        .unwrap_or_else(|| panic!("no step {id}"))
                        .clone()
                })
                .collect(),
        }],
        ..loaded.expanded.clone()
    }
}

/// The plan's toolbox with no Kong access (the node steps' commands alone).
pub fn toolbox(plan: &Plan) -> Toolbox {
    Toolbox::for_plan(plan, Redactor::default(), kongup::actions::builtins(None)).unwrap()
}

/// The plan's toolbox with Kong access whose waits are short enough for a test (a node's
/// wait 5 s, polled every 100 ms).
pub fn toolbox_with_kong(plan: &Plan) -> Toolbox {
    let access = KongAccess::for_plan(plan).unwrap().with_waits(Waits {
        nodes: Duration::from_secs(5),
        poll: Duration::from_millis(100),
        progress: Duration::from_millis(500),
        smoke_request: Duration::from_secs(5),
        tools: Duration::from_secs(30),
    });
    Toolbox::for_plan(
        plan,
        Redactor::default(),
        kongup::actions::builtins(Some(access)),
    )
    .unwrap()
}

/// The journal's `node-outcome` records of `step` (`data-plane/wave-2-start-y`) in the run
/// directory, read as JSON: (node, ok, reason), in order.
pub fn node_outcomes(run_dir: &Path, step: &str) -> Vec<(String, bool, Option<String>)> {
    std::fs::read_to_string(run_dir.join(JOURNAL_FILE))
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
        .filter(|r| r["event"] == "node-outcome" && r["step"] == step)
        .map(|r| {
            (
                r["node"].as_str().unwrap_or_default().to_string(),
                r["ok"].as_bool().unwrap_or_default(),
                r["reason"].as_str().map(String::from),
            )
        })
        .collect()
}

/// The nodes the node commands ran on, in order: each command appends its node to
/// `DIR/ran`.
pub fn ran(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("ran"))
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect()
}

/// Waits (10 s at most) until the node's `/status` at `status` shows a request in flight
/// besides the one asking (`connections_writing` ≥ 2), so a drain starts with it open.
pub async fn wait_for_request_in_flight(status: &str) {
    let client = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let body: serde_json::Value = client
            .get(format!("{status}/status"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if body["server"]["connections_writing"].as_u64() >= Some(2) {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{body}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The plan's `nodes:` lines for the lab's nodes of one side that `keep`, each on an
/// executor of its own name (see [`local_executors`]).
pub fn lab_node_lines(
    endpoints: &kongup::sim::LabEndpoints,
    side: kongup::plan::steps::ClusterSide,
    keep: impl Fn(&kongup::sim::NodeEndpoint) -> bool,
) -> String {
    endpoints
        .cluster(side)
        .filter(|n| keep(n))
        .map(|n| {
            format!(
                "      - {{name: {}, status_url: \"{}\", proxy_url: \"{}\", executor: {}}}\n",
                n.name,
                n.status,
                n.proxy.clone().unwrap_or_default(),
                n.name
            )
        })
        .collect()
}

/// The plan's `executors:` lines: one `local` executor per lab node, named after it.
pub fn local_executors(endpoints: &kongup::sim::LabEndpoints) -> String {
    endpoints
        .nodes
        .iter()
        .map(|n| format!("  {}: {{type: local}}\n", n.name))
        .collect()
}
