//! `TestNatsCluster`: an n-node `nats-server` cluster with JetStream, for replicated (R3)
//! stream tests and later scale-out tests.
//!
//! Ports are reserved up front because every node's route list must name the others.
//! The cluster is ready when every node's `/healthz` answers 200, which requires a
//! JetStream meta leader.

use tempfile::TempDir;

use crate::process::{NatsProcess, free_port};

/// A running cluster of brokers.
#[derive(Debug)]
pub struct TestNatsCluster {
    nodes: Vec<NatsProcess>,
    client_ports: Vec<u16>,
    // Declared last so the processes are killed before their directories are removed.
    _dir: TempDir,
}

#[derive(Debug, Clone, Copy)]
struct NodePorts {
    client: u16,
    cluster: u16,
    monitor: u16,
}

impl TestNatsCluster {
    /// Starts `n_nodes` brokers joined in one cluster and waits until all are healthy.
    pub fn start(n_nodes: usize) -> TestNatsCluster {
        assert!(n_nodes >= 1, "a cluster needs at least one node");
        let dir = tempfile::Builder::new()
            .prefix("tutti-cluster-")
            .tempdir()
            .expect("temp dir");
        let ports: Vec<NodePorts> = (0..n_nodes)
            .map(|_| NodePorts {
                client: free_port(),
                cluster: free_port(),
                monitor: free_port(),
            })
            .collect();
        let configs: Vec<String> = (0..n_nodes)
            .map(|node_idx| node_config(&dir, &ports, node_idx))
            .collect();
        // Nodes become healthy only once a meta leader exists, which needs a quorum, so all
        // processes are written first and started one after another; `start` waits per node,
        // and the first nodes wait until enough peers have joined.
        let nodes = start_all(&dir, &configs);
        TestNatsCluster {
            nodes,
            client_ports: ports.iter().map(|p| p.client).collect(),
            _dir: dir,
        }
    }

    /// Client URLs of all nodes.
    pub fn urls(&self) -> Vec<String> {
        self.client_ports
            .iter()
            .map(|port| format!("nats://127.0.0.1:{port}"))
            .collect()
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the cluster has no nodes (never true for a started cluster).
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Connects a client that knows every node.
    pub async fn client(&self) -> async_nats::Client {
        async_nats::ConnectOptions::new()
            .connect(self.urls())
            .await
            .expect("connect to test cluster")
    }
}

fn start_all(dir: &TempDir, configs: &[String]) -> Vec<NatsProcess> {
    let handles: Vec<_> = configs
        .iter()
        .enumerate()
        .map(|(node_idx, config)| {
            let node_dir = dir.path().join(format!("n{node_idx}"));
            let config = config.clone();
            std::thread::spawn(move || NatsProcess::start(&node_dir, &config))
        })
        .collect();
    handles
        .into_iter()
        .map(|handle| handle.join().expect("node start"))
        .collect()
}

fn node_config(dir: &TempDir, ports: &[NodePorts], node_idx: usize) -> String {
    let own = ports[node_idx];
    let routes: Vec<String> = ports
        .iter()
        .enumerate()
        .filter(|(other_idx, _)| *other_idx != node_idx)
        .map(|(_, other)| format!("nats-route://127.0.0.1:{}", other.cluster))
        .collect();
    let store = dir.path().join(format!("n{node_idx}")).join("jetstream");
    format!(
        "server_name: n{node_idx}\nhost: 127.0.0.1\nport: {client}\nhttp: \"127.0.0.1:{monitor}\"\n\
         jetstream {{\n  store_dir: {store:?}\n  max_file_store: 1073741824\n  max_memory_store: 268435456\n}}\n\
         cluster {{\n  name: tutti-test\n  listen: \"127.0.0.1:{cluster}\"\n  routes: [{routes}]\n}}\n",
        client = own.client,
        monitor = own.monitor,
        cluster = own.cluster,
        store = store.display().to_string(),
        routes = routes.join(", "),
    )
}
