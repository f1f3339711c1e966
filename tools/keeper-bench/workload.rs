//! Workloads: what each operation is, and the node set a run prepares and
//! removes. Every run lives in its own namespace `/keeper-bench-<id>`.

use crate::conn::Session;
use bytes::Bytes;
use keeper::core::tree::open_acl;
use keeper::proto::codes::{ErrorCode, OpCode};
use keeper::proto::request::{CreateRequest, MultiOp, Request};
use std::collections::VecDeque;

/// The kinds of load the tool generates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    Get,
    Set,
    Create,
    Delete,
    Exists,
    GetChildren,
    Multi,
    Mixed,
    Churn,
    WatchFanout,
    SessionStorm,
    Populate,
}

impl Workload {
    /// Every workload, in the order `all` runs them.
    pub const ALL: [Workload; 12] = [
        Workload::Get,
        Workload::Set,
        Workload::Create,
        Workload::Delete,
        Workload::Exists,
        Workload::GetChildren,
        Workload::Multi,
        Workload::Mixed,
        Workload::Churn,
        Workload::WatchFanout,
        Workload::SessionStorm,
        Workload::Populate,
    ];

    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Get => "get",
            Workload::Set => "set",
            Workload::Create => "create",
            Workload::Delete => "delete",
            Workload::Exists => "exists",
            Workload::GetChildren => "getchildren",
            Workload::Multi => "multi",
            Workload::Mixed => "mixed",
            Workload::Churn => "churn",
            Workload::WatchFanout => "watch",
            Workload::SessionStorm => "storm",
            Workload::Populate => "populate",
        }
    }

    /// Parses a command-line name.
    pub fn parse(s: &str) -> Option<Workload> {
        Workload::ALL.into_iter().find(|w| w.name() == s)
    }
}

/// The shape of the data a run uses.
#[derive(Debug, Clone)]
pub struct Shape {
    pub namespace: String,
    /// Nodes in the read/write set (`--nodes`).
    pub nodes: usize,
    /// Bytes of data per node (`--size`).
    pub size: usize,
    /// Children of the wide node (`--width`).
    pub width: usize,
    /// Ops in each multi (`--multi-ops`).
    pub multi_ops: usize,
    /// Percentage of reads in the mixed workload (`--read-pct`).
    pub read_pct: u32,
}

impl Shape {
    pub fn data_dir(&self) -> String {
        format!("{}/d", self.namespace)
    }
    pub fn wide(&self) -> String {
        format!("{}/w", self.namespace)
    }
    pub fn create_dir(&self) -> String {
        format!("{}/c", self.namespace)
    }
    pub fn delete_dir(&self) -> String {
        format!("{}/x", self.namespace)
    }
    pub fn watched(&self) -> String {
        format!("{}/f", self.namespace)
    }
    pub fn ephemeral_dir(&self) -> String {
        format!("{}/e", self.namespace)
    }
    pub fn data(&self) -> Bytes {
        Bytes::from(vec![b'k'; self.size])
    }
}

/// A create of `path` with open ACL.
pub fn create(path: String, data: Bytes, flags: i32) -> (OpCode, Request) {
    (OpCode::Create, Request::Create(CreateRequest { path, data: Some(data), acl: open_acl(), flags, ttl: 0 }))
}

/// A small, fast, seeded generator (xorshift64*): workloads need spread, not quality.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }
    pub fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32) as usize % n.max(1)
    }
}

/// Produces one connection's operations.
pub struct OpSource {
    workload: Workload,
    shape: Shape,
    data: Bytes,
    rng: Rng,
    /// Paths this connection still deletes (delete) or creates (populate).
    queue: VecDeque<String>,
}

impl OpSource {
    /// The source for connection `index` of `total`.
    pub fn new(workload: Workload, shape: &Shape, index: usize, total: usize) -> OpSource {
        let queue = match workload {
            Workload::Delete => (0..shape.nodes).filter(|i| i % total == index).map(|i| format!("{}/n{i}", shape.delete_dir())).collect(),
            Workload::Populate => (0..shape.nodes).filter(|i| i % total == index).map(|i| format!("{}/p{i}", shape.namespace)).collect(),
            _ => VecDeque::new(),
        };
        OpSource { workload, data: shape.data(), shape: shape.clone(), rng: Rng::new(0x9e37_79b9 ^ (index as u64) << 20), queue }
    }

    fn node(&mut self) -> String {
        format!("{}/n{}", self.shape.data_dir(), self.rng.below(self.shape.nodes))
    }

    /// The next operation, or `None` when this connection's share is done.
    pub fn next(&mut self) -> Option<(OpCode, Request)> {
        Some(match self.workload {
            Workload::Get => (OpCode::GetData, Request::GetData { path: self.node(), watch: false }),
            Workload::Exists => (OpCode::Exists, Request::Exists { path: self.node(), watch: false }),
            Workload::Set => (OpCode::SetData, Request::SetData { path: self.node(), data: Some(self.data.clone()), version: -1 }),
            Workload::Mixed => {
                if self.rng.below(100) < self.shape.read_pct as usize {
                    (OpCode::GetData, Request::GetData { path: self.node(), watch: false })
                } else {
                    (OpCode::SetData, Request::SetData { path: self.node(), data: Some(self.data.clone()), version: -1 })
                }
            }
            Workload::Create => create(format!("{}/n-", self.shape.create_dir()), self.data.clone(), 2),
            Workload::Delete => (OpCode::Delete, Request::Delete { path: self.queue.pop_front()?, version: -1 }),
            Workload::Populate => create(self.queue.pop_front()?, self.data.clone(), 0),
            Workload::GetChildren => (OpCode::GetChildren, Request::GetChildren { path: self.shape.wide(), watch: false }),
            Workload::Multi => {
                let ops = (0..self.shape.multi_ops).map(|_| MultiOp::SetData { path: self.node(), data: Some(self.data.clone()), version: -1 }).collect();
                (OpCode::Multi, Request::Multi(ops))
            }
            Workload::Churn | Workload::WatchFanout | Workload::SessionStorm => unreachable!("not a request loop"),
        })
    }
}

/// Sends `ops` with up to `window` outstanding, failing on any error reply
/// other than those in `tolerated`.
pub async fn pipelined(s: &mut Session, ops: impl IntoIterator<Item = (OpCode, Request)>, window: usize, tolerated: &[ErrorCode]) -> std::io::Result<()> {
    let mut outstanding = 0usize;
    let mut ops = ops.into_iter().peekable();
    while ops.peek().is_some() || outstanding > 0 {
        while outstanding < window
            && let Some((op, req)) = ops.next()
        {
            s.queue(op, &req);
            outstanding += 1;
        }
        s.flush().await?;
        let reply = s.recv().await?;
        if reply.header.xid < 0 {
            continue;
        }
        outstanding -= 1;
        if reply.header.err != 0 && !tolerated.iter().any(|c| c.code() == reply.header.err) {
            return Err(std::io::Error::other(format!("setup request failed with error {}", reply.header.err)));
        }
    }
    Ok(())
}

/// Creates the namespace and the nodes `workload` needs.
pub async fn prepare(s: &mut Session, workload: Workload, shape: &Shape) -> std::io::Result<()> {
    let dirs = [shape.namespace.clone(), shape.data_dir(), shape.wide(), shape.create_dir(), shape.delete_dir(), shape.watched(), shape.ephemeral_dir()];
    pipelined(s, dirs.into_iter().map(|d| create(d, Bytes::new(), 0)), 64, &[ErrorCode::NodeExists]).await?;
    let data = shape.data();
    match workload {
        Workload::Get | Workload::Set | Workload::Exists | Workload::Mixed | Workload::Multi => {
            pipelined(s, (0..shape.nodes).map(|i| create(format!("{}/n{i}", shape.data_dir()), data.clone(), 0)), 256, &[]).await
        }
        Workload::Delete => pipelined(s, (0..shape.nodes).map(|i| create(format!("{}/n{i}", shape.delete_dir()), data.clone(), 0)), 256, &[]).await,
        Workload::GetChildren => pipelined(s, (0..shape.width).map(|i| create(format!("{}/child-{i:06}", shape.wide()), Bytes::new(), 0)), 256, &[]).await,
        _ => Ok(()),
    }
}

/// Deletes a namespace and everything under it.
pub async fn remove_tree(s: &mut Session, root: &str) -> std::io::Result<()> {
    let mut order = vec![root.to_string()];
    let mut i = 0;
    while i < order.len() {
        let reply = s.call(OpCode::GetChildren, &Request::GetChildren { path: order[i].clone(), watch: false }).await?;
        if reply.header.err == 0 {
            let mut body = reply.body;
            let children = body.strings().map_err(|e| std::io::Error::other(e.to_string()))?;
            let parent = order[i].clone();
            order.extend(children.into_iter().map(|c| format!("{parent}/{c}")));
        }
        i += 1;
    }
    pipelined(s, order.into_iter().rev().map(|path| (OpCode::Delete, Request::Delete { path, version: -1 })), 256, &[ErrorCode::NoNode]).await
}
