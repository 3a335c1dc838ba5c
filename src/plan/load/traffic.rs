//! `traffic`: the driver that moves traffic from X to Y, the schedule of stages, the bake.

use std::collections::BTreeMap;
use std::time::Duration;

use super::diagnostics::Diagnostics;
use super::read::{
    Fields, argv, boolean, choice, duration, file_path, index, integer, list, mapping, shown,
    string_list, text,
};
use super::yaml::Node;
use super::{Loader, optional, optional_text};
use crate::plan::model::defaults;
use crate::plan::model::{
    CommandDriver, HaproxyDriver, KubernetesDriver, KubernetesTarget, NginxDriver,
    TrafficDriverSpec, TrafficSpec,
};

impl Loader {
    pub(super) fn traffic(
        &mut self,
        node: &Node,
        command_timeout: Duration,
    ) -> Option<TrafficSpec> {
        let f = mapping(
            &mut self.d,
            node,
            "traffic",
            Some(&["driver", "schedule", "bake", "auto_advance"]),
        )?;
        let driver = match f.get("driver") {
            Some(n) => {
                self.at.traffic_driver = Some(n.pos);
                self.driver(n, command_timeout)
            }
            None => Some(TrafficDriverSpec::Manual),
        };
        let d = &mut self.d;
        let schedule = match f.get("schedule") {
            Some(n) => schedule(d, n),
            None => Some(defaults::SCHEDULE.to_vec()),
        };
        let bake = optional(f.get("bake"), defaults::BAKE, |n| {
            duration(d, n, "traffic.bake")
        });
        let auto_advance = optional(f.get("auto_advance"), false, |n| {
            boolean(d, n, "traffic.auto_advance")
        });
        // Nobody sets a manual split by itself: advancing without a confirm would record
        // a stage that never happened.
        let auto_advance = match (&driver, auto_advance, f.get("auto_advance")) {
            (Some(TrafficDriverSpec::Manual), Some(true), Some(n)) => {
                d.error_with_hint(
                    n.pos,
                    "`traffic.auto_advance: true` needs a driver kongup can set: with the \
                     manual driver every stage is set by hand and must be confirmed",
                    "remove auto_advance, or give traffic.driver a haproxy, nginx, kubernetes \
                     or command driver",
                );
                None
            }
            (_, auto_advance, _) => auto_advance,
        };
        Some(TrafficSpec {
            driver_given: f.has("driver"),
            driver: driver?,
            schedule: schedule?,
            bake: bake?,
            auto_advance: auto_advance?,
        })
    }

    fn driver(&mut self, node: &Node, command_timeout: Duration) -> Option<TrafficDriverSpec> {
        let path = "traffic.driver";
        let d = &mut self.d;
        let mut f = mapping(d, node, path, None)?;
        let kind = f.required(d, "type").and_then(|n| {
            choice(
                d,
                n,
                "traffic.driver.type",
                &["haproxy", "nginx", "kubernetes", "command", "manual"],
            )
        })?;
        let allowed: &[&str] = match kind {
            "haproxy" => &[
                "type",
                "socket",
                "backend",
                "x_servers",
                "y_servers",
                "node_servers",
            ],
            "nginx" => &[
                "type",
                "upstream_file",
                "upstream_name",
                "x_servers",
                "y_servers",
                "binary",
                "config",
            ],
            "kubernetes" => &[
                "type",
                "executor",
                "context",
                "namespace",
                "httproute",
                "ingress_canary",
            ],
            "command" => &["type", "set", "get", "executor", "timeout"],
            _manual => &["type"],
        };
        f.restrict(d, allowed);
        let req_text = |d: &mut Diagnostics, key: &str| {
            f.required(d, key).and_then(|n| text(d, n, &f.path_of(key)))
        };
        match kind {
            "haproxy" => {
                let socket = req_text(d, "socket");
                let backend = req_text(d, "backend");
                let (x_servers, y_servers) = self.server_lists(&f, false);
                let node_servers = match f.get("node_servers") {
                    Some(n) => {
                        self.at.node_servers = Some(n.pos);
                        self.node_servers(n, &f.path_of("node_servers"))
                    }
                    None => Some(BTreeMap::new()),
                };
                Some(TrafficDriverSpec::Haproxy(HaproxyDriver {
                    socket: socket?,
                    backend: backend?,
                    x_servers: x_servers?,
                    y_servers: y_servers?,
                    node_servers: node_servers?,
                }))
            }
            "nginx" => {
                let upstream_file = f
                    .required(d, "upstream_file")
                    .and_then(|n| file_path(d, n, &f.path_of("upstream_file")));
                let upstream_name = req_text(d, "upstream_name");
                let binary = optional(f.get("binary"), defaults::NGINX_BINARY.to_string(), |n| {
                    text(d, n, &f.path_of("binary"))
                });
                let config = match f.get("config") {
                    Some(n) => file_path(d, n, &f.path_of("config")).map(Some),
                    None => Some(None),
                };
                let (x_servers, y_servers) = self.server_lists(&f, true);
                Some(TrafficDriverSpec::Nginx(NginxDriver {
                    upstream_file: upstream_file?,
                    upstream_name: upstream_name?,
                    x_servers: x_servers?,
                    y_servers: y_servers?,
                    binary: binary?,
                    config: config?,
                }))
            }
            "kubernetes" => {
                let executor = self.executor_ref(&f, "executor");
                let d = &mut self.d;
                let context = optional_text(d, &f, "context");
                let namespace = optional_text(d, &f, "namespace");
                let target = match (f.get("httproute"), f.get("ingress_canary")) {
                    (Some(n), None) => {
                        let g = mapping(
                            d,
                            n,
                            &f.path_of("httproute"),
                            Some(&["name", "rule", "x_backend", "y_backend"]),
                        )?;
                        let name = g
                            .required(d, "name")
                            .and_then(|n| text(d, n, &g.path_of("name")));
                        let rule = optional(g.get("rule"), defaults::HTTPROUTE_RULE, |n| {
                            integer(d, n, &g.path_of("rule"), 0..=usize::MAX)
                        });
                        let x_backend = g
                            .required(d, "x_backend")
                            .and_then(|n| text(d, n, &g.path_of("x_backend")));
                        let y_backend = g
                            .required(d, "y_backend")
                            .and_then(|n| text(d, n, &g.path_of("y_backend")));
                        if let (Some(x), Some(y)) = (&x_backend, &y_backend)
                            && x == y
                        {
                            d.error(
                                g.get("y_backend").map_or(g.pos, |n| n.pos),
                                format!(
                                    "`{}` is the same backend as X's; Y needs its own Service",
                                    g.path_of("y_backend")
                                ),
                            );
                            return None;
                        }
                        Some(KubernetesTarget::HttpRoute {
                            name: name?,
                            rule: rule?,
                            x_backend: x_backend?,
                            y_backend: y_backend?,
                        })
                    }
                    (None, Some(n)) => {
                        let g = mapping(d, n, &f.path_of("ingress_canary"), Some(&["name"]))?;
                        let name = g
                            .required(d, "name")
                            .and_then(|n| text(d, n, &g.path_of("name")));
                        Some(KubernetesTarget::IngressCanary { name: name? })
                    }
                    (Some(_), Some(_)) => {
                        d.error(
                            f.pos,
                            "`traffic.driver` gives both `httproute` and `ingress_canary`; keep one",
                        );
                        None
                    }
                    (None, None) => {
                        d.error_with_hint(
                            f.pos,
                            "`traffic.driver` of type `kubernetes` needs `httproute` or `ingress_canary`",
                            "httproute: {name, rule, x_backend, y_backend} for a Gateway API route; ingress_canary: {name} for an ingress-nginx canary",
                        );
                        None
                    }
                };
                Some(TrafficDriverSpec::Kubernetes(KubernetesDriver {
                    executor: executor?,
                    context: context?,
                    namespace: namespace?,
                    target: target?,
                }))
            }
            "command" => {
                let executor = self.executor_ref(&f, "executor");
                let d = &mut self.d;
                let set = f
                    .required(d, "set")
                    .and_then(|n| argv(d, n, &f.path_of("set")));
                if let (Some(set), Some(n)) = (&set, f.get("set"))
                    && !set.iter().any(|a| a.contains("{x}") || a.contains("{y}"))
                {
                    d.error_with_hint(
                        n.pos,
                        "`traffic.driver.set` never mentions `{x}` or `{y}`, so the split would not reach the balancer",
                        "put `{y}` (Y's percentage) and/or `{x}` (X's) in the arguments, e.g. [/usr/local/bin/set-split, \"{x}\", \"{y}\"]",
                    );
                    return None;
                }
                let get = match f.get("get") {
                    Some(n) => argv(d, n, &f.path_of("get")).map(Some),
                    None => Some(None),
                };
                let timeout = optional(f.get("timeout"), command_timeout, |n| {
                    duration(d, n, &f.path_of("timeout"))
                });
                Some(TrafficDriverSpec::Command(CommandDriver {
                    set: set?,
                    get: get?,
                    executor: executor?,
                    timeout: timeout?,
                }))
            }
            _manual => Some(TrafficDriverSpec::Manual),
        }
    }

    /// `node_servers:` node name → server name; whether the names are the plan's nodes and
    /// the backend's servers is checked once the clusters are read.
    fn node_servers(&mut self, node: &Node, path: &str) -> Option<BTreeMap<String, String>> {
        let d = &mut self.d;
        let f = mapping(d, node, path, None)?;
        let mut servers = BTreeMap::new();
        let mut ok = true;
        for (name, _, value) in f.entries() {
            self.at.node_server_keys.insert(name.to_string(), value.pos);
            match text(d, value, &f.path_of(name)) {
                Some(server) => {
                    servers.insert(name.to_string(), server);
                }
                None => ok = false,
            }
        }
        ok.then_some(servers)
    }

    /// `x_servers` and `y_servers` of a balancer: both needed, neither empty, no server in
    /// both. `host_port` asks that each be `host:port`.
    fn server_lists(
        &mut self,
        f: &Fields,
        host_port: bool,
    ) -> (Option<Vec<String>>, Option<Vec<String>>) {
        let d = &mut self.d;
        let mut read = |key: &str| -> Option<Vec<String>> {
            let n = f.required(d, key)?;
            let servers = string_list(d, n, &f.path_of(key))?;
            if servers.is_empty() {
                d.error(
                    n.pos,
                    format!("`{}` needs at least one server", f.path_of(key)),
                );
                return None;
            }
            if host_port {
                let bad: Vec<&String> = servers
                    .iter()
                    .filter(|s| {
                        s.rsplit_once(':').is_none_or(|(host, port)| {
                            host.is_empty() || port.parse::<u16>().map_or(true, |p| p == 0)
                        })
                    })
                    .collect();
                if let Some(first) = bad.first() {
                    d.error_with_hint(
                        n.pos,
                        format!("`{}`: `{}` is not host:port", f.path_of(key), shown(first)),
                        "write each proxy as host:port, e.g. 10.0.2.11:8000",
                    );
                    return None;
                }
            }
            Some(servers)
        };
        let x = read("x_servers");
        let y = read("y_servers");
        let shared = match (&x, &y) {
            (Some(x), Some(y)) => {
                let x: std::collections::HashSet<&String> = x.iter().collect();
                y.iter().find(|s| x.contains(s)).cloned()
            }
            _ => None,
        };
        if let Some(shared) = shared {
            self.d.error(
                f.get("y_servers").map_or(f.pos, |n| n.pos),
                format!(
                    "`{}` is in both `x_servers` and `y_servers`; a server belongs to one cluster",
                    shown(&shared)
                ),
            );
            return (x, None);
        }
        (x, y)
    }
}

/// The traffic schedule: percentages to Y, strictly increasing, from 1 to 100, ending at 100.
fn schedule(d: &mut Diagnostics, node: &Node) -> Option<Vec<u8>> {
    let path = "traffic.schedule";
    let items = list(d, node, path)?;
    if items.is_empty() {
        d.error_with_hint(
            node.pos,
            "`traffic.schedule` is empty",
            "list Y's percentages, ending at 100, e.g. [1, 5, 25, 50, 100]",
        );
        return None;
    }
    let mut schedule = Vec::with_capacity(items.len());
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        let Some(percent) = integer(d, item, &index(path, i), 1u8..=100) else {
            ok = false;
            continue;
        };
        if let Some(&previous) = schedule.last()
            && percent <= previous
        {
            d.error_with_hint(
                item.pos,
                format!(
                    "`{}`: {percent} does not come after {previous}",
                    index(path, i)
                ),
                "each stage sends more traffic to Y than the one before",
            );
            ok = false;
        }
        schedule.push(percent);
    }
    if ok && schedule.last() != Some(&100) {
        d.error_with_hint(
            items.last().map_or(node.pos, |n| n.pos),
            "`traffic.schedule` must end at 100",
            "the upgrade is done when all traffic is on Y; add 100 as the last stage",
        );
        ok = false;
    }
    ok.then_some(schedule)
}
