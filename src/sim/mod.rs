//! The simulated Kong lab: loopback nodes that answer as Kong does (Admin API, Status API,
//! `/metrics`, a proxy port), a simulated database that `kong migrations` changes as Kong
//! changes it, a weighted in-process load balancer (a `TrafficDriver`), a traffic
//! generator, fault injection, the `sim` executor that runs a plan's commands on the lab,
//! and the scenarios with their demo plans. It powers `kongup demo`, `kongup lab`, the
//! integration tests and rehearsals.
//!
//! ```text
//! Lab::start(Scenario::Hybrid, LabOptions::default()).await?  → Lab
//!   lab.endpoints()            nodes' admin/status/proxy URLs, databases
//!   lab.traffic_driver()       Arc<SimBalancer>: impl TrafficDriver
//!   lab.executor("kong-y-1")   SimExecutor: impl Executor
//!   lab.apply_fault(&fault)    y-errors, y-latency, crash, dp-incompatible
//!   lab.schema_state(side)     crate::kong::schema::SchemaState
//! ```

mod api;
pub mod balancer;
pub mod bundled;
pub mod database;
pub mod entities;
pub mod executor;
pub mod facts;
pub mod faults;
pub mod lab;
pub mod metrics;
pub mod node;
mod pages;
pub mod proxy;
pub mod scenarios;
pub mod traffic;

pub use balancer::SimBalancer;
pub use executor::{SimExecutor, SimScope};
pub use faults::{Fault, FaultState};
pub use lab::{Lab, LabEndpoints, LabError, LabOptions, NodeEndpoint, NodeView};
pub use metrics::MetricsFlags;
pub use proxy::DEMO_API_KEY;
pub use scenarios::Scenario;
