//! `kongup lab`: the simulated Kong lab, headless. Both clusters run (Y already deployed at
//! the target version) so they can stand behind a real load balancer; the endpoints are
//! printed, and the lab runs until SIGINT or SIGTERM.

use std::io::Write;
use std::time::Instant;

use clap::Args;
use color_eyre::eyre::{WrapErr, eyre};
use serde::Serialize;

use crate::sim::{Fault, Lab, LabEndpoints, LabOptions, MetricsFlags, Scenario};

#[derive(Debug, Args)]
pub struct LabArgs {
    /// The lab topology: dual-cluster, traditional-2.8, in-place, blue-green, dbless-rolling
    /// or hybrid.
    #[arg(long, default_value = "hybrid", value_parser = parse_scenario)]
    pub scenario: Scenario,

    /// Print the endpoints as one JSON line ({"nodes":[…]}) instead of a table.
    #[arg(long)]
    pub json: bool,

    /// Requests per second the built-in traffic generator sends to the proxies (through
    /// the lab's weighted balancer, all to X); 0 sends none.
    #[arg(long, default_value_t = 0.0, value_name = "RPS")]
    pub traffic: f64,

    /// Inject a fault: y-errors=0.2 (or 20%), y-latency=300ms, crash, crash=NODE,
    /// dp-incompatible (hybrid), y-db-down. Repeat for several.
    #[arg(long = "fault", value_name = "FAULT", value_parser = parse_fault)]
    pub faults: Vec<Fault>,

    /// The prometheus plugin's status_code_metrics and latency_metrics flags on every node
    /// (Kong's default is off; the lab's is on).
    #[arg(long, default_value = "on", value_parser = ["on", "off"], value_name = "on|off")]
    pub metrics_flags: String,

    /// 3.10 control planes and data planes run with cluster_rpc_sync = on (Kong's default
    /// is off): their control plane lists such data planes under their node id.
    #[arg(long)]
    pub rpc_sync: bool,

    /// Data planes per cluster of the hybrid lab (default 2, at most 1000).
    #[arg(long, value_name = "N")]
    pub data_planes: Option<usize>,
}

fn parse_scenario(s: &str) -> Result<Scenario, String> {
    s.parse()
        .map_err(|e: crate::sim::scenarios::UnknownScenario| e.to_string())
}

fn parse_fault(s: &str) -> Result<Fault, String> {
    s.parse()
        .map_err(|e: crate::sim::faults::FaultParseError| e.to_string())
}

/// One node in `--json` output.
#[derive(Debug, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct NodeJson {
    pub name: String,
    /// `x` or `y`.
    pub cluster: String,
    /// `traditional`, `control_plane` or `data_plane`.
    pub role: String,
    pub version: String,
    /// `null` on data planes, which have no Admin API.
    pub admin: Option<String>,
    pub status: String,
    /// `null` on control planes, which do not proxy.
    pub proxy: Option<String>,
}

/// The first line `kongup lab --json` prints.
#[derive(Debug, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct LabJson {
    pub nodes: Vec<NodeJson>,
}

impl From<&LabEndpoints> for LabJson {
    fn from(endpoints: &LabEndpoints) -> Self {
        LabJson {
            nodes: endpoints
                .nodes
                .iter()
                .map(|n| NodeJson {
                    name: n.name.clone(),
                    cluster: n.cluster.as_str().to_string(),
                    role: n.role.as_str().to_string(),
                    version: n.version.to_string(),
                    admin: n.admin.clone(),
                    status: n.status.clone(),
                    proxy: n.proxy.clone(),
                })
                .collect(),
        }
    }
}

fn print_table(
    lab: &Lab,
    endpoints: &LabEndpoints,
    started_in_ms: u128,
    out: &mut impl Write,
) -> std::io::Result<()> {
    writeln!(
        out,
        "kongup lab: scenario {} ({} {} → {}), started in {started_in_ms} ms",
        endpoints.scenario,
        endpoints.mode.as_str(),
        endpoints.from,
        endpoints.to
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "{:<9} {:<2} {:<14} {:<10} {:<24} {:<24} proxy",
        "node", "", "role", "version", "admin", "status"
    )?;
    for n in &endpoints.nodes {
        writeln!(
            out,
            "{:<9} {:<2} {:<14} {:<10} {:<24} {:<24} {}",
            n.name,
            n.cluster.as_str(),
            n.role.as_str(),
            n.version.to_string(),
            n.admin.as_deref().unwrap_or("-"),
            n.status,
            n.proxy.as_deref().unwrap_or("-")
        )?;
    }
    for db in &endpoints.databases {
        writeln!(
            out,
            "database {} ({}): simulated, {}:{} user {}",
            db.name,
            db.cluster.as_str(),
            db.host,
            db.port,
            db.user
        )?;
    }
    writeln!(
        out,
        "/secure answers 200 with the header apikey: {}",
        endpoints.api_key
    )?;
    for line in lab.faults().describe() {
        writeln!(out, "fault: {line}")?;
    }
    writeln!(out, "Ctrl-C stops the lab.")?;
    Ok(())
}

async fn wait_for_signal() -> color_eyre::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).wrap_err("could not listen for SIGTERM")?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result.wrap_err("could not listen for SIGINT"),
        _ = term.recv() => Ok(()),
    }
}

pub fn run(args: LabArgs) -> color_eyre::Result<i32> {
    if !args.traffic.is_finite() || args.traffic < 0.0 {
        return Err(eyre!(
            "--traffic {} is not a rate: give requests per second, 0 or more",
            args.traffic
        ));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .wrap_err("could not start the async runtime for the lab")?;
    runtime.block_on(async move {
        let started = Instant::now();
        let options = LabOptions {
            y_deployed: true,
            traffic_rps: args.traffic,
            faults: args.faults.clone(),
            metrics_flags: if args.metrics_flags == "off" {
                MetricsFlags::ALL_OFF
            } else {
                MetricsFlags::ALL_ON
            },
            rpc_sync: args.rpc_sync,
            data_planes: args.data_planes,
            ..LabOptions::default()
        };
        let lab = Lab::start(args.scenario, options)
            .await
            .wrap_err_with(|| format!("could not start the {} lab", args.scenario))?;
        let started_in = started.elapsed().as_millis();
        let endpoints = lab.endpoints();
        let mut out = std::io::stdout().lock();
        if args.json {
            let line = serde_json::to_string(&LabJson::from(&endpoints))
                .wrap_err("could not write the endpoints as JSON")?;
            writeln!(out, "{line}")?;
        } else {
            print_table(&lab, &endpoints, started_in, &mut out)?;
        }
        out.flush()?;
        drop(out);
        wait_for_signal().await?;
        lab.shutdown().await;
        Ok(0)
    })
}
