//! `clusters`: X's and Y's nodes (names, URLs, roles, executors) and their databases.

use super::Loader;
use super::read::{index, list, mapping, shown, text, url, word};
use super::yaml::Node;
use crate::plan::model::{Cluster, Clusters, DatabaseKind, Mode, Node as PlanNode, Role};

impl Loader {
    pub(super) fn clusters(
        &mut self,
        node: &Node,
        mode: Option<Mode>,
        database: Option<DatabaseKind>,
    ) -> Option<Clusters> {
        let f = mapping(&mut self.d, node, "clusters", Some(&["x", "y"]))?;
        self.at.clusters = [f.key_pos("x"), f.key_pos("y")];
        let x = f
            .required(&mut self.d, "x")
            .and_then(|n| self.cluster(n, "clusters.x", 0, mode, database));
        let y = f
            .required(&mut self.d, "y")
            .and_then(|n| self.cluster(n, "clusters.y", 1, mode, database));
        Some(Clusters { x: x?, y: y? })
    }

    /// `side` is 0 for X and 1 for Y.
    fn cluster(
        &mut self,
        node: &Node,
        path: &str,
        side: usize,
        mode: Option<Mode>,
        database: Option<DatabaseKind>,
    ) -> Option<Cluster> {
        let f = mapping(&mut self.d, node, path, Some(&["nodes", "database"]))?;
        let mut ok = true;
        let mut nodes = Vec::new();
        let items = f
            .required(&mut self.d, "nodes")
            .and_then(|n| list(&mut self.d, n, &f.path_of("nodes")));
        match items {
            Some([]) => {
                self.d.error(
                    f.get("nodes").map_or(f.pos, |n| n.pos),
                    format!("`{}` needs at least one node", f.path_of("nodes")),
                );
                ok = false;
            }
            Some(items) => {
                for (i, item) in items.iter().enumerate() {
                    match self.node(item, &index(&f.path_of("nodes"), i), mode) {
                        Some(node) => nodes.push(node),
                        None => ok = false,
                    }
                }
            }
            None => ok = false,
        }
        if ok && mode == Some(Mode::Hybrid) {
            let pos = f.key_pos("nodes").unwrap_or(f.pos);
            for role in [Role::ControlPlane, Role::DataPlane] {
                if !nodes.iter().any(|n| n.role == role) {
                    self.d.error_with_hint(
                        pos,
                        format!("`{path}` has no `{}` node; a hybrid cluster needs control planes and data planes", role.as_str()),
                        "list every node of the cluster with its role",
                    );
                    ok = false;
                }
            }
        }
        let database = match f.get("database") {
            Some(n) => {
                self.at.cluster_database[side] = f.key_pos("database");
                match self.database_spec(n, &f.path_of("database"), database) {
                    Some(spec) => Some(spec),
                    None => {
                        ok = false;
                        None
                    }
                }
            }
            None => None,
        };
        ok.then_some(Cluster { nodes, database })
    }

    fn node(&mut self, node: &Node, path: &str, mode: Option<Mode>) -> Option<PlanNode> {
        let d = &mut self.d;
        let f = mapping(
            d,
            node,
            path,
            Some(&[
                "name",
                "admin_url",
                "status_url",
                "proxy_url",
                "role",
                "executor",
            ]),
        )?;
        let mut ok = true;
        let name = f
            .required(d, "name")
            .and_then(|n| text(d, n, &f.path_of("name")));
        if let (Some(name), Some(n)) = (&name, f.get("name")) {
            if let Some(first) = self.at.node_names.get(name) {
                d.error_with_hint(
                    n.pos,
                    format!("node name `{}` is used twice", shown(name)),
                    format!(
                        "the first is at line {}, column {}; every node needs its own name",
                        first.line, first.column
                    ),
                );
                ok = false;
            } else {
                self.at.node_names.insert(name.clone(), n.pos);
            }
        }
        let mut urls = [None, None, None];
        for (slot, key) in urls
            .iter_mut()
            .zip(["admin_url", "status_url", "proxy_url"])
        {
            if let Some(n) = f.get(key) {
                *slot = url(d, n, &f.path_of(key));
                ok &= slot.is_some();
            }
        }
        let role = match f.get("role") {
            Some(n) => {
                let role = word::<Role>(d, n, &f.path_of("role"), &Role::ALL.map(Role::as_str));
                match (mode, role) {
                    (Some(Mode::Hybrid), Some(Role::Traditional)) => {
                        d.error_with_hint(
                            n.pos,
                            format!("`{}`: a hybrid node is a `control_plane` or a `data_plane`, not `traditional`", f.path_of("role")),
                            "control planes hold the database and the Admin API; data planes proxy traffic",
                        );
                        None
                    }
                    (Some(mode @ (Mode::Traditional | Mode::Dbless)), Some(role))
                        if role != Role::Traditional =>
                    {
                        d.error_with_hint(
                            n.pos,
                            format!(
                                "`{}`: role `{}` belongs to hybrid mode, and this plan's mode is `{}`",
                                f.path_of("role"),
                                role.as_str(),
                                mode.as_str()
                            ),
                            format!("in {} mode every node is `traditional`; leave `role` out", mode.as_str()),
                        );
                        None
                    }
                    (_, role) => role,
                }
            }
            None if mode == Some(Mode::Hybrid) => {
                d.error_with_hint(
                    f.pos,
                    format!("`{path}` needs `role` in hybrid mode"),
                    "write `role: control_plane` or `role: data_plane`",
                );
                None
            }
            None => Some(Role::Traditional),
        };
        let executor = f.get("executor").and_then(|n| {
            let executor = text(d, n, &f.path_of("executor"))?;
            self.at
                .executor_refs
                .push((executor.clone(), n.pos, f.path_of("executor")));
            Some(executor)
        });
        ok &= f.get("executor").is_none() || executor.is_some();
        let [admin_url, status_url, proxy_url] = urls;
        if let (Some(name), Some(Role::DataPlane), Some(pos)) =
            (&name, role, f.key_pos("admin_url"))
        {
            self.at
                .data_plane_admin_urls
                .push((name.clone(), pos, f.path_of("admin_url")));
        }
        if !ok {
            return None;
        }
        Some(PlanNode {
            name: name?,
            admin_url,
            status_url,
            proxy_url,
            role: role?,
            executor,
        })
    }
}
